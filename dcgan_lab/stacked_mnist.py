"""Stacked MNIST: 1000 modes for measuring mode collapse (Metz et al. 2017; VEEGAN; PacGAN).

Each 28x28x3 image stacks three random MNIST digits as its R, G and B channels, so there are
10^3 = 1000 modes; the mode of an image is ``100 * red + 10 * green + blue``. A generator trained
on it is scored by classifying each channel with the shipped MNIST classifier and counting how
many of the 1000 modes it produces (:func:`coverage`).

- Data: :func:`make` (images and their modes); :func:`modes` and :func:`coverage` count the modes
  of any images with a given classifier.
- Models: :func:`stacked_models` builds the 3-channel ``torch-mnist`` pair
  (``dcgan_lab.torch.build("torch-mnist", channels=3)``); :func:`train_stacked` trains it on
  arrays with the trainer's own :func:`dcgan_lab.torch.train_step`; :func:`stacked_evaluate`
  counts the modes of a generator's samples and the modes a uniform generator would cover.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .run.config import TrainOptions
from .scoring.evaluation import Callback, classify, sample
from .scoring.metrics import ModeCoverage, mode_coverage

if TYPE_CHECKING:
    from .scoring.classifier import Classifier

N_MODES = 1000


def make(n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` stacked-MNIST images (uint8, (n, 28, 28, 3)) and their modes (int64, 0..999).

    Digits are drawn uniformly at random (with replacement) from the MNIST ``split``.
    """
    from .scoring.classifier import load_real

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
    ``dcgan_lab.scoring.classifier.Classifier`` for MNIST (default: the shipped one).
    """
    from .scoring import classifier as clf_mod

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


def stacked_models(seed: int = 0, *, g_dropout: float = 0.0, g_activation: str | None = None,
                   d_activation: str | None = None) -> tuple[Any, Any]:
    """The ``torch-mnist`` pair with three image channels (28x28x3), for Stacked MNIST.

    ``dcgan_lab.torch.build("torch-mnist", channels=3)`` after ``torch.manual_seed(seed)``:
    everything but the image channels is the recipe's (DCGAN init included).
    """
    import torch

    from dcgan_lab.torch.models import build

    torch.manual_seed(seed)
    return build("torch-mnist", channels=3, g_dropout=g_dropout, g_activation=g_activation,
                 d_activation=d_activation)


def train_stacked(
    options: TrainOptions | None = None,
    *,
    data: np.ndarray,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    profile: str | None = None,
    device: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[Any, Any, Any]:
    """Train the 3-channel ``torch-mnist`` DCGAN on Stacked MNIST ``data``; return ``(G, D, history)``.

    ``data``: uint8 (N, 28, 28, 3) images, e.g. ``make(n)[0]``. Each step is
    :func:`dcgan_lab.torch.train_step` (the trainer's own step, with every option of ``options``);
    there is no run folder, checkpoint or sample grid. ``steps`` / ``batch_size`` (default: the
    options', else the ``torch-mnist`` budget of ``profile``) and ``seed`` replace the options'.
    """
    import torch

    from .run import config, loop
    from .run.history import History
    from .torch.step import pick_device, train_step

    opts = options or TrainOptions()
    opts = opts.replace(seed=seed, steps=steps or opts.steps, batch_size=batch_size or opts.batch_size)
    cfg = config.resolve("torch-mnist", "torch", opts, profile)
    if data.ndim != 4 or data.shape[1:] != (28, 28, 3) or data.dtype != np.uint8:
        raise ValueError(f"data must be uint8 (N, 28, 28, 3) stacked-MNIST images, got {data.dtype} "
                         f"{data.shape}")
    dev = pick_device(device)
    G, D = stacked_models(cfg.seed, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                          d_activation=cfg.d_activation)
    G, D = G.to(dev), D.to(dev)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    history = History()
    G.train()
    D.train()
    for step in range(1, cfg.steps + 1):
        t0 = time.perf_counter()
        m = train_step(step, G, D, opt_g, opt_d, data, cfg, dev)
        loop.check_finite(step, loss_d=m["loss_d"], loss_g=m["loss_g"])
        history.log(step=step, **m, seconds=time.perf_counter() - t0)
        for cb in callbacks:
            cb(step, G, D, history)
    return G.eval(), D.eval(), history


def stacked_evaluate(generator: Any, n: int = 1000, seed: int = 0) -> dict[str, float]:
    """Modes of Stacked MNIST covered by ``n`` samples of ``generator`` (or an image array).

    Each channel is classified by the shipped MNIST classifier
    (:func:`dcgan_lab.scoring.evaluation.classify`); the mode is ``100 * red + 10 * green + blue``.
    Returns ``modes_covered`` (of 1000), ``kl`` (nats, to uniform; at most log 1000 = 6.91),
    ``n`` and ``uniform_expected``: the modes a perfect uniform generator would cover with ``n``
    samples, 1000 (1 - (1 - 1/1000)^n).
    """
    images = generator if isinstance(generator, np.ndarray) else sample(generator, n, seed)
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1:] != (28, 28, 3):
        raise ValueError(f"stacked-MNIST images must be (N, 28, 28, 3), got {x.shape}")
    k = len(x)
    per_channel = np.ascontiguousarray(x.transpose(3, 0, 1, 2))[..., None].reshape(3 * k, 28, 28, 1)
    digits = classify(per_channel, "mnist")[1].argmax(axis=1).reshape(3, k)
    cov = mode_coverage(100 * digits[0] + 10 * digits[1] + digits[2], N_MODES, min_count=1)
    return {"modes_covered": float(cov.covered), "kl": cov.kl, "n": float(k),
            "uniform_expected": float(N_MODES * (1 - (1 - 1 / N_MODES) ** k))}
