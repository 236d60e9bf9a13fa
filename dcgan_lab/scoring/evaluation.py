"""Scoring generators against real images with the course's classifiers.

- :func:`evaluate` scores a generator (either framework) or a batch of images against the real
  test split: the Fréchet distance on the course classifier's features (``fid``), the classes the
  classifier predicts (``modes_covered``, ``kl`` to uniform), the share it classifies with
  confidence > 0.9 (``confident``), k-NN ``precision`` / ``recall`` (Kynkäänniemi et al. 2019) and
  ``diversity``. :func:`classify` gives the classifier's features and probabilities,
  :func:`real_reference` the cached real images it compares with, :func:`real_subsets` the
  subset and the disjoint real-vs-real floor that ``dcgan-lab evaluate`` reports.
- :func:`fid_callback` (the same numbers as :func:`evaluate`, every N steps) and :func:`grad_norm_callback` add columns to a training history while a
  model trains (``dcgan_lab.torch.train(..., callbacks=[...])``).
- :func:`add_noise` and :func:`blur` degrade real images, to calibrate what a difference in FID means.

Framework-free at import time: torch (or Keras) is imported only by the functions that need it;
a generator's own ``sample`` is reached through :func:`dcgan_lab.frameworks.get` at call time.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import frameworks
from . import metrics

__all__ = [
    "CONFIDENCE",
    "METRICS",
    "SAMPLE_SIZES",
    "Callback",
    "RealSubsets",
    "Reference",
    "add_noise",
    "blur",
    "classify",
    "evaluate",
    "fid_callback",
    "grad_norm_callback",
    "pair_distance",
    "real_reference",
    "real_subsets",
    "sample",
    "sample_size",
    "scores",
]

#: The metrics of :func:`evaluate`, and whether lower is better for each.
METRICS: dict[str, bool] = {
    "fid": True,
    "modes_covered": False,
    "kl": True,
    "confident": False,
    "precision": False,
    "recall": False,
    "diversity": False,
}
CONFIDENCE = 0.9  # a sample is "confident" when the classifier's top probability exceeds this

#: The one sample size per dataset: :func:`evaluate`, ``dcgan-lab evaluate``, :func:`fid_callback`
#: and the chapters' tables draw this many samples (and as many real test images, the reference of
#: :func:`real_reference`) unless told otherwise, so their numbers compare. clothing64's test split
#: holds 372 photos, the size the reference runs in ``book/reference/`` were scored at.
SAMPLE_SIZES: dict[str, int] = {"mnist": 1000, "fashion_mnist": 1000, "cifar10": 1000,
                                "clothing64": 372}


def sample_size(dataset: str) -> int:
    """The course's sample size for ``dataset`` (:data:`SAMPLE_SIZES`)."""
    try:
        return SAMPLE_SIZES[dataset]
    except KeyError:
        raise ValueError(f"no sample size for dataset {dataset!r}; known: "
                         f"{', '.join(SAMPLE_SIZES)}") from None

_TORCH_NETS: dict[str, Any] = {}
_REFERENCES: dict[tuple, Reference] = {}


