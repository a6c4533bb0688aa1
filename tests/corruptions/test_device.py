"""Spatial corruptions on the clips' device, batches, and the rounding tolerance of another device.

There is no GPU in CI, so a device is emulated: a clip on it is a wrapper tensor (device
``meta``, which nothing initialises) holding CPU data; every operation on it runs on that data
and gives another wrapper, and the emulation records what a CUDA device would make the host
do: copies from the device (``.cpu()``, ``.numpy()``), copies to it and whether they wait for
the device (unless ``non_blocking`` from pinned memory: the emulated device is made one whose
copies are pinned, as CUDA's), values read back (``.item()``, ``nonzero``). An operation that
mixes a device tensor with a CPU tensor of more than one value fails, as on CUDA.
"""

import inspect

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map

from vidsparse.corruptions import CORRUPTIONS, Corruption, _ops, corrupt, list_corruptions
from vidsparse.corruptions import registry
from vidsparse.corruptions.registry import is_frame_local
from vidsparse.corruptions.spatial import _shot_noise_lookup

SPATIAL = sorted(list_corruptions("spatial"))
ON_DEVICE = [n for n in SPATIAL if not CORRUPTIONS.meta(n)["cpu_only"]]


def modes(name):
    takes = "temporal" in inspect.signature(CORRUPTIONS.get(name)).parameters
    return ("static", "iid", "smooth") if takes else (None,)


def options(mode):
    return {} if mode is None else {"temporal": mode}


CASES = [(name, mode) for name in SPATIAL for mode in modes(name)]
DEVICE = torch.device("meta")
# Operations whose result the host must wait for (a count, a value, a shape that depends on values).
READS_BACK = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default",
              "aten._unique2.default", "aten.unique_consecutive.default", "aten.equal.default",
              "aten.is_nonzero.default"}


class OnDevice(torch.Tensor):
    """A tensor on the emulated device: the values live in ``.data_`` (a CPU tensor)."""

    @staticmethod
    def __new__(cls, data: torch.Tensor):
        wrapper = torch.Tensor._make_wrapper_subclass(cls, data.shape, strides=data.stride(),
                                                      storage_offset=data.storage_offset(), dtype=data.dtype,
                                                      device=DEVICE, requires_grad=False)
        wrapper.data_ = data
        return wrapper

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"{func} on an emulated device tensor outside EmulatedDevice")

    def __repr__(self, **kwargs):
        return f"OnDevice({self.data_!r})"


def _on_device(device) -> bool:
    return device is not None and torch.device(device).type == DEVICE.type


def _unwrap(x):
    return x.data_ if isinstance(x, OnDevice) else x


