"""Seeding, framework-free: Python and NumPy here, PyTorch and TensorFlow only if already imported.

``seed_everything(0)`` never imports a framework: it seeds the ones the caller has imported, so
``import dcgan_lab.torch`` still never pulls in TensorFlow (and the other way round).

The trainers do not depend on these global seeds for data order, noise or labels (those come from
the stateless streams in :mod:`dcgan_lab.training`); the framework seed decides the initial weights
and dropout masks.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_python(seed: int) -> None:
    """Seed Python's ``random`` and NumPy's legacy global generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def seed_torch(seed: int, deterministic: bool = False) -> None:
    """``torch.manual_seed`` (CPU and every CUDA device); optionally deterministic algorithms."""
    import torch

    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def seed_tensorflow(seed: int, deterministic: bool = False) -> None:
    """``keras.utils.set_random_seed`` (Python, NumPy and TensorFlow); optionally deterministic ops."""
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def seed_everything(seed: int, deterministic: bool = False) -> list[str]:
    """Seed Python, NumPy and every framework that is already imported; return what was seeded."""
    seed_python(seed)
    done = ["python", "numpy"]
    if "torch" in sys.modules:
        seed_torch(seed, deterministic)
        done.append("torch")
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        seed_tensorflow(seed, deterministic)
        done.append("tensorflow")
    return done
