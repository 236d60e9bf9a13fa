"""GAN evaluation metrics, framework-free (numpy only; no scipy).

- :func:`frechet_distance` — the Fréchet distance between Gaussians fitted to two feature sets
  (the maths of FID, Heusel et al. 2017).
- :func:`fid` — that distance on the features of the small classifier shipped for a dataset
  (``dcgan_lab.scoring.classifier``): comparable between runs of this course, **not** to published
  Inception FIDs. :func:`inception_fid` gives the standard one where torch-fidelity and its
  Inception weights are installed.
- :func:`mode_coverage` — how many classes a generator produces, and the KL divergence of its
  class histogram from uniform (mode collapse shows as few classes and a large KL); a class counts
  when it holds :data:`COVERAGE_PERCENT` (1 %) of the samples (:func:`coverage_min_count`).
- :func:`precision_recall` — the k-NN manifold precision (fidelity) and recall (diversity) of
  Kynkäänniemi et al. 2019.
- :func:`softmax` — class probabilities from a classifier's logits (float64, numerically stable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COVERAGE_PERCENT",
    "ModeCoverage",
    "PrecisionRecall",
    "fid",
    "frechet_distance",
    "gaussian_stats",
    "inception_fid",
    "coverage_min_count",
    "mode_coverage",
    "precision_recall",
    "softmax",
]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` in float64 (the maximum is subtracted first, so it never overflows)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------------------------
def _as_features(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array of features, got shape {a.shape}; "
                         "flatten images or use metrics.fid() for images")
    if len(a) < 2:
        raise ValueError(f"{name} needs at least 2 rows (samples) to estimate a covariance, "
                         f"got {len(a)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a.astype(np.float64)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) ``features``, in float64."""
    a = _as_features(features, "features")
    mu = a.mean(axis=0)
    centred = a - mu
    return mu, centred.T @ centred / (len(a) - 1)


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via ``eigh``."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2)).

    tr(sqrt(S1 S2)) is the sum of the square roots of the eigenvalues of the symmetric PSD
    matrix sqrt(S1) S2 sqrt(S1), which has the same spectrum as S1 S2.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"inconsistent statistics: means {mu1.shape} / {mu2.shape}, "
                         f"covariances {s1.shape} / {s2.shape}")
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(d, 0.0)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to (N, D) and (M, D) feature arrays."""
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same feature dimension D, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def fid(images_a: np.ndarray, images_b: np.ndarray, dataset: Any) -> float:
    """FID on the features of the classifier shipped for ``dataset`` (mnist, fashion_mnist,
    cifar10, clothing64; or pass a ``dcgan_lab.scoring.classifier.Classifier``). Images: uint8 or float
    [-1, 1], NHWC or NCHW (either framework's output). Comparable within this course only."""
    from . import classifier

    clf = classifier.get(dataset) if isinstance(dataset, str) else dataset
    return frechet_distance(clf.features(images_a), clf.features(images_b))


# --------------------------------------------------------------------------------------------
# Inception FID (optional dependencies)
# --------------------------------------------------------------------------------------------
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_ENV = "DCGAN_LAB_INCEPTION_WEIGHTS"


def _inception_weights_path() -> Path:
    env = os.environ.get(INCEPTION_ENV)
    if env:
        return Path(env)
    hub = os.environ.get("TORCH_HOME")
    base = Path(hub) / "hub" if hub else Path.home() / ".cache" / "torch" / "hub"
    return base / "checkpoints" / INCEPTION_WEIGHTS


def _inception_extractor() -> Any:
    """torch-fidelity's Inception-v3 feature extractor, or a RuntimeError saying what is missing.

    Never downloads: the weights must already be on disk.
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as e:
        raise RuntimeError(
            "inception_fid needs the torch-fidelity package (torchmetrics' FID uses it too), "
            "which is not installed: `pip install torch-fidelity` (or `pip install "
            "torchmetrics[image]`), then put the Inception weights on disk (see below). "
            "metrics.fid(images_a, images_b, dataset) works without it, using the shipped "
            f"classifier's features. ({e})") from e
    path = _inception_weights_path()
    if not path.is_file():
        raise RuntimeError(
            f"inception_fid needs the FID Inception weights file {path}, which is missing; this "
            "package never downloads at run time. On a machine with network access run "
            "`python -c \"from torch_fidelity.feature_extractor_inceptionv3 import "
            "FeatureExtractorInceptionV3 as F; F('inception-v3-compat', ['2048'])\"` (it saves "
            f"{INCEPTION_WEIGHTS} into torch's hub checkpoints folder), or copy that file here, "
            f"or point ${INCEPTION_ENV} at it.")
    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                       feature_extractor_weights_path=str(path))


def _to_uint8_nchw_rgb(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must be 4-D (N, H, W, C) or (N, C, H, W), got {x.shape}")
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.dtype != np.uint8:
        x = np.clip(np.round((x.astype(np.float32) + 1) * 127.5), 0, 255).astype(np.uint8)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    return np.ascontiguousarray(x)


def inception_fid(images_a: np.ndarray, images_b: np.ndarray, batch_size: int = 64) -> float:
    """The standard Inception-v3 FID (torch-fidelity's 2048-d pool features).

    Needs torch-fidelity and its weights file already on disk; otherwise raises a RuntimeError
    that says what is missing and how to get it. Grayscale images are repeated to RGB.
    """
    extractor = _inception_extractor().eval()  # raises before importing torch if unavailable
    import torch

    def feats(images: np.ndarray) -> np.ndarray:
        x = _to_uint8_nchw_rgb(images)
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out.append(extractor(torch.from_numpy(x[i : i + batch_size]))[0].double().numpy())
        return np.concatenate(out)

    return frechet_distance(feats(images_a), feats(images_b))


# --------------------------------------------------------------------------------------------
# Mode coverage
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModeCoverage:
    """Class histogram of generated samples.

    ``covered``: classes seen at least ``min_count`` times; ``kl``: KL(p || uniform) in nats =
    sum p log(p * n_classes), 0 for a uniform histogram and log(n_classes) for a single class;
    ``counts``: per-class counts (n_classes,); ``n_classes``.
    """

    covered: int
    kl: float
    counts: np.ndarray
    n_classes: int

    @property
    def fraction(self) -> float:
        """Share of the classes covered."""
        return self.covered / self.n_classes

    def __str__(self) -> str:
        return (f"{self.covered}/{self.n_classes} modes covered, KL to uniform "
                f"{self.kl:.3f} nats (max {np.log(self.n_classes):.3f})")


#: The course's one coverage rule: a class is *covered* when it holds at least this percentage
#: of the samples (and at least one sample), so that a few misclassified samples do not count as
#: a mode. Every chapter, ``dcgan-lab evaluate`` and the training callbacks use it.
COVERAGE_PERCENT = 1


def coverage_min_count(n: int) -> int:
    """The fewest samples a class needs to count as covered among ``n`` samples:
    ``max(1, ceil(COVERAGE_PERCENT / 100 * n))`` in integer arithmetic (10 of 1,000, 4 of 372)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return max(1, -(-n * COVERAGE_PERCENT // 100))


def mode_coverage(predicted_labels: np.ndarray, n_classes: int,
                  min_count: int | None = None) -> ModeCoverage:
    """Mode coverage of a generator from the classes predicted for its samples.

    ``min_count`` (samples a class needs to count as covered): by default the course's rule,
    the rule of :func:`coverage_min_count` on the number of samples (1 % of them, at least
    one); Stacked MNIST's 1,000 modes pass ``min_count=1`` explicitly.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    labels = np.asarray(predicted_labels).ravel()
    if labels.size == 0:
        raise ValueError("predicted_labels is empty: classify some generated samples first")
    if min_count is None:
        min_count = coverage_min_count(labels.size)
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(labels == np.round(labels)):
            raise ValueError("predicted_labels must be integer class ids (use .argmax(axis=1) "
                             "on logits)")
        labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"predicted_labels must lie in 0..{n_classes - 1}, got values from "
                         f"{labels.min()} to {labels.max()}")
    counts = np.bincount(labels.astype(np.int64), minlength=n_classes)
    p = counts / counts.sum()
    nz = p > 0
    kl = float(np.sum(p[nz] * np.log(p[nz] * n_classes)))
    counts.setflags(write=False)
    return ModeCoverage(int(np.sum(counts >= min_count)), max(kl, 0.0), counts, int(n_classes))


# --------------------------------------------------------------------------------------------
# Precision and recall (k-NN manifolds)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrecisionRecall:
    """``precision``: share of fake samples inside the real manifold (fidelity);
    ``recall``: share of real samples inside the fake manifold (diversity)."""

    precision: float
    recall: float


def _chunk_rows(n_cols: int, max_elems: int = 1 << 22) -> int:
    return max(1, max_elems // max(n_cols, 1))


def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def _knn_radii_sq(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest other row (batched)."""
    x_sq = (x * x).sum(1)
    out = np.empty(len(x))
    step = _chunk_rows(len(x))
    for i in range(0, len(x), step):
        d = _sq_dists(x[i : i + step], x, x_sq)
        # index 0 of the sorted row is the point itself (distance 0), so take index k
        out[i : i + step] = np.partition(d, k, axis=1)[:, k]
    return out


def _inside(query: np.ndarray, ref: np.ndarray, radii_sq: np.ndarray) -> np.ndarray:
    """For each query row: is it inside the ball of some reference row?"""
    ref_sq = (ref * ref).sum(1)
    out = np.empty(len(query), bool)
    step = _chunk_rows(len(ref))
    for i in range(0, len(query), step):
        d = _sq_dists(query[i : i + step], ref, ref_sq)
        out[i : i + step] = (d <= radii_sq[None, :]).any(axis=1)
    return out


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray,
                     k: int = 3) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of (N, D) feature sets.

    Each set's manifold is the union of balls around its samples reaching their k-th nearest
    neighbour. Distances are computed in row batches so memory stays bounded.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features must have the same dimension D, "
                         f"got {real.shape[1]} and {fake.shape[1]}")
    if not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"k must be in 1..{min(len(real), len(fake)) - 1} (fewer than the "
                         f"samples in each set), got {k}")
    precision = float(_inside(fake, real, _knn_radii_sq(real, k)).mean())
    recall = float(_inside(real, fake, _knn_radii_sq(fake, k)).mean())
    return PrecisionRecall(precision, recall)
