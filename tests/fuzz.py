"""A fuzz corpus of awkward and broken video files, written by the tests (nothing checked in).

:func:`build_corpus` writes a class-folder dataset (``root/<split>/<class>/<file>``) holding a
few good videos next to every kind of file a real dataset download turns up: empty and
truncated files, random bytes and text under a video extension, audio-only containers, one-
and two-frame videos, clips shorter than a clip, variable frame rate, odd sizes, grayscale and
16-bit sources, a misleading extension, and names with spaces and non-UTF-8 bytes.

Each file is a :class:`FuzzFile` with a key the tests use to state what should happen to it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

FRAMES = 16           # frames of the good videos
SIZE = (24, 32)       # height, width of the good videos
CLASSES = ("good", "odd", "bad")
# A file name that is not valid UTF-8: legal on POSIX file systems, where Python shows the
# byte as a lone surrogate (os.fsdecode). Filesystems that store names as UTF-16 or
# normalised UTF-8 (NTFS, APFS) refuse it; build_corpus then leaves it out.
NON_UTF8_NAME = b"bad\xff name.mp4"


@dataclass(frozen=True)
class FuzzFile:
    key: str          # what the file is, e.g. "truncated_mp4_100"
    cls: str          # class folder
    name: str         # file name (may hold surrogates: see NON_UTF8_NAME)


def frames(t: int, h: int, w: int, channels: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A moving gradient: every frame differs and is smooth enough to compress well."""
    y, x = np.mgrid[0:h, 0:w]
    top = np.iinfo(dtype).max
    out = np.empty((t, h, w, channels), dtype)
    for i in range(t):
        base = (x * 7 + y * 3 + 11 * i + seed) % 256 / 255.0
        for c in range(channels):
            out[i, ..., c] = (np.roll(base, c * 5, axis=1) * top).astype(dtype)
    return out


