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
               gop: int) -> torch.Tensor:
    t, h, w, c = video.shape
    frames = video.cpu().numpy()
    if c == 1:
        frames = np.repeat(frames, 3, axis=-1)
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    decoded = _decode(_encode(frames, encoder, options, gop), decoder)
    if len(decoded) != t:
        raise RuntimeError(f"{encoder} round trip returned {len(decoded)} frames for {t}")
    out = np.stack(decoded)[:, :h, :w]
    if c == 1:
        out = np.round(out.mean(axis=-1, keepdims=True)).astype(np.uint8)
    return torch.from_numpy(out).to(video.device)


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