class _Functions(TorchFunctionMode):
    """Factories asked for the device (``torch.tensor`` copies host values), ``Tensor.to`` a host
    tensor to the device, ``pin_memory``, and ``.numpy()``, which copies from the device."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.pin_memory:
            if isinstance(args[0], OnDevice):
                raise RuntimeError("cannot pin a device tensor (only dense CPU tensors can be pinned)")
            pinned = args[0].clone()
            pinned.emulated_pinned = True
            return pinned
        if func is torch.Tensor.to and not isinstance(args[0], OnDevice):
            device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
            if _on_device(device):
                source = args[0]
                self.log.append(("to_device", source.numel(), non_blocking, getattr(source, "emulated_pinned", False)))
                return OnDevice(source.to(dtype=dtype or source.dtype, copy=True))
        if _on_device(kwargs.get("device")) and not any(isinstance(a, OnDevice) for a in tree_leaves(args)):
            out = func(*args, **{**kwargs, "device": "cpu"})
            if getattr(func, "__name__", "") in ("tensor", "as_tensor"):  # from host values: a blocking copy
                self.log.append(("to_device", out.numel(), False, False))
            return OnDevice(out) if isinstance(out, torch.Tensor) else out
        if func in (torch.Tensor.numpy, torch.Tensor.tolist) and isinstance(args[0], OnDevice):
            self.log.append(("from_device", args[0].numel()))
            return func(args[0].data_, *args[1:], **kwargs)
        return func(*args, **kwargs)


class _Operations(TorchDispatchMode):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        on_device = any(isinstance(a, OnDevice) for a in tensors)
        target = kwargs.get("device")
        run_kwargs = tree_map(_unwrap, kwargs)
        if _on_device(target):
            run_kwargs["device"] = torch.device("cpu")
        copy = func is torch.ops.aten._to_copy.default
        if on_device and not copy:
            host = [tuple(a.shape) for a in tensors if not isinstance(a, OnDevice) and a.dim() > 0]
            if host:
                raise RuntimeError(f"{func}: host tensors {host} used with device tensors (fails on CUDA)")
        out = func(*tree_map(_unwrap, args), **run_kwargs)
        if on_device:
            self.log.append(("operation", str(func)))
        if str(func) in READS_BACK and on_device:
            self.log.append(("reads_back", str(func)))
        if copy and on_device and target is not None and not _on_device(target):
            self.log.append(("from_device", args[0].numel()))
            return out
        if not (on_device or _on_device(target)):
            return out
        if "out" in kwargs:
            return kwargs["out"]
        if func._schema.is_mutable and args and isinstance(args[0], OnDevice) and out is args[0].data_:
            return args[0]
        return tree_map(lambda o: OnDevice(o) if isinstance(o, torch.Tensor) else o, out)


class EmulatedDevice:
    """``with EmulatedDevice() as log:`` runs on the emulated device; ``log`` lists the host traffic."""

    def __enter__(self):
        self.log = []
        self.modes = [_Functions(self.log), _Operations(self.log)]
        for mode in self.modes:
            mode.__enter__()
        return self.log

    def __exit__(self, *exc):
        for mode in reversed(self.modes):
            mode.__exit__(*exc)


@pytest.fixture(autouse=True)
def pinned_copies_to_the_emulated_device(monkeypatch):
    monkeypatch.setattr(_ops, "PINNED_COPIES", (DEVICE.type,))


def traffic(log):
    """(values copied from the device, values copied to it, copies to it that wait, reads back).

    A copy to the device waits for the device unless it is ``non_blocking`` from pinned memory.
    """
    from_device = sum(entry[1] for entry in log if entry[0] == "from_device")
    to_device = sum(entry[1] for entry in log if entry[0] == "to_device")
    blocking = [entry for entry in log if entry[0] == "to_device" and not (entry[2] and entry[3])]
    reads = [entry[1] for entry in log if entry[0] == "reads_back"]
    return from_device, to_device, blocking, reads


def clips(batch, frames, height=24, width=40, channels=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (batch, frames, height, width, channels),
                                                                 dtype=np.uint8))


def test_the_emulated_device_catches_what_a_device_forbids():
    # The harness must fail where a real device would cost a copy or a wait, or would fail.
    x = clips(1, 2)
    with EmulatedDevice() as log:
        remote = OnDevice(x)
        assert torch.equal((remote + 1).cpu(), x + 1)
        remote.numpy()
        remote.sum().item()
        torch.from_numpy(np.zeros(3, np.float32)).to(DEVICE)
        torch.tensor([1.0, 2.0], device=remote.device)
        torch.ones(4).pin_memory().to(DEVICE, non_blocking=True)  # the one copy that does not wait
        with pytest.raises(RuntimeError, match="host tensors"):
            remote + x
    from_device, to_device, blocking, reads = traffic(log)
    assert from_device == 2 * x.numel() and to_device == 9 and len(blocking) == 2
    assert reads == ["aten._local_scalar_dense.default"]


@pytest.mark.parametrize("name,mode", [(n, m) for n, m in CASES if n in ON_DEVICE])
def test_spatial_corruptions_run_on_the_clips_device(name, mode):
    # The batch never leaves the device and the host never waits for it; in static mode the
    # host sends the same patterns whatever the clip length (never the video itself).
    sent = {}
    for frames in (3, 6):
        batch = clips(2, frames)
        expected = corrupt(batch, name, 3, seed=5, **options(mode))
        with EmulatedDevice() as log:
            out = corrupt(OnDevice(batch), name, 3, seed=5, **options(mode))
        assert isinstance(out, OnDevice) and out.dtype == torch.uint8 and out.shape == batch.shape
        assert torch.equal(out.data_, expected)
        from_device, sent[frames], blocking, reads = traffic(log)
        assert from_device == 0, f"{name} copied {from_device} values from the device"
        assert not blocking and not reads, (blocking, reads)
    if mode in ("static", None):
        assert sent[3] == sent[6], f"{name}: the host sent {sent} values for 3 and 6 frames"


def test_jpeg_runs_on_the_host_with_one_copy_each_way():
    assert [n for n in SPATIAL if CORRUPTIONS.meta(n)["cpu_only"]] == ["jpeg_compression"]
    batch = clips(3, 2)
    with EmulatedDevice() as log:
        out = corrupt(OnDevice(batch), "jpeg_compression", 3)
    assert isinstance(out, OnDevice) and torch.equal(out.data_, corrupt(batch, "jpeg_compression", 3))
    copies = [entry for entry in log if entry[0] in ("from_device", "to_device")]
    assert [entry[:2] for entry in copies] == [("from_device", batch.numel()), ("to_device", batch.numel())]


# A streak has one direction and each clip has its own, so these make a pass per clip (and per
# frame in iid mode); contrast takes each clip's frame means alone (a GPU's reduction may add in
# another order over more frames). Every other spatial corruption makes the same operations
# for any batch.
PER_CLIP = {"motion_blur", "snow", "rain", "frost", "contrast"}


@pytest.mark.parametrize("name", [n for n in ON_DEVICE if n not in PER_CLIP])
def test_a_batch_is_corrupted_in_one_pass(name):
    def operations(batch_size):
        with EmulatedDevice() as log:
            corrupt(OnDevice(clips(batch_size, 2)), name, 3, seed=1)
        return sum(entry[0] == "operation" for entry in log)

    assert operations(4) == operations(2)


def test_the_shot_noise_search_of_every_pixel_equals_the_lookup():
    # The device path searches every pixel's count; the CPU path looks most of them up.
    video = clips(2, 3, 17, 23)
    u = torch.from_numpy(np.random.default_rng(1).random((2, 1, 17, 23, 3), dtype=np.float32))
    for photons in (3, 60):
        assert torch.equal(_shot_noise_lookup(video, photons, u, sparse=False),
                           _shot_noise_lookup(video, photons, u, sparse=True))


@pytest.mark.parametrize("name,mode", CASES)
def test_clip_i_of_a_batch_is_corrupted_as_alone_with_its_own_stream(name, mode):
    # Odd sizes, so that no clip starts or ends on a vector boundary; a grey batch too.
    for batch in (clips(3, 5, 17, 23), clips(2, 4, 13, 19, channels=1)):
        out = corrupt(batch, name, 4, seed=7, **options(mode))
        for i in range(len(batch)):
            assert torch.equal(out[i], corrupt(batch[i], name, 4, seed=[7, i], **options(mode))), i


@pytest.mark.parametrize("name,mode", [(n, m) for n, m in CASES if is_frame_local(n, options(m))])
def test_views_of_a_video_with_its_seed_and_frames_are_rows_of_the_whole_result(name, mode):
    # What an evaluation does: a batch of views of dataset videos, each with its video's seed.
    video = clips(1, 20, 18, 26)[0]
    other = clips(1, 20, 18, 26, seed=1)[0]
    frames = np.array([[0, 4, 8, 12], [9, 10, 11, 19], [2, 3, 5, 17]])
    views = torch.stack([video[frames[0]], video[frames[1]], other[frames[2]]])
    out = corrupt(views, name, 3, seed=[11, 11, 12], frames=frames, **options(mode))
    whole = corrupt(video, name, 3, seed=11, **options(mode))
    assert torch.equal(out[0], whole[frames[0]]) and torch.equal(out[1], whole[frames[1]])
    assert torch.equal(out[2], corrupt(other, name, 3, seed=12, **options(mode))[frames[2]])


@pytest.mark.parametrize("name", ["gaussian_noise", "motion_blur", "fog", "frame_drop"])
def test_one_seed_per_clip_gives_each_clip_its_own_result(name):
    batch = clips(3, 4)
    out = corrupt(batch.numpy(), name, 2, seed=[3, 1, 3])
    for i, clip_seed in enumerate([3, 1, 3]):
        np.testing.assert_array_equal(out[i], corrupt(batch[i].numpy(), name, 2, seed=clip_seed))


def test_a_large_batch_is_split_into_groups_with_the_same_result(monkeypatch):
    batch = clips(5, 3)
    whole = {n: corrupt(batch, n, 3, seed=2) for n in ("gaussian_noise", "snow", "contrast")}
    monkeypatch.setattr(registry, "CPU_BATCH_ELEMENTS", 2 * batch[0].numel())  # groups of 2, 2 and 1 clips
    calls = []
    original = registry._call_batched

    def recording(fn, group, *rest):
        calls.append(len(group))
        return original(fn, group, *rest)

    monkeypatch.setattr(registry, "_call_batched", recording)
    for name, expected in whole.items():
        assert torch.equal(corrupt(batch, name, 3, seed=2), expected)
    assert calls == [2, 2, 1] * 3


def test_corruption_batch_equals_calling_it_per_clip():
    fog, noise = Corruption("fog", 2, seed=4), Corruption("gaussian_noise", 3, seed=4, options={"temporal": "iid"})
    batch = clips(2, 6)
    sources = ["Walk/v_a.avi", "Run/v_b.avi"]
    out = fog.batch(batch, sources)
    for i, source in enumerate(sources):
        assert torch.equal(out[i], fog(batch[i], source))
    frames = [[0, 1, 2, 3, 4, 5], [6, 8, 10, 12, 14, 16]]
    out = noise.batch(batch, ["Walk/v_a.avi"] * 2, frames=frames)
    for i in range(2):
        assert torch.equal(out[i], noise(batch[i], "Walk/v_a.avi", frames=frames[i]))


def test_bad_batch_seeds_and_frames_are_refused_with_what_was_expected():
    batch = clips(2, 3)
    with pytest.raises(ValueError, match=r"one int per clip of the batch \(2 clips\)"):
        corrupt(batch, "gaussian_noise", seed=[1, 2, 3])
    with pytest.raises(ValueError, match=r"one int per clip"):
        corrupt(batch, "gaussian_noise", seed=[1.5, 2])
    with pytest.raises(ValueError, match=r"expected a 2 x 3 array of non-negative integer frame indices"):
        corrupt(batch, "gaussian_noise", frames=[0, 1, 2])
    with pytest.raises(ValueError, match="B x T x H x W x C clips and B sources, got clips of shape"):
        Corruption("fog").batch(batch, ["a/b.avi"] * 2 + ["c/d.avi"])


# The README's tolerance for another device: every value within DEVICE_TOLERANCE_LEVELS uint8
# levels of the CPU's, except at most a fraction DEVICE_TOLERANCE_FRACTION of the values.
LEVELS, FRACTION = registry.DEVICE_TOLERANCE_LEVELS, registry.DEVICE_TOLERANCE_FRACTION


def beyond_tolerance(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of values of ``a`` and ``b`` that differ by more than the tolerated levels."""
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)) > LEVELS).mean())