def encode(path: Path, video: np.ndarray, codec: str, pix_fmt: str, fmt: str = "rgb24",
           fps: int = 25, pts: list[int] | None = None, time_base: Fraction | None = None,
           options: dict[str, str] | None = None) -> Path:
    """Write ``video`` (``T x H x W x C`` in the layout ``fmt`` expects) with PyAV.

    ``pts`` (in ``time_base`` units) sets each frame's timestamp: irregular steps make a
    variable-frame-rate file. ``options`` go to the container (e.g. ``movflags``).
    """
    import av

    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = pix_fmt
        if time_base is not None:
            stream.time_base = time_base
        for i, image in enumerate(video):
            frame = av.VideoFrame.from_ndarray(image[..., 0] if fmt.startswith("gray") else image,
                                               format=fmt)
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def encode_audio(path: Path, codec: str, seconds: float = 0.5, rate: int = 44100) -> Path:
    """A container with one audio stream (a sine tone) and no video."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        fmt = "fltp" if codec == "aac" else "s16"
        stream.format = fmt
        size = stream.codec_context.frame_size or 1024
        t = np.arange(int(seconds * rate)) / rate
        samples = np.sin(2 * np.pi * 440 * t)
        samples = samples.astype(np.float32) if fmt == "fltp" else (samples * 3e4).astype(np.int16)
        for start in range(0, len(samples) - size + 1, size):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + size], format=fmt,
                                               layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def build_corpus(root: Path, split: str = "test") -> list[FuzzFile]:
    """Write the corpus to ``root/<split>/{good,odd,bad}/`` and describe each file.

    ``good``: videos any loader must read (H.264 MP4, MPEG-4 AVI, an MP4 named ``.avi``, a
    name with spaces, a non-UTF-8 name). ``odd``: decodable but unusual (1 and 2 frames, 3
    frames, 1x1, 4000x16, odd 33x17 sizes, gray, 16-bit gray and RGB, variable frame rate).
    ``bad``: damaged files (empty, truncated at several offsets, random bytes, text, audio
    only); most are unusable, but a cut that spares every frame is not.
    """
    base = Path(root) / split
    dirs = {c: base / c for c in CLASSES}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    files: list[FuzzFile] = []

    def add(key: str, cls: str, name: str) -> Path:
        files.append(FuzzFile(key, cls, name))
        return dirs[cls] / name

    h, w = SIZE
    good_mp4 = encode(add("good_mp4", "good", "clip.mp4"), frames(FRAMES, h, w), "libx264",
                      "yuv420p")
    good_avi = encode(add("good_avi", "good", "clip.avi"), frames(FRAMES, h, w, seed=50), "mpeg4",
                      "yuv420p")
    shutil.copyfile(good_mp4, add("mp4_named_avi", "good", "really_mp4.avi"))
    shutil.copyfile(good_mp4, add("spaces", "good", "name with  spaces.mp4"))
    try:
        fd = os.open(os.fsencode(dirs["good"]) + b"/" + NON_UTF8_NAME,
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        pass  # refused (see NON_UTF8_NAME): the corpus test asserts on which platforms
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(good_mp4.read_bytes())
        add("non_utf8", "good", os.fsdecode(NON_UTF8_NAME))

    encode(add("one_frame", "odd", "one_frame.mp4"), frames(1, h, w), "libx264", "yuv420p")
    encode(add("two_frames", "odd", "two_frames.mkv"), frames(2, h, w), "libx264", "yuv420p")
    encode(add("three_frames", "odd", "three_frames.avi"), frames(3, h, w), "mpeg4", "yuv420p")
    encode(add("size_1x1", "odd", "size_1x1.mkv"), frames(4, 1, 1), "ffv1", "bgr0")
    encode(add("size_4000x16", "odd", "size_4000x16.mp4"), frames(4, 16, 4000), "libx264",
           "yuv420p")
    encode(add("odd_33x17_rgb", "odd", "odd_33x17_rgb.mkv"), frames(4, 17, 33), "ffv1", "bgr0")
    encode(add("odd_33x17_yuv420", "odd", "odd_33x17_yuv420.mkv"), frames(4, 17, 33), "ffv1",
           "yuv420p")
    encode(add("gray", "odd", "gray.mkv"), frames(4, h, w, 1), "ffv1", "gray", fmt="gray")
    encode(add("gray16", "odd", "gray16.mkv"), frames(4, h, w, 1, np.uint16), "ffv1", "gray16le",
           fmt="gray16le")
    encode(add("rgb48", "odd", "rgb48.mkv"), frames(4, h, w, 3, np.uint16), "ffv1", "rgb48le",
           fmt="rgb48le")
    # Frame times 0, 40, 50, 130, ... ms: no constant rate fits them.
    vfr_pts = [0, 40, 50, 130, 140, 150, 300, 310, 320, 400, 410, 500]
    encode(add("vfr", "odd", "vfr.mkv"), frames(len(vfr_pts), h, w), "libx264", "yuv420p",
           pts=vfr_pts, time_base=Fraction(1, 1000))

    add("empty", "bad", "empty.mp4").write_bytes(b"")
    data = good_mp4.read_bytes()  # MP4 as FFmpeg writes it: frames first, index (moov) last
    cuts = {"16": 16, "200": 200, "half": len(data) // 2, "end": len(data) - 40}
    for cut, offset in cuts.items():
        add(f"truncated_mp4_{cut}", "bad", f"truncated_{cut}.mp4").write_bytes(data[:offset])
    avi = good_avi.read_bytes()
    add("truncated_avi_half", "bad", "truncated_half.avi").write_bytes(avi[:len(avi) // 2])
    # Header first (faststart MP4, Matroska): the header survives a cut, the frames do not.
    tmp = encode(base / "faststart.tmp.mp4", frames(FRAMES, h, w), "libx264", "yuv420p",
                 options={"movflags": "faststart"})
    data = tmp.read_bytes()
    tmp.unlink()
    add("truncated_faststart_mp4", "bad", "truncated_faststart.mp4").write_bytes(
        data[:len(data) * 2 // 3])
    tmp = encode(base / "header.tmp.mkv", frames(FRAMES, h, w), "libx264", "yuv420p")
    data = tmp.read_bytes()
    tmp.unlink()
    add("truncated_mkv", "bad", "truncated.mkv").write_bytes(data[:len(data) * 2 // 3])
    rng = np.random.default_rng(0)
    add("random_mp4", "bad", "random.mp4").write_bytes(rng.bytes(5000))
    add("random_avi", "bad", "random.avi").write_bytes(rng.bytes(5000))
    add("random_webm", "bad", "random.webm").write_bytes(rng.bytes(64))
    add("text_mp4", "bad", "notes.mp4").write_bytes(b"This is a text file, not a video.\n" * 20)
    encode_audio(add("audio_only_mp4", "bad", "audio_only.mp4"), "aac")
    encode_audio(add("audio_only_mkv", "bad", "audio_only.mkv"), "pcm_s16le")
    return files


def path_of(root: Path, split: str, f: FuzzFile) -> Path:
    return Path(root) / split / f.cls / f.name


def non_utf8_names_supported() -> bool:
    """Whether this platform's file systems take arbitrary bytes in names (POSIX, not macOS)."""
    return os.name == "posix" and sys.platform != "darwin"


def as_ucf101(root: Path, split: str, files: list[FuzzFile], dst: Path) -> dict[str, FuzzFile]:
    """Copy ``files`` of the corpus at ``root/<split>`` into a UCF101 layout at ``dst``.

    Classes are the corpus's class folders that hold any of ``files``; every other file goes
    to ``testlist01.txt``, the rest to ``trainlist01.txt``. A list line is
    ``<Class>/<video> [label]``, so names with spaces or bytes that are not UTF-8 can not be
    listed: pass files without them. Returns ``{path relative to dst: file}``.
    """
    classes = [c for c in CLASSES if any(f.cls == c for f in files)]
    lists = {"trainlist01.txt": [], "testlist01.txt": []}
    placed = {}
    for i, f in enumerate(files):
        if " " in f.name or f.name != f.name.encode("utf-8", "replace").decode("utf-8"):
            raise ValueError(f"{f.name!r} can not be named in a UCF101 list")
        target = Path(dst) / "UCF-101" / f.cls / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path_of(root, split, f), target)
        label = classes.index(f.cls) + 1
        lists["testlist01.txt" if i % 2 else "trainlist01.txt"].append(
            f"{f.cls}/{f.name}" if i % 2 else f"{f.cls}/{f.name} {label}")
        placed[f"UCF-101/{f.cls}/{f.name}"] = f
    (Path(dst) / "ucfTrainTestlist").mkdir(parents=True, exist_ok=True)
    (Path(dst) / "ucfTrainTestlist" / "classInd.txt").write_text(
        "".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for name, lines in lists.items():
        (Path(dst) / "ucfTrainTestlist" / name).write_text("".join(f"{x}\n" for x in lines))
    return placed
