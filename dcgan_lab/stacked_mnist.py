"""Stacked MNIST: 1000 modes for measuring mode collapse (Metz et al. 2017; VEEGAN; PacGAN).

Each 28x28x3 image stacks three random MNIST digits as its R, G and B channels, so there are
10^3 = 1000 modes; the mode of an image is ``100 * red + 10 * green + blue``. A generator trained
on it is scored by classifying each channel with the shipped MNIST classifier and counting how
many of the 1000 modes it produces (:func:`coverage`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dcgan_lab.metrics import ModeCoverage, mode_coverage

if TYPE_CHECKING:
    from dcgan_lab.classifier import Classifier

N_MODES = 1000


def make(n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` stacked-MNIST images (uint8, (n, 28, 28, 3)) and their modes (int64, 0..999).

    Digits are drawn uniformly at random (with replacement) from the MNIST ``split``.
    """
    from dcgan_lab.classifier import load_real

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    x, y = load_real("mnist", split)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n, 3))
    images = np.ascontiguousarray(x[idx, ..., 0].transpose(0, 2, 3, 1))  # (n, 28, 28, 3)
    digits = y[idx].astype(np.int64)
    return images, digits @ np.array([100, 10, 1])


def _channels_last(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1:] == (28, 28, 3):
        return x
    if x.ndim == 4 and x.shape[1:] == (3, 28, 28):
        return x.transpose(0, 2, 3, 1)
    raise ValueError(f"stacked-MNIST images must be (N, 28, 28, 3) NHWC or (N, 3, 28, 28) NCHW, "
                     f"got shape {x.shape}")


def modes(images: np.ndarray, classifier: Classifier | None = None) -> np.ndarray:
    """Mode (0..999) of each stacked image: every channel classified by the MNIST classifier.

    ``images``: uint8 or float in [-1, 1], NHWC or NCHW. ``classifier``: a
    ``dcgan_lab.classifier.Classifier`` for MNIST (default: the shipped one).
    """
    from dcgan_lab import classifier as clf_mod

    clf = classifier if classifier is not None else clf_mod.get("mnist")
    x = _channels_last(images)
    n = len(x)
    # (N, 28, 28, 3) -> (3N, 28, 28, 1): channel-major so a reshape recovers (3, N)
    per_channel = np.ascontiguousarray(x.transpose(3, 0, 1, 2))[..., None].reshape(3 * n, 28, 28, 1)
    digits = clf.predict(per_channel).reshape(3, n)
    return (100 * digits[0] + 10 * digits[1] + digits[2]).astype(np.int64)


def coverage(images: np.ndarray, classifier: Classifier | None = None,
             min_count: int = 1) -> ModeCoverage:
    """How many of the 1000 stacked-MNIST modes ``images`` cover, and KL to uniform."""
    return mode_coverage(modes(images, classifier), N_MODES, min_count=min_count)
