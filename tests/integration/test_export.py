"""``dcgan-lab export``: a run's generator as ONNX, equal to the framework's own output."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from dcgan_lab.run import streams  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "book" / "reference" / "dcgan64-torch"


def test_export_of_the_reference_generator_matches_torch(cli, tmp_path):
    out = tmp_path / "g.onnx"
    r = cli("export", REFERENCE, "--onnx", out)
    assert r.returncode == 0, r.stderr
    printed = float(re.search(r"max \|difference\| = (\S+)", r.stdout).group(1))
    assert printed <= 1e-4

    from dcgan_lab.torch import load_generator

    z = streams.sample_noise(5, 100, 11).astype(np.float32)  # another N and z than the check's
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        ["images"], {"z": z})[0]
    with torch.no_grad():
        want = load_generator(REFERENCE)(torch.from_numpy(z)).numpy()
    assert got.shape == (5, 3, 64, 64)
    assert np.abs(got - want).max() <= 1e-4


def test_export_of_a_keras_run_matches_keras(cli, tmp_path):
    pytest.importorskip("keras")
    run = tmp_path / "run"
    r = cli("train", "dense-mnist", "--framework", "keras", "--profile", "smoke", "--steps", "2",
            "--out", run, "--no-progress")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "g.onnx"
    r = cli("export", run, "--onnx", out)
    assert r.returncode == 0, r.stderr
    assert "onnxruntime vs keras" in r.stdout
    assert float(re.search(r"max \|difference\| = (\S+)", r.stdout).group(1)) <= 1e-4


def test_export_of_a_folder_without_a_run_is_one_line(cli, tmp_path):
    r = cli("export", tmp_path, "--onnx", tmp_path / "g.onnx")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(tmp_path) in r.stderr
