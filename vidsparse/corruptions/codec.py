"""Codec corruptions: encode the clip in memory with a real encoder, decode it back.

PyAV's wheel bundles FFmpeg with libx264, so this runs in-process with no ``ffmpeg`` binary.
Everything that changes the bitstream (preset, GOP, pixel format, frame rate, threads) is a
module constant, so a (clip, severity) pair gives the same bytes and frames on any machine.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from vidsparse.corruptions.registry import register_corruption

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
# With its SIMD code on, libx264 (as bundled with PyAV 18) gave a different bitstream for the
# same input in about 1 run in 100 (checked: 4 variants in 500 single-threaded encodes of a
# 12 x 64 x 64 clip; none in 2100 with this flag). x264's C and SIMD paths are meant to be
# bit-exact, so turning SIMD off changes nothing but speed (about 3x slower on 320 x 240).
H264_X264_PARAMS = "no-asm=1"


@register_corruption("h264_crf", kind="codec")
def h264_crf(video, severity, rng):
    """H.264 (libx264) at constant rate factor 23, 30, 37, 44, 51 for severities 1-5.

    Odd frame sizes are padded to even (yuv420p needs it) by repeating the edge, then cropped
    back; grey clips are encoded as RGB and averaged back to one channel.
    """
    options = {"crf": str(H264_CRF[severity - 1]), "preset": H264_PRESET,
               "x264-params": H264_X264_PARAMS}
    return _roundtrip(video, "libx264", "h264", options, gop=H264_GOP)


def _roundtrip(video: torch.Tensor, encoder: str, decoder: str, options: dict[str, str],
               gop: int, min_side: int = 0) -> torch.Tensor:
    frames = _prepare(video, min_side)
    decoded = _decode(_encode(frames, encoder, options, gop), decoder)
    if len(decoded) != video.shape[0]:
        raise RuntimeError(f"{encoder} round trip returned {len(decoded)} frames for {video.shape[0]}")
    return _finish(np.stack(decoded), video)


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


def _encode(frames: np.ndarray, encoder: str, options: dict[str, str], gop: int) -> list:
    import av

    context = av.CodecContext.create(encoder, "w")
    context.height, context.width = frames.shape[1:3]
    context.pix_fmt = PIX_FMT
    context.time_base = Fraction(1, ENCODE_FPS)
    context.framerate = Fraction(ENCODE_FPS)
    context.gop_size = gop
    context.thread_count = ENCODER_THREADS
    context.options = dict(options)
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
    context.thread_count = 1
    frames = []
    for packet in [*packets, None]:  # None flushes the decoder's delayed frames
        frames.extend(f.to_ndarray(format="rgb24") for f in context.decode(packet))
    return frames


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
# a 32 x 48 clip. Frames are padded by edge replication to at least one 64 x 64 coding tree
# unit (x265's default CTU size) and cropped back after decoding, so the encoder never sees a
# frame smaller than a CTU.
H265_MIN_SIDE = 64

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


@register_corruption("h265_crf", kind="codec")
def h265_crf(video, severity, rng):
    """H.265 (libx265) at constant rate factor 27, 33, 39, 45, 51 for severities 1-5.

    Frames smaller than ``H265_MIN_SIDE`` (or odd) are padded by repeating the edge, then
    cropped back; single-threaded (``H265_X265_PARAMS``) so the bytes do not depend on the CPU.
    """
    options = {"crf": str(H265_CRF[severity - 1]), "preset": H265_PRESET,
               "x265-params": H265_X265_PARAMS}
    return _roundtrip(video, "libx265", "hevc", options, gop=H265_GOP, min_side=H265_MIN_SIDE)


@register_corruption("h264_abr", kind="codec")
def h264_abr(video, severity, rng):
    """H.264 (libx264) at an average bitrate of the raw rate / 24 / (2, 4, 8, 16, 32).

    See ``ABR_SOURCE_COMPRESSION`` for the formula; maxrate and bufsize equal the bitrate, as
    in Yi et al.
    """
    options = {"preset": H264_PRESET, "x264-params": H264_X264_PARAMS,
               **_abr_options(video, severity)}
    return _roundtrip(video, "libx264", "h264", options, gop=H264_GOP)


@register_corruption("h265_abr", kind="codec")
def h265_abr(video, severity, rng):
    """H.265 (libx265) at the ``h264_abr`` bitrates (raw rate / 24 / (2, 4, 8, 16, 32))."""
    options = {"preset": H265_PRESET, "x265-params": H265_X265_PARAMS,
               **_abr_options(video, severity)}
    return _roundtrip(video, "libx265", "hevc", options, gop=H265_GOP, min_side=H265_MIN_SIDE)


def abr_bitrate(height: int, width: int, severity: int) -> int:
    """Target bits per second of ``h264_abr`` / ``h265_abr`` for an ``H x W`` clip."""
    raw = ABR_RAW_BITS_PER_PIXEL * height * width * ENCODE_FPS
    return max(ABR_MIN_BITRATE, round(raw / ABR_SOURCE_COMPRESSION / ABR_DIVISOR[severity - 1]))


def _abr_options(video: torch.Tensor, severity: int) -> dict[str, str]:
    rate = str(abr_bitrate(video.shape[1], video.shape[2], severity))
    return {"b": rate, "maxrate": rate, "bufsize": rate}


# --- Transmission errors on the coded stream ------------------------------------------------

# The stream that is damaged: H.264 at x264's default CRF (Yi et al.'s h264_crf severity 1),
# with the h264_crf preset, GOP and pixel format above.
TRANSMISSION_CRF = 23
# Yi et al.'s "bit_error" runs FFmpeg's ``noise`` bitstream filter with amount
# 100000, 50000, 30000, 20000, 10000: about one damaged byte in that many, on full-length
# Kinetics videos (megabytes, so tens of damaged bytes per video). Our clips are a few
# kilobytes, where those rates damage nothing, so we use per-bit flip rates two to three
# orders higher, with the same 10x span from severity 1 to 5.
BIT_ERROR_RATE = (1e-3, 2e-3, 4e-3, 7e-3, 1e-2)
# Fraction of coded packets (one per frame) lost in transmission; ours (neither Yi et al. nor
# Schiappa et al. have packet loss). The first packet (keyframe with the stream headers) is
# never lost or damaged, so the stream always decodes.
PACKET_LOSS_RATE = (0.05, 0.1, 0.2, 0.3, 0.5)


@register_corruption("bit_error", kind="codec")
def bit_error(video, severity, rng):
    """Random bit flips in the H.264 packets' payloads at rate 1e-4 ... 1e-3 per bit.

    The first packet (stream headers and the first keyframe) is left intact. The decoder
    conceals what it can; a frame it cannot produce shows the previous decoded frame, so
    ``T`` is kept.
    """
    rate = BIT_ERROR_RATE[severity - 1]

    def damage(payloads: list[bytes]) -> list[bytes | None]:
        out = [payloads[0]]
        for data in payloads[1:]:
            bits = np.unpackbits(np.frombuffer(data, np.uint8))
            flips = rng.random(bits.size) < rate
            out.append(np.packbits(bits ^ flips).tobytes())
        return out

    return _transmit(video, damage)


@register_corruption("packet_loss", kind="codec")
def packet_loss(video, severity, rng):
    """Each coded H.264 packet after the first is lost with probability 0.05 ... 0.5.

    Lost frames, and frames that reference them and cannot be decoded, show the previous
    decoded frame (FFmpeg's own concealment fills damaged parts of the frames it does output);
    ``T`` is kept.
    """
    rate = PACKET_LOSS_RATE[severity - 1]

    def drop(payloads: list[bytes]) -> list[bytes | None]:
        lost = rng.random(len(payloads)) < rate
        lost[0] = False
        return [None if gone else data for data, gone in zip(payloads, lost)]

    return _transmit(video, drop)


def _transmit(video: torch.Tensor, channel) -> torch.Tensor:
    """Encode with libx264, pass the packets' payloads through ``channel``, decode with concealment.

    ``channel(list of bytes) -> list of bytes or None (lost)``, same length.
    """
    import av

    options = {"crf": str(TRANSMISSION_CRF), "preset": H264_PRESET, "x264-params": H264_X264_PARAMS}
    t, h, w, c = video.shape
    frames = _prepare(video, min_side=0)
    packets = _encode(frames, "libx264", options, H264_GOP)
    received = channel([bytes(p) for p in packets])
    context = av.CodecContext.create("h264", "r")
    context.thread_count = 1
    by_pts: dict[int, np.ndarray] = {}
    for packet, data in zip([*packets, None], [*received, None]):
        if packet is not None and data is None:
            continue
        if packet is not None:
            new = av.Packet(data)
            new.pts, new.dts = packet.pts, packet.dts
            packet = new
        try:
            decoded = context.decode(packet)
        except av.error.FFmpegError:  # undecodable packet: its frame is concealed below
            continue
        for frame in decoded:
            image = frame.to_ndarray(format="rgb24")
            if frame.pts is not None and 0 <= frame.pts < t and image.shape == frames.shape[1:]:
                by_pts.setdefault(int(frame.pts), image)
    out, last = [], by_pts.get(min(by_pts, default=0), frames[0])
    for index in range(t):  # a frame the decoder did not produce holds the previous one
        last = by_pts.get(index, last)
        out.append(last)
    return _finish(np.stack(out), video)
