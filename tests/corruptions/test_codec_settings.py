"""encoder_settings(): what a corrupted dataset's manifest records of each codec corruption."""

import json

import pytest

from vidsparse.corruptions import codec, list_corruptions
from vidsparse.corruptions.codec import encoder_settings

CODEC = sorted(list_corruptions("codec"))


def option_sets(name: str) -> list[dict]:
    if name in ("bit_error", "packet_loss"):
        return [{"codec": codec_name} for codec_name in codec.TRANSMISSION_CODECS]
    return [{}]


@pytest.mark.parametrize("name", CODEC)
def test_every_codec_corruption_records_json_settings(name):
    for options in option_sets(name):
        for severity in (1, 2, 3, 4, 5):
            settings = encoder_settings(name, severity, **options)
            assert json.loads(json.dumps(settings)) == settings
            assert settings["corruption"] == name and settings["severity"] == severity
            # The issue: preset, GOP and pixel format are fixed and recorded.
            assert {"encoder", "preset", "gop", "pix_fmt", "encode_fps", "threads",
                    "rate_control", "pyav"} <= set(settings)
            assert settings["preset"] == "medium" and settings["gop"] == 250
            assert settings["pix_fmt"] == "yuv420p"
            assert settings["threads"] == 1 and settings["encode_fps"] == 25


def test_crf_per_severity_is_yi_et_al():
    # Yi et al. 2021, Mini Kinetics-C: h264_crf 23..51, h265_crf 27..51.
    assert [encoder_settings("h264_crf", s)["crf"] for s in (1, 2, 3, 4, 5)] == [23, 30, 37, 44, 51]
    assert [encoder_settings("h265_crf", s)["crf"] for s in (1, 2, 3, 4, 5)] == [27, 33, 39, 45, 51]
    h264, h265 = encoder_settings("h264_crf", 1), encoder_settings("h265_crf", 1)
    assert (h264["encoder"], h264["x264-params"]) == ("libx264", "no-asm=1")
    assert h265["encoder"] == "libx265" and "pools=none" in h265["x265-params"]
    assert (h264["pad_min_side"], h265["pad_min_side"]) == (0, 128)


def test_abr_records_the_bitrate_rule():
    settings = [encoder_settings("h265_abr", s) for s in (1, 2, 3, 4, 5)]
    assert [s["abr_divisor"] for s in settings] == [2, 4, 8, 16, 32]
    assert all(s["rate_control"] == "abr" and s["encoder"] == "libx265" for s in settings)
    # bitrate = 24 bits/pixel * H * W * 25 fps / 24 / divisor; for 64 x 96 at severity 1:
    rule = settings[0]
    assert (24 * 64 * 96 * rule["encode_fps"] / rule["abr_source_compression"] / rule["abr_divisor"]
            == codec.abr_bitrate(64, 96, 1) == 76800)


def test_transmission_settings_follow_the_codec_option():
    default = encoder_settings("bit_error", 3)
    assert (default["codec"], default["encoder"], default["crf"]) == ("h264", "libx264", 23)
    assert default["bit_flip_rate"] == 4e-3
    h265 = encoder_settings("packet_loss", 5, codec="h265")
    assert (h265["codec"], h265["encoder"], h265["crf"]) == ("h265", "libx265", 27)
    assert h265["packet_loss_rate"] == 0.5 and h265["first_packet_intact"] is True


def test_bad_requests_raise():
    with pytest.raises(ValueError, match="not a codec corruption.*h264_crf"):
        encoder_settings("h266_crf", 1)
    with pytest.raises(ValueError, match="not a codec corruption"):
        encoder_settings("fog", 1)
    with pytest.raises(ValueError, match="severity"):
        encoder_settings("h264_crf", 6)
    with pytest.raises(TypeError, match="accepts: codec"):
        encoder_settings("bit_error", 1, cdec="h265")
    with pytest.raises(TypeError, match="no options"):
        encoder_settings("h264_crf", 1, codec="h265")
    with pytest.raises(ValueError, match="h264, h265"):
        encoder_settings("packet_loss", 1, codec="vp9")
