"""Codec corruptions: encode the clip in memory with a real encoder, decode it back.

PyAV's wheel bundles FFmpeg with libx264 and libx265, so this runs in-process with no
``ffmpeg`` binary. Everything that changes the bitstream (preset, GOP, pixel format, frame
rate, threads, encoder parameters) is a module constant, so a (clip, severity, seed) triple
gives the same bytes and frames on any machine; :func:`encoder_settings` returns them for a
dataset's manifest.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch

from vidsparse.corruptions.registry import (CORRUPTIONS, SEVERITIES, list_corruptions,
                                            register_corruption)

# Yi et al. 2021 ("Benchmarking the robustness of spatial-temporal models against
# corruptions", Mini Kinetics-C / Mini SSv2-C "h264_crf"): libx264 constant rate factor per
# severity; 51 is the encoder's worst quality.
H264_CRF = (23, 30, 37, 44, 51)
# Yi et al. call ffmpeg with no preset, GOP or pixel-format flags on yuv420p sources, i.e.
# x264's defaults: preset "medium", keyframe interval 250, 4:2:0 chroma. We fix them here
# because FFmpeg's defaults are not a contract.
H264_PRESET = "medium"
H264_GOP = 250
PIX_FMT = "yuv420p"
# Rate control depends (slightly) on the frame rate; clips arrive without one, so we fix it.
ENCODE_FPS = 25
# x264's output depends on its thread count, which by default follows the CPU count: one
# thread makes the result the same on every machine.
ENCODER_THREADS = 1
# Decoders run one thread too, so a damaged stream is decoded the same way on every machine
# (FFmpeg's thread count would otherwise follow the CPU count).
DECODER_THREADS = 1
# With its SIMD code on, libx264 (as bundled with PyAV 18) gave a different bitstream for the
# same input in about 1 run in 100 (checked: 4 variants in 500 single-threaded encodes of a
# 12 x 64 x 64 clip; none in 2100 with this flag). x264's C and SIMD paths are meant to be
# bit-exact, so turning SIMD off changes nothing but speed (about 3x slower on 320 x 240).
H264_X264_PARAMS = "no-asm=1"

# --- H.265 and average-bitrate variants (Yi et al. 2021, Mini Kinetics-C / Mini SSv2-C) ------

# Yi et al.'s libx265 constant rate factors ("h265_crf"); 51 is the worst quality.
H265_CRF = (27, 33, 39, 45, 51)
H265_PRESET = "medium"
H265_GOP = 250  # x265's default keyframe interval, fixed as for x264
# x265 by default runs a thread pool sized to the CPU count, several frame threads and
# lookahead threads: the bitstream then depends on the machine. We turn all of them off.
# "pools=none" is also the setting under which tiny frames stopped crashing the process (see
# H265_MIN_SIDE).
H265_X265_PARAMS = "pools=none:frame-threads=1:lookahead-threads=0:wpp=0:log-level=error"
# x265 refuses frames under 16 pixels a side and has crashed the process (heap corruption) on
# a 32 x 48 clip, so frames are padded by edge replication and cropped back after decoding.
# The pad is to two 64 x 64 coding tree units (x265's default CTU) a side, not one: libx265
# 4.2 (PyAV 18) with the settings above is not deterministic on frames one CTU high or wide.
# Repeating an encode in one process, a noisy 12 x 32 x 48 clip padded to 64 x 64 gave 80
# bitstreams in 100 encodes at CRF 27 and 18-22 at CRF 33 and 39 (258 of 2,000 encodes off
# the majority over CRF and ABR severities of it and 12 x 64 x 80); 12 x 256 x 64 varied too.
# The first encode in a fresh process always gives the same bytes and asm=0 does not help: the
# encoder reads memory it never wrote (valgrind, asm=0: in its motion search at 64 x 64,
# nothing at 128 x 128). Padded to 128 x 128 or more: no variant in 4,080 encodes (100 runs
# of each CRF and ABR severity on 12 x {32 x 48, 64 x 80, 7 x 9, 128 x 128}, 8 on
# 16 x 240 x 320), nor in 40 runs each on 12 x {112 x 112, 120 x 160, 130 x 70} unpadded.
# "ctu=32" also removes it, but changes the encoder; padding costs little and changes nothing
# for frames of 128 pixels and up.
H265_MIN_SIDE = 128

# "h264_abr" / "h265_abr": Yi et al. re-encode at the source file's bitrate divided by
# 2, 4, 8, 16, 32 (with maxrate = bufsize = that bitrate). Our clips arrive decoded, with no
# source bitrate, so we define the source rate from the uncompressed clip:
#     bitrate = 24 bits/pixel * H * W * ENCODE_FPS / ABR_SOURCE_COMPRESSION / ABR_DIVISOR[s-1]
# i.e. the raw rgb24 rate scaled by 1/48 .. 1/768: a source at 1 bit per pixel per frame
# (ABR_SOURCE_COMPRESSION = 24; web videos at 224-360p are of that order, and lower rates
# leave tiny clips at x264's worst quantiser at every severity), divided by Yi et al.'s
# divisors. The encoders take kbit/s, so the rate is floored at ABR_MIN_BITRATE (below it
# libx264 refuses to open).
ABR_RAW_BITS_PER_PIXEL = 24
ABR_SOURCE_COMPRESSION = 24
ABR_MIN_BITRATE = 1000
ABR_DIVISOR = (2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Encoder:
    """An encoder with everything but its rate (CRF or bitrate) fixed.

    Frames are padded by edge replication to even sides of at least ``min_side`` before
    encoding and cropped back after decoding; grey clips are encoded as RGB.
    """

    encoder: str        # FFmpeg encoder
    decoder: str        # FFmpeg decoder
    preset: str
    gop: int
    params_option: str  # the FFmpeg option that carries the encoder's own parameters
    params: str
    min_side: int = 0

    def options(self, rate: dict[str, str]) -> dict[str, str]:
        """FFmpeg options for this encoder at ``rate`` (``{"crf": ...}`` or ``{"b": ...}``)."""
        return {**rate, "preset": self.preset, self.params_option: self.params}

    def settings(self) -> dict[str, Any]:
        """These settings as JSON values, for :func:`encoder_settings`."""
        return {"encoder": self.encoder, "decoder": self.decoder, "preset": self.preset,
                "gop": self.gop, "pix_fmt": PIX_FMT, "encode_fps": ENCODE_FPS,
                "threads": ENCODER_THREADS, self.params_option: self.params,
                "pad_min_side": self.min_side, "decoder_threads": DECODER_THREADS}


H264 = Encoder("libx264", "h264", H264_PRESET, H264_GOP, "x264-params", H264_X264_PARAMS)
H265 = Encoder("libx265", "hevc", H265_PRESET, H265_GOP, "x265-params", H265_X265_PARAMS,
               min_side=H265_MIN_SIDE)


@register_corruption("h264_crf", kind="codec")
def h264_crf(video, severity, rng):
    """H.264 (libx264) at constant rate factor 23, 30, 37, 44, 51 for severities 1-5.

    Odd frame sizes are padded to even (yuv420p needs it) by repeating the edge, then cropped
    back; grey clips are encoded as RGB and averaged back to one channel.
    """
    return _roundtrip(video, H264, {"crf": str(H264_CRF[severity - 1])})


@register_corruption("h265_crf", kind="codec")
def h265_crf(video, severity, rng):
    """H.265 (libx265) at constant rate factor 27, 33, 39, 45, 51 for severities 1-5.

    Frames smaller than ``H265_MIN_SIDE`` (or odd) are padded by repeating the edge, then
    cropped back; single-threaded (``H265_X265_PARAMS``) so the bytes do not depend on the CPU.
    """
    return _roundtrip(video, H265, {"crf": str(H265_CRF[severity - 1])})


@register_corruption("h264_abr", kind="codec")
def h264_abr(video, severity, rng):
    """H.264 (libx264) at an average bitrate of the raw rate / 24 / (2, 4, 8, 16, 32).

    See ``ABR_SOURCE_COMPRESSION`` for the formula; maxrate and bufsize equal the bitrate, as
    in Yi et al.
    """
    return _roundtrip(video, H264, _abr_options(video, severity))


@register_corruption("h265_abr", kind="codec")
def h265_abr(video, severity, rng):
    """H.265 (libx265) at the ``h264_abr`` bitrates (raw rate / 24 / (2, 4, 8, 16, 32))."""
    return _roundtrip(video, H265, _abr_options(video, severity))


def abr_bitrate(height: int, width: int, severity: int) -> int:
    """Target bits per second of ``h264_abr`` / ``h265_abr`` for an ``H x W`` clip."""
    raw = ABR_RAW_BITS_PER_PIXEL * height * width * ENCODE_FPS
    return max(ABR_MIN_BITRATE, round(raw / ABR_SOURCE_COMPRESSION / ABR_DIVISOR[severity - 1]))


def _abr_options(video: torch.Tensor, severity: int) -> dict[str, str]:
    rate = str(abr_bitrate(video.shape[1], video.shape[2], severity))
    return {"b": rate, "maxrate": rate, "bufsize": rate}


# --- Transmission errors on the coded stream ------------------------------------------------

# The stream that is damaged, by the ``codec`` option: H.264 at x264's default CRF 23 or H.265
# at CRF 27 (Yi et al.'s h264_crf / h265_crf severity 1), with that codec's preset, GOP, pixel
# format and padding above.
TRANSMISSION_CODECS = {"h264": (H264, H264_CRF[0]), "h265": (H265, H265_CRF[0])}
# Yi et al.'s "bit_error" runs FFmpeg's ``noise`` bitstream filter with amount
# 100000, 50000, 30000, 20000, 10000: about one damaged byte in that many, on full-length
# Kinetics videos (megabytes, so tens of damaged bytes per video). Our clips are a few
# kilobytes, where those rates damage nothing, so we use per-bit flip rates two to three
# orders higher, with the same 10x span from severity 1 to 5.
BIT_ERROR_RATE = (1e-3, 2e-3, 4e-3, 7e-3, 1e-2)
# packet_loss has two loss models (its ``model`` option):
#
# "frames" (default, ours): each coded packet (one frame) after the first is lost whole with
# probability PACKET_LOSS_RATE; the first packet (keyframe with the stream headers) is never
# lost, so the stream always decodes. Whole frames vanish, as when a player drops the frames
# of a stalled stream: harsher than Yi et al.'s rates, on purpose, so that clips of a few
# dozen frames see damage at every severity.
PACKET_LOSS_RATE = (0.05, 0.1, 0.2, 0.3, 0.5)
PACKET_LOSS_MODELS = ("frames", "udp")
#
# "udp": Yi et al. 2021's network packet loss (Mini Kinetics-C "packet_loss", simulated by
# the submodule github.com/Newbeeyoung/packet-loss-simulation of
# Newbeeyoung/Video-Corruption-Robustness: README.md, packet_loss.sh,
# packet_loss_simulation.py). There, each video is converted to a raw H.264 stream with
# x264's defaults (utils/convert_video_to_h264.py: ``ffmpeg -i in out.h264``), sent with
# ``ffmpeg -i x.h264 -an -f h264 udp://...`` across a mininet link with 1, 2, 3, 4 and 6 %
# packet loss (severities 1-5) and received with ``ffmpeg -i udp://... -c copy out.mp4``.
# FFmpeg's UDP output sends at most pkt_size = 1472 bytes per datagram (1500-byte Ethernet
# MTU less the IP and UDP headers, so one datagram is one IP packet), and its muxer ends a
# datagram after every coded packet (FFmpeg libavformat/mux.c flush_if_needed and
# aviobuf.c avio_write_marker: UDP sets no minimum packet size, so every flush point sends),
# so each frame's Annex-B bytes go out as ceil(size / 1472) datagrams, the last one short,
# and the link loses each independently. Where we differ: the stream is one x264 CRF 23
# encode of the decoded clip (Yi et al.'s sender, lacking ``-c copy``, re-encodes their
# CRF 23 file once more with x264's defaults); frames the decoder cannot produce hold the
# previous one, so T is kept (their receiver writes only the frames that arrive); and the
# surviving datagrams of a frame stay with that frame, where FFmpeg's parser at their
# receiver appends a frame's tail to the previous frame when the datagram with its start
# code is lost (the decoder ignores bytes after the end of a slice, so the same frames are
# lost either way).
UDP_PACKET_LOSS_RATE = (0.01, 0.02, 0.03, 0.04, 0.06)
UDP_DATAGRAM_BYTES = 1472
# Under "udp" the datagrams that hold the stream headers (parameter sets and SEI: everything
# before the first slice of the first keyframe) and the first UDP_SLICE_HEADER_BYTES bytes
# of that slice (its header) are never lost: without them no frame decodes, where Yi et al.'s
# receiver would write no video at all. With the x264 settings here that is the first
# datagram only (headers ~710 bytes); for H.265 (x265's SEI is ~2.4 kB) the first two.
UDP_SLICE_HEADER_BYTES = 64


@register_corruption("bit_error", kind="codec")
def bit_error(video, severity, rng, *, codec: str = "h264"):
    """Random bit flips in the coded packets' payloads at rate 1e-3 ... 1e-2 per bit.

    ``codec`` is ``"h264"`` (libx264, CRF 23) or ``"h265"`` (libx265, CRF 27). The first
    packet (stream headers and the first keyframe) is left intact. The decoder conceals what it
    can; a frame it cannot produce shows the previous decoded frame, so ``T`` is kept. FFmpeg's
    H.265 decoder has no concealment and rejects more damaged frames than its H.264 one, so
    H.265 clips freeze sooner.

    Example:
        >>> vidsparse.corrupt(clip, "bit_error", severity=2, seed=0, codec="h265").shape
        (8, 64, 64, 3)
    """
    encoder, crf = _transmission_codec(codec)
    rate = BIT_ERROR_RATE[severity - 1]

    def damage(payloads: list[bytes]) -> list[bytes | None]:
        out = [payloads[0]]
        for data in payloads[1:]:
            bits = np.unpackbits(np.frombuffer(data, np.uint8))
            flips = rng.random(bits.size) < rate
            out.append(np.packbits(bits ^ flips).tobytes())
        return out

    return _transmit(video, encoder, crf, damage)


@register_corruption("packet_loss", kind="codec")
def packet_loss(video, severity, rng, *, codec: str = "h264", model: str = "frames"):
    """Coded data lost in transmission, concealed by the decoder; ``T`` is kept.

    ``model="frames"`` (default): each coded packet (one frame) after the first is lost with
    probability 0.05, 0.1, 0.2, 0.3, 0.5. ``model="udp"``: Yi et al.'s network loss: every
    frame's bytes are cut into 1472-byte UDP datagrams and each is lost with probability
    0.01, 0.02, 0.03, 0.04, 0.06 (the stream headers excepted, see ``UDP_SLICE_HEADER_BYTES``);
    a frame that loses a datagram keeps the rest, which FFmpeg decodes with its error
    concealment. ``codec`` is ``"h264"`` (libx264, CRF 23) or ``"h265"`` (libx265, CRF 27).
    Frames the decoder does not produce show the previous decoded frame.

    Example:
        >>> vidsparse.corrupt(clip, "packet_loss", severity=5, seed=0, model="udp").shape
        (8, 64, 64, 3)
    """
    encoder, crf = _transmission_codec(codec)
    _check_model(model)
    if model == "udp":
        rate = UDP_PACKET_LOSS_RATE[severity - 1]
        return _transmit(video, encoder, crf,
                         lambda payloads: udp_channel(payloads, rate, rng, codec))
    rate = PACKET_LOSS_RATE[severity - 1]

    def drop(payloads: list[bytes]) -> list[bytes | None]:
        lost = rng.random(len(payloads)) < rate
        lost[0] = False
        return [None if gone else data for data, gone in zip(payloads, lost)]

    return _transmit(video, encoder, crf, drop)


def udp_datagrams(sizes: list[int], size: int = UDP_DATAGRAM_BYTES) -> list[tuple[int, int, int]]:
    """``(packet, start, end)`` of each datagram a stream of coded packets of ``sizes`` bytes
    is sent in: every packet cut into ``size``-byte pieces, the last one short.

    Example:
        >>> udp_datagrams([3000, 100])
        [(0, 0, 1472), (0, 1472, 2944), (0, 2944, 3000), (1, 0, 100)]
    """
    return [(index, start, min(start + size, length)) for index, length in enumerate(sizes)
            for start in range(0, length, size)]


def protected_datagrams(first_packet: bytes, codec: str, size: int = UDP_DATAGRAM_BYTES) -> int:
    """How many leading datagrams ``model="udp"`` never loses: those holding a byte of the
    stream headers or of the first ``UDP_SLICE_HEADER_BYTES`` bytes of the first slice."""
    needed = min(len(first_packet), _first_slice(first_packet, codec) + UDP_SLICE_HEADER_BYTES)
    return -(-needed // size)


def lost_datagrams(count: int, rate: float, rng: np.random.Generator, protected: int) -> np.ndarray:
    """Which of ``count`` datagrams are lost: one uniform draw each, in stream order, lost
    below ``rate``; the first ``protected`` are kept whatever they drew."""
    lost = rng.random(count) < rate
    lost[:protected] = False
    return lost


def udp_channel(payloads: list[bytes], rate: float, rng: np.random.Generator,
                codec: str) -> list[bytes | None]:
    """The coded packets as received after Yi et al.'s UDP link (see ``UDP_PACKET_LOSS_RATE``):
    each packet the concatenation of its datagrams that arrived, None if none did."""
    datagrams = udp_datagrams([len(data) for data in payloads])
    lost = lost_datagrams(len(datagrams), rate, rng, protected_datagrams(payloads[0], codec))
    received: list[list[bytes]] = [[] for _ in payloads]
    for (index, start, end), gone in zip(datagrams, lost):
        if not gone:
            received[index].append(payloads[index][start:end])
    return [b"".join(parts) if parts else None for parts in received]


def _first_slice(data: bytes, codec: str) -> int:
    """Offset of the start code of the first slice NAL unit in an Annex-B packet."""
    is_slice = ((lambda header: 1 <= header & 0x1F <= 5) if codec == "h264"  # H.264 VCL: 1-5
                else (lambda header: (header >> 1) & 0x3F < 32))              # H.265 VCL: 0-31
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        if is_slice(data[at + 3]):
            return at
        at = data.find(b"\x00\x00\x01", at + 3)
    raise RuntimeError(f"{codec}: no slice NAL unit in the first coded packet")


def _check_model(model: str) -> None:
    if model not in PACKET_LOSS_MODELS:
        raise ValueError(f"packet_loss: model must be one of {', '.join(PACKET_LOSS_MODELS)}, "
                         f"got {model!r}")


def _transmission_codec(codec: str) -> tuple[Encoder, int]:
    if codec not in TRANSMISSION_CODECS:
        raise ValueError(f"codec must be one of {', '.join(TRANSMISSION_CODECS)}, got {codec!r}")
    return TRANSMISSION_CODECS[codec]


# --- What a manifest records -----------------------------------------------------------------

def _crf_settings(table: tuple[int, ...]) -> Callable[..., dict[str, Any]]:
    return lambda severity, options: {"rate_control": "crf", "crf": table[severity - 1]}


def _packet_loss_settings(severity: int, options: dict[str, Any]) -> dict[str, Any]:
    _check_model(options["model"])
    if options["model"] == "frames":
        return {"model": "frames", "packet_loss_rate": PACKET_LOSS_RATE[severity - 1],
                "loss_unit": "coded packet (frame)", "first_packet_intact": True}
    return {"model": "udp", "packet_loss_rate": UDP_PACKET_LOSS_RATE[severity - 1],
            "loss_unit": "datagram", "datagram_bytes": UDP_DATAGRAM_BYTES,
            "first_packet_intact": False,
            "intact": f"the datagrams holding the stream headers and the first "
                      f"{UDP_SLICE_HEADER_BYTES} bytes of the first slice"}


def _abr_settings(severity: int, options: dict[str, Any]) -> dict[str, Any]:
    divisor = ABR_DIVISOR[severity - 1]
    return {"rate_control": "abr",
            "bitrate": f"max({ABR_MIN_BITRATE}, round({ABR_RAW_BITS_PER_PIXEL} * H * W * "
                       f"{ENCODE_FPS} / {ABR_SOURCE_COMPRESSION} / {divisor})) bit/s; "
                       f"maxrate = bufsize = bitrate",
            "abr_raw_bits_per_pixel": ABR_RAW_BITS_PER_PIXEL,
            "abr_source_compression": ABR_SOURCE_COMPRESSION,
            "abr_divisor": divisor, "abr_min_bitrate": ABR_MIN_BITRATE}


# What fixes each codec corruption's bitstream besides the clip and the seed: its encoder
# (None: the ``codec`` option picks it) and the settings of a severity under its options.
_RATE: dict[str, tuple[Encoder | None, Callable[[int, dict[str, Any]], dict[str, Any]]]] = {
    "h264_crf": (H264, _crf_settings(H264_CRF)),
    "h265_crf": (H265, _crf_settings(H265_CRF)),
    "h264_abr": (H264, _abr_settings),
    "h265_abr": (H265, _abr_settings),
    "bit_error": (None, lambda severity, options: {"bit_flip_rate": BIT_ERROR_RATE[severity - 1],
                                                   "first_packet_intact": True}),
    "packet_loss": (None, _packet_loss_settings),
}


def encoder_settings(name: str, severity: int, **options: Any) -> dict[str, Any]:
    """Everything that fixes codec corruption ``name``'s bitstream at ``severity``, as JSON values.

    ``options`` are the corruption's keyword options (``codec`` for ``bit_error`` and
    ``packet_loss``, ``model`` for ``packet_loss``); defaults are filled in. Together with
    the clip and the seed, these settings and the PyAV version (which bundles the encoders)
    reproduce the output.

    Example:
        >>> encoder_settings("h264_crf", 3)["crf"]
        37
        >>> encoder_settings("packet_loss", 5, codec="h265")["encoder"]
        'libx265'
        >>> encoder_settings("packet_loss", 5, model="udp")["packet_loss_rate"]
        0.06
    """
    import av

    if name not in _RATE:
        raise ValueError(f"encoder_settings: {name!r} is not a codec corruption; "
                         f"codec corruptions: {', '.join(sorted(list_corruptions('codec')))}")
    if severity not in SEVERITIES:
        raise ValueError(f"encoder_settings({name!r}): severity must be one of {SEVERITIES}, "
                         f"got {severity!r}")
    signature = inspect.signature(CORRUPTIONS.get(name))
    accepted = {p.name: p.default for p in signature.parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"encoder_settings({name!r}): unknown option(s) {', '.join(unknown)}; "
                        f"{name} accepts: {', '.join(accepted) or 'no options'}")
    options = {**accepted, **options}
    encoder, rate = _RATE[name]
    out: dict[str, Any] = {"corruption": name, "severity": severity}
    if encoder is None:  # bit_error, packet_loss: the damaged stream's codec is an option
        codec = options["codec"]
        encoder, crf = _transmission_codec(codec)
        out.update(codec=codec, **encoder.settings(), rate_control="crf", crf=crf)
    else:
        out.update(encoder.settings())
    return {**out, **rate(severity, options), "pyav": av.__version__}


# --- Encode, damage, decode ------------------------------------------------------------------

def _roundtrip(video: torch.Tensor, encoder: Encoder, rate: dict[str, str]) -> torch.Tensor:
    frames = _prepare(video, encoder.min_side)
    decoded = _decode(_encode(frames, encoder, rate), encoder.decoder)
    if len(decoded) != video.shape[0]:
        raise RuntimeError(f"{encoder.encoder} round trip returned {len(decoded)} frames "
                           f"for {video.shape[0]}")
    return _finish(np.stack(decoded), video)


def _transmit(video: torch.Tensor, encoder: Encoder, crf: int, channel) -> torch.Tensor:
    """Encode, pass the packets' payloads through ``channel``, decode with concealment.

    ``channel(list of bytes) -> list of bytes or None (lost)``, same length.
    """
    import av

    t = video.shape[0]
    frames = _prepare(video, encoder.min_side)
    packets = _encode(frames, encoder, {"crf": str(crf)})
    received = channel([bytes(p) for p in packets])
    context = av.CodecContext.create(encoder.decoder, "r")
    context.thread_count = DECODER_THREADS
    by_pts: dict[int, np.ndarray] = {}
    for packet, data in zip([*packets, None], [*received, None]):
        if packet is not None and data is None:
            continue
        if packet is not None:
            packet = _padded_packet(data, packet)
        try:
            decoded = context.decode(packet)
        except av.error.FFmpegError:  # undecodable packet: its frame is concealed below
            continue
        for frame in decoded:
            image = frame.to_ndarray(format="rgb24")
            if frame.pts is not None and 0 <= frame.pts < t and image.shape == frames.shape[1:]:
                by_pts.setdefault(int(frame.pts), image)
    if not by_pts:  # the stream headers are never damaged, so this is a bug, not bad luck
        raise RuntimeError(f"{encoder.decoder}: no frame decoded from the damaged stream")
    out, last = [], by_pts[min(by_pts)]
    for index in range(t):  # a frame the decoder did not produce holds the previous one
        last = by_pts.get(index, last)
        out.append(last)
    return _finish(np.stack(out), video)


def _padded_packet(data: bytes, like) -> "av.Packet":
    """A packet of ``data`` with ``like``'s timestamps, followed by FFmpeg's zeroed padding.

    FFmpeg's bitstream readers may read past a packet's end into the padding that
    ``av_new_packet`` zeroes; ``av.Packet(bytes)`` wraps the bytes without it. On damaged
    H.265 streams the decoder did read past the end (valgrind), and the frames then depended
    on whatever lay next in memory: different in every process.
    """
    import av

    packet = av.Packet(len(data))
    memoryview(packet)[:] = data
    packet.pts, packet.dts = like.pts, like.dts
    return packet


def _prepare(video: torch.Tensor, min_side: int) -> np.ndarray:
    """RGB frames padded by edge replication to even sides of at least ``min_side``."""
    _, h, w, c = video.shape
    frames = video.cpu().numpy()
    if c == 1:
        frames = np.repeat(frames, 3, axis=-1)
    size_h, size_w = max(h, min_side), max(w, min_side)
    pad_h, pad_w = size_h + size_h % 2 - h, size_w + size_w % 2 - w
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _finish(decoded: np.ndarray, video: torch.Tensor) -> torch.Tensor:
    """Crop decoded RGB frames back to the clip's size and channel count."""
    _, h, w, c = video.shape
    out = decoded[:, :h, :w]
    if c == 1:
        out = np.round(out.mean(axis=-1, keepdims=True)).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(out)).to(video.device)


def _encode(frames: np.ndarray, encoder: Encoder, rate: dict[str, str]) -> list:
    import av

    context = av.CodecContext.create(encoder.encoder, "w")
    context.height, context.width = frames.shape[1:3]
    context.pix_fmt = PIX_FMT
    context.time_base = Fraction(1, ENCODE_FPS)
    context.framerate = Fraction(ENCODE_FPS)
    context.gop_size = encoder.gop
    context.thread_count = ENCODER_THREADS
    context.options = encoder.options(rate)
    packets = []
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        packets.extend(context.encode(frame))
    packets.extend(context.encode(None))  # flush the frames held for B-frame reordering
    return packets


def _decode(packets: list, decoder: str) -> list[np.ndarray]:
    import av

    context = av.CodecContext.create(decoder, "r")
    context.thread_count = DECODER_THREADS
    frames = []
    for packet in [*packets, None]:  # None flushes the decoder's delayed frames
        frames.extend(f.to_ndarray(format="rgb24") for f in context.decode(packet))
    return frames