def classify(images: np.ndarray, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 128) and class probabilities (N, 10) of ``images`` from the shipped classifier.

    ``dataset``: any of ``dcgan_lab.scoring.classifier.DATASETS`` (mnist, fashion_mnist, cifar10 and the
    64x64 photos of clothing64); the images must have that dataset's shape.

    Uses the classifier's PyTorch twin when torch is already imported (about twice as fast on a
    CPU), else its numpy inference; the two agree to 1e-5.
    """
    from . import classifier

    clf = classifier.get(dataset)
    x = clf.prepare(images)
    if "torch" in sys.modules:
        import torch

        if dataset not in _TORCH_NETS:
            _TORCH_NETS[dataset] = clf.to_torch()
        net = _TORCH_NETS[dataset]
        feats, logits = [], []
        with torch.no_grad():
            for i in range(0, len(x), 500):
                xb = torch.from_numpy(np.ascontiguousarray(x[i:i + 500].transpose(0, 3, 1, 2)))
                f = net[:-1](xb)
                feats.append(f.numpy())
                logits.append(net[-1](f).numpy())
        f_all = np.concatenate(feats) if feats else np.zeros((0, 128), np.float32)
        lg_all = np.concatenate(logits) if logits else np.zeros((0, 10), np.float32)
    else:
        f_all, lg_all = clf._batched(x)
    return f_all, metrics.softmax(lg_all.astype(np.float64), axis=1)


def pair_distance(features: np.ndarray, seed: int = 0) -> float:
    """Mean L2 distance between the features of random pairs of distinct samples.

    Divided by the same number for real images it gives :func:`evaluate`'s ``diversity``: about 1
    for samples as varied as the data, 0 when every sample is the same image.
    """
    f = np.asarray(features, np.float64)
    if len(f) < 2:
        raise ValueError(f"pair_distance needs at least 2 samples, got {len(f)}")
    perm = np.random.default_rng([seed, 11]).permutation(len(f))
    other = np.roll(perm, 1)  # pairs (perm[i], perm[i-1]): every sample once, never with itself
    return float(np.linalg.norm(f[perm] - f[other], axis=1).mean())


@dataclass(frozen=True)
class Reference:
    """Real images of a split and their classifier features, drawn once per (dataset, n, seed)."""

    dataset: str
    split: str
    images: np.ndarray
    features: np.ndarray

    @property
    def pair_distance(self) -> float:
        return pair_distance(self.features)


def real_reference(dataset: str = "mnist", n: int | None = None, seed: int = 0,
                   split: str = "test") -> Reference:
    """``n`` real images of ``split`` (a seeded random subset) and their features, cached.

    ``n``: by default the dataset's :func:`sample_size`."""
    from . import classifier

    n = sample_size(dataset) if n is None else n
    key = (dataset, n, seed, split)
    if key not in _REFERENCES:
        x, _ = classifier.load_real(dataset, split)
        if n > len(x):
            raise ValueError(f"n={n}: the {dataset} {split} split has only {len(x)} images here; "
                             f"pass n <= {len(x)} (clothing64's full test split holds 372 photos, "
                             "the embedded sample fewer)")
        rows = _reference_rows(len(x), n, seed)
        images = np.ascontiguousarray(x[rows])
        _REFERENCES[key] = Reference(dataset, split, images, classify(images, dataset)[0])
    return _REFERENCES[key]


def _reference_rows(n_real: int, n: int, seed: int) -> np.ndarray:
    """The rows of the real reference: the first ``n`` of a seeded permutation of the split,
    sorted (:func:`real_subsets` draws its floor from the rows after them)."""
    return np.sort(np.random.default_rng([seed, 7]).permutation(n_real)[:n])


