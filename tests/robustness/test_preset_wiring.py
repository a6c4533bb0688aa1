"""Benchmark presets reach every place a corruption is chosen: corrupt_dataset, evaluate, the sweep."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidsparse.corruptions import Corruption, corrupt_dataset
from vidsparse.corruptions.generate import resolve_corruptions
from vidsparse.corruptions.presets import expand_preset
from vidsparse.robustness.evaluate import evaluate
from vidsparse.robustness.results import results_from_evaluation

from test_robustness_evaluate import Brightness, checkpoint, ramp_root  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
# the module (vidsparse.robustness exports the function under the same name)
evaluate_module = importlib.import_module("vidsparse.robustness.evaluate")


def test_a_preset_gives_its_set_and_options_and_user_options_go_on_top():
    names, options = resolve_corruptions(None, None, "mini_kinetics_c")
    assert names == [name for name, _ in expand_preset("mini_kinetics_c")]
    assert options["packet_loss"] == {"model": "udp"}
    names, options = resolve_corruptions(["fog"], {"temporal": "iid"}, "mini_kinetics_c")
    assert names == ["fog"]
    assert options["fog"] == {**dict(expand_preset("mini_kinetics_c"))["fog"], "temporal": "iid"}


def test_preset_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="unknown corruption preset 'nope'; known: imagenet_c"):
        resolve_corruptions(None, None, "nope")
    with pytest.raises(ValueError, match="gaussian_noise are not in preset 'mini_kinetics_c'; it has: shot_noise"):
        resolve_corruptions(["fog", "gaussian_noise"], None, "mini_kinetics_c")
    with pytest.raises(ValueError, match="no corruptions given"):
        resolve_corruptions(None, None, None)


def test_evaluate_corrupts_on_the_fly_with_the_preset_options(ramp_root, monkeypatch):  # noqa: F811
    made = []

    def recording(*args, **kwargs):
        corruption = Corruption(*args, **kwargs)
        made.append(corruption)
        return corruption

    monkeypatch.setattr(evaluate_module, "Corruption", recording)
    result = evaluate([checkpoint(Brightness())], ramp_root, corruptions=["brightness"],
                      severities=[2], preset="mini_kinetics_c", progress=False)
    preset_options = dict(expand_preset("mini_kinetics_c"))["brightness"]
    assert preset_options and [(c.name, c.severity, dict(c.options)) for c in made] == \
        [("brightness", 2, preset_options)]
    assert result.options == {"brightness": preset_options}
    info = results_from_evaluation(result).corruptions["brightness"]
    assert info.options == preset_options


def test_evaluate_refuses_options_for_copies_on_disk(ramp_root, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="options apply to on-the-fly corruption"):
        evaluate([checkpoint(Brightness())], ramp_root, corrupted=tmp_path,
                 options={"temporal": "iid"}, progress=False)


def test_corrupt_dataset_writes_the_preset_and_its_options_in_the_manifest(ramp_root, tmp_path):  # noqa: F811
    dst = tmp_path / "c"
    corrupt_dataset(ramp_root, dst, ["brightness"], [1], preset="mini_kinetics_c", progress=False)
    settings = json.loads((dst / "manifest.json").read_text())["settings"]
    assert settings["preset"] == "mini_kinetics_c" and settings["corruptions"] == ["brightness"]
    for key, value in dict(expand_preset("mini_kinetics_c"))["brightness"].items():
        assert settings["parameters"]["brightness"]["options"][key] == value


def sweep_config(*overrides):
    return subprocess.run([sys.executable, "recipes/sweep.py", "--config", "recipes/sweeps/demo.yaml",
                           *overrides, "--print-config"], cwd=REPO, capture_output=True, text=True)


def test_sweep_checks_its_preset_before_training():
    bad = sweep_config("corrupt.preset=nope")
    assert bad.returncode != 0 and "unknown corruption preset 'nope'" in bad.stderr
    mixed = sweep_config("corrupt.preset=ucf101_p")  # demo.yaml names fog, not in UCF101-P
    assert mixed.returncode != 0 and "fog" in mixed.stderr and "not in preset 'ucf101_p'" in mixed.stderr
    good = sweep_config("corrupt.preset=ucf101_p", "corrupt.corruptions=null")
    assert good.returncode == 0, good.stderr
    assert "preset: ucf101_p" in good.stdout


def test_manifest_records_the_encoder_of_yis_frame_rate_reencode():
    from vidsparse.corruptions.generate import parameters

    assert "encoder" not in parameters("frame_rate", [1], {})
    encoder = parameters("frame_rate", [1, 5], {"codec": "h265"})["encoder"]
    assert encoder["encoder"] == "libx265" and encoder["crf"] == 28  # x265's default CRF, as Yi's ffmpeg call


def test_corrupt_takes_a_preset_and_options_go_on_top():
    import numpy as np

    from vidsparse.corruptions import corrupt

    clip = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    options = dict(expand_preset("mini_kinetics_c"))["brightness"]
    assert np.array_equal(corrupt(clip, "brightness", 2, seed=3, preset="mini_kinetics_c"),
                          corrupt(clip, "brightness", 2, seed=3, **options))
    assert np.array_equal(corrupt(clip, "fog", 2, seed=3, preset="imagenet_c", temporal="iid"),
                          corrupt(clip, "fog", 2, seed=3, **{**dict(expand_preset("imagenet_c"))["fog"],
                                                             "temporal": "iid"}))
    with pytest.raises(ValueError, match="gaussian_noise is not in the preset; it has: shot_noise"):
        corrupt(clip, "gaussian_noise", 2, preset="mini_kinetics_c")
    with pytest.raises(ValueError, match="unknown corruption preset 'nope'"):
        corrupt(clip, "fog", 2, preset="nope")
