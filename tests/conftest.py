"""Shared set-up and fixtures of every test (``tests/unit``, ``tests/integration``, ``tests/book``).

- ``cli``: runs ``dcgan-lab ARGS`` (``python -m dcgan_lab.cli``) in a subprocess at the smoke
  profile on one thread and returns the ``CompletedProcess`` (text stdout/stderr);
- ``tiny_run``: a run folder of two smoke steps of torch-mnist (batch 8), made once per session
  with that command line;
- ``mnist``: the first 256 MNIST training images (uint8 NHWC), loaded once per session.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("DCGAN_LAB_PROFILE", "smoke")
ROOT = Path(__file__).resolve().parents[1]
_shared = ROOT.parent / "shared" / "data"
if "DCGAN_LAB_DATA" not in os.environ and _shared.is_dir():
    os.environ["DCGAN_LAB_DATA"] = str(_shared)
# Child processes (kill -9 tests, torchrun, CLI) import this checkout's dcgan_lab, not whatever
# copy the virtual environment has installed (an editable install may point at another tree).
_root = str(ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _root]])

#: the environment of ``cli``: the smoke profile, one thread, unbuffered output
CLI_ENV = {**os.environ, "DCGAN_LAB_PROFILE": "smoke", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}


def run_cli(*args, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m dcgan_lab.cli ARGS`` in a subprocess (``env``: default :data:`CLI_ENV`)."""
    return subprocess.run([sys.executable, "-m", "dcgan_lab.cli", *map(str, args)],
                          capture_output=True, text=True, env=CLI_ENV if env is None else env,
                          timeout=timeout)


@pytest.fixture(scope="session")
def cli():
    """:func:`run_cli`: ``cli("train", "dense-mnist", "--steps", 3, ...)``."""
    return run_cli


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Two smoke steps of torch-mnist (batch 8), trained by the command line."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    r = run_cli("train", "torch-mnist", "--framework", "torch", "--profile", "smoke", "--out",
                out, "--steps", "2", "--batch-size", "8", "--no-progress", timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="session")
def mnist():
    """The first 256 MNIST training images, uint8 NHWC."""
    import numpy as np

    from dcgan_lab import data

    x, _ = data.load("mnist", "train", verbose=False)
    return np.ascontiguousarray(x[:256])
