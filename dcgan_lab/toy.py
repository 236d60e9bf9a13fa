"""Toy 2-D GANs, framework-free (NumPy only): the mixtures, their measures, and the statistics.

The two mixtures are the standard synthetic tests for mode collapse (Metz et al. 2016, "Unrolled
Generative Adversarial Networks"; Srivastava et al. 2017, "VEEGAN"):

* ``"ring"``: 8 equally weighted Gaussians with means on a circle of radius 2, std 0.02;
* ``"grid"``: 25 equally weighted Gaussians with means at ``(i, j)`` for ``i, j`` in
  ``{-4, -2, 0, 2, 4}``, std 0.05.

The measures, after VEEGAN's:

* a generated point is **high quality** when it lies within ``n_std = 3`` standard deviations
  (Euclidean distance) of its nearest mode; :func:`high_quality_share` is the share of such points
  (a perfect generator scores ``1 - exp(-9 / 2) = 0.989`` in 2-D, the mass of a 2-D Gaussian within
  three standard deviations);
* this package's rule for **modes covered** (:func:`modes_covered`): a mode counts as covered when
  at least ``min_fraction = 0.2`` of the high-quality points a perfect generator would give it,
  ``0.2 * n / K`` for ``n`` points and ``K`` modes, land within three standard deviations of it
  (with the default ``n = 2500``: 62.5 points for the ring, 20 for the grid). A perfect generator
  covers every mode (the threshold lies more than eight binomial standard deviations below the
  expected count); a generator that drops a handful of stray points near a mode does not cover it.

The statistics compare two groups of per-seed results (e.g. modes covered by 10 seeds of a ganhack
against 10 seeds of the baseline) without SciPy:

* :func:`rank_test`: the two-sided Mann-Whitney U (Wilcoxon rank-sum) test as an exact
  permutation test: U is computed with mid-ranks for ties, and the p-value is the share of all
  ``C(n_a + n_b, n_a)`` splits of the pooled values whose U lies at least as far from its mean
  ``n_a n_b / 2`` as the observed one. Exact, ties included; above ``max_exact`` splits it samples
  ``n_resamples`` random splits (seeded) and reports ``(1 + hits) / (1 + n_resamples)``.
* :func:`bootstrap_ci`: the percentile bootstrap interval of ``mean(a) - mean(b)``, resampling each
  group with replacement (seeded).

:func:`compare` returns both, and :meth:`Comparison.verdict` the sentence a chapter glues.

Training lives in :mod:`dcgan_lab.torch.toy` and :mod:`dcgan_lab.keras.toy` (the same names in
both); what they share without a framework is here: :class:`ToyConfig` (the options, validated),
:func:`init_weights` (the same starting weights for both), :func:`step_stream` (the same real
points, noise and D targets for both, step by step) and :class:`ToyRun` (what a run returns).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIXTURES = ("ring", "grid")
LOSSES = ("non_saturating", "minimax")   # G's two losses in the BCE game (chapter 1)
CRITIC_LOSSES = ("wgan-gp", "hinge")     # D is a critic: an unbounded score, no sigmoid in its loss
ALL_LOSSES = LOSSES + CRITIC_LOSSES      # what ToyConfig.loss accepts
UPDATES = ("alternating", "simultaneous")
D_ACTIVATIONS = ("leaky_relu", "relu")
D_OPTIMIZERS = ("adam", "sgd")
N_STD = 3.0          # a point within 3 std of its nearest mode is high quality
MIN_FRACTION = 0.2   # a mode is covered at 0.2 x the high-quality points a perfect G puts there
N_EVAL = 2500        # points scored per run (VEEGAN scores 2,500 samples)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: choose one of {', '.join(map(repr, choices))}")
    return value


# --------------------------------------------------------------------------------------------
# the mixtures

@dataclass(frozen=True)
class Mixture:
    """An equally weighted mixture of isotropic 2-D Gaussians: ``means`` (K, 2) and one ``std``."""

    name: str
    means: np.ndarray
    std: float
    extent: float  # the square [-extent, extent]^2 that the figures draw

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def sample(self, n: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """``n`` points (float32, shape (n, 2)); the same ``seed`` gives the same points."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        comp = rng.integers(self.n_modes, size=n)
        noise = rng.standard_normal((n, 2))
        return (self.means[comp] + self.std * noise).astype(np.float32)


