"""Golden results: a few smoke steps of every recipe, in PyTorch and both Keras styles, give the
losses and weight norms recorded in tests/golden/train_hashes.json, within tolerances measured
across kernel settings (scripts/record_golden.py --spread); the same run twice on one machine
gives the same weights bit for bit; a real change of results (lr x 1.01, another seed) fails; the
CLI's run folder holds the recorded files and config.json.

Why not bit for bit against the recording: another CPU (AVX2 or AVX-512, Intel or AMD), another
thread count or TensorFlow's oneDNN switch changes float sums in their last bits, and a GAN's
steps carry them forward. Bit for bit is a property of one environment, tested as such here and
by the resume tests (tests/test_train_*.py).

A deliberate change of results (a recipe's hyperparameters, a step's math) is re-recorded with
scripts/record_golden.py (its RECORD_COMMAND); a refactor must leave them as they are.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "record_golden.py"
_spec = importlib.util.spec_from_file_location("record_golden", _SCRIPT)
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

EXPECTED = json.loads(golden.GOLDEN_PATH.read_text())
HOW = f"if the change of results is deliberate, re-record with: {golden.RECORD_COMMAND}"


def _rtol(k: str) -> float:
    return EXPECTED["tolerances"]["runs"][k]["rtol"]


def _params():
    for recipe, framework, style in golden.runs():
        yield pytest.param(recipe, framework, style, id=golden.key(recipe, framework, style))


def test_golden_covers_every_run_with_a_measured_tolerance():
    keys = sorted(golden.key(*r) for r in golden.runs())
    assert sorted(EXPECTED["runs"]) == keys, HOW
    assert EXPECTED["options"] == golden.GOLDEN_OPTIONS, HOW
    assert sorted(EXPECTED["tolerances"]["runs"]) == keys, HOW
    steps = golden.GOLDEN_OPTIONS["steps"]
    for k in keys:
        rtol = _rtol(k)
        assert sorted(rtol) == sorted((*golden.LOSSES, *golden.NORMS)), k
        assert all(len(v) == steps and min(v) >= golden.MIN_RTOL for v in rtol.values()), k
        # tight enough where it matters: a 1 % change of a learning rate moves the first update
        assert rtol["g_update"][0] < 2e-3 and rtol["d_update"][0] < 2e-3, (k, rtol)


@pytest.mark.parametrize(("recipe", "framework", "style"), list(_params()))
def test_training_matches_golden(recipe, framework, style, tmp_path):
    k = golden.key(recipe, framework, style)
    got = golden.train_one(recipe, framework, style, tmp_path / "run")
    bad = golden.mismatches(got, EXPECTED["runs"][k], _rtol(k))
    assert not bad, f"{k}: {len(bad)} values outside their tolerance: {bad[:6]}; {HOW}"


@pytest.mark.parametrize(("recipe", "framework", "style"), [
    ("torch-mnist", "torch", None), ("dcgan64", "torch", None),
    ("torch-mnist", "keras", "train_step"), ("gia-dcgan-mnist", "keras", "stacked")])
def test_the_same_run_twice_is_bit_for_bit(recipe, framework, style, tmp_path):
    a = golden.train_one(recipe, framework, style, tmp_path / "a")
    b = golden.train_one(recipe, framework, style, tmp_path / "b")
    assert (a["generator"], a["discriminator"]) == (b["generator"], b["discriminator"])
    assert a["losses"] == b["losses"] and a["norms"] == b["norms"]


@pytest.mark.parametrize(("recipe", "framework", "style"), [
    ("dense-mnist", "torch", None), ("paper-lsun64", "torch", None),
    ("torch-mnist", "keras", "train_step"), ("paper-lsun64", "keras", "stacked")])
@pytest.mark.parametrize("change", [{"lr_g": 1.01}, {"lr_d": 1.01}, {"seed": 1}],
                         ids=["lr_g*1.01", "lr_d*1.01", "seed=1"])
def test_a_real_change_fails_the_golden_comparison(recipe, framework, style, change, tmp_path):
    """The tolerances are no blanket: a 1 % change of one learning rate is caught, with margin,
    in the widest-tolerance recipe too."""
    from dcgan_lab import recipes

    k = golden.key(recipe, framework, style)
    r = recipes.get(recipe)
    changes = {n: (getattr(r, n) * v if n.startswith("lr") else v) for n, v in change.items()}
    got = golden.train_one(recipe, framework, style, tmp_path / "run", **changes)
    want = EXPECTED["runs"][k]
    assert golden.mismatches(got, want, _rtol(k)), f"{k} with {changes} passed as golden"
    assert golden.excess(got, want, _rtol(k)) > 3, "caught, but without margin"


def test_mismatches_are_per_step_and_read_values_near_zero_absolutely():
    want = {"losses": {"loss_d": [1.0, 1e-9]}, "norms": {}}
    got = {"losses": {"loss_d": [1.0 + 1e-6, 2e-9]}, "norms": {}}
    assert golden.rel_diffs(got, want)["loss_d"][0] == pytest.approx(1e-6)
    assert golden.mismatches(got, want, {"loss_d": [1e-5, 1e-5]}) == []
    assert golden.mismatches(got, want, {"loss_d": [1e-7, 1e-5]}) == [
        "loss_d[1]: 1.000001 vs 1 (1e-06 > 1e-07)"]
    assert golden.excess(got, want, {"loss_d": [1e-7, 1e-5]}) == pytest.approx(10)
    nan = {"losses": {"loss_d": [math.nan, 0.0]}, "norms": {}}
    assert golden.rel_diffs(nan, want)["loss_d"][0] == math.inf
    assert golden.mismatches({"losses": {"loss_d": [1.0]}, "norms": {}}, want,
                             {"loss_d": [1.0, 1.0]})  # a step missing


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_cli_run_folder_matches_golden(framework, tmp_path):
    got = golden.cli_outputs(framework, tmp_path / "run")
    assert got == EXPECTED["cli"][framework], f"dcgan-lab train's run folder changed; {HOW}"
