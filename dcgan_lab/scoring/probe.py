"""What D learned: the DCGAN paper's linear probe (Radford et al. 2015, section 5.1), and the
nearest-neighbour and z-walk measures of its section 6.

The paper's recipe: take every convolutional layer's output of a trained discriminator, max-pool
each to a 4x4 grid, flatten and concatenate them, and fit a linear classifier on the data set's
labels (the paper used an L2-SVM; here an L2-regularised multinomial logistic regression in
NumPy, :func:`fit_logistic`). Compare it with the same features of an untrained (randomly
initialised) D and with raw pixels: what D's training added is the gap between the first two.

- :func:`feature_size` (the length of the probe's feature vector), :func:`pixel_features`;
- :func:`fit_logistic` / :class:`LinearModel` (standardised features, L-BFGS in NumPy), and
  :func:`linear_probe`, which picks the regularisation on a validation split and reports the test
  accuracy and the number of labels used; :func:`label_subset` (a stratified, seeded subset);
- :func:`probe_run`: all three rows for a run folder (``dcgan-lab probe``);
- :func:`nearest` (nearest neighbours in a feature space) and :func:`walk_smoothness` (the
  largest step of a walk against its mean step) for the z-walk and memorisation checks.

Framework-free: the feature extraction itself is ``probe_features`` of :mod:`dcgan_lab.torch` and
:mod:`dcgan_lab.keras` (the same function in both), reached at call time through
:func:`dcgan_lab.frameworks.get`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import frameworks

__all__ = ["CLI_DESCRIPTION", "GRID", "REGULARISATION", "LinearModel", "ProbeResult",
           "feature_size", "fit_logistic", "label_subset", "linear_probe", "nearest",
           "pixel_features", "probe_run", "report_lines", "table_lines", "walk_smoothness"]

#: ``dcgan-lab probe --help``
CLI_DESCRIPTION = ("The DCGAN paper's linear probe (section 5.1): every conv layer's output of "
                   "the run's D max-pooled to 4x4 and concatenated, a linear classifier (L2 "
                   "logistic regression) fitted on the data set's training labels; test accuracy "
                   "beside the same for an untrained D and for raw pixels.")
GRID = 4  # every layer's output is max-pooled to GRID x GRID (the paper's 4x4)
#: The L2 strengths tried on the validation split (per training example, on standardised features).
REGULARISATION = (1e-3, 1e-2, 1e-1, 1.0)


def feature_size(channels: list[int] | tuple[int, ...]) -> int:
    """Length of the probe's feature vector for conv layers with these output channels."""
    return int(sum(channels)) * GRID * GRID


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Raw pixels as features: (N, H*W*C) float32 in [-1, 1], the baseline of the probe."""
    x = np.asarray(images)
    return (x.reshape(len(x), -1).astype(np.float32) / 127.5) - 1.0


# --------------------------------------------------------------------------------------------
# the linear classifier


def _lbfgs(fg: Callable[[np.ndarray], tuple[float, np.ndarray]], w: np.ndarray,
           iters: int = 100, memory: int = 10, tol: float = 1e-4) -> np.ndarray:
    """Minimise a smooth function (``fg(w) -> (value, gradient)``) with L-BFGS and a
    backtracking (Armijo) line search."""
    f, g = fg(w)
    ss: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for it in range(iters):
        q, alphas = g.copy(), []
        for s, y in zip(reversed(ss), reversed(ys), strict=True):
            a = (s @ q) / (y @ s)
            q -= a * y
            alphas.append(a)
        q *= (ss[-1] @ ys[-1]) / (ys[-1] @ ys[-1]) if ss else 1.0 / max(np.linalg.norm(g), 1.0)
        for (s, y), a in zip(zip(ss, ys, strict=True), reversed(alphas), strict=True):
            q += s * (a - (y @ q) / (y @ s))
        d = -q
        slope = g @ d
        if slope >= 0:  # not a descent direction: restart from the gradient
            ss, ys, d, slope = [], [], -g, -(g @ g)
        t = 1.0
        while True:
            w_new = w + t * d
            f_new, g_new = fg(w_new)
            if f_new <= f + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        s, y = w_new - w, g_new - g
        if s @ y > 1e-12:
            ss.append(s)
            ys.append(y)
            if len(ss) > memory:
                ss.pop(0)
                ys.pop(0)
        done = it >= 10 and abs(f - f_new) <= tol * max(1.0, abs(f))  # not on the first steps
        w, f, g = w_new, f_new, g_new
        if done or np.linalg.norm(g) < 1e-8:
            break
    return w


@dataclass
class LinearModel:
    """A multinomial linear classifier on standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (D + 1, K): the last row is the bias

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float32) - self.mean) / self.scale
        return x @ self.weights[:-1].astype(np.float32) + self.weights[-1]

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(features), axis=1)

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict(features) == np.asarray(labels)))


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean.astype(np.float32), np.where(scale > 1e-6, scale, 1.0).astype(np.float32)


