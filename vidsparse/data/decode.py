"""Video decoding and encoding: the only module that opens video files.

Two decoding backends sit behind one function: PyAV (the default; its wheel bundles FFmpeg)
and decord (x86_64 Linux wheels only). Both return uint8 ``T x H x W x C`` RGB arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from vidsparse.files import atomic_path

BACKENDS = ("pyav", "decord")

# Codec used for each container when the caller does not name one. MPEG-4 Part 2 in AVI is
# what UCF101 ships; H.264 in MP4 is what Kinetics' downloaders produce.
DEFAULT_CODECS = {".avi": "mpeg4", ".mp4": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}


class VideoDecodeError(RuntimeError):
    """A file could not be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


def _open(path: str | os.PathLike):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"cannot open video {path}: {exc}") from exc


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate and size of the first video stream of ``path``."""
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        num_frames = stream.frames
        if num_frames <= 0:  # some containers do not store the count: count by decoding
            num_frames = sum(1 for _ in container.decode(stream))
        return VideoInfo(num_frames, fps, stream.codec_context.height, stream.codec_context.width)


def read_video(path: str | os.PathLike, backend: str = "pyav") -> tuple[np.ndarray, float]:
    """Decode every frame of ``path``. Returns (uint8 ``T x H x W x 3`` array, fps)."""
    if backend == "decord":
        reader = _decord_reader(path)
        return reader.get_batch(list(range(len(reader)))).asnumpy(), float(reader.get_avg_fps())
    _check_backend(backend)
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        try:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        except Exception as exc:  # PyAV raises several FFmpeg error types
            raise VideoDecodeError(f"cannot decode {path}: {exc}") from exc
    if not frames:
        raise VideoDecodeError(f"{path} decoded to zero frames")
    return np.stack(frames), fps


def read_frames(
    path: str | os.PathLike, indices: Sequence[int], backend: str = "pyav"
) -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed) as uint8 ``T x H x W x 3``."""
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("read_frames needs at least one frame index")
    if min(indices) < 0:
        raise ValueError(f"negative frame index in {indices} for {path}")
    if backend == "decord":
        reader = _decord_reader(path)
        if max(indices) >= len(reader):
            raise VideoDecodeError(f"{path} has {len(reader)} frames, index {max(indices)} asked")
        return reader.get_batch(indices).asnumpy()
    _check_backend(backend)
    got = _read_frames_pyav(path, indices)
    return np.stack([got[i] for i in indices])


# Wanted frames further apart than this are reached by a new seek rather than by decoding
# every frame between them (a seek costs at most one GOP of decoding; UCF101 and Kinetics
# GOPs are 12-250 frames).
RESEEK_GAP = 64


def _decode(container, stream):
    """Every decoded frame of ``stream`` from the container's position (tests count these)."""
    return container.decode(stream)


