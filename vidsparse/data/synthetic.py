"""An embedded video dataset whose classes differ only by motion.

No real UCF101 or Kinetics can be downloaded where vidsparse is developed, so tests, the demo
and the corruption tools run on generated videos written as real files in the published
layouts; the loaders that read them are the ones that read the real datasets.

Each video shows textured objects over a textured background. Everything a single frame
shows (textures, colours, shapes, sizes, starting positions, speeds) is drawn from an RNG
keyed on ``(seed, video index within class)`` and never on the class: video ``k`` of
``MoveLeft`` and video ``k`` of ``MoveRight`` have the same first frame and differ only in
how it moves. Motion wraps around the frame edges (the frame is a torus) and zoom cycles
through a fixed range of scales (fading out and in where the cycle restarts), so at *every* time step the distribution of what one frame
shows is the same for every class: a model must look at several frames to beat chance.

``spread`` makes the translations ambiguous by a known amount: each video travels in its
class's direction turned by an angle drawn uniformly from ``[-spread, +spread]`` degrees
(again keyed on ``(seed, index)``, not on the class). Past half the angle between two
classes' directions their ranges overlap, and a video travelling in the overlap is as likely
to be of either class: no model beats :func:`best_accuracy`, which for the four
translations is ``45 / spread`` (spread 56.25 degrees: 80%). Directions that vary within a
class are also closer to real actions than four exact ones.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
from tqdm.auto import tqdm

from vidsparse.data.decode import write_video
from vidsparse.data.index import write_atomic
from vidsparse.registry import Registry

DEFAULT_SIZE = (80, 64)  # (width, height): a 64-pixel short side, what VideoTransform resizes to
DEFAULT_FRAMES = 32
DEFAULT_FPS = 25.0

# FFmpeg's MPEG-4 encoder defaults to 200 kb/s rate control, which on these densely textured
# frames smears the mid-frequency detail (about 23 dB PSNR); a fixed quantiser of 3 keeps
# about 32 dB, so the clean dataset is clean and codec corruptions have room to act.
AVI_OPTIONS = {"qmin": "3", "qmax": "3"}

# UCF101 split 1 tests on groups g01-g07 of 25 (Soomro et al. 2012, ucfTrainTestlist).
UCF101_TEST_FRACTION = 7 / 25
# UCF101 has 4-7 clips per group.
MAX_CLIPS_PER_GROUP = 7

# Sizes and speeds are in pixels of a 64-pixel short side and scale with the frame.
_REFERENCE_SIDE = 64.0
_OBJECTS_PER_VIDEO = (3, 4)
_OBJECT_HALF_SIZE = (11.0, 15.0)
_OBJECT_ASPECT = (0.5, 0.9)  # elongated, so rotation shows in the outline too
# Mid-frequency detail (5-9 cycles across the frame): noise, blur and fog all change it.
_OBJECT_WAVELENGTH = (7.0, 11.0)
_BACKGROUND_WAVELENGTH = (8.0, 14.0)
# Pixels per frame. Clips sampled every 2nd frame then move 3.5-5 px per step, at most half
# the texture wavelength: faster, the texture aliases (seems to stand still or go backwards)
# and r3d_tiny misclassified some vertical movers in our trials.
_SPEED = (1.75, 2.5)
_SPIN = (math.radians(6.0), math.radians(10.0))  # radians per frame
_ZOOM_PERIOD = (28.0, 40.0)  # frames per grow (or shrink) cycle
_LOG_SCALE = (math.log(0.65), math.log(1.35))
# An object fades out at the end of its zoom cycle and back in at the start: a sudden jump
# from largest to smallest would itself look like motion (a shrink inside ZoomIn).
_ZOOM_FADE = 0.1


class SyntheticConfigError(ValueError):
    """A bad argument to :func:`make_synthetic`; ``option`` names the argument."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option