def _framework_of(generator: Any) -> str:
    """The name of the framework whose model ``generator`` is (by its type; neither is imported)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(generator, torch.nn.Module):
        return "torch"
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(generator, keras.Model):
        return "keras"
    raise TypeError(f"evaluate: expected a torch.nn.Module or keras.Model generator, or a uint8 "
                    f"image array, got {type(generator).__name__}")


def sample(generator: Any, n: int, seed: int) -> np.ndarray:
    """``n`` uint8 samples of a torch or Keras ``generator`` (its framework's ``sample``)."""
    return frameworks.get(_framework_of(generator)).sample(generator, n, seed=seed)


def evaluate(generator: Any, dataset: str = "mnist", n: int | None = None, seed: int = 0,
             k: int = 3, real: np.ndarray | None = None,
             floor_real: np.ndarray | None = None) -> dict[str, float]:
    """Score a generator (torch or Keras) or an image array against the real test split.

    Draws ``n`` samples (by default the dataset's :func:`sample_size`) with the framework's ``sample(generator, n, seed)`` (eval mode; an array
    is used as it is) and compares them with as many real test images (:func:`real_reference`),
    or with ``real`` (uint8 NHWC images of ``dataset``) when given:

    - ``fid``: Fréchet distance of the classifier features (this course's scale, not Inception's);
    - ``modes_covered`` (of 10; a class counts when it holds 1 % of the samples, the rule of
      :func:`~dcgan_lab.scoring.metrics.coverage_min_count`) and ``kl`` (nats, to uniform) of the
      predicted classes;
    - ``confident``: share of samples whose top class probability is > 0.9;
    - ``precision`` / ``recall``: k-NN manifold precision and recall of the features;
    - ``diversity``: :func:`pair_distance` of the samples over that of the real images (0 when
      every sample is the same image, about 1 for the data's own variety);
    - ``real_fid_floor``, only when ``floor_real`` (more real images, disjoint from the
      reference) is given: the Fréchet distance of the reference to them, the distance that
      sampling alone gives at this N (see :func:`real_subsets`).
    """
    if isinstance(generator, np.ndarray):
        images = generator
    else:
        images = sample(generator, sample_size(dataset) if n is None else n, seed)
    if len(images) <= k:
        raise ValueError(f"evaluate needs more than k={k} images, got {len(images)}")
    if real is None:
        ref = real_reference(dataset, len(images), seed)
        ref_features, ref_pairs = ref.features, ref.pair_distance
    else:
        if len(real) <= k:
            raise ValueError(f"evaluate needs more than k={k} real images, got {len(real)}")
        ref_features = classify(real, dataset)[0]
        ref_pairs = pair_distance(ref_features)
    out = scores(*classify(images, dataset), ref_features, ref_pairs, k=k)
    if floor_real is not None:  # real vs real: the distance that sampling alone gives at this N
        out["real_fid_floor"] = metrics.frechet_distance(ref_features,
                                                         classify(floor_real, dataset)[0])
    return out


def scores(feats: np.ndarray, probs: np.ndarray, ref_features: np.ndarray, ref_pairs: float,
           k: int | None = 3, coverage: bool = True) -> dict[str, float]:
    """The one scorer: the numbers of :func:`evaluate` (``fid`` always; the class numbers with
    ``coverage``; precision and recall unless ``k`` is None) of samples' features and class
    probabilities (:func:`classify`) against a reference's features and :func:`pair_distance`.

    :func:`evaluate`, :func:`fid_callback` and the chapters' ``sample_report`` all end here.
    """
    out = {"fid": metrics.frechet_distance(ref_features, feats)}
    if coverage:
        cov = metrics.mode_coverage(probs.argmax(axis=1), probs.shape[1])  # the 1 % rule
        out.update(modes_covered=float(cov.covered), kl=cov.kl,
                   confident=float(np.mean(probs.max(axis=1) > CONFIDENCE)))
    if k is not None:
        pr = metrics.precision_recall(ref_features, feats, k=k)
        out.update(precision=pr.precision, recall=pr.recall)
    if coverage:
        out["diversity"] = pair_distance(feats) / ref_pairs
    return out


@dataclass(frozen=True)
class RealSubsets:
    """What :func:`real_subsets` drew: ``reference`` (``n`` real test images), ``floor`` (``n``
    more, disjoint, or None when the split is too small) and the notes to show a reader."""

    reference: np.ndarray
    floor: np.ndarray | None
    n: int
    notes: tuple[str, ...]


def real_subsets(dataset: str, n: int | None = None, seed: int = 0) -> RealSubsets:
    """A seeded subset of ``n`` real ``dataset`` test images (the images of
    :func:`real_reference`) and ``n`` more (disjoint) for the real-vs-real floor; ``n`` (by
    default the dataset's :func:`sample_size`) is capped at the split's size (with a note), and a note says when
    the images are the embedded sample (what ``dcgan-lab evaluate`` scores against)."""
    import warnings

    from .. import data

    with warnings.catch_warnings():  # the embedded-sample fallback is reported below instead
        warnings.simplefilter("ignore")
        real, _ = data.load(dataset, "test", verbose=False)
    src = data.last_source(dataset)
    n = sample_size(dataset) if n is None else n
    sample_in_use = src is not None and src.origin == "sample"
    order = np.random.default_rng([seed, 7]).permutation(len(real))
    notes = []
    if n > len(real):
        notes.append(f"note: only {len(real)} real {dataset} test images were loaded"
                     f"{' (the embedded sample)' if sample_in_use else ''}"
                     f": N capped at {len(real)} (asked for {n})")
        n = len(real)
    elif sample_in_use:
        notes.append(f"note: the real {dataset} test images are the embedded sample ({len(real)} "
                     f"images), not the full data set")
    floor = real[np.sort(order[n:2 * n])] if len(real) >= 2 * n else None
    return RealSubsets(real[np.sort(order[:n])], floor, n, tuple(notes))


# --------------------------------------------------------------------------------------------
# callbacks for dcgan_lab.torch.train(...) / dcgan_lab.keras.train(...)
# --------------------------------------------------------------------------------------------
Callback = Callable[[int, Any, Any, Any], None]


def fid_callback(every: int, dataset: str = "mnist", n: int | None = None, seed: int = 0,
                 coverage: bool = True) -> Callback:
    """A training callback that adds ``fid`` (and, with ``coverage``, ``modes_covered``, ``kl``,
    ``confident`` and ``diversity``) to the history row of every ``every``-th step.

    The same scorer (:func:`scores`), reference (:func:`real_reference`) and coverage rule as
    :func:`evaluate`; ``n`` defaults to the dataset's :func:`sample_size`.

    This is how ``TrainOptions.metric_every`` is honoured: :func:`dcgan_lab.ablation.run_ablation` adds
    ``fid_callback(options.metric_every)`` to each run that sets it.
    """
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every={every!r}: need a positive integer number of steps")

    def cb(step: int, G: Any, D: Any, history: Any) -> None:
        if step % every:
            return
        m = sample_size(dataset) if n is None else n
        ref = real_reference(dataset, m, seed)
        history.rows[-1].update(scores(*classify(sample(G, m, seed), dataset), ref.features,
                                       ref.pair_distance, k=None, coverage=coverage))

    return cb


def grad_norm_callback() -> Callback:
    """A torch training callback that adds ``grad_g``: the L2 norm of G's gradient in this step.

    The trainer leaves the gradients of its last G update in ``p.grad`` (``opt.step()`` does not
    clear them), so reading them costs nothing extra. ``grad_g`` is the norm of
    d loss_g / d theta_G over all of G's parameters.
    """

    def cb(step: int, G: Any, D: Any, history: Any) -> None:
        sq = 0.0
        for p in G.parameters():
            if p.grad is not None:
                sq += float(p.grad.detach().double().pow(2).sum())
        history.rows[-1]["grad_g"] = math.sqrt(sq)

    return cb


# --------------------------------------------------------------------------------------------
# degraded real images (what does a difference in FID mean?)
# --------------------------------------------------------------------------------------------
def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """uint8 images plus Gaussian noise of standard deviation ``sigma`` (in [-1, 1] units)."""
    from .. import data

    x = data.to_float(images)
    x = x + sigma * np.random.default_rng(seed).standard_normal(x.shape, dtype=np.float32)
    return data.to_uint8(np.clip(x, -1.0, 1.0))


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 NHWC images blurred by a Gaussian of ``sigma`` pixels (separable, edges clamped)."""
    if sigma <= 0:
        return np.asarray(images).copy()
    radius = max(1, int(math.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    x = np.asarray(images, np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        xp = np.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = sum(w * np.take(xp, np.arange(i, i + n), axis=axis) for i, w in enumerate(kernel))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
