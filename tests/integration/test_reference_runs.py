"""The reference runs kept beside the book load as run folders and draw images, and
scripts/snapshot_reference.py makes such a folder from a run of either framework."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "book" / "reference"
RUNS = sorted(p for p in REFERENCE.iterdir() if (p / "config.json").is_file())
GENERATOR_FILE = {"torch": "generator.pt", "keras": "checkpoint.keras.npz"}
MAX_BYTES = 10 * 2**20


def _snapshot_module():
    spec = importlib.util.spec_from_file_location("snapshot_reference",
                                                  ROOT / "scripts" / "snapshot_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _framework(run: Path) -> str:
    return json.loads((run / "config.json").read_text())["framework"]


def _load_and_sample(run: Path, n: int = 16):
    fw = _framework(run)
    if fw == "torch":
        pytest.importorskip("torch")
    else:
        pytest.importorskip("keras")
    T = importlib.import_module(f"dcgan_lab.{fw}.backend")
    G = T.load_generator(run)
    return G, T.sample(G, n, seed=0)


def _stored_float_dtypes(run: Path) -> set[str]:
    """The dtypes of the generator's floating-point weights as stored on disk."""
    path = run / GENERATOR_FILE[_framework(run)]
    if path.suffix == ".pt":
        torch = pytest.importorskip("torch")
        weights = torch.load(path, map_location="cpu", weights_only=True)
        return {str(v.dtype) for v in weights.values() if v.is_floating_point()}
    with np.load(path, allow_pickle=False) as z:
        return {str(z[k].dtype) for k in z.files if k.startswith("generator/")
                and z[k].dtype.kind == "f"}


def test_both_reference_runs_are_kept() -> None:
    names = {p.name for p in RUNS}
    assert {"dcgan64-torch", "keras-faces64-keras"} <= names
    total = sum(f.stat().st_size for f in REFERENCE.rglob("*") if f.is_file())
    # 25 MiB for the two reference runs, plus chapter 7's probe run (its G and D, 12.6 MiB)
    assert total <= 36 * 2**20, f"book/reference holds {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_reference_run_samples_and_documents_itself(run: Path) -> None:
    gen = run / GENERATOR_FILE[_framework(run)]
    assert gen.stat().st_size <= MAX_BYTES  # float16, 10 MB at most
    assert _stored_float_dtypes(run) in ({"torch.float16"}, {"float16"})
    _, images = _load_and_sample(run)
    assert images.shape == (16, 64, 64, 3) and images.dtype == np.uint8
    assert images.std() > 20  # pictures, not a constant
    for name in ("history.csv", "training.gif", "evaluate.json", "PROVENANCE.md"):
        assert (run / name).is_file(), name
    scores = json.loads((run / "evaluate.json").read_text())
    steps = [int(ln.split(",")[0]) for ln in (run / "history.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, scores["step"] + 1))  # one row per step up to the snapshot's
    assert scores["real_floor"] < scores["fid"]  # a generator does not beat real photos
    text = (run / "PROVENANCE.md").read_text()
    for field in ("Command:", "Steps:", "Wall time:", "Machine:", "Score:", "evaluate",
                  f"{scores['fid']:.1f}", f"{scores['real_floor']:.1f}", f"step {scores['step']:,}"):
        assert field in text, field
    grids = sorted((run / "samples").glob("step_*.png"))
    assert grids and int(grids[-1].stem.split("_")[1]) == scores["step"]


@pytest.mark.parametrize("framework,recipe", [("torch", "dcgan64"), ("keras", "keras-faces64")])
def test_snapshot_script_on_a_two_step_run(cli, tmp_path, framework, recipe) -> None:
    pytest.importorskip("torch" if framework == "torch" else "keras")
    run = tmp_path / "run"
    r = cli("train", recipe, "--framework", framework, "--profile", "smoke", "--steps", 2,
             "--sample-every", 1, "--checkpoint-every", 1, "--out", run, "--no-progress")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "snap"
    scores = _snapshot_module().snapshot(run, out, n=24, started="2026-12-03 08:00 UTC")
    assert scores["step"] == 2 and scores["n"] == 24 and scores["real_floor"] > 0
    names = {p.name for p in out.iterdir()}
    assert {GENERATOR_FILE[framework], "config.json", "history.csv", "samples", "training.gif",
            "evaluate.json", "PROVENANCE.md"} <= names
    assert "checkpoint.pt" not in names  # the generator only: no D, no optimiser
    assert _stored_float_dtypes(out) in ({"torch.float16"}, {"float16"})
    _, images = _load_and_sample(out, 4)
    assert images.shape == (4, 64, 64, 3)
    # the float16 copy draws (nearly) the same pictures as the run's own generator
    T = importlib.import_module(f"dcgan_lab.{framework}.backend")
    full = T.sample(T.load_generator(run), 4, seed=0).astype(int)
    assert np.abs(full - images.astype(int)).mean() < 2.0
    text = (out / "PROVENANCE.md").read_text()
    assert "started 2026-12-03 08:00 UTC" in text and f"train {recipe}" in text
    assert "Machine: " in text and "cores" in text
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["step_000001.png",
                                                                       "step_000002.png"]


def test_snapshot_script_refuses_its_own_run_folder(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"recipe": "dcgan64", "framework": "torch"}))
    with pytest.raises(SystemExit, match="run folder itself"):
        _snapshot_module().snapshot(tmp_path, tmp_path)