@dataclass(frozen=True)
class Motion:
    """How every object of a video moves; the name is the class name.

    ``direction`` is a unit vector in image axes (x right, y down), ``spin`` is +1 for
    clockwise on screen, ``zoom`` is +1 for growing objects.
    """

    name: str
    direction: tuple[float, float] = (0.0, 0.0)
    spin: int = 0
    zoom: int = 0


# Sorted by name, like UCF101's classInd.txt; ``classes=N`` takes the first N.
MOTIONS: tuple[Motion, ...] = tuple(sorted([
    Motion("MoveRight", direction=(1.0, 0.0)),
    Motion("MoveLeft", direction=(-1.0, 0.0)),
    Motion("MoveUp", direction=(0.0, -1.0)),
    Motion("MoveDown", direction=(0.0, 1.0)),
    Motion("RotateClockwise", spin=1),
    Motion("RotateCounterClockwise", spin=-1),
    Motion("ZoomIn", zoom=1),
    Motion("ZoomOut", zoom=-1),
], key=lambda m: m.name))
_MOTIONS_BY_NAME = {m.name: m for m in MOTIONS}


def list_motions() -> list[str]:
    """Class names the generator knows, in class-index order."""
    return [m.name for m in MOTIONS]


def get_motion(name: str | Motion) -> Motion:
    if isinstance(name, Motion):
        return name
    try:
        return _MOTIONS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown motion {name!r}; known: {', '.join(list_motions())}") from None


class ObjectState(NamedTuple):
    x: float
    y: float
    angle: float  # radians, clockwise on screen
    scale: float
    opacity: float


@dataclass(frozen=True)
class SceneObject:
    """One textured object; everything here is drawn independently of the class."""

    texture: np.ndarray  # S x S x 3 float32 in [0, 1], object-local pixels
    box: bool  # a rectangle, else an ellipse
    half: tuple[float, float]  # half extents along the object's own x and y axes
    start: tuple[float, float]  # centre (x, y) at frame 0
    speed: float  # pixels per frame, along the motion's direction
    angle: float  # radians at frame 0
    spin_rate: float  # radians per frame
    scale_phase: float  # position in the zoom cycle at frame 0, in [0, 1)
    zoom_rate: float  # zoom cycles per frame

    def state(self, motion: Motion, t: float, size: tuple[int, int]) -> ObjectState:
        """Pose at frame ``t`` under ``motion``; positions wrap around the frame edges.

        Scale and opacity are functions of the zoom phase alone, and the phase at frame 0 is
        uniform, so every class shows the same distribution of sizes in any one frame.
        """
        width, height = size
        x = (self.start[0] + motion.direction[0] * self.speed * t) % width
        y = (self.start[1] + motion.direction[1] * self.speed * t) % height
        angle = self.angle + motion.spin * self.spin_rate * t
        phase = (self.scale_phase + motion.zoom * self.zoom_rate * t) % 1.0
        scale = math.exp(_LOG_SCALE[0] + phase * (_LOG_SCALE[1] - _LOG_SCALE[0]))
        opacity = min(1.0, phase / _ZOOM_FADE, (1.0 - phase) / _ZOOM_FADE)
        return ObjectState(x, y, angle, scale, opacity)


@dataclass(frozen=True)
class Scene:
    """The appearance of one video: a static background and the objects on it."""

    background: np.ndarray  # H x W x 3 float32 in [0, 1]
    objects: tuple[SceneObject, ...]
    # Radians, clockwise on screen: how far this video's direction of travel is turned from
    # its class's (``spread`` in :func:`draw_scene`). Rotations and zooms have no direction.
    turn: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        return self.background.shape[1], self.background.shape[0]