@pytest.mark.parametrize("name,mode", CASES)
def test_float64_computation_stays_within_the_device_tolerance(name, mode):
    # A stand-in for a GPU's float32 kernels, whose rounding differs from the CPU's.
    video = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8))
    for severity in (1, 5):
        reference = corrupt(video, name, severity, seed=9, **options(mode)).numpy()
        with _ops.computing_in(torch.float64):
            other = corrupt(video, name, severity, seed=9, **options(mode)).numpy()
        assert beyond_tolerance(reference, other) <= FRACTION, severity


def test_the_stand_in_rounds_differently_and_the_check_sees_a_real_difference():
    video = clips(1, 4, 48, 64)
    # Brightness 3 adds 76.5 levels to a pixel's brightest channel, a tie that float32 and
    # float64 round apart: the stand-in really computes otherwise, within one level.
    reference = corrupt(video, "brightness", 3).numpy()
    with _ops.computing_in(torch.float64):
        assert (corrupt(video, "brightness", 3).numpy() != reference).any()
    # Blurring twice as much is no rounding difference: it fails the tolerance by far.
    a, b = corrupt(video, "gaussian_blur", 1).numpy(), corrupt(video, "gaussian_blur", 2).numpy()
    assert beyond_tolerance(a, b) > 100 * FRACTION


def test_views_of_one_video_share_its_patterns_drawn_and_sent_once():
    views = clips(4, 3)
    sent = {}
    for seeds in ([8, 8, 8, 8], [8, 9, 10, 11]):
        with EmulatedDevice() as log:
            out = corrupt(OnDevice(views), "gaussian_noise", 3, seed=seeds)
        sent[seeds[1]] = traffic(log)[1]
        for i, clip_seed in enumerate(seeds):
            assert torch.equal(out.data_[i], corrupt(views[i], "gaussian_noise", 3, seed=clip_seed))
    frame = views[0, 0].numel()
    assert sent[8] < frame + 100 and sent[9] >= 4 * frame  # one noise field (and its index) against four