def mixture(name: str) -> Mixture:
    """The mixture ``"ring"`` (8 modes) or ``"grid"`` (25 modes); else a ``ValueError`` naming both."""
    if isinstance(name, Mixture):
        return name
    _choice("mixture", name, MIXTURES)
    if name == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        means = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return Mixture("ring", means, 0.02, 3.0)
    ticks = np.arange(-4.0, 4.1, 2.0)
    means = np.array(list(itertools.product(ticks, ticks)))
    return Mixture("grid", means, 0.05, 6.0)


def sample(name: str | Mixture, n: int, seed: int | None = 0) -> np.ndarray:
    """``n`` points of the mixture ``name``, reproducibly from ``seed``."""
    return mixture(name).sample(n, seed)


# --------------------------------------------------------------------------------------------
# the measures

def _points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {p.shape}")
    return p


def nearest_mode(points: np.ndarray, mix: str | Mixture) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the index of its nearest mode and the distance to it."""
    m = mixture(mix)
    p = _points(points)
    d = np.linalg.norm(p[:, None, :] - m.means[None, :, :], axis=2)
    idx = d.argmin(axis=1)
    return idx, d[np.arange(len(p)), idx]


def high_quality(points: np.ndarray, mix: str | Mixture, n_std: float = N_STD) -> np.ndarray:
    """Boolean mask: the point lies within ``n_std`` standard deviations of its nearest mode."""
    _, dist = nearest_mode(points, mix)
    return dist <= n_std * mixture(mix).std


def high_quality_share(points: np.ndarray, mix: str | Mixture, n_std: float = N_STD) -> float:
    """The share of points within ``n_std`` standard deviations of their nearest mode."""
    mask = high_quality(points, mix, n_std)
    return float(mask.mean()) if len(mask) else 0.0


def mode_counts(points: np.ndarray, mix: str | Mixture, n_std: float = N_STD) -> np.ndarray:
    """How many high-quality points each mode received (an array of K counts)."""
    m = mixture(mix)
    idx, dist = nearest_mode(points, m)
    return np.bincount(idx[dist <= n_std * m.std], minlength=m.n_modes)


def covered(points: np.ndarray, mix: str | Mixture, min_fraction: float = MIN_FRACTION,
            n_std: float = N_STD) -> np.ndarray:
    """Boolean per mode: it received at least ``min_fraction * n / K`` high-quality points."""
    m = mixture(mix)
    need = min_fraction * len(_points(points)) / m.n_modes
    return mode_counts(points, m, n_std) >= max(need, 1.0)


def modes_covered(points: np.ndarray, mix: str | Mixture, min_fraction: float = MIN_FRACTION,
                  n_std: float = N_STD) -> int:
    """The number of modes covered (see the module docstring for the rule)."""
    return int(covered(points, mix, min_fraction, n_std).sum())


def summarize(points: np.ndarray, mix: str | Mixture) -> dict[str, float]:
    """The per-run scores: ``modes_covered``, ``n_modes``, ``high_quality`` (share), ``n``."""
    m = mixture(mix)
    return {"modes_covered": modes_covered(points, m), "n_modes": m.n_modes,
            "high_quality": high_quality_share(points, m), "n": len(points)}


def per_seed(runs: list[ToyRun]) -> dict[str, np.ndarray]:
    """The final scores of several runs as arrays, one entry per run (seed)."""
    rows = [r.summary() for r in runs]
    return {"seed": np.array([r.config.seed for r in runs]),
            "modes_covered": np.array([s["modes_covered"] for s in rows], dtype=float),
            "high_quality": np.array([s["high_quality"] for s in rows], dtype=float)}


# --------------------------------------------------------------------------------------------
# statistics: a rank test and a bootstrap interval, NumPy only

def _midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_v = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1   # mid-rank of a tie block, ranks from 1
        i = j + 1
    return ranks


def rank_test(a, b, max_exact: int = 300_000, n_resamples: int = 100_000,
              seed: int = 0) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test by permutation: returns ``(U, p)``.

    ``U`` is the count of pairs with ``a > b`` plus half the ties (from mid-ranks). ``p`` is the
    share of the ``C(n_a + n_b, n_a)`` ways of splitting the pooled values into groups of ``n_a``
    and ``n_b`` whose U is at least as far from ``n_a n_b / 2`` as the observed one: exact when
    there are at most ``max_exact`` splits (10 against 10 seeds: 184,756), else estimated from
    ``n_resamples`` random splits. Two identical groups give ``p = 1``.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"rank_test needs two non-empty groups, got {len(a)} and {len(b)} values")
    na, nb = len(a), len(b)
    ranks = _midranks(np.concatenate([a, b]))
    offset, centre = na * (na + 1) / 2, na * nb / 2
    u_obs = ranks[:na].sum() - offset
    n = na + nb
    if math.comb(n, na) <= max_exact:
        combos = np.array(list(itertools.combinations(range(n), na)), dtype=np.int64)
        u = ranks[combos].sum(axis=1) - offset
        p = float(np.mean(np.abs(u - centre) >= abs(u_obs - centre) - 1e-9))
    else:
        rng = np.random.default_rng(seed)
        keys = rng.random((n_resamples, n)).argsort(axis=1)[:, :na]
        u = ranks[keys].sum(axis=1) - offset
        hits = int(np.sum(np.abs(u - centre) >= abs(u_obs - centre) - 1e-9))
        p = (1 + hits) / (1 + n_resamples)
    return float(u_obs), min(1.0, p)


def bootstrap_ci(a, b, level: float = 0.95, n_boot: int = 10_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), low, high)``: the percentile bootstrap interval at ``level``."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"bootstrap_ci needs two non-empty groups, got {len(a)} and {len(b)}")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: must lie between 0 and 1")
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(len(a), size=(n_boot, len(a)))].mean(axis=1)
    mb = b[rng.integers(len(b), size=(n_boot, len(b)))].mean(axis=1)
    lo, hi = np.quantile(ma - mb, [(1 - level) / 2, (1 + level) / 2])
    return float(a.mean() - b.mean()), float(lo), float(hi)


@dataclass(frozen=True)
class Comparison:
    """A variant's per-seed values against a baseline's: means, their difference, CI and p."""

    mean: float
    baseline_mean: float
    diff: float
    low: float
    high: float
    u: float
    p: float
    n: int
    n_baseline: int
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.p < self.alpha

    def verdict(self, what: str = "modes covered", more: str = "more", fewer: str = "fewer",
                subject: str = "") -> str:
        """A sentence from the numbers: a difference only when the rank test's p < alpha.

        ``"<subject> had more <what> (...)"`` (``subject`` defaults to "it"), or
        ``"for <subject>, no difference in <what> detected (...)"``; the parenthesis gives both
        means, the difference with its 95% bootstrap interval, the p-value and the seeds.
        """
        seeds = (f"{self.n} seeds" if self.n == self.n_baseline
                 else f"{self.n} and {self.n_baseline} seeds")
        stats = (f"{self.mean:.3g} against {self.baseline_mean:.3g}; difference {self.diff:+.3g}, "
                 f"95% bootstrap interval [{self.low:+.3g}, {self.high:+.3g}]; "
                 f"rank test p = {self.p:.2g}, {seeds}")
        if self.significant:
            return f"{subject or 'it'} had {more if self.diff > 0 else fewer} {what} ({stats})"
        lead = f"for {subject}, no" if subject else "no"
        return f"{lead} difference in {what} detected ({stats})"


def compare(values, baseline, alpha: float = 0.05, seed: int = 0) -> Comparison:
    """Compare per-seed ``values`` with ``baseline``: :func:`rank_test` and :func:`bootstrap_ci`."""
    diff, lo, hi = bootstrap_ci(values, baseline, seed=seed)
    u, p = rank_test(values, baseline, seed=seed)
    return Comparison(float(np.mean(values)), float(np.mean(baseline)), diff, lo, hi, u, p,
                      len(np.ravel(values)), len(np.ravel(baseline)), alpha)


# --------------------------------------------------------------------------------------------
# what the two frameworks' trainers share

@dataclass(frozen=True)
class ToyConfig:
    """Everything a toy run depends on. Build it with :func:`make_config` (which validates)."""

    mixture: str = "ring"
    steps: int = 2000
    seed: int = 0
    loss: str = "non_saturating"      # "non_saturating" -log D(G(z)), "minimax", or a critic
    #                                   objective: "wgan-gp" (Gulrajani et al. 2017) or "hinge"
    batch_size: int = 128
    z_dim: int = 4
    hidden: int = 64                  # two hidden layers of this width in G and in D
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1                  # D updates per G update
    d_optimizer: str = "adam"         # "adam" or plain "sgd" (ganhacks 9), at lr_d
    g_optimizer: str = "adam"         # "adam" or plain "sgd", at lr_g (the twin tests use sgd)
    label_smoothing: float = 0.0      # one-sided: real target 1 - label_smoothing
    soft_labels: bool = False         # real targets U(0.7, 1.0), fake U(0.0, 0.3)
    flip_prob: float = 0.0            # each D target swapped (t -> 1 - t) with this probability
    d_activation: str = "leaky_relu"  # LeakyReLU(0.2) or ReLU in D
    g_dropout: float = 0.0            # dropout after each hidden layer of G (training only)
    gp_weight: float = 10.0           # lambda of WGAN-GP's gradient penalty (loss "wgan-gp")
    update: str = "alternating"       # D then G on the updated D, or "simultaneous" (one forward)
    snapshot_steps: tuple[int, ...] = ()
    n_eval: int = N_EVAL
    surface_size: int = 64

    def replace(self, **changes) -> ToyConfig:
        return make_config(**{**dataclasses.asdict(self), **changes})


def make_config(mixture: str = "ring", steps: int = 2000, seed: int = 0,
                loss: str = "non_saturating", **options) -> ToyConfig:
    """A validated :class:`ToyConfig`; a bad name or value is a ``ValueError`` that names it."""
    names = {f.name for f in dataclasses.fields(ToyConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(sorted(names - {'mixture', 'steps', 'seed', 'loss'}))}")
    _choice("mixture", mixture, MIXTURES)
    _choice("loss", loss, ALL_LOSSES)
    _choice("d_activation", options.get("d_activation", "leaky_relu"), D_ACTIVATIONS)
    _choice("d_optimizer", options.get("d_optimizer", "adam"), D_OPTIMIZERS)
    _choice("g_optimizer", options.get("g_optimizer", "adam"), D_OPTIMIZERS)
    _choice("update", options.get("update", "alternating"), UPDATES)
    if options.get("update") == "simultaneous" and options.get("d_steps", 1) != 1:
        raise ValueError(f"d_steps={options['d_steps']!r}: update='simultaneous' makes one D and "
                         "one G update from one forward pass; use d_steps=1")
    if not float(options.get("gp_weight", 10.0)) >= 0:
        raise ValueError(f"gp_weight={options['gp_weight']!r}: must be >= 0")
    for name, value in (("steps", steps), *((k, options[k]) for k in
                        ("batch_size", "z_dim", "hidden", "d_steps", "n_eval", "surface_size")
                        if k in options)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r}: must be a positive integer")
    for name in ("label_smoothing", "flip_prob", "g_dropout"):
        if not 0.0 <= float(options.get(name, 0.0)) < 1.0:
            raise ValueError(f"{name}={options[name]!r}: must lie in [0, 1)")
    for name in ("lr_g", "lr_d"):
        if name in options and not float(options[name]) > 0:
            raise ValueError(f"{name}={options[name]!r}: must be positive")
    snaps = tuple(sorted({int(s) for s in options.pop("snapshot_steps", ()) or ()} | {steps}))
    if snaps[0] < 0 or snaps[-1] > steps:
        raise ValueError(f"snapshot_steps={snaps!r}: must lie in [0, steps={steps}]")
    return ToyConfig(mixture=mixture, steps=int(steps), seed=int(seed), loss=loss,
                     snapshot_steps=snaps, **options)


def init_weights(cfg: ToyConfig) -> dict[str, list[np.ndarray]]:
    """Glorot-uniform kernels (in, out) and zero biases for G and D, from ``cfg.seed``.

    Both frameworks start from these arrays (PyTorch transposes the kernels to (out, in)), so
    one seed gives one starting point whichever framework trains it.
    """
    rng = np.random.default_rng([cfg.seed, 1])
    h = cfg.hidden

    def dense(n_in, n_out):
        limit = math.sqrt(6.0 / (n_in + n_out))
        return [rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32),
                np.zeros(n_out, np.float32)]

    g = dense(cfg.z_dim, h) + dense(h, h) + dense(h, 2)
    d = dense(2, h) + dense(h, h) + dense(h, 1)
    return {"G": g, "D": d}


class StepStream:
    """The random inputs of every step, the same for both frameworks, drawn from ``cfg.seed``.

    Each quantity has its own generator, so ``take(n)`` gives the same numbers however the
    steps are split into chunks. ``take(n)`` returns float32 arrays: ``real`` (n, d_steps, B, 2),
    ``z_d`` (n, d_steps, B, z), ``t_real`` and ``t_fake`` (n, d_steps, B, 1), ``z_g`` (n, B, z),
    and ``eps`` (n, d_steps, B, 1): WGAN-GP's interpolation weights, U(0, 1) (drawn from their own
    generator, so the other inputs are those of any other loss).
    """

    def __init__(self, cfg: ToyConfig):
        self.cfg, self.mix = cfg, mixture(cfg.mixture)
        self.rngs = {k: np.random.default_rng([cfg.seed, 2, i]) for i, k in enumerate(
            ("comp", "noise", "z_d", "z_g", "t_real", "t_fake", "flip_real", "flip_fake",
             "eps"))}

    def _targets(self, shape, real: bool) -> np.ndarray:
        c = self.cfg
        key = "t_real" if real else "t_fake"
        if c.soft_labels:
            lo, hi = (0.7, 1.0) if real else (0.0, 0.3)
            t = self.rngs[key].uniform(lo, hi, shape)
        else:
            t = np.full(shape, (1.0 - c.label_smoothing) if real else 0.0)
        if c.flip_prob > 0:
            flip = self.rngs["flip_real" if real else "flip_fake"].random(shape) < c.flip_prob
            t = np.where(flip, 1.0 - t, t)
        return t.astype(np.float32)

    def take(self, n: int) -> dict[str, np.ndarray]:
        c, m = self.cfg, self.mix
        shape = (n, c.d_steps, c.batch_size)
        comp = self.rngs["comp"].integers(m.n_modes, size=shape)
        real = m.means[comp] + m.std * self.rngs["noise"].standard_normal((*shape, 2))
        return {"real": real.astype(np.float32),
                "z_d": self.rngs["z_d"].standard_normal((*shape, c.z_dim)).astype(np.float32),
                "t_real": self._targets((*shape, 1), True),
                "t_fake": self._targets((*shape, 1), False),
                "z_g": self.rngs["z_g"].standard_normal(
                    (n, c.batch_size, c.z_dim)).astype(np.float32),
                "eps": self.rngs["eps"].random((*shape, 1)).astype(np.float32)}


def step_stream(cfg: ToyConfig) -> StepStream:
    """The inputs of ``cfg``'s steps (see :class:`StepStream`)."""
    return StepStream(cfg)