def draw_scene(index: int, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE,
               spread: float = 0.0) -> Scene:
    """The appearance of video ``index``; the RNG is keyed on ``(seed, index)`` only.

    ``spread`` (degrees) sets :attr:`Scene.turn` to ``spread * (2u - 1)`` with ``u`` from a
    second RNG keyed on ``(seed, index, 1)``: the appearance is the same for every spread,
    spread 0 gives the scenes of a generator without it, and a larger spread scales each
    video's turn without changing its sign.
    """
    width, height = size
    rng = np.random.default_rng([seed, index])
    unit = min(width, height) / _REFERENCE_SIDE
    base = rng.uniform(0.2, 0.6, size=3)
    background = _texture(rng, height, width, rng.uniform(*_BACKGROUND_WAVELENGTH) * unit,
                          base - 0.15, base + 0.15)
    count = int(rng.integers(_OBJECTS_PER_VIDEO[0], _OBJECTS_PER_VIDEO[1] + 1))
    # Starts spread like a Latin square (one object per column band and per row band) so a
    # centre crop always holds some object: with uniform starts, every object of a video
    # moving up or down could stay in the strips a crop cuts off. Each start is still
    # uniform over the frame.
    xs = (rng.uniform() + (np.arange(count) + rng.uniform(-0.3, 0.3, count)) / count) % 1.0
    ys = (rng.uniform() + (rng.permutation(count) + rng.uniform(-0.3, 0.3, count)) / count) % 1.0
    objects = []
    for i in range(count):
        a = rng.uniform(*_OBJECT_HALF_SIZE) * unit
        b = a * rng.uniform(*_OBJECT_ASPECT)
        # Room for the largest scale plus the bilinear footprint.
        side = 2 * math.ceil(a * math.exp(_LOG_SCALE[1]) * math.sqrt(2)) + 3
        dark = rng.uniform(0.0, 0.35, size=3)
        bright = rng.uniform(0.65, 1.0, size=3)
        texture = _texture(rng, side, side, rng.uniform(*_OBJECT_WAVELENGTH) * unit, dark, bright)
        objects.append(SceneObject(
            texture=texture,
            box=bool(rng.random() < 0.5),
            half=(a, b),
            start=(xs[i] * width, ys[i] * height),
            speed=rng.uniform(*_SPEED) * unit,
            angle=rng.uniform(0, 2 * math.pi),
            spin_rate=rng.uniform(*_SPIN),
            scale_phase=rng.uniform(0, 1),
            zoom_rate=1.0 / rng.uniform(*_ZOOM_PERIOD),
        ))
    turn = math.radians(spread) * (2.0 * np.random.default_rng([seed, index, 1]).uniform() - 1.0)
    return Scene(background.astype(np.float32), tuple(objects), turn)


def turned(motion: str | Motion, angle: float) -> Motion:
    """``motion`` with its direction turned by ``angle`` radians, clockwise on screen (y down).

    Example:
        >>> [round(c, 6) for c in turned("MoveRight", math.pi / 2).direction]  # clockwise: down
        [0.0, 1.0]
    """
    motion = get_motion(motion)
    dx, dy = motion.direction
    cos, sin = math.cos(angle), math.sin(angle)
    return replace(motion, direction=(dx * cos - dy * sin, dx * sin + dy * cos))


def best_accuracy(classes: Sequence[str | Motion], spread: float) -> float:
    """The highest accuracy any model can have on ``classes`` at direction ``spread``.

    A class's videos travel in directions spread uniformly over an arc of ``2 * spread``
    degrees around its own, so a direction inside k of these arcs is equally likely to come
    from each of the k classes (the classes are equally frequent): the Bayes classifier is
    right with probability 1/k there. Averaged, that is the length of the arcs' union over
    ``len(classes) * 2 * spread``, with 1 counted for each class that does not translate
    (rotations and zooms are never confused with translations or with each other). Exact
    for a model that sees the direction of travel; a real one does no better.

    Example:
        >>> best_accuracy(list_motions()[:4], spread=56.25)  # MoveDown/Left/Right/Up
        0.8
    """
    if not 0 <= spread <= 180:
        raise ValueError(f"spread must be in [0, 180] degrees, got {spread!r}")
    motions = [get_motion(m) for m in classes]
    angles = [math.degrees(math.atan2(m.direction[1], m.direction[0])) % 360.0
              for m in motions if m.direction != (0.0, 0.0)]
    if not angles or spread == 0:
        return 1.0

    def covered(angle: float) -> bool:
        return any(abs((angle - a + 180.0) % 360.0 - 180.0) <= spread for a in angles)

    # Coverage only changes at the arcs' ends: test the middle of each piece between them.
    ends = sorted({(a + side * spread) % 360.0 for a in angles for side in (-1, 1)})
    pieces = zip(ends, ends[1:] + [ends[0] + 360.0])
    union = sum(b - a for a, b in pieces if covered((a + b) / 2.0))
    still = len(motions) - len(angles)
    return (still + union / (2.0 * spread)) / len(motions)


