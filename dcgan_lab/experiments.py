"""Measured experiments for chapter 5 (failure modes and ganhacks).

- :func:`evaluate` scores a generator (either framework) or a batch of images against the real
  test split: the Fréchet distance on the course classifier's features (``fid``), the classes the
  classifier predicts (``modes_covered``, ``kl`` to uniform), the share it classifies with
  confidence > 0.9 (``confident``), and k-NN ``precision`` / ``recall`` (Kynkäänniemi et al. 2019).
- :func:`fid_callback` and :func:`grad_norm_callback` add columns to a training history while a
  model trains (``dcgan_lab.torch.train(..., callbacks=[...])``).
- :func:`run_ablation` trains every variant of a dict of :class:`~dcgan_lab.training.TrainOptions`
  for several seeds, evaluates each run and returns an :class:`AblationTable` (rows, mean and
  standard deviation per variant, HTML and text). Results are cached as JSON in the output folder,
  keyed by the settings, so re-running with the same settings does not retrain.
- Stacked MNIST (1000 modes): :func:`stacked_models` builds a 3-channel ``torch-mnist`` pair and
  :func:`train_stacked` trains it on :func:`dcgan_lab.stacked_mnist.make` images with the same
  :func:`dcgan_lab.torch.train_step` as the trainer; :func:`stacked_evaluate` counts modes.
- :func:`add_noise` and :func:`blur` degrade real images, to calibrate what a difference in FID means.

Framework-free at import time: torch (or Keras) is imported only by the functions that need it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics, profiles, recipes
from .checkpoint import write_json
from .training import TrainOptions

__all__ = [
    "METRICS",
    "AblationBudget",
    "AblationTable",
    "DemoBudget",
    "Reference",
    "ScoreTable",
    "StackedBudget",
    "ablation_budget",
    "add_noise",
    "blur",
    "classify",
    "demo_budget",
    "evaluate",
    "fid_callback",
    "ganhack_variants",
    "grad_norm_callback",
    "history_summary",
    "pair_distance",
    "plot_ablation",
    "plot_curves",
    "real_reference",
    "ruler_position",
    "run_ablation",
    "show_rows",
    "stacked_budget",
    "stacked_evaluate",
    "stacked_models",
    "starved_steps",
    "tail_means",
    "train_stacked",
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
CACHE_FILE = "ablation.json"
CACHE_VERSION = 1


# --------------------------------------------------------------------------------------------
# budgets per profile
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AblationBudget:
    """How long each run of an ablation trains, on how many seeds, and how many samples score it."""

    steps: int
    batch_size: int
    seeds: tuple[int, ...]
    n_eval: int


_ABLATION = {
    # smoke: every line runs; the numbers mean nothing.
    "smoke": AblationBudget(steps=3, batch_size=16, seeds=(0, 1), n_eval=200),
    # cpu: 24 runs of 160 steps at batch 32, about 0.03 s a step on 2 idle cores plus ~1 s of
    # evaluation per run: about 2.5 of the 5 minutes chapter 5 may take.
    "cpu": AblationBudget(steps=160, batch_size=32, seeds=(0, 1, 2), n_eval=1000),
    # gpu: long enough for the hacks to matter; five seeds.
    "gpu": AblationBudget(steps=5000, batch_size=64, seeds=(0, 1, 2, 3, 4), n_eval=10000),
}


def ablation_budget(profile: str | None = None) -> AblationBudget:
    """The ablation budget of ``profile`` (default: the current profile)."""
    return _ABLATION[profiles.current(profile)]


@dataclass(frozen=True)
class DemoBudget:
    """The chapter's single-run demonstrations (D wins, mode collapse): steps, batch size, and
    every how many steps ``every`` the metrics are recorded on ``n_eval`` samples."""

    steps: int
    batch_size: int
    every: int
    n_eval: int


_DEMO = {
    "smoke": DemoBudget(steps=4, batch_size=16, every=2, n_eval=100),
    "cpu": DemoBudget(steps=200, batch_size=32, every=25, n_eval=300),
    "gpu": DemoBudget(steps=3000, batch_size=64, every=250, n_eval=2000),
}


def demo_budget(profile: str | None = None) -> DemoBudget:
    """The budget of the chapter's single-run demonstrations for ``profile``."""
    return _DEMO[profiles.current(profile)]


@dataclass(frozen=True)
class StackedBudget:
    """Stacked MNIST: training images, steps, batch size, and generated samples counted."""

    n_train: int
    steps: int
    batch_size: int
    n_samples: int


