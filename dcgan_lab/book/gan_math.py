"""The mathematics of the original GAN game, in numpy (chapter 1).

Goodfellow et al. (2014) pit a discriminator ``D`` against a generator ``G`` in

    min_G max_D V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z ~ p_z}[log(1 - D(G(z)))].

For a fixed ``G`` the best discriminator is ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``, and
``V(D*, G) = -log 4 + 2 JSD(p_data || p_g)``, so the game's equilibrium is ``p_g = p_data`` with
``D = 1/2`` everywhere and ``V = -log 4``. The functions here evaluate these quantities on 1-D
grids (densities sampled at points ``x``), on batches of D's outputs (the losses the trainers
minimise), and give the two generator losses' gradients with respect to D's logit. Framework-free:
neither torch nor TensorFlow is imported.
"""

from __future__ import annotations

import math

import numpy as np

from ..scoring.metrics import softmax

__all__ = [
    "EQUILIBRIUM_VALUE",
    "confident_share",
    "d_loss",
    "empirical_value",
    "equilibrium_losses",
    "g_loss_logit_grads",
    "js_divergence",
    "normal_pdf",
    "optimal_discriminator",
    "permute_dense_inputs",
    "sigmoid",
    "value_function",
]

EQUILIBRIUM_VALUE = -math.log(4.0)
"""V(D, G) at the Nash equilibrium: p_g = p_data and D = 1/2 everywhere."""

CLIP = 1e-15
"""How close to 0 and 1 :func:`value_function` lets D come (its logs stay finite)."""


def _grid(x: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x must be a 1-D grid of at least 2 points, got shape {x.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing (a grid such as np.linspace(-6, 6, 2001))")
    out = [x]
    for a in arrays:
        a = np.broadcast_to(np.asarray(a, dtype=np.float64), x.shape)
        out.append(a)
    return tuple(out)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _xlogy(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p * log(q) with the convention 0 * log(anything) = 0."""
    out = np.zeros(np.broadcast(p, q).shape)
    nz = np.broadcast_to(p, out.shape) != 0
    with np.errstate(divide="ignore"):
        out[nz] = np.broadcast_to(p, out.shape)[nz] * np.log(np.broadcast_to(q, out.shape)[nz])
    return out


def normal_pdf(x: np.ndarray, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    """The density of N(mean, std^2) at ``x``."""
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """D*(x) = p_data / (p_data + p_g); 1/2 where both densities are 0 (any value is optimal)."""
    p, q = np.asarray(p_data, dtype=np.float64), np.asarray(p_g, dtype=np.float64)
    if np.any(p < 0) or np.any(q < 0):
        raise ValueError("densities must be non-negative")
    total = p + q
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.5)


def value_function(d: np.ndarray | float, p_data: np.ndarray, p_g: np.ndarray,
                   x: np.ndarray) -> float:
    """V(D, G) = integral of p_data log D + p_g log(1 - D) over the grid ``x`` (trapezoid rule).

    ``d`` is D's output at ``x`` (an array, or one number for a constant D), in [0, 1]. Like the
    frameworks' BCE, the logs are clipped: D is kept in [CLIP, 1 - CLIP] (CLIP = 1e-15), so that
    a D* that rounds to exactly 1 in the far tails, where p_g is ~1e-50, stays finite.
    """
    x, d, p, q = _grid(x, d, p_data, p_g)
    if np.any(d < 0) or np.any(d > 1):
        raise ValueError("d must hold probabilities in [0, 1]")
    d = np.clip(d, CLIP, 1.0 - CLIP)
    return _trapezoid(_xlogy(p, d) + _xlogy(q, 1.0 - d), x)


def js_divergence(p: np.ndarray, q: np.ndarray, x: np.ndarray) -> float:
    """Jensen-Shannon divergence (nats) of two densities sampled on ``x``; between 0 and log 2."""
    x, p, q = _grid(x, p, q)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = _xlogy(p, np.where(m > 0, p / np.where(m > 0, m, 1.0), 1.0))
        kl_qm = _xlogy(q, np.where(m > 0, q / np.where(m > 0, m, 1.0), 1.0))
    return 0.5 * _trapezoid(kl_pm, x) + 0.5 * _trapezoid(kl_qm, x)


def _probs(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if np.any(a < 0) or np.any(a > 1) or np.any(np.isnan(a)):
        raise ValueError(f"{name} must hold D's probabilities in [0, 1] (apply a sigmoid to "
                         f"logits first)")
    return a


def empirical_value(d_real: np.ndarray, d_fake: np.ndarray) -> float:
    """The minibatch estimate of V: mean log D(x) over a real batch + mean log(1 - D(G(z)))."""
    r, f = _probs(d_real, "d_real"), _probs(d_fake, "d_fake")
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(r)) + np.mean(np.log1p(-f)))


def d_loss(d_real: np.ndarray, d_fake: np.ndarray) -> float:
    """D's loss: BCE(D(x), 1) + BCE(D(G(z)), 0) = -empirical_value; minimising it maximises V."""
    return -empirical_value(d_real, d_fake)


def equilibrium_losses() -> dict[str, float]:
    """The losses where D says 1/2 to everything: D's BCE sum 2 log 2 (= log 4), G's log 2."""
    return {"loss_d": math.log(4.0), "loss_g": math.log(2.0), "d_real": 0.5, "d_fake": 0.5}


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function, computed without overflow."""
    a = np.asarray(a, dtype=np.float64)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def g_loss_logit_grads(logits: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the two generator losses with respect to D's logit ``a`` (D = sigmoid(a)).

    ``"minimax"``: d/da log(1 - sigmoid(a)) = -D, which vanishes as D(G(z)) -> 0 (G is minimising
    it, so it descends along +D: a push of size D). ``"non_saturating"``: d/da [-log sigmoid(a)] =
    D - 1, of size 1 - D, close to 1 exactly when D rejects the fakes confidently.
    """
    d = sigmoid(logits)
    return {"d": d, "minimax": -d, "non_saturating": d - 1.0}


def confident_share(logits: np.ndarray, threshold: float = 0.9) -> float:
    """Share of rows whose top softmax probability exceeds ``threshold`` (e.g. classifier logits
    of generated digits: how many look like *some* digit with confidence)."""
    z = np.asarray(logits)
    if z.ndim != 2 or len(z) == 0:
        raise ValueError(f"logits must be (N, n_classes) with N > 0, got shape {z.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    return float(np.mean(softmax(z).max(axis=1) > threshold))


def permute_dense_inputs(weight: np.ndarray, perm: np.ndarray, layout: str = "torch") -> np.ndarray:
    """The weights of a dense layer that gives on ``x[..., perm]`` what ``weight`` gives on ``x``.

    ``layout="torch"``: a ``Linear`` weight of shape (out, in): returns ``weight[:, perm]``.
    ``layout="keras"``: a ``Dense`` kernel of shape (in, out): returns ``kernel[perm, :]``.
    Shuffling the input pixels with a fixed permutation is therefore invisible to a dense layer:
    the shuffled problem has the same solutions, up to this re-indexing of the weights.
    """
    w = np.asarray(weight)
    perm = np.asarray(perm)
    axis = {"torch": 1, "keras": 0}.get(layout)
    if axis is None:
        raise ValueError(f"layout must be 'torch' (out, in) or 'keras' (in, out), got {layout!r}")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D, got shape {w.shape}")
    n = w.shape[axis]
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(f"perm must be a permutation of 0..{n - 1} (the layer's {n} inputs), "
                         f"got shape {perm.shape}")
    return np.take(w, perm, axis=axis)