def render(scene: Scene, motion: str | Motion, frames: int = DEFAULT_FRAMES) -> np.ndarray:
    """Frames ``0..frames-1`` of ``scene`` moving by ``motion``, as uint8 ``T x H x W x 3``."""
    motion = turned(motion, scene.turn) if scene.turn else get_motion(motion)
    width, height = scene.size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        image = scene.background.copy()
        for obj in scene.objects:
            _paint(image, obj, obj.state(motion, t, (width, height)), xs, ys)
        out[t] = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return out


def synthetic_video(
    motion: str | Motion,
    index: int,
    seed: int = 0,
    frames: int = DEFAULT_FRAMES,
    size: tuple[int, int] = DEFAULT_SIZE,
    spread: float = 0.0,
) -> np.ndarray:
    """Video ``index`` of class ``motion`` as uint8 ``T x H x W x 3`` (before any encoding);
    ``spread`` is :func:`draw_scene`'s.

    Example:
        >>> a = synthetic_video("MoveLeft", index=3, seed=0)
        >>> b = synthetic_video("MoveRight", index=3, seed=0)
        >>> a.shape, bool((a[0] == b[0]).all()), bool((a[1] == b[1]).all())
        ((32, 64, 80, 3), True, False)
    """
    return render(draw_scene(index, seed, size, spread), motion, frames)