_STACKED = {
    "smoke": StackedBudget(n_train=512, steps=3, batch_size=16, n_samples=300),
    "cpu": StackedBudget(n_train=20000, steps=400, batch_size=32, n_samples=2000),
    # PacGAN / VEEGAN count modes in 26,000 samples.
    "gpu": StackedBudget(n_train=128000, steps=20000, batch_size=64, n_samples=26000),
}


def stacked_budget(profile: str | None = None) -> StackedBudget:
    """The Stacked MNIST budget of ``profile`` (default: the current profile)."""
    return _STACKED[profiles.current(profile)]


def ganhack_variants(lr: float = 2e-4) -> dict[str, TrainOptions]:
    """The chapter's ablation: the baseline and one ganhack per variant (Adam ``lr``, beta1 0.5).

    Every variant changes exactly one thing relative to ``baseline`` (non-saturating G loss,
    separate real/fake batches for D, LeakyReLU(0.2) in both networks, no dropout, hard labels).
    """
    base = TrainOptions(lr_g=lr, lr_d=lr, beta1=0.5)
    return {
        "baseline": base,
        "one-sided smoothing 0.1": base.replace(label_smoothing=0.1),
        "soft labels": base.replace(real_label_range=(0.7, 1.0), fake_label_range=(0.0, 0.3)),
        "noisy labels 5%": base.replace(flip_prob=0.05),
        "concat real+fake batch": base.replace(d_batches="concat"),
        "dropout 0.3 in G": base.replace(g_dropout=0.3),
        "ReLU in D": base.replace(d_activation="relu"),
        "lr_d = lr_g / 4": base.replace(lr_d=lr / 4),
    }


# --------------------------------------------------------------------------------------------
# classifier features and the real reference
# --------------------------------------------------------------------------------------------
_TORCH_NETS: dict[str, Any] = {}
_REFERENCES: dict[tuple, Reference] = {}


def classify(images: np.ndarray, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 128) and class probabilities (N, 10) of ``images`` from the shipped classifier.

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
    lg = lg_all.astype(np.float64)
    p = np.exp(lg - lg.max(axis=1, keepdims=True))
    return f_all, p / p.sum(axis=1, keepdims=True)


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


def real_reference(dataset: str = "mnist", n: int = 1000, seed: int = 0,
                   split: str = "test") -> Reference:
    """``n`` real images of ``split`` (a seeded random subset) and their features, cached."""
    from . import classifier

    key = (dataset, n, seed, split)
    if key not in _REFERENCES:
        x, _ = classifier.load_real(dataset, split)
        if n > len(x):
            raise ValueError(f"n={n}: the {dataset} {split} split has only {len(x)} images")
        rows = np.sort(np.random.default_rng([seed, 7]).choice(len(x), n, replace=False))
        images = np.ascontiguousarray(x[rows])
        _REFERENCES[key] = Reference(dataset, split, images, classify(images, dataset)[0])
    return _REFERENCES[key]


def _framework(generator: Any) -> str:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(generator, torch.nn.Module):
        return "torch"
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(generator, keras.Model):
        return "keras"
    raise TypeError(f"evaluate: expected a torch.nn.Module or keras.Model generator, or a uint8 "
                    f"image array, got {type(generator).__name__}")


def _sample(generator: Any, n: int, seed: int) -> np.ndarray:
    if _framework(generator) == "torch":
        from .torch.train import sample
    else:
        from .keras.train import sample
    return sample(generator, n, seed=seed)


def evaluate(generator: Any, dataset: str = "mnist", n: int = 1000, seed: int = 0,
             k: int = 3, real: np.ndarray | None = None) -> dict[str, float]:
    """Score a generator (torch or Keras) or an image array against the real test split.

    Draws ``n`` samples with the framework's ``sample(generator, n, seed)`` (eval mode; an array
    is used as it is) and compares them with as many real test images (:func:`real_reference`),
    or with ``real`` (uint8 NHWC images of ``dataset``) when given:

    - ``fid``: Fréchet distance of the classifier features (this course's scale, not Inception's);
    - ``modes_covered`` (of 10) and ``kl`` (nats, to uniform) of the predicted classes;
    - ``confident``: share of samples whose top class probability is > 0.9;
    - ``precision`` / ``recall``: k-NN manifold precision and recall of the features;
    - ``diversity``: :func:`pair_distance` of the samples over that of the real images (0 when
      every sample is the same image, about 1 for the data's own variety).
    """
    if isinstance(generator, np.ndarray):
        images = generator
    else:
        images = _sample(generator, n, seed)
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
    feats, probs = classify(images, dataset)
    cov = metrics.mode_coverage(probs.argmax(axis=1), probs.shape[1])
    pr = metrics.precision_recall(ref_features, feats, k=k)
    return {
        "fid": metrics.frechet_distance(ref_features, feats),
        "modes_covered": float(cov.covered),
        "kl": cov.kl,
        "confident": float(np.mean(probs.max(axis=1) > CONFIDENCE)),
        "precision": pr.precision,
        "recall": pr.recall,
        "diversity": pair_distance(feats) / ref_pairs,
    }


