"""The ``dcgan-lab`` command line, run as ``python -m dcgan_lab.cli`` in subprocesses."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dcgan_lab import recipes


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("dcgan-lab: error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_recipes_lists_all_eight(cli):
    r = cli("recipes")
    assert r.returncode == 0, r.stderr
    rows = [ln.split()[0] for ln in r.stdout.splitlines()[2:] if ln.strip()]
    assert rows == recipes.names() and len(rows) == 8
    assert "18,855,040" in r.stdout and "4,315,585" in r.stdout  # paper-lsun64 G / D


def test_unknown_recipe_lists_the_names(cli):
    r = cli("train", "no-such-gan")
    assert r.returncode == 2
    assert "no-such-gan" in r.stderr
    assert all(name in r.stderr for name in recipes.names())


@pytest.mark.parametrize("args, message", [
    (["--d-batches", "mixed"], "choose from 'separate', 'concat'"),
    (["--framework", "jax"], "choose from 'torch', 'keras'"),
    (["--profile", "tpu"], "choose from 'smoke', 'cpu', 'gpu'"),
    (["--flip-prob", "0.9"], "flip_prob=0.9"),
    (["--real-labels", "1.0,0.7"], "LOW <= HIGH"),
    (["--steps", "0"], "positive integer"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_option_values_exit_2(cli, args, message):
    r = cli("train", "torch-mnist", *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def run_dir(cli, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    r = cli("train", "torch-mnist", "--framework", "torch", "--profile", "smoke", "--out", out,
            "--no-progress")
    assert r.returncode == 0, r.stderr
    return out


def test_train_writes_the_run_folder(run_dir):
    for name in ("config.json", "history.csv", "checkpoint.pt", "generator.pt", "training.gif"):
        assert (run_dir / name).is_file(), name
    budget = recipes.get("torch-mnist").budget("smoke")
    steps = [int(ln.split(",")[0]) for ln in (run_dir / "history.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, budget.steps + 1))
    samples = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    assert samples == [f"step_{s:06d}.png"
                       for s in range(budget.sample_every, budget.steps + 1, budget.sample_every)]


def test_train_again_refuses_then_resumes(cli, run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    line = _one_line_error(cli("train", "torch-mnist", "--out", out, "--no-progress"))
    assert "--resume" in line and str(out) in line
    line = _one_line_error(cli("train", "torch-mnist", "--out", out, "--lr-d", "1e-5"))
    assert "different run" in line and "lr_d" in line
    steps = recipes.get("torch-mnist").budget("smoke").steps + 2
    r = cli("train", "torch-mnist", "--out", out, "--resume", "--steps", steps, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming torch-mnist from step 12" in r.stdout
    assert (out / "history.csv").read_text().splitlines()[-1].startswith(f"{steps},")


def test_resume_alone_keeps_the_options_of_the_run(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("train", "torch-mnist", "--out", out, "--steps", "2", "--batch-size", "8",
            "--lr-d", "1e-4", "--d-batches", "concat", "--real-labels", "0.8,1.0", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = cli("train", "torch-mnist", "--out", out, "--resume", "--steps", "3", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming torch-mnist from step 2 of 3" in r.stdout
    config = (out / "config.json").read_text()
    assert '"lr_d": 0.0001' in config and '"d_batches": "concat"' in config


def test_corrupt_checkpoint_is_a_one_line_error(cli, run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    (out / "checkpoint.pt").write_bytes(b"\x00garbage")
    line = _one_line_error(cli("train", "torch-mnist", "--out", out, "--resume"))
    assert str(out / "checkpoint.pt") in line
    assert (out / "checkpoint.pt").read_bytes() == b"\x00garbage"


def test_sample_writes_a_grid(cli, run_dir, tmp_path):
    from PIL import Image

    png = tmp_path / "grid.png"
    r = cli("sample", run_dir, "-n", "10", "--out", png, "--seed", "1")
    assert r.returncode == 0, r.stderr
    with Image.open(png) as im:  # 10 images -> 4 columns x 3 rows of 28x28 with 2 px padding
        assert im.size == (4 * 28 + 5 * 2, 3 * 28 + 4 * 2)
    line = _one_line_error(cli("sample", tmp_path, "--out", png))
    assert "config.json" in line


@pytest.mark.parametrize("args, expected", [
    (["conv", "28", "--kernel", "3", "--stride", "2", "--padding", "1"], "28x28 -> 14x14"),
    (["conv", "64", "-k", "4", "-s", "2", "-p", "1"], "64x64 -> 32x32"),
    (["conv", "7", "-k", "3", "-s", "2", "-p", "same"], "7x7 -> 4x4"),
    (["transpose", "7", "--kernel", "4", "--stride", "2", "--padding", "1"], "7x7 -> 14x14"),
    (["transpose", "4", "-k", "4", "-s", "1", "-p", "0"], "4x4 -> 7x7"),
    (["transpose", "4", "-k", "5", "-s", "2", "-p", "2", "--output-padding", "1"], "4x4 -> 8x8"),
])
def test_arithmetic_sizes(cli, args, expected):
    r = cli("arithmetic", *args)
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout
    n_out = expected.split("x")[-1]
    assert re.search(rf"= {n_out}$", r.stdout.splitlines()[0])


def test_arithmetic_plan_and_errors(cli):
    r = cli("arithmetic", "plan", "64")
    assert r.returncode == 0, r.stderr
    outs = re.findall(r"ConvTranspose2d\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)x\d+", r.stdout)
    assert outs == ["4", "8", "16", "32", "64"]
    r = cli("arithmetic", "plan", "28")
    assert "14x14" in r.stdout and "28x28" in r.stdout and "7x7" in r.stdout
    r = cli("arithmetic", "conv", "2", "--kernel", "5")
    assert r.returncode == 2 and "kernel=5" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_json_is_the_last_line(cli, tiny_run):
    import json
    import math

    r = cli("evaluate", tiny_run, "-n", "50", "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert any(ln.strip().startswith("Fréchet distance") for ln in lines[:-1])  # human lines first
    scores = json.loads(lines[-1])
    for key in ("fid", "modes_covered", "kl", "confident", "precision", "recall"):
        assert isinstance(scores[key], float) and math.isfinite(scores[key]), key
    assert 0 <= scores["modes_covered"] <= 10 and scores["modes_covered"] == int(
        scores["modes_covered"])
    assert scores["fid"] >= 0 and scores["kl"] >= 0
    assert all(0 <= scores[k] <= 1 for k in ("confident", "precision", "recall"))
    assert (scores["n"], scores["recipe"], scores["dataset"]) == (50, "torch-mnist", "mnist")
    r = cli("evaluate", tiny_run, "-n", "50")  # no --json: human-readable lines only
    assert r.returncode == 0 and not r.stdout.strip().splitlines()[-1].startswith("{")


def test_evaluate_errors_are_one_line(cli, tiny_run, tmp_path):
    line = _one_line_error(cli("evaluate", tmp_path))  # a folder that is not a run
    assert str(tmp_path) in line and "config.json" in line
    line = _one_line_error(cli("evaluate", tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in line
    out = tmp_path / "no_generator"
    out.mkdir()
    shutil.copy(tiny_run / "config.json", out / "config.json")
    line = _one_line_error(cli("evaluate", out))
    assert str(out) in line
    clothing = tmp_path / "clothing"
    clothing.mkdir()
    config = (tiny_run / "config.json").read_text().replace('"data": "mnist"',
                                                            '"data": "clothing64"')
    assert "clothing64" in config
    (clothing / "config.json").write_text(config)
    line = _one_line_error(cli("evaluate", clothing))
    # a 28x28 recipe scored against the 64x64 clothing64 classifier: named, one line, no traceback
    assert "clothing64" in line and "torch-mnist" in line and "64x64x3" in line


def test_train_speed_option_reaches_the_trainer(tmp_path, monkeypatch, capsys):
    """--speed is parsed into a Speed for the framework and handed to its train(); 'plain' is
    every option off."""
    from dcgan_lab import cli as cli_mod
    from dcgan_lab import frameworks, speed
    from dcgan_lab.run.history import History

    seen = {}

    def fake_train(recipe, out, **kwargs):
        seen.update(kwargs)
        return History()

    lab = frameworks.get("torch")
    monkeypatch.setattr(lab, "train", fake_train)
    rc = cli_mod.main(["train", "torch-mnist", "--framework", "torch", "--profile", "smoke",
                       "--out", str(tmp_path / "a"), "--speed", "channels_last,autocast=bf16"])
    assert rc == 0 and seen["speed"] == speed.FASTEST_CPU
    rc = cli_mod.main(["train", "torch-mnist", "--framework", "torch", "--profile", "smoke",
                       "--out", str(tmp_path / "b"), "--speed", "plain"])
    assert rc == 0 and seen["speed"] == speed.PLAIN
    rc = cli_mod.main(["train", "torch-mnist", "--framework", "torch", "--profile", "smoke",
                       "--out", str(tmp_path / "c")])
    assert rc == 0 and seen["speed"] is None  # the measured defaults


@pytest.mark.parametrize("args, message", [
    (("--devices", "2"), "--devices and --cpu-replicas apply to --distributed --framework keras"),
    (("--distributed", "--speed", "plain"), "--speed does not apply with --distributed"),
    (("--distributed", "--device", "cpu"), "--device does not apply with --distributed"),
    (("--distributed", "--framework", "keras", "--keras-style", "stacked"),
     "--keras-style stacked does not apply with --distributed"),
])
def test_distributed_options_out_of_place_exit_2(cli, tmp_path, args, message):
    """``train --distributed`` takes every option of ``train``; the ones that belong to one kind
    of run only are usage errors there, before any framework is imported."""
    r = cli("train", "torch-mnist", "--out", tmp_path / "run", *args, timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()
