"""dcgan_lab.stacked_mnist: the 3-channel models, their training and the mode count."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dcgan_lab import stacked_mnist  # noqa: E402
from dcgan_lab.run.config import TrainOptions  # noqa: E402


def test_stacked_models_train_and_count_modes():
    G, D = stacked_mnist.stacked_models(0)
    z = torch.zeros(2, 100)
    assert tuple(G(z).shape) == (2, 3, 28, 28) and tuple(D(G(z)).shape) == (2, 1)
    images, modes = stacked_mnist.make(300, seed=1)
    G, D, h = stacked_mnist.train_stacked(TrainOptions(), steps=2, batch_size=8, data=images)
    assert len(h) == 2 and np.isfinite(h["loss_d"]).all()
    fake = stacked_mnist.stacked_evaluate(G, n=64)
    assert 1 <= fake["modes_covered"] <= 64 and fake["n"] == 64
    real = stacked_mnist.stacked_evaluate(images)
    assert real["modes_covered"] >= 0.95 * len(set(modes.tolist()))
    assert real["uniform_expected"] == pytest.approx(1000 * (1 - 0.999 ** 300))
    const = stacked_mnist.stacked_evaluate(np.repeat(images[:1], 50, axis=0))
    assert const["modes_covered"] == 1 and const["kl"] == pytest.approx(math.log(1000))
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 3\)"):
        stacked_mnist.train_stacked(steps=1, data=images[..., :1])