# --------------------------------------------------------------------------------------------
# callbacks for dcgan_lab.torch.train / dcgan_lab.keras.train
# --------------------------------------------------------------------------------------------
Callback = Callable[[int, Any, Any, Any], None]


def fid_callback(every: int, dataset: str = "mnist", n: int = 500, seed: int = 0,
                 coverage: bool = True) -> Callback:
    """A training callback that adds ``fid`` (and, with ``coverage``, ``modes_covered``, ``kl``,
    ``confident`` and ``diversity``) to the history row of every ``every``-th step.

    This is how ``TrainOptions.metric_every`` is honoured: :func:`run_ablation` adds
    ``fid_callback(options.metric_every)`` to each run that sets it.
    """
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every={every!r}: need a positive integer number of steps")

    def cb(step: int, G: Any, D: Any, history: Any) -> None:
        if step % every:
            return
        images = _sample(G, n, seed)
        feats, probs = classify(images, dataset)
        row = history.rows[-1]
        ref = real_reference(dataset, n, seed)
        row["fid"] = metrics.frechet_distance(ref.features, feats)
        if coverage:
            cov = metrics.mode_coverage(probs.argmax(axis=1), probs.shape[1])
            row["modes_covered"] = float(cov.covered)
            row["kl"] = cov.kl
            row["confident"] = float(np.mean(probs.max(axis=1) > CONFIDENCE))
            row["diversity"] = pair_distance(feats) / ref.pair_distance

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
# the ablation runner
# --------------------------------------------------------------------------------------------
def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower()
    return s or "variant"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _data_key(data: str | np.ndarray | None) -> Any:
    if isinstance(data, np.ndarray):
        digest = hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]
        return {"array": list(data.shape), "sha1": digest}
    return data


