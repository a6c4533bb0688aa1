"""packet_loss(model="udp"): Yi et al.'s network loss of 1472-byte UDP datagrams."""

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import moving_square_clip

from vidsparse.corruptions import codec, corrupt
from vidsparse.corruptions.codec import encoder_settings

START = b"\x00\x00\x01"
FILL = b"\xaa"  # filler with no start code in it


def nal(header: int, length: int) -> bytes:
    """An Annex-B NAL unit: start code, one header byte, ``length`` filler bytes."""
    return START + bytes([header]) + FILL * length


def noisy_clip(frames: int = 16, height: int = 96, width: int = 128) -> np.ndarray:
    """A moving square under fresh noise each frame: every P frame spans one or two datagrams
    (31 datagrams in all for H.264), so losses of a few percent show."""
    rng = np.random.default_rng(0)
    clip = moving_square_clip(frames, height, width).astype(int)
    return np.clip(clip + rng.integers(-25, 26, clip.shape), 0, 255).astype(np.uint8)


def mean_error(out: np.ndarray, clip: np.ndarray) -> float:
    return float(np.abs(out.astype(float) - clip).mean())


def test_packets_are_cut_into_1472_byte_datagrams_by_hand():
    assert codec.UDP_DATAGRAM_BYTES == 1472  # FFmpeg's udp pkt_size default
    assert codec.udp_datagrams([3000, 100, 1472, 1473]) == [
        (0, 0, 1472), (0, 1472, 2944), (0, 2944, 3000),
        (1, 0, 100),
        (2, 0, 1472),
        (3, 0, 1472), (3, 1472, 1473)]


def test_yi_et_al_rates():
    # Newbeeyoung/packet-loss-simulation packet_loss.sh: --switch_loss 1 2 3 4 6 (percent).
    assert codec.UDP_PACKET_LOSS_RATE == (0.01, 0.02, 0.03, 0.04, 0.06)
    assert codec.PACKET_LOSS_RATE == (0.05, 0.1, 0.2, 0.3, 0.5)  # the "frames" model, ours


@pytest.mark.parametrize("codec_name, slice_header", [("h264", 0x65), ("h265", 19 << 1)])
def test_the_datagrams_holding_the_stream_headers_are_protected(codec_name, slice_header):
    # Parameter sets (H.264 SPS 0x67 / H.265 VPS 0x40) and SEI before the first slice.
    param, sei = (0x67, 0x06) if codec_name == "h264" else (0x40, 0x4E)
    short = nal(param, 20) + nal(sei, 600) + nal(slice_header, 5000)
    # The slice starts at byte 4 + 20 + 4 + 600 = 628; 628 + 64 < 1472: one datagram.
    assert codec.protected_datagrams(short, codec_name) == 1
    long = nal(param, 20) + nal(sei, 2000) + nal(slice_header, 5000)
    # Slice at 4 + 20 + 4 + 2000 = 2028; 2028 + 64 = 2092 bytes span two datagrams.
    assert codec.protected_datagrams(long, codec_name) == 2
    straddling = nal(param, 20) + nal(sei, 1420) + nal(slice_header, 5000)
    # Slice at 1448: its first 64 bytes run into the second datagram.
    assert codec.protected_datagrams(straddling, codec_name) == 2


def test_lost_datagrams_are_the_seeded_draws():
    # Packet 0: headers (628 bytes) and a slice, 3000 bytes in all: datagrams 0-2, the first
    # protected; packet 1: datagrams 3-4; packet 2: datagram 5; packet 3: datagrams 6-8.
    first = nal(0x67, 20) + nal(0x06, 600) + nal(0x65, 3000 - 632)
    payloads = [first, bytes(range(256)) * 8, b"\x11" * 700, b"\x22" * 3000]
    datagrams = [(0, 0, 1472), (0, 1472, 2944), (0, 2944, 3000), (1, 0, 1472), (1, 1472, 2048),
                 (2, 0, 700), (3, 0, 1472), (3, 1472, 2944), (3, 2944, 3000)]
    assert codec.udp_datagrams([len(p) for p in payloads]) == datagrams
    whole_packets_lost = 0
    for seed in range(20):
        draws = np.random.default_rng(seed).random(len(datagrams))
        expected_lost = draws < 0.5
        expected_lost[0] = False
        received = codec.udp_channel(payloads, 0.5, np.random.default_rng(seed), "h264")
        for index, data in enumerate(payloads):
            kept = [data[a:b] for (i, a, b), gone in zip(datagrams, expected_lost)
                    if i == index and not gone]
            assert received[index] == (b"".join(kept) if kept else None), (seed, index)
        arrived = sum(len(r) for r in received if r is not None)
        lost_bytes = sum(b - a for (_, a, b), gone in zip(datagrams, expected_lost) if gone)
        assert arrived + lost_bytes == sum(map(len, payloads))
        whole_packets_lost += received.count(None)
    assert whole_packets_lost > 0  # the cases above include packets lost whole


