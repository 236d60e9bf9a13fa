"""The reference runs kept beside the book load as run folders and draw images."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

REFERENCE = Path(__file__).resolve().parents[1] / "book" / "reference"
RUNS = sorted(p for p in REFERENCE.iterdir() if (p / "config.json").is_file())


def test_there_is_a_reference_run() -> None:
    assert any(p.name == "dcgan64-torch" for p in RUNS)


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_reference_run_samples_and_documents_itself(run: Path) -> None:
    T = importlib.import_module("dcgan_lab.torch.train")
    assert (run / "generator.pt").stat().st_size <= 10 * 2**20  # float16, 10 MB at most
    G = T.load_generator(run)
    images = T.sample(G, 16, seed=0)
    assert images.shape == (16, 64, 64, 3) and images.dtype == np.uint8
    assert images.std() > 20  # pictures, not a constant
    text = (run / "PROVENANCE.md").read_text()
    assert "Command" in text and "evaluate" in text
    assert len(list((run / "samples").glob("step_*.png"))) >= 3