def _cache_key(settings: Mapping[str, Any]) -> str:
    text = json.dumps(_jsonable(settings), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


_FORMATS = {"starved": "{:.0f}", "grad_g": "{:.3g}", "loss_d": "{:.3f}", "loss_g": "{:.3f}", "n": "{:.0f}",
            "uniform_expected": "{:.0f}", "diversity": "{:.2f}", "fid": "{:.2f}", "modes_covered": "{:.1f}", "kl": "{:.3f}", "confident": "{:.3f}",
            "precision": "{:.3f}", "recall": "{:.3f}", "d_real": "{:.2f}", "d_fake": "{:.2f}",
            "seconds": "{:.1f}"}
_TITLES = {"grad_g": "|grad G|", "loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)",
           "n": "samples", "uniform_expected": "uniform would cover", "diversity": "diversity", "fid": "FD (classifier)", "modes_covered": "modes /10", "kl": "KL (nats)",
           "confident": "confident", "precision": "precision", "recall": "recall",
           "d_fake": "D(G(z))", "seconds": "train s"}


@dataclass
class AblationTable:
    """Rows (one per variant and seed) and their mean ± sample standard deviation per variant.

    ``rows``: dicts with ``variant``, ``seed``, the :data:`METRICS`, ``d_real``/``d_fake`` (D's
    mean outputs over the last 10% of steps), ``seconds`` (training time), ``run_dir`` and
    ``cached`` (True when the row came from the cache). ``settings``: the shared budget.
    """

    rows: list[dict[str, Any]]
    variants: list[str]
    settings: dict[str, Any]
    columns: tuple[str, ...] = ("fid", "modes_covered", "kl", "confident", "recall", "diversity")

    def values(self, variant: str, metric: str) -> list[float]:
        """The per-seed values of ``metric`` for ``variant``."""
        if variant not in self.variants:
            raise KeyError(f"no variant {variant!r}: the table has {', '.join(self.variants)}")
        return [r[metric] for r in self.rows if r["variant"] == variant]

    def mean(self, variant: str, metric: str) -> float:
        return _mean_std(self.values(variant, metric))[0]

    def std(self, variant: str, metric: str) -> float:
        """Sample standard deviation over seeds (ddof=1; 0 with a single seed)."""
        return _mean_std(self.values(variant, metric))[1]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per variant: ``variant``, ``n_seeds``, and ``{metric}_mean``/``{metric}_std``."""
        out = []
        for v in self.variants:
            row: dict[str, Any] = {"variant": v, "n_seeds": len(self.values(v, "fid"))}
            for m in dict.fromkeys((*METRICS, *self.columns, "d_real", "d_fake", "seconds")):
                row[f"{m}_mean"], row[f"{m}_std"] = _mean_std(self.values(v, m))
            out.append(row)
        return out

    @property
    def n_cached(self) -> int:
        return sum(bool(r.get("cached")) for r in self.rows)

    def compare(self, metric: str, baseline: str = "baseline") -> dict[str, str]:
        """For each variant other than ``baseline``: "better", "worse" or "within the spread".

        A difference counts only when the intervals mean ± std of the variant and of the baseline
        do not overlap (a deliberately modest test for a handful of seeds). With a single seed
        there is no spread to judge by, and every variant is "not judged (one seed)".
        """
        lower = METRICS.get(metric, True)
        mb, sb = self.mean(baseline, metric), self.std(baseline, metric)
        out = {}
        for v in self.variants:
            if v == baseline:
                continue
            mv, sv = self.mean(v, metric), self.std(v, metric)
            if min(len(self.values(v, metric)), len(self.values(baseline, metric))) < 2:
                out[v] = "not judged (one seed)"
            elif abs(mv - mb) <= sv + sb or not np.isfinite(mv - mb):
                out[v] = "within the spread"
            else:
                out[v] = "better" if (mv < mb) == lower else "worse"
        return out

    def describe(self, metric: str = "fid", baseline: str = "baseline") -> str:
        """A sentence built from the numbers: which variants beat or trail ``baseline`` on
        ``metric`` beyond the seed-to-seed spread, and which are within it."""
        fmt = _FORMATS.get(metric, "{:.3g}")
        name = _TITLES.get(metric, metric)
        verdicts = self.compare(metric, baseline)

        def cell(v: str) -> str:
            return f"{v} ({fmt.format(self.mean(v, metric))} ± {fmt.format(self.std(v, metric))})"

        groups = {k: [v for v, w in verdicts.items() if w == k]
                  for k in ("better", "worse", "within the spread")}
        n_base = len(self.values(baseline, metric))
        parts = [f"On {name} the baseline scores {fmt.format(self.mean(baseline, metric))} ± "
                 f"{fmt.format(self.std(baseline, metric))} over {n_base} seed"
                 f"{'s' if n_base != 1 else ''}"]
        if any(w.startswith("not judged") for w in verdicts.values()):
            return (parts[0] + "; with a single seed there is no spread to tell a real difference "
                    "from seed-to-seed noise, so no variant is judged.")
        if groups["better"]:
            parts.append("better beyond the spread: " + "; ".join(map(cell, groups["better"])))
        if groups["worse"]:
            parts.append("worse beyond the spread: " + "; ".join(map(cell, groups["worse"])))
        if groups["within the spread"]:
            n = len(groups["within the spread"])
            parts.append(f"{'every other variant' if n == len(verdicts) else f'{n} other variant'}"
                         f"{'s' if 1 < n < len(verdicts) else ''} within the spread (mean ± std "
                         f"overlapping the baseline's)")
        return "; ".join(parts) + "."

    # -- display -------------------------------------------------------------------------------
    def _cells(self) -> tuple[list[str], list[list[str]]]:
        cols = [*self.columns, "d_fake"]
        head = ["variant", *(_TITLES.get(c, c) for c in cols)]
        body = []
        for s in self.summary():
            line = [s["variant"]]
            for c in cols:
                fmt = _FORMATS.get(c, "{:.3g}")
                line.append(f"{fmt.format(s[c + '_mean'])} ± {fmt.format(s[c + '_std'])}")
            body.append(line)
        return head, body

    def caption(self) -> str:
        s = self.settings
        return (f"{s['recipe']} ({s['framework']}), {s['steps']} steps at batch {s['batch_size']}, "
                f"seeds {', '.join(map(str, s['seeds']))}; {s['n_eval']} samples per run scored "
                f"against {s['n_eval']} real test images; mean ± std over seeds; D(G(z)): D's "
                f"mean output on the fakes over the last tenth of the steps ({self.n_cached} of "
                f"{len(self.rows)} runs from the cache)")

    def __str__(self) -> str:
        head, body = self._cells()
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = [self.caption(),
                 "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                           for i, (h, w) in enumerate(zip(head, widths, strict=True)))]
        lines.append("  ".join("-" * w for w in widths))
        for r in body:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        """Mean above, ± std below in small grey type: narrow enough for a book page."""
        head, body = self._cells()
        th = "".join(f"<th style='text-align:{'left' if i == 0 else 'right'}'>{html.escape(h)}</th>"
                     for i, h in enumerate(head))

        def td(i: int, c: str) -> str:
            if i == 0:
                return f"<td style='text-align:left'>{html.escape(c)}</td>"
            mean, _, std = c.partition(" ± ")
            return (f"<td style='text-align:right;white-space:nowrap'>{html.escape(mean)}<br>"
                    f"<span style='color:#777;font-size:0.85em'>± {html.escape(std)}</span></td>")

        trs = "".join("<tr>" + "".join(td(i, c) for i, c in enumerate(r)) + "</tr>" for r in body)
        return (f"<table class='dcgan-lab-ablation' style='font-size:0.9em'><caption>"
                f"{html.escape(self.caption())}</caption><thead><tr>{th}</tr></thead>"
                f"<tbody>{trs}</tbody></table>")

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "variants": self.variants, "rows": self.rows,
                "summary": self.summary()}


@dataclass
class ScoreTable:
    """Named rows of scores (``name -> {column: value}``) shown as a text or HTML table."""

    scores: dict[str, dict[str, float]]
    columns: tuple[str, ...] | None = None
    caption: str = ""
    titles: dict[str, str] | None = None  # column -> header, over the defaults

    def _cols(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        return list(dict.fromkeys(k for row in self.scores.values() for k in row))

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        cols = self._cols()
        titles = {**_TITLES, **(self.titles or {})}
        head = ["", *(titles.get(c, c) for c in cols)]
        body = [[name, *(_FORMATS.get(c, "{:.3g}").format(row[c]) if c in row else "-"
                         for c in cols)] for name, row in self.scores.items()]
        return head, body

    def __getitem__(self, name: str) -> dict[str, float]:
        return self.scores[name]

    def __str__(self) -> str:
        head, body = self._cells()
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = [self.caption] if self.caption else []
        for r in [head, ["-" * w for w in widths], *body]:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head, body = self._cells()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(
            f"<td style='text-align:{'left' if i == 0 else 'right'}'>{html.escape(c)}</td>"
            for i, c in enumerate(r)) + "</tr>" for r in body)
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table class='dcgan-lab-scores'>{cap}<thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def ruler_position(value: float, ruler: Mapping[str, float]) -> str:
    """Where ``value`` (a Fréchet distance) falls on a ruler of named reference distances, e.g.
    ``"between 'blur 1' (12.3) and 'blur 2' (45.6)"`` or ``"above every reference ..."``."""
    if not ruler:
        raise ValueError("ruler is empty: pass name -> distance")
    items = sorted(ruler.items(), key=lambda kv: kv[1])
    if value < items[0][1]:
        return f"below every reference, even '{items[0][0]}' ({items[0][1]:.2f})"
    if value >= items[-1][1]:
        return f"above every reference, even '{items[-1][0]}' ({items[-1][1]:.2f})"
    for (lo_name, lo), (hi_name, hi) in zip(items, items[1:]):  # noqa: B905
        if lo <= value < hi:
            return f"between '{lo_name}' ({lo:.2f}) and '{hi_name}' ({hi:.2f})"
    raise AssertionError("unreachable")


def tail_means(histories: Mapping[str, Any], columns: Sequence[str] = ("loss_d", "d_real",
               "d_fake", "grad_g"), frac: float = 0.2) -> ScoreTable:
    """Mean of each history column over the last ``frac`` of the steps, one row per run."""
    scores = {}
    for name, h in histories.items():
        tail = max(1, int(round(len(h) * frac)))
        scores[name] = {c: float(np.nanmean(h[c][-tail:])) for c in columns}
    return ScoreTable(scores, tuple(columns),
                      f"mean over the last {frac:.0%} of the steps of each run")


def starved_steps(history: Any, threshold: float = 0.01, consecutive: bool = False) -> int:
    """Steps at which D's mean output on the fakes, ``d_fake``, was below ``threshold``: steps at
    which D rejected G's samples outright (with the minimax G loss, G's gradient is then ~0).
    ``consecutive``: the longest streak of such steps instead of their number."""
    below = [v < threshold for v in history["d_fake"]]
    if not consecutive:
        return int(sum(below))
    best = run = 0
    for b in below:
        run = run + 1 if b else 0
        best = max(best, run)
    return best


def history_summary(histories: Mapping[str, Any], columns: Sequence[str] = ("loss_d", "d_fake",
                    "grad_g"), threshold: float = 0.01) -> ScoreTable:
    """Per run: the median of each column over all steps, and :func:`starved_steps`."""
    scores = {}
    for name, h in histories.items():
        row = {c: float(np.nanmedian(h[c])) for c in columns}
        row["starved"] = float(starved_steps(h, threshold))
        scores[name] = row
    n = max((len(h) for h in histories.values()), default=0)
    return ScoreTable(scores, (*columns, "starved"),
                      f"medians over all {n} steps; starved: steps with D(G(z)) < {threshold:g}",
                      titles={c: f"median {_TITLES.get(c, c)}" for c in columns} | {
                          "starved": f"steps with D(G(z)) < {threshold:g}"})


def show_rows(named_images: Mapping[str, np.ndarray], n: int = 10, scale: float = 0.9):
    """One labelled row of ``n`` images per entry; return the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from . import viz

    k = len(named_images)
    fig, axes = plt.subplots(k, 1, figsize=(scale * n * 0.75 + 2.2, scale * 0.85 * k + 0.2),
                             squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], named_images.items(), strict=True):
        grid = viz.make_grid(np.asarray(images)[:n], nrow=n)
        if grid.shape[-1] == 1:
            ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(grid, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        for sp in ax.spines.values():
            sp.set_visible(False)
    fig.tight_layout()
    return fig


def plot_ablation(table: AblationTable, columns: Sequence[str] = ("fid", "modes_covered", "kl"),
                  baseline: str | None = "baseline"):
    """One panel per metric: each seed as a dot, the mean ± std as a bar, the baseline's band
    shaded; return the matplotlib Figure."""
    import matplotlib.pyplot as plt

    names = table.variants
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 0.45 * len(names) + 1.4),
                             sharey=True, squeeze=False)
    y = np.arange(len(names))[::-1]
    for ax, m in zip(axes[0], columns, strict=True):
        if baseline in names:
            mb, sb = table.mean(baseline, m), table.std(baseline, m)
            ax.axvspan(mb - sb, mb + sb, color="#dddddd", zorder=0, label="baseline ± std")
        for yi, v in zip(y, names, strict=True):
            vals = table.values(v, m)
            ax.plot(vals, np.full(len(vals), yi), "o", ms=4, color="#4c72b0", alpha=0.6)
            ax.errorbar(table.mean(v, m), yi, xerr=table.std(v, m), fmt="|", ms=14, mew=2,
                        color="#dd8452", capsize=3)
        ax.set_title(_TITLES.get(m, m) + (" (lower is better)" if METRICS.get(m) else ""),
                     fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, names)
    fig.tight_layout()
    return fig