def _texture(rng: np.random.Generator, height: int, width: int, wavelength: float,
             low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Band-pass noise around ``wavelength`` pixels, mapped between two colours."""
    noise = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    centre = 1.0 / wavelength
    band = np.exp(-0.5 * ((radius - centre) / (0.35 * centre)) ** 2)
    field = np.fft.irfft2(np.fft.rfft2(noise) * band, s=(height, width))
    field = np.tanh(1.5 * field / (field.std() + 1e-8))  # saturate: crisp, high-contrast detail
    mix = (field[..., None] + 1.0) / 2.0
    return np.clip(low + (high - low) * mix, 0.0, 1.0).astype(np.float32)


def _paint(image: np.ndarray, obj: SceneObject, state: ObjectState, xs: np.ndarray,
           ys: np.ndarray) -> None:
    """Composite ``obj`` at ``state`` into ``image`` in place, with a one-pixel soft edge."""
    cx, cy, angle, scale, opacity = state
    height, width = image.shape[:2]
    # Shortest offset on the torus, so objects leaving one edge come back at the other.
    dx = (xs - cx + width / 2) % width - width / 2
    dy = (ys - cy + height / 2) % height - height / 2
    cos, sin = math.cos(angle), math.sin(angle)
    # Inverse of "rotate by angle (clockwise on screen, y down), then scale".
    qx = (cos * dx + sin * dy) / scale
    qy = (-sin * dx + cos * dy) / scale
    a, b = obj.half
    if obj.box:
        dist = np.maximum(np.abs(qx) - a, np.abs(qy) - b)
    else:
        dist = (np.sqrt((qx / a) ** 2 + (qy / b) ** 2) - 1.0) * min(a, b)
    alpha = np.clip(0.5 - dist * scale, 0.0, 1.0) * opacity
    inside = alpha > 0
    if not inside.any():
        return
    centre = (obj.texture.shape[0] - 1) / 2.0
    colour = _bilinear(obj.texture, qx[inside] + centre, qy[inside] + centre)
    w = alpha[inside][:, None]
    image[inside] = image[inside] * (1.0 - w) + colour * w


def _bilinear(texture: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    size = texture.shape[0]
    u = np.clip(u, 0, size - 1.001)
    v = np.clip(v, 0, size - 1.001)
    u0, v0 = u.astype(np.int64), v.astype(np.int64)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    top = texture[v0, u0] * (1 - fu) + texture[v0, u0 + 1] * fu
    bottom = texture[v0 + 1, u0] * (1 - fu) + texture[v0 + 1, u0 + 1] * fu
    return top * (1 - fv) + bottom * fv


# --------------------------------------------------------------------------- writing to disk

@dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`make_synthetic` wrote."""

    root: Path
    layout: str
    classes: tuple[str, ...]
    num_train: int
    num_test: int
    frames: int
    size: tuple[int, int]
    fps: float
    seed: int
    spread: float = 0.0
    best_accuracy: float = 1.0  # :func:`best_accuracy` of these classes at this spread

    def __str__(self) -> str:
        width, height = self.size
        held_out = "validate" if self.layout == "kinetics" else "test"
        text = (f"wrote {self.num_train + self.num_test} videos ({self.num_train} train, "
                f"{self.num_test} {held_out}) in the {self.layout} layout to {self.root}\n"
                f"  classes ({len(self.classes)}): {', '.join(self.classes)}\n"
                f"  {self.frames} frames of {width}x{height} at {self.fps:g} fps, seed {self.seed}")
        if self.spread:
            text += (f"\n  directions spread by up to {self.spread:g} degrees: no model can be "
                     f"right on more than {self.best_accuracy:.1%} of the videos")
        return text


# A layout writer: (out, class names, videos per class, render(name, index), fps, progress)
# -> (num_train, num_test).
LAYOUTS = Registry("synthetic dataset layout")


def ucf101_groups(videos_per_class: int) -> list[tuple[int, int, bool]]:
    """``(group, clip, is_test)`` for video ``0..n-1`` of a class, split like UCF101's split 1.

    UCF101 tests on its first 7 of 25 groups; here a class has fewer videos, so groups are
    smaller (at most 7 clips) and the first ``round(7/25 * groups)`` groups (at least one,
    never all) are the test set.

    Example:
        >>> ucf101_groups(4)
        [(1, 1, True), (2, 1, False), (3, 1, False), (4, 1, False)]
    """
    if videos_per_class < 2:
        raise ValueError(f"videos_per_class must be >= 2 (a class needs a train and a test "
                         f"video), got {videos_per_class}")
    clips = min(max(videos_per_class // 6, 1), MAX_CLIPS_PER_GROUP)
    groups = math.ceil(videos_per_class / clips)
    test_groups = min(max(round(groups * UCF101_TEST_FRACTION), 1), groups - 1)
    return [(k // clips + 1, k % clips + 1, k // clips + 1 <= test_groups)
            for k in range(videos_per_class)]


@LAYOUTS.register("ucf101")
def _write_ucf101(out: Path, names: Sequence[str], videos_per_class: int,
                  render_video: Callable[[str, int], np.ndarray], fps: float,
                  progress: bool) -> tuple[int, int]:
    """``out/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``out/ucfTrainTestlist/*.txt``."""
    plan = ucf101_groups(videos_per_class)
    jobs = [(label, name, index) for label, name in enumerate(names, start=1)
            for index in range(videos_per_class)]
    train, test = [], []
    for label, name, index in tqdm(jobs, desc="videos", unit="video", disable=not progress):
        group, clip, is_test = plan[index]
        relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
        write_video(out / "UCF-101" / relative, render_video(name, index), fps=fps,
                    options=AVI_OPTIONS)
        if is_test:
            test.append(relative)  # UCF101's testlists carry no label
        else:
            train.append(f"{relative} {label}")
    lists = out / "ucfTrainTestlist"
    # The lists last: an interrupted run leaves no list pointing at a missing video.
    write_text_atomic(lists / "classInd.txt", [f"{i} {n}" for i, n in enumerate(names, start=1)])
    write_text_atomic(lists / "trainlist01.txt", train)
    write_text_atomic(lists / "testlist01.txt", test)
    written = {out / "UCF-101" / line.split()[0] for line in [*train, *test]}
    _remove_stale(out / "UCF-101", "*/*.avi", _UCF101_NAME, written)
    return len(train), len(test)


# The names make_synthetic gives its videos; only files so named are ever removed as stale.
_UCF101_NAME = re.compile(r"^v_[A-Za-z]+_g\d{2}_c\d{2}\.avi$")
_KINETICS_NAME = re.compile(r"^[A-Za-z0-9_-]{11}_\d{6}_\d{6}\.mp4$")


def _remove_stale(root: Path, pattern: str, name: re.Pattern, written: set[Path]) -> None:
    """Delete videos an earlier make_synthetic run left under ``root`` (a run with more
    classes or videos) that this run did not write: in a motion's folder, named as this
    module names videos. Anything else there is left alone."""
    motions = {*list_motions(), *map(kinetics_label, list_motions())}
    for path in root.glob(pattern):
        if path.parent.name in motions and name.match(path.name) and path not in written:
            path.unlink()


# H.264 at a constant quality near the AVI's (about 32 dB on these frames): clean, with room
# for codec corruptions to act.
MP4_OPTIONS = {"crf": "18"}
# Kinetics clips are 10-second windows of YouTube videos.
KINETICS_CLIP_SECONDS = 10
_YOUTUBE_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def kinetics_label(name: str) -> str:
    """The Kinetics-style label of a motion: lower case words, ``MoveRight`` -> ``move right``.

    Example:
        >>> kinetics_label("RotateCounterClockwise")
        'rotate counter clockwise'
    """
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


def youtube_id(seed: int, label: int, index: int) -> str:
    """An 11-character YouTube-like id, fixed by ``(seed, class number, video index)``."""
    rng = np.random.default_rng([seed, label, index, 11])
    return "".join(_YOUTUBE_ID_CHARS[i] for i in rng.integers(0, len(_YOUTUBE_ID_CHARS), 11))


@LAYOUTS.register("kinetics")
def _write_kinetics(out: Path, names: Sequence[str], videos_per_class: int,
                    render_video: Callable[[str, int], np.ndarray], fps: float,
                    progress: bool, seed: int = 0) -> tuple[int, int]:
    """``out/<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4`` (H.264) and
    ``out/annotations/{train,validate}.csv``; labels are :func:`kinetics_label` names.

    The validate split holds the videos UCF101's layout would test on (:func:`ucf101_groups`).
    """
    plan = ucf101_groups(videos_per_class)
    header = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    rows: dict[str, list[list[str]]] = {"train": [], "validate": []}
    written: set[Path] = set()
    jobs = [(label, name, index) for label, name in enumerate(names)
            for index in range(videos_per_class)]
    for label, name, index in tqdm(jobs, desc="videos", unit="video", disable=not progress):
        split = "validate" if plan[index][2] else "train"
        video_id = youtube_id(seed, label, index)
        start = int(np.random.default_rng([seed, label, index, 0]).integers(0, 300))
        end = start + KINETICS_CLIP_SECONDS
        text_label = kinetics_label(name)
        path = out / split / text_label / f"{video_id}_{start:06d}_{end:06d}.mp4"
        write_video(path, render_video(name, index), fps=fps, options=MP4_OPTIONS)
        written.add(path)
        rows[split].append([text_label, video_id, str(start), str(end), split, "0"])
    # The annotations last: an interrupted run leaves no CSV pointing at a missing video.
    for split, split_rows in rows.items():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *split_rows])
        write_text_atomic(out / "annotations" / f"{split}.csv", buffer.getvalue().splitlines())
    for split in rows:
        _remove_stale(out / split, "*/*.mp4", _KINETICS_NAME, written)
    return len(rows["train"]), len(rows["validate"])


def write_text_atomic(path: Path, lines: Sequence[str]) -> Path:
    """Write ``lines`` (newline-terminated) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    write_atomic(path, "".join(f"{line}\n" for line in lines))
    return path


def make_synthetic(
    out: str | os.PathLike,
    layout: str = "ucf101",
    classes: int = 4,
    videos_per_class: int = 24,
    seed: int = 0,
    frames: int = DEFAULT_FRAMES,
    size: tuple[int, int] = DEFAULT_SIZE,
    fps: float = DEFAULT_FPS,
    progress: bool = False,
    spread: float = 0.0,
) -> SyntheticSummary:
    """Write the synthetic motion dataset to ``out`` as real video files.

    Example:
        >>> summary = make_synthetic("data/synthetic", classes=4, videos_per_class=24)
        >>> summary.classes
        ('MoveDown', 'MoveLeft', 'MoveRight', 'MoveUp')

    ``layout`` is ``"ucf101"`` (MPEG-4 AVI, class folders and split lists) or
    ``"kinetics"`` (H.264 MP4 under ``train/`` and ``validate/``, CSV annotations, labels
    such as ``move right``); ``num_test`` then counts the validate split. The same arguments
    write identical frames (before encoding). ``size`` is ``(width, height)``; both must be
    even (yuv420p). ``spread`` in [0, 180] degrees turns each video's direction of travel
    by a random angle up to that (see :func:`draw_scene`); past 45 the four translations
    overlap and :func:`best_accuracy` drops below 1. Run again into the same ``out`` (with
    fewer classes or videos), it
    deletes the videos of the earlier run that are not in the new lists, once the lists are
    written; files it would not have named are left alone.
    """
    _check_options(layout, classes, videos_per_class, seed, frames, size, fps, spread)
    out = Path(out)
    names = list_motions()[:classes]
    ceiling = best_accuracy(names, spread)

    def render_video(name: str, index: int) -> np.ndarray:
        return synthetic_video(name, index, seed=seed, frames=frames, size=size, spread=spread)

    extra = {"seed": seed} if layout == "kinetics" else {}
    num_train, num_test = LAYOUTS.get(layout)(out, names, videos_per_class, render_video,
                                              fps, progress, **extra)
    if layout == "kinetics":
        names = [kinetics_label(n) for n in names]
    return SyntheticSummary(out, layout, tuple(names), num_train, num_test, frames,
                            tuple(size), float(fps), seed, float(spread), ceiling)


def _check_options(layout, classes, videos_per_class, seed, frames, size, fps, spread) -> None:
    def positive_int(option: str, value, minimum: int, why: str = "") -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise SyntheticConfigError(option, f"must be an integer >= {minimum}{why}, "
                                               f"got {value!r}")

    if layout not in LAYOUTS:
        raise SyntheticConfigError("layout", f"unknown layout {layout!r}; known: "
                                             f"{', '.join(LAYOUTS.names())}")
    positive_int("classes", classes, 1)
    if classes > len(MOTIONS):
        raise SyntheticConfigError("classes", f"at most {len(MOTIONS)} (one per motion: "
                                              f"{', '.join(list_motions())}), got {classes}")
    positive_int("videos_per_class", videos_per_class, 2,
                 " (each class needs a train and a test video)")
    positive_int("seed", seed, 0)
    positive_int("frames", frames, 1)
    if len(size) != 2:
        raise SyntheticConfigError("size", f"must be (width, height), got {size!r}")
    for option, value in zip(("width", "height"), size):
        positive_int(option, value, 16)
        if value % 2:
            raise SyntheticConfigError(option, f"must be even (yuv420p video), got {value}")
    if not fps > 0:
        raise SyntheticConfigError("fps", f"must be > 0, got {fps!r}")
    if isinstance(spread, bool) or not isinstance(spread, (int, float, np.number)) \
            or not 0 <= spread <= 180:
        raise SyntheticConfigError("spread", f"must be a number of degrees in [0, 180], got {spread!r}")
