"""Helpers for chapter 3 (Keras DCGANs): sample-quality numbers, the frozen-BatchNorm check of
the stacked trainer, picture strips of a run folder, and short source excerpts.

Framework-free at import (numpy only); :func:`bn_mode_gap` works on any ``keras.Model`` and
imports nothing itself, :func:`show_run_grids` imports matplotlib and Pillow when called.

- :func:`sample_report` -- what the shipped classifier (:mod:`dcgan_lab.scoring.classifier`) says about
  generated images: the share it classifies with confidence above a threshold, the classes it
  sees (:func:`dcgan_lab.scoring.metrics.mode_coverage`) and the Fréchet distance to real images on its
  features (:func:`dcgan_lab.scoring.metrics.fid`).
- :func:`bn_mode_gap` -- a discriminator's mean P(real) on the same images as
  ``D.train_on_batch`` computes it (D trainable: BatchNorm normalises with the batch's statistics)
  and as the stacked ``combined`` model computes it in Keras 3 (D frozen: BatchNorm uses its
  moving averages). A large gap means G is trained against a different function from the one D
  learns.
- :func:`show_run_grids` -- the fixed-noise grids a trainer saved, e.g. first / middle / last.
- :func:`source_excerpt` -- a function's or method's source without its docstring, for display.
- :func:`compact` -- shape tables side by side in a narrow page column (small type, no wrapping;
  they flow below one another when the column is too narrow for both).
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..scoring import metrics

__all__ = ["SampleReport", "sample_report", "real_sets", "report_table", "BNModeGap", "bn_mode_gap", "pick_grids",
           "show_run_grids", "source_excerpt", "Compact", "compact"]


# --------------------------------------------------------------------------------------------
# classifier numbers


@dataclass(frozen=True)
class SampleReport:
    """The shipped classifier's view of ``n`` generated images.

    ``confident``: share whose top softmax probability exceeds ``threshold``; ``coverage``: the
    histogram of predicted classes (:class:`~dcgan_lab.scoring.metrics.ModeCoverage`), a class counting as
    covered when it holds at least 1 % of the samples (the course's one rule); ``fid``: Fréchet
    distance between the classifier features of the generated and the real images (comparable
    within this course only, not to published Inception FIDs).
    """

    dataset: str
    n: int
    n_real: int
    threshold: float
    confident: float
    coverage: metrics.ModeCoverage
    fid: float

    def as_dict(self) -> dict[str, float]:
        """The scalar numbers, for tables and ``glue``."""
        return {"confident": self.confident, "modes": float(self.coverage.covered),
                "kl": self.coverage.kl, "fid": self.fid}

    def __str__(self) -> str:
        return (f"{self.dataset} classifier on {self.n} samples: "
                f"{100 * self.confident:.1f}% classified with p > {self.threshold:g}; "
                f"{self.coverage}; Fréchet distance to {self.n_real} real images "
                f"{self.fid:.1f}")


def sample_report(fake: np.ndarray, real: np.ndarray | None = None,
                  dataset: str = "mnist") -> SampleReport:
    """Classifier numbers for generated images ``fake`` against real images ``real``: a thin
    wrapper over the course's one scorer, :func:`dcgan_lab.scoring.evaluation.scores` (the numbers
    of ``evaluation.evaluate(fake, dataset, real=real)``).

    ``real``: by default the real reference of ``evaluate`` (as many test images as ``fake``,
    :func:`~dcgan_lab.scoring.evaluation.real_reference`). A class is *covered* when it holds at
    least 1 % of the samples (and at least one), the rule of
    :func:`~dcgan_lab.scoring.metrics.coverage_min_count`; *confident* means a top probability
    above :data:`~dcgan_lab.scoring.evaluation.CONFIDENCE` (0.9).

    Images are uint8 or float in [-1, 1], NHWC or NCHW (either framework's output), of the
    classifier's size (28x28x1 for ``mnist``/``fashion_mnist``, 32x32x3 for ``cifar10``).
    """
    from ..scoring import evaluation

    if len(fake) < 2 or (real is not None and len(real) < 2):
        raise ValueError(f"sample_report needs at least 2 generated and 2 real images, got "
                         f"{len(fake)} and {len(real) if real is not None else 0}")
    feats, probs = evaluation.classify(fake, dataset)
    if real is None:
        ref = evaluation.real_reference(dataset, len(fake))
        ref_features, ref_pairs, n_real = ref.features, ref.pair_distance, len(ref.images)
    else:
        ref_features = evaluation.classify(real, dataset)[0]
        ref_pairs, n_real = evaluation.pair_distance(ref_features), len(real)
    out = evaluation.scores(feats, probs, ref_features, ref_pairs, k=None)
    coverage = metrics.mode_coverage(probs.argmax(axis=1), probs.shape[1])
    return SampleReport(dataset, len(fake), n_real, evaluation.CONFIDENCE, out["confident"],
                        coverage, out["fid"])


def real_sets(dataset: str = "mnist", seed: int = 0) -> Any:
    """The real images a chapter scores against: the course's one real reference and, disjoint
    from it, as many more real test images for the real-against-real row (the floor).

    :func:`dcgan_lab.scoring.evaluation.real_subsets` at the dataset's one sample size
    (:data:`~dcgan_lab.scoring.evaluation.SAMPLE_SIZES`), lowered only when fewer than twice that
    many test images are loaded (the embedded sample), so that the floor exists; its ``notes``
    say so. Returns the :class:`~dcgan_lab.scoring.evaluation.RealSubsets`, with ``floor`` set.
    """
    import warnings

    from .. import data
    from ..scoring import evaluation

    with warnings.catch_warnings():  # real_subsets reports the embedded sample in its notes
        warnings.simplefilter("ignore")
        n_loaded = len(data.load(dataset, "test", verbose=False)[0])
    want = evaluation.sample_size(dataset)
    n = min(want, n_loaded // 2)
    sets = evaluation.real_subsets(dataset, n, seed)
    if n < want:
        sets = dataclasses.replace(sets, notes=(*sets.notes, (
            f"note: only {n_loaded} real {dataset} test images were loaded: {n} per set "
            f"instead of {want}")))
    return sets


def report_table(reports: dict[str, SampleReport]) -> str:
    """Several :class:`SampleReport` as one aligned text table, one row per name."""
    if not reports:
        raise ValueError("report_table needs at least one report")
    first = next(iter(reports.values()))
    head = ("", f"p > {first.threshold:g}", "modes", "KL (nats)", "Fréchet dist.")
    rows = [head] + [(name, f"{100 * r.confident:.1f}%",
                      f"{r.coverage.covered}/{r.coverage.n_classes}", f"{r.coverage.kl:.3f}",
                      f"{r.fid:.1f}") for name, r in reports.items()]
    w = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"{row[0]:<{w[0]}}  " + "  ".join(f"{c:>{wi}}" for c, wi in zip(row[1:], w[1:],
                                                                              strict=True))
             for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the frozen-BatchNorm check


@dataclass(frozen=True)
class BNModeGap:
    """Mean P(real) that D gives real and fake images in its two modes.

    ``*_trained``: as ``D.train_on_batch`` computes it (D trainable, ``training=True``:
    BatchNorm uses the batch's mean and variance, dropout is on). ``*_frozen``: as the stacked
    model ``combined = D(G(z))`` computes it with D frozen (``D.trainable = False``,
    ``training=True``: in Keras 3 a frozen BatchNorm uses its moving averages; dropout is on).
    """

    real_trained: float
    real_frozen: float
    fake_trained: float
    fake_frozen: float

    @property
    def fake_gap(self) -> float:
        """How much more real the frozen D finds the fakes than the D that is being trained."""
        return self.fake_frozen - self.fake_trained

    def __str__(self) -> str:
        rows = [("mean P(real)", "trained D (batch stats)", "frozen D (moving stats)"),
                ("real images", f"{self.real_trained:.4f}", f"{self.real_frozen:.4f}"),
                ("generated images", f"{self.fake_trained:.4f}", f"{self.fake_frozen:.4f}")]
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}" for r in rows)


def bn_mode_gap(discriminator: Any, real: np.ndarray, fake: np.ndarray,
                from_logits: bool = False) -> BNModeGap:
    """Measure D's verdict on ``real`` and ``fake`` (float32 NHWC in [-1, 1]) in both modes.

    ``discriminator`` is a Keras model; ``from_logits``: D returns logits (recipe loss
    ``"logits"``). Each batch goes through D in one call, as in the trainers. Every variable of D
    (BatchNorm moving statistics, dropout seeds) and its ``trainable`` flag are restored
    afterwards, so the check leaves the model as it found it.
    """
    D = discriminator
    real = np.asarray(real, np.float32)
    fake = np.asarray(fake, np.float32)
    saved_flag = D.trainable
    saved = [np.array(v.numpy()) for v in D.variables]

    def mean_p(x: np.ndarray) -> float:
        out = np.asarray(D(x, training=True), np.float64)
        if from_logits:
            out = 1.0 / (1.0 + np.exp(-out))
        return float(out.mean())

    try:
        D.trainable = True
        rt, ft = mean_p(real), mean_p(fake)
        D.trainable = False
        rf, ff = mean_p(real), mean_p(fake)
    finally:
        D.trainable = saved_flag
        for v, a in zip(D.variables, saved, strict=True):
            v.assign(a)
    return BNModeGap(rt, rf, ft, ff)


# --------------------------------------------------------------------------------------------
# pictures of a run folder


def pick_grids(paths: list[Path], n: int = 3) -> list[Path]:
    """``n`` evenly spaced items of ``paths``, always the first and the last (fewer if short)."""
    paths = list(paths)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(paths) <= n:
        return paths
    if n == 1:
        return [paths[-1]]
    idx = sorted({round(i * (len(paths) - 1) / (n - 1)) for i in range(n)})
    return [paths[i] for i in idx]


def show_run_grids(run_dir: str | Path, n: int = 3, title: str | None = None,
                   width: float = 3.2):
    """Show ``n`` of the fixed-noise grids saved in ``run_dir/samples`` (first, ..., last) side
    by side, titled with their step; return the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..run.rundir import RunDir

    run = RunDir(run_dir)
    paths = pick_grids(run.sample_paths(), n)
    if not paths:
        raise FileNotFoundError(f"{run.samples} holds no step_*.png grids: train into "
                                f"{run.path} first")
    fig, axes = plt.subplots(1, len(paths), figsize=(width * len(paths), width + 0.5),
                             squeeze=False)
    for ax, p in zip(axes[0], paths, strict=True):
        img = np.asarray(Image.open(p))
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(f"step {int(p.stem.split('_')[1])}")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# source excerpts


def source_excerpt(obj: Any, docstring: bool = False) -> str:
    """The source of function or method ``obj``, dedented, without its docstring (unless
    ``docstring``); for showing a few key lines of the package in a chapter."""
    src = textwrap.dedent(inspect.getsource(obj))
    if docstring:
        return src
    doc = inspect.getdoc(obj)
    if not doc:
        return src
    lines = src.splitlines(keepends=True)
    # The docstring is the first statement of the body: drop the lines from its opening quotes
    # to its closing quotes.
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith(('"""', "'''", 'r"""', "r'''")):
            quote = s.lstrip("r")[:3]
            rest = s.lstrip("r")[3:]
            end = i if quote in rest else next(
                j for j in range(i + 1, len(lines)) if quote in lines[j])
            return "".join(lines[:i] + lines[end + 1:])
    return src


# --------------------------------------------------------------------------------------------
# compact shape tables


_COMPACT_CSS = (".dcgan-lab-compact table{font-size:0.78rem;margin:0}"
                ".dcgan-lab-compact td,.dcgan-lab-compact th{padding:1px 8px;white-space:nowrap}"
                ".dcgan-lab-compact caption{font-weight:bold;white-space:nowrap}")


@dataclass
class Compact:
    """Shape tables next to each other, rendered for a narrow page (see :func:`compact`)."""

    tables: list[Any]
    titles: list[str]
    text: str

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        cells = []
        for table, title in zip(self.tables, self.titles, strict=True):
            inner = table._repr_html_()
            if title and title != table.title:  # the caption shows the table's own title
                cap = f"<caption>{html.escape(table.title)}</caption>" if table.title else ""
                inner = inner.replace(cap, f"<caption>{html.escape(title)}</caption>", 1)
            cells.append(f"<div>{inner}</div>")
        return (f"<style>{_COMPACT_CSS}</style><div class='dcgan-lab-compact' style='display:flex;"
                f"flex-wrap:wrap;gap:0.5em 1.5em;align-items:flex-start;overflow-x:auto'>"
                f"{''.join(cells)}</div>")


def compact(side_by_side: Any) -> Compact:
    """Render a :func:`dcgan_lab.shapes.side_by_side` result compactly: one caption per table
    (its title), small type, rows that never wrap; tables that do not fit next to each other
    flow below one another, and one still wider than the page gets a horizontal scroll bar.
    ``str()`` gives the same text as the original."""
    tables = list(side_by_side.tables)
    titles = list(side_by_side.titles)
    return Compact(tables, titles, str(side_by_side))