def plot_curves(histories: Mapping[str, Any], columns: Sequence[str] = ("loss_d", "d_fake"),
                logy: Iterable[str] = (), smooth: float = 0.0, titles: Mapping[str, str] | None = None):
    """One panel per history column, one line per run (``histories``: name -> History);
    ``logy`` columns get a log scale; ``smooth`` is an EMA factor in [0, 1). Return the Figure."""
    import matplotlib.pyplot as plt

    names = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))",
             "grad_g": "|grad of G's loss|", "fid": "FD (classifier)",
             "modes_covered": "classes covered (of 10)", "kl": "KL to uniform (nats)",
             "diversity": "diversity (real = 1)", "confident": "confident share",
             **(titles or {})}
    logy = set(logy)
    fig, axes = plt.subplots(1, len(columns), figsize=(4.3 * len(columns), 3.3), squeeze=False)
    for ax, col in zip(axes[0], columns, strict=True):
        for label, h in histories.items():
            rows = [r for r in h.rows if col in r]
            x = np.array([r["step"] for r in rows], np.float64)
            v = np.array([r[col] for r in rows], np.float64)
            if smooth > 0 and len(v):
                acc, out = v[0], []
                for a in v:
                    acc = smooth * acc + (1 - smooth) * a
                    out.append(acc)
                v = np.array(out)
            ax.plot(x, v, "-" if len(v) > 30 else "o-", ms=3, label=label)
        if col in logy:
            ax.set_yscale("log")
        ax.set_title(names.get(col, col), fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _read_cache(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"note: {path} is unreadable; ignoring the ablation cache there")
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    return dict(data.get("runs", {}))


def run_ablation(
    variants: Mapping[str, TrainOptions],
    recipe: str | recipes.Recipe = "torch-mnist",
    seeds: Iterable[int] | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    out_dir: str | Path = "runs/ablation",
    framework: str = "torch",
    *,
    n_eval: int | None = None,
    dataset: str | None = None,
    data: str | np.ndarray | None = None,
    profile: str | None = None,
    callbacks: Sequence[Callback] = (),
    use_cache: bool = True,
    verbose: bool = True,
    log_runs: bool = False,
) -> AblationTable:
    """Train every variant for every seed, evaluate each run, and tabulate mean ± std.

    ``variants`` maps a name to :class:`~dcgan_lab.training.TrainOptions`; their ``seed``,
    ``steps`` and ``batch_size`` are replaced by each seed and the shared budget (``None``: the
    profile's :func:`ablation_budget`). Runs go to ``out_dir/<variant>/seed<k>`` (trained with
    ``force=True``, ``progress=False``) and are scored by :func:`evaluate` on ``n_eval`` samples.
    A variant with ``metric_every`` gets a :func:`fid_callback` (its history gains ``fid``).

    Each finished run is recorded in ``out_dir/ablation.json`` under a key made of every setting
    that defines it (recipe, framework, options, seed, budget, data, evaluation); a later call
    with the same settings reuses the row instead of retraining (``use_cache=False`` retrains).
    ``verbose`` prints the data file and a closing summary; ``log_runs`` one line per run.
    """
    if framework == "torch":
        from .torch.train import load_generator, train
    elif framework == "keras":
        from .keras.train import load_generator, train
    else:
        raise ValueError(f"framework={framework!r}: choose torch or keras")
    if not variants:
        raise ValueError("variants is empty: pass a dict of name -> TrainOptions")
    slugs = [_slug(v) for v in variants]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"variant names {list(variants)} give clashing folder names {slugs}")
    budget = ablation_budget(profile)
    seeds = tuple(int(s) for s in (budget.seeds if seeds is None else seeds))
    if not seeds:
        raise ValueError("seeds is empty: pass at least one seed")
    steps = budget.steps if steps is None else int(steps)
    batch_size = budget.batch_size if batch_size is None else int(batch_size)
    n_eval = budget.n_eval if n_eval is None else int(n_eval)
    r = recipes.get(recipe)
    dataset = dataset or r.dataset
    if data is None or (isinstance(data, str) and not Path(data).expanduser().is_dir()):
        from . import data as data_mod  # load once (and say which file), not once per run

        data_id: Any = data or r.dataset
        data, _ = data_mod.load(data_id, "train", verbose=verbose)
    else:
        data_id = _data_key(data)
    out = Path(out_dir)
    cache_path = out / CACHE_FILE
    cache = _read_cache(cache_path) if use_cache else {}
    settings = {"recipe": r.name, "framework": framework, "steps": steps, "batch_size": batch_size,
                "seeds": list(seeds), "n_eval": n_eval, "dataset": dataset}

    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for (name, options), slug in zip(variants.items(), slugs, strict=True):
        if not isinstance(options, TrainOptions):
            raise TypeError(f"variant {name!r}: expected TrainOptions, got {type(options).__name__}")
        for seed in seeds:
            opts = options.replace(seed=seed, steps=steps, batch_size=batch_size,
                                   sample_every=steps, checkpoint_every=steps)
            key = _cache_key({"version": CACHE_VERSION, "recipe": r.name, "framework": framework,
                              "options": opts, "data": data_id, "dataset": dataset,
                              "n_eval": n_eval})
            run_dir = out / slug / f"seed{seed}"
            if key in cache:
                rows.append({**cache[key], "variant": name, "cached": True})
                continue
            cbs = list(callbacks)
            if opts.metric_every:
                cbs.append(fid_callback(opts.metric_every, dataset, n=min(n_eval, 500)))
            t0 = time.perf_counter()
            history = train(r, run_dir, options=opts, data=data, force=True, progress=False,
                            callbacks=cbs)
            seconds = time.perf_counter() - t0
            scores = evaluate(load_generator(run_dir), dataset, n=n_eval, seed=0)
            tail = max(1, len(history) // 10)
            row = {"variant": name, "seed": seed, **scores,
                   "d_real": float(np.mean(history["d_real"][-tail:])),
                   "d_fake": float(np.mean(history["d_fake"][-tail:])),
                   "seconds": seconds, "run_dir": str(run_dir), "key": key}
            cache[key] = row
            write_json(cache_path, {"version": CACHE_VERSION, "runs": cache})
            rows.append({**row, "cached": False})
            if log_runs:
                print(f"{name} seed {seed}: FD {scores['fid']:.2f}, modes "
                      f"{scores['modes_covered']:.0f}/10, confident {scores['confident']:.2f} "
                      f"({seconds:.1f} s)")
    table = AblationTable(rows, list(variants), settings)
    if verbose:
        print(f"{len(rows)} runs ({table.n_cached} from {cache_path}) in "
              f"{time.perf_counter() - t_all:.0f} s")
    return table


# --------------------------------------------------------------------------------------------
# Stacked MNIST: 1000 modes
# --------------------------------------------------------------------------------------------
def stacked_models(seed: int = 0, *, g_dropout: float = 0.0, g_activation: str | None = None,
                   d_activation: str | None = None) -> tuple[Any, Any]:
    """The ``torch-mnist`` pair with three image channels (28x28x3), for Stacked MNIST.

    ``dcgan_lab.torch.build("torch-mnist")`` is fixed to one channel, so this builds it and swaps
    G's last transposed convolution (32 -> 3) and D's first convolution (3 -> 32), initialised
    N(0, 0.02) like the rest (DCGAN init). Everything else is the recipe's.
    """
    import torch
    from torch import nn

    from .torch.models import build

    torch.manual_seed(seed)
    G, D = build("torch-mnist", g_dropout=g_dropout, g_activation=g_activation,
                 d_activation=d_activation)
    last, first = G.net[-2], D.net[0]
    if not (isinstance(last, nn.ConvTranspose2d) and isinstance(first, nn.Conv2d)):
        raise RuntimeError("torch-mnist changed: expected ConvTranspose2d at G.net[-2] and Conv2d at "
                           "D.net[0]; update stacked_models")
    G.net[-2] = nn.ConvTranspose2d(last.in_channels, 3, last.kernel_size, last.stride,
                                   last.padding, bias=False)
    D.net[0] = nn.Conv2d(3, first.out_channels, first.kernel_size, first.stride, first.padding,
                         bias=False)
    for layer in (G.net[-2], D.net[0]):
        nn.init.normal_(layer.weight, 0.0, 0.02)
    shape3 = recipes.get("torch-mnist").replace(image_shape=(28, 28, 3))
    G.recipe = D.recipe = shape3
    D.input_shape = (3, 28, 28)
    return G, D


def train_stacked(
    options: TrainOptions | None = None,
    *,
    steps: int | None = None,
    batch_size: int | None = None,
    n_train: int | None = None,
    seed: int = 0,
    data: np.ndarray | None = None,
    profile: str | None = None,
    device: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[Any, Any, Any]:
    """Train the 3-channel ``torch-mnist`` DCGAN on Stacked MNIST; return ``(G, D, history)``.

    Each step is :func:`dcgan_lab.torch.train_step` (the trainer's own step, with every option of
    ``options``); there is no run folder, checkpoint or sample grid. ``data`` defaults to
    ``stacked_mnist.make(n_train, seed)``; ``None`` budgets come from :func:`stacked_budget`.
    """
    import torch

    from . import stacked_mnist, training
    from .history import History
    from .torch.train import pick_device, train_step

    b = stacked_budget(profile)
    opts = (options or TrainOptions()).replace(
        seed=seed, steps=steps or b.steps, batch_size=batch_size or b.batch_size)
    cfg = training.resolve("torch-mnist", "torch", opts, profile)
    if data is None:
        data, _ = stacked_mnist.make(n_train or b.n_train, seed=seed)
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
        training.check_finite(step, loss_d=m["loss_d"], loss_g=m["loss_g"])
        history.log(step=step, **m, seconds=time.perf_counter() - t0)
        for cb in callbacks:
            cb(step, G, D, history)
    return G.eval(), D.eval(), history


def stacked_evaluate(generator: Any, n: int | None = None, seed: int = 0,
                     profile: str | None = None) -> dict[str, float]:
    """Modes of Stacked MNIST covered by ``n`` samples of ``generator`` (or an image array).

    Each channel is classified by the shipped MNIST classifier (:func:`classify`); the mode is
    ``100 * red + 10 * green + blue``. Returns ``modes_covered`` (of 1000), ``kl`` (nats, to
    uniform; at most log 1000 = 6.91), ``n`` and ``uniform_expected``: the modes a perfect uniform
    generator would cover with ``n`` samples, 1000 (1 - (1 - 1/1000)^n).
    """
    from .stacked_mnist import N_MODES

    images = generator if isinstance(generator, np.ndarray) else _sample(
        generator, n or stacked_budget(profile).n_samples, seed)
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1:] != (28, 28, 3):
        raise ValueError(f"stacked-MNIST images must be (N, 28, 28, 3), got {x.shape}")
    k = len(x)
    per_channel = np.ascontiguousarray(x.transpose(3, 0, 1, 2))[..., None].reshape(3 * k, 28, 28, 1)
    digits = classify(per_channel, "mnist")[1].argmax(axis=1).reshape(3, k)
    cov = metrics.mode_coverage(100 * digits[0] + 10 * digits[1] + digits[2], N_MODES)
    return {"modes_covered": float(cov.covered), "kl": cov.kl, "n": float(k),
            "uniform_expected": float(N_MODES * (1 - (1 - 1 / N_MODES) ** k))}


# --------------------------------------------------------------------------------------------
# degraded real images (what does a difference in FID mean?)
# --------------------------------------------------------------------------------------------
def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """uint8 images plus Gaussian noise of standard deviation ``sigma`` (in [-1, 1] units)."""
    from . import data

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