def _read_frames_pyav(path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """``{index: rgb frame}`` for the distinct ``indices``, seeking to the keyframe before each.

    Frame ``i`` is the ``i``-th frame a decode from the start outputs (what :func:`read_video`
    returns). Seeking finds it by its timestamp, ``start + i / (fps * time_base)``, which holds
    for a constant-rate stream. Where that can not be trusted the file is decoded from the
    start instead (correct, just slower): streams whose frames carry no pts (some AVIs,
    e.g. packed B-frames), a header frame count that disagrees with the duration (variable
    frame rate), a seek that lands past the frame asked for, or timestamps that do not step
    by exactly one frame while decoding.
    """
    wanted = sorted(set(indices))
    with _open(path) as container:
        stream = _video_stream(container, path)
        try:
            timing = _frame_timing(stream)
            got = None if timing is None else _decode_seeking(container, stream, wanted, timing)
        except Exception as exc:  # PyAV raises several FFmpeg error types
            raise VideoDecodeError(f"cannot decode {path}: {exc}") from exc
    if got is None:
        with _open(path) as container:
            stream = _video_stream(container, path)
            try:
                got = _decode_sequential(container, stream, wanted)
            except Exception as exc:
                raise VideoDecodeError(f"cannot decode {path}: {exc}") from exc
    if len(got) < len(wanted):
        missing = [i for i in wanted if i not in got]
        raise VideoDecodeError(f"{path} has fewer frames than asked: no frame {missing[0]} "
                               f"(asked {wanted})")
    return got


def _video_stream(container, path):
    if not container.streams.video:
        raise VideoDecodeError(f"{path} has no video stream")
    return container.streams.video[0]


def _frame_timing(stream) -> tuple[int, Fraction] | None:
    """(pts of frame 0, pts per frame) of a constant-rate stream, or None if unknown."""
    rate = stream.average_rate or stream.guessed_rate
    if not rate or not stream.time_base:
        return None
    per_frame = 1 / (Fraction(rate) * Fraction(stream.time_base))
    start = stream.start_time or 0
    if stream.frames > 0 and stream.duration:
        # A variable-rate stream's pts are not frame counts; the header shows it.
        if round(stream.duration / per_frame) != stream.frames:
            return None
    return start, per_frame


def _decode_seeking(container, stream, wanted: list[int],
                    timing: tuple[int, Fraction]) -> dict[int, np.ndarray] | None:
    """Decode ``wanted`` (sorted, distinct) by seeking; None where pts can not be trusted."""
    start, per_frame = timing
    got: dict[int, np.ndarray] = {}
    pos = 0  # wanted[pos] is the next frame to find
    while pos < len(wanted):
        target = wanted[pos]
        back = 0  # frames to aim before the target if the seek lands past it
        while True:
            pts = start + int(round((target - back) * per_frame))
            container.seek(max(pts, start), stream=stream, backward=True, any_frame=False)
            frames = iter(_decode(container, stream))
            first = next(frames, None)
            if first is None or first.pts is None:
                return None
            index = int(round((first.pts - start) / per_frame))
            if index <= target:
                break
            if target - back <= 0:  # even a seek to the start lands past it
                return None
            back = max(1, 2 * back)
        frame = first
        while True:
            if index == wanted[pos]:
                got[index] = frame.to_ndarray(format="rgb24")
                pos += 1
                if pos == len(wanted) or wanted[pos] - index > RESEEK_GAP:
                    break
            frame = next(frames, None)
            if frame is None:
                return got  # the stream ended: the caller reports the missing frames
            if frame.pts is None:
                return None
            step = int(round((frame.pts - start) / per_frame))
            if step != index + 1:
                return None
            index = step
    return got


def _decode_sequential(container, stream, wanted: list[int]) -> dict[int, np.ndarray]:
    """Decode from the first frame, counting frames, up to the last of ``wanted``."""
    got: dict[int, np.ndarray] = {}
    keep, last = set(wanted), wanted[-1]
    for i, frame in enumerate(_decode(container, stream)):
        if i in keep:
            got[i] = frame.to_ndarray(format="rgb24")
        if i >= last:
            break
    return got


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 25.0,
    codec: str | None = None,
    options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode uint8 ``T x H x W x 3`` frames to ``path`` atomically (temporary file, then rename).

    The codec defaults by extension (``.avi`` -> MPEG-4 Part 2, ``.mp4`` -> H.264). Height and
    width must be even for ``yuv420p``.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"write_video({path}): expected uint8 T x H x W x 3, got "
                         f"{frames.dtype} {tuple(frames.shape)}")
    if pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        raise ValueError(f"write_video({path}): yuv420p needs even height and width, "
                         f"got {frames.shape[1]}x{frames.shape[2]}")
    codec = codec or DEFAULT_CODECS.get(path.suffix.lower())
    if codec is None:
        raise ValueError(f"write_video({path}): no default codec for {path.suffix!r}; pass codec=")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The extension stays last: PyAV picks the container format from it.
    with atomic_path(path, prefix=f".{path.stem}.", suffix=path.suffix) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = pix_fmt
            if options:
                stream.options = dict(options)
            for image in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; known: {', '.join(BACKENDS)}")


def _decord_reader(path):
    try:
        import decord
    except ImportError as exc:
        raise ImportError("backend='decord' needs the decord package (x86_64 Linux wheels); "
                          "use backend='pyav'") from exc
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as exc:
        raise VideoDecodeError(f"cannot open video {path} with decord: {exc}") from exc