def _row_space(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(z, v)`` with ``x = z @ v.T``, ``v`` orthonormal columns spanning ``x``'s rows, when
    ``x`` has fewer rows than columns; else ``(x, None)``. An L2-penalised linear model's weights
    lie in that span, so fitting on ``z`` (rows x rows) and mapping back with ``v`` gives the
    same solution as fitting on ``x``, for a fraction of the work."""
    n, dim = x.shape
    if n >= dim:
        return x, None
    evals, u = np.linalg.eigh((x @ x.T).astype(np.float64))
    keep = evals > 1e-9 * max(float(evals.max()), 1e-30)
    root = np.sqrt(evals[keep])
    v = (x.T @ (u[:, keep] / root).astype(np.float32))   # (dim, r): x.T u / sqrt(lambda)
    return (u[:, keep] * root).astype(np.float32), v


@dataclass
class _Problem:
    """Standardised training features, reduced to the span of the examples when they are fewer
    than the features (:func:`_row_space`): computed once, fitted for every L2 strength."""

    mean: np.ndarray
    scale: np.ndarray
    x: np.ndarray              # (n, dim) or (n, r) in the row space
    v: np.ndarray | None       # (features, r), or None when x is not reduced
    onehot: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray, labels: np.ndarray, k: int) -> _Problem:
        f = np.asarray(features, np.float32)
        mean, scale = _standardiser(f)
        x, v = _row_space((f - mean) / scale)
        return cls(mean, scale, x, v, np.eye(k, dtype=np.float64)[np.asarray(labels, np.int64)])

    def fg(self, w_flat: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        n, k = self.onehot.shape
        w = w_flat.reshape(-1, k)
        z = (self.x @ w[:-1].astype(np.float32)).astype(np.float64) + w[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.sum(self.onehot * np.log(np.maximum(p, 1e-300))) / n
        loss += 0.5 * l2 * np.sum(w[:-1] ** 2)
        r = (p - self.onehot) / n
        grad = np.empty_like(w)
        grad[:-1] = (self.x.T @ r.astype(np.float32)).astype(np.float64) + l2 * w[:-1]
        grad[-1] = r.sum(axis=0)
        return float(loss), grad.ravel()

    def fit(self, l2: float, iters: int, tol: float, w0: np.ndarray | None = None) -> np.ndarray:
        """The weights (reduced space, bias last) that minimise the loss, from ``w0`` or 0."""
        shape = (self.x.shape[1] + 1, self.onehot.shape[1])
        w0 = np.zeros(shape) if w0 is None else w0
        return _lbfgs(lambda w: self.fg(w, l2), w0.ravel(), iters=iters, tol=tol).reshape(shape)

    def model(self, w: np.ndarray) -> LinearModel:
        if self.v is not None:
            w = np.vstack([self.v.astype(np.float64) @ w[:-1], w[-1:]])
        return LinearModel(self.mean, self.scale, w)


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-2,
                 n_classes: int | None = None, iters: int = 100,
                 tol: float = 1e-4) -> LinearModel:
    """L2-regularised multinomial logistic regression (softmax cross-entropy + ``l2``/2 |W|^2,
    bias not penalised) on features standardised with their own mean and deviation.

    L-BFGS stops after ``iters`` iterations or when an iteration lowers the loss by less than
    ``tol`` (relative). With fewer examples than features it works in the span of the examples
    (:func:`_row_space`), which gives the same weights."""
    y = np.asarray(labels).astype(np.int64)
    problem = _Problem.of(features, y, int(n_classes or y.max() + 1))
    return problem.model(problem.fit(l2, iters, tol))


def label_subset(labels: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    """The rows of a seeded, stratified subset of ``n`` labels (every row when ``n`` is None or
    at least their number); each class keeps its share, and at least one row when it can."""
    y = np.asarray(labels)
    if n is None or n >= len(y):
        return np.arange(len(y))
    if n < 1:
        raise ValueError(f"labels={n}: use at least 1 label")
    rng = np.random.default_rng([seed, 25])
    classes = np.unique(y)
    counts = np.bincount(np.searchsorted(classes, y), minlength=len(classes))
    take = np.maximum(np.floor(counts * n / len(y)).astype(int), 1 if n >= len(classes) else 0)
    while take.sum() > n:
        take[np.argmax(take)] -= 1
    order = rng.permutation(len(classes))
    i = 0
    while take.sum() < n:
        c = order[i % len(classes)]
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    rows = [rng.permutation(np.flatnonzero(y == c))[:t] for c, t in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(rows))


@dataclass(frozen=True)
class ProbeResult:
    """One row of the probe table."""

    features: str          # what was probed, e.g. "trained D (step 1,200)"
    dim: int               # feature length
    labels: int            # training labels the classifier saw
    l2: float              # the regularisation the validation split chose
    val_accuracy: float
    test_accuracy: float

    def as_dict(self) -> dict:
        return asdict(self)


def report_lines(run_dir: str | Path, rows: list[ProbeResult], seed: int = 0,
                 as_json: bool = False) -> list[str]:
    """What ``dcgan-lab probe RUN`` prints: a title, :func:`table_lines` and, with ``as_json``,
    one JSON line."""
    import json

    from ..run import rundir

    cfg = rundir.RunDir(run_dir).read_config()
    lines = [f"probe {run_dir}: {cfg.recipe} ({cfg.framework}) on {cfg.data}, a linear "
             f"classifier on {rows[0].labels} training labels", *table_lines(rows)]
    if as_json:
        lines.append(json.dumps({"run": str(run_dir), "recipe": cfg.recipe,
                                 "framework": cfg.framework, "dataset": cfg.data,
                                 "labels": rows[0].labels, "seed": seed,
                                 "rows": [r.as_dict() for r in rows]}))
    return lines


def table_lines(rows: list[ProbeResult]) -> list[str]:
    """The probe table as aligned text lines (``dcgan-lab probe``)."""
    lines = [f"  {'features':<32} {'dim':>7} {'L2':>7} {'val acc':>8} {'test acc':>9}"]
    lines += [f"  {r.features:<32} {r.dim:>7} {r.l2:>7g} {r.val_accuracy:>8.3f} "
              f"{r.test_accuracy:>9.3f}" for r in rows]
    return lines


def linear_probe(name: str, train: tuple[np.ndarray, np.ndarray],
                 val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 l2s: tuple[float, ...] = REGULARISATION, n_classes: int = 10,
                 iters: int = 100) -> ProbeResult:
    """Fit :func:`fit_logistic` on ``train`` (features, labels) for each of ``l2s`` (strongest
    first, each warm-started from the last), keep the one with the best accuracy on ``val``
    and report its accuracy on ``test``."""
    problem = _Problem.of(train[0], train[1], n_classes)
    best: tuple[float, float, LinearModel] | None = None
    w = None
    for l2 in sorted(l2s, reverse=True):
        w = problem.fit(l2, iters, 1e-4, w0=w)
        model = problem.model(w)
        acc = model.accuracy(*val)
        if best is None or acc > best[0]:
            best = (acc, l2, model)
    assert best is not None
    return ProbeResult(name, int(train[0].shape[1]), int(len(train[1])), best[1], best[0],
                       best[2].accuracy(*test))


# --------------------------------------------------------------------------------------------
# a run folder's D


def _splits(dataset: str, labels: int | None, seed: int, verbose: bool):
    from .. import data

    have = ("train", "validation", "test") if dataset == "clothing64" else ("train", "test")
    xs = {s: data.load(dataset, s, verbose=verbose) for s in have}
    x, y = xs["train"]
    if "validation" not in xs:  # hold out a tenth of the training split (at most 1,000 images)
        rows = np.random.default_rng([seed, 26]).permutation(len(x))  # to choose the L2 strength
        cut = min(max(len(x) // 10, 1), 1000)
        xs["validation"] = (x[rows[:cut]], y[rows[:cut]])
        x, y = x[rows[cut:]], y[rows[cut:]]
    rows = label_subset(y, labels, seed)
    return (x[rows], y[rows]), xs["validation"], xs["test"]


def probe_run(run_dir: str | Path, labels: int | None = None, seed: int = 0,
              verbose: bool = False, l2s: tuple[float, ...] = REGULARISATION,
              iters: int = 100) -> list[ProbeResult]:
    """The probe table of a run folder: its trained D, the same D untrained (seed ``seed``) and
    raw pixels, each with a linear classifier on ``labels`` training labels (default: all).

    Raises :class:`~dcgan_lab.run.atomic.CheckpointError` naming the file when the run holds no
    discriminator (a generator-only snapshot)."""
    from ..run import rundir

    run = rundir.RunDir(run_dir)
    cfg = run.read_config()
    mod = frameworks.get(cfg.framework)
    D, step = mod.load_discriminator(run.path)
    D0 = mod.random_discriminator(cfg.recipe, seed=seed)
    train, val, test = _splits(cfg.data, labels, seed, verbose)
    rows = []
    for name, fn in ((f"trained D (step {step:,})", lambda im: mod.probe_features(D, im)),
                     ("untrained D (random init)", lambda im: mod.probe_features(D0, im)),
                     ("raw pixels", pixel_features)):
        feats = [(fn(x), y) for x, y in (train, val, test)]
        rows.append(linear_probe(name, *feats, l2s=l2s, iters=iters))
    return rows


# --------------------------------------------------------------------------------------------
# nearest neighbours and walks


def nearest(queries: np.ndarray, bank: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``queries``, the index of its nearest row of ``bank`` (L2) and the
    distance to it."""
    q = np.asarray(queries, np.float64)
    b = np.asarray(bank, np.float64)
    b2 = (b * b).sum(axis=1)
    idx, dist = [], []
    for i in range(0, len(q), batch):
        qb = q[i:i + batch]
        d2 = (qb * qb).sum(axis=1)[:, None] - 2 * qb @ b.T + b2[None, :]
        j = np.argmin(d2, axis=1)
        idx.append(j)
        dist.append(np.sqrt(np.maximum(d2[np.arange(len(qb)), j], 0.0)))
    if not idx:
        return np.zeros(0, int), np.zeros(0)
    return np.concatenate(idx), np.concatenate(dist)


def walk_smoothness(features: np.ndarray) -> float:
    """The largest step between consecutive points of a walk divided by its mean step: 1 for a
    walk whose steps are all equal, up to ``len(features) - 1`` when one jump does everything.

    ``features``: (steps, dim) for one walk, or (walks, steps, dim) for the mean of the walks'
    ratios.
    """
    f = np.asarray(features, np.float64)
    if f.ndim == 2:
        f = f[None]
    steps = np.linalg.norm(np.diff(f, axis=1), axis=2)  # (walks, steps - 1)
    return float(np.mean(steps.max(axis=1) / np.maximum(steps.mean(axis=1), 1e-12)))