def eval_noise(cfg: ToyConfig) -> np.ndarray:
    """The fixed z (``n_eval`` x ``z_dim``) whose images every snapshot draws and scores."""
    return np.random.default_rng([cfg.seed, 3]).standard_normal(
        (cfg.n_eval, cfg.z_dim)).astype(np.float32)


def surface_points(cfg: ToyConfig) -> np.ndarray:
    """The ``surface_size**2`` grid points (row-major, y then x) where D's surface is evaluated."""
    e, n = mixture(cfg.mixture).extent, cfg.surface_size
    xs = np.linspace(-e, e, n, dtype=np.float32)
    gx, gy = np.meshgrid(xs, xs)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


@dataclass
class ToyRun:
    """What ``train_toy`` returns, in either framework.

    ``points[i]`` are G's images of :func:`eval_noise` at ``steps[i]`` (n_eval x 2) and
    ``surfaces[i]`` D's probability of "real" on the grid of :func:`surface_points`
    (surface_size x surface_size, row 0 at y = -extent); ``losses`` is (steps, 3): at every step
    D's loss (the mean over its ``d_steps`` updates), G's loss, and the mean of D(G(z)) on G's
    batch; ``seconds`` the wall time per run.
    """

    config: ToyConfig
    framework: str
    steps: list[int]
    points: np.ndarray
    surfaces: np.ndarray
    losses: np.ndarray
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def final_points(self) -> np.ndarray:
        return self.points[-1]

    def summary(self, i: int = -1) -> dict[str, float]:
        """:func:`summarize` of the snapshot ``i`` (default: the last)."""
        return summarize(self.points[i], self.config.mixture)

    def starved_share(self, threshold: float = 0.01) -> float:
        """The share of steps at which D(G(z)) averaged below ``threshold`` on G's batch."""
        return float(np.mean(self.losses[:, 2] < threshold))

    def hops(self) -> int:
        """Modes that went from covered to uncovered between consecutive snapshots, summed."""
        cov = self.coverage_over_time()
        return int(np.sum(cov[:-1] & ~cov[1:]))

    def coverage_over_time(self) -> np.ndarray:
        """(snapshots, K) booleans: which modes were covered at each snapshot."""
        return np.stack([covered(p, self.config.mixture) for p in self.points])


def ensemble_runs(cfgs: list[ToyConfig], framework: str, points: list[np.ndarray],
                  surfaces: list[np.ndarray], losses: np.ndarray, seconds: float,
                  models: dict[str, Any]) -> list[ToyRun]:
    """One :class:`ToyRun` per seed of an ensemble: ``points``/``surfaces`` hold one array per
    snapshot with the seeds first (S x ...), ``losses`` is (steps, S, 3); both twins' ``train_toys``
    end here."""
    pts, surfs = np.stack(points, 1), np.stack(surfaces, 1)
    steps = list(cfgs[0].snapshot_steps)
    return [ToyRun(c, framework, steps, pts[j], surfs[j], losses[:, j], seconds,
                   {**models, "model": j}) for j, c in enumerate(cfgs)]