def test_corrupt_draws_one_uniform_per_datagram_from_the_seed(monkeypatch):
    clip = noisy_clip()
    recorded = []
    original = codec.lost_datagrams

    def record(count, rate, rng, protected):
        lost = original(count, rate, rng, protected)
        recorded.append((count, rate, protected, lost))
        return lost

    monkeypatch.setattr(codec, "lost_datagrams", record)
    corrupt(clip, "packet_loss", 5, seed=7, model="udp")
    (count, rate, protected, lost), = recorded
    frames = codec._prepare(torch.from_numpy(clip), 0)
    sizes = [p.size for p in codec._encode(frames, codec.H264, {"crf": "23"})]
    assert count == sum(-(-size // 1472) for size in sizes)
    assert (rate, protected) == (0.06, 1)
    expected = np.random.default_rng(7).random(count) < 0.06
    expected[0] = False
    np.testing.assert_array_equal(lost, expected)


def test_losses_nest_across_severities():
    # One uniform per datagram, lost below the rate: a datagram lost at severity s is lost at
    # every higher severity (same seed, same stream).
    for seed in range(10):
        masks = [codec.lost_datagrams(200, rate, np.random.default_rng(seed), 1)
                 for rate in codec.UDP_PACKET_LOSS_RATE]
        for lower, higher in zip(masks, masks[1:]):
            assert not (lower & ~higher).any()


@pytest.mark.parametrize("codec_name", ["h264", "h265"])
def test_udp_is_deterministic_by_seed_and_keeps_the_shape(codec_name):
    clip = noisy_clip()
    outs = [corrupt(clip, "packet_loss", 5, seed=s, codec=codec_name, model="udp")
            for s in range(6)]
    for seed, out in enumerate(outs[:2]):
        assert out.shape == clip.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, corrupt(clip, "packet_loss", 5, seed=seed,
                                                   codec=codec_name, model="udp"))
    assert len({hashlib.sha1(out.tobytes()).hexdigest() for out in outs}) > 1


def test_udp_damage_grows_with_severity():
    clip = noisy_clip()
    clean = mean_error(corrupt(clip, "h264_crf", 1), clip)  # the same CRF 23 stream, undamaged
    errors = [np.mean([mean_error(corrupt(clip, "packet_loss", s, seed=k, model="udp"), clip)
                       for k in range(12)]) for s in (1, 5)]
    assert clean <= errors[0] < errors[1]


@pytest.mark.parametrize("codec_name", ["h264", "h265"])
def test_the_clip_decodes_when_every_unprotected_datagram_is_lost(codec_name):
    clip = torch.from_numpy(noisy_clip(8))
    encoder, crf = codec.TRANSMISSION_CODECS[codec_name]
    out = codec._transmit(clip, encoder, crf, lambda payloads: codec.udp_channel(
        payloads, 1.0, np.random.default_rng(0), codec_name))
    # Only the first frame (partly) decodes; every later frame holds it.
    assert out.shape == clip.shape
    assert all(torch.equal(frame, out[0]) for frame in out[1:])


def test_frames_is_the_default_model(clip):
    np.testing.assert_array_equal(corrupt(clip, "packet_loss", 4, seed=2),
                                  corrupt(clip, "packet_loss", 4, seed=2, model="frames"))


def test_unknown_model_raises(clip):
    with pytest.raises(ValueError, match="model must be one of frames, udp"):
        corrupt(clip, "packet_loss", 1, model="tcp")
    with pytest.raises(ValueError, match="model must be one of frames, udp"):
        encoder_settings("packet_loss", 1, model="tcp")


def test_manifest_records_the_loss_model():
    frames = encoder_settings("packet_loss", 2)
    assert (frames["model"], frames["packet_loss_rate"], frames["first_packet_intact"]) == \
        ("frames", 0.1, True)
    udp = encoder_settings("packet_loss", 5, model="udp", codec="h265")
    assert (udp["model"], udp["packet_loss_rate"], udp["datagram_bytes"]) == ("udp", 0.06, 1472)
    assert udp["first_packet_intact"] is False and udp["loss_unit"] == "datagram"
    assert (udp["encoder"], udp["crf"]) == ("libx265", 27)


@pytest.mark.slow
def test_udp_losses_decode_the_same_in_every_process():
    # H.265 frames that lose a datagram are partly decoded (no concealment): the rest of the
    # frame must not depend on the process's memory.
    cases = [(c, seed) for c in ("h264", "h265") for seed in range(4)]
    script = textwrap.dedent(f"""
        import hashlib
        from test_codec_packet_loss import noisy_clip
        from vidsparse.corruptions import corrupt
        for c, seed in {cases}:
            out = corrupt(noisy_clip(), "packet_loss", 5, seed=seed, codec=c, model="udp")
            print(hashlib.sha1(out.tobytes()).hexdigest())
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    here = [hashlib.sha1(corrupt(noisy_clip(), "packet_loss", 5, seed=seed, codec=c,
                                 model="udp").tobytes()).hexdigest() for c, seed in cases]
    assert done.stdout.split() == here
