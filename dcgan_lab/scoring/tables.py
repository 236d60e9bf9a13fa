"""Tables of scores for a notebook page or a terminal (text and HTML), and what they summarise.

- :class:`AblationTable`: the rows of :func:`dcgan_lab.ablation.run_ablation` (one per variant and
  seed), their mean ± std per variant, a verdict per variant against the baseline
  (:meth:`AblationTable.compare`, :meth:`AblationTable.describe`).
- :class:`ScoreTable`: named rows of scores; :func:`tail_means` and :func:`history_summary` build
  one from training histories; :func:`starved_steps` counts steps at which D rejected every fake;
  :func:`ruler_position` places a Fréchet distance on a ruler of reference distances.

``FORMATS`` and ``TITLES`` give each column's number format and header (also used by
:func:`dcgan_lab.figures.plot_ablation`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluation import METRICS

__all__ = [
    "FORMATS",
    "TITLES",
    "AblationTable",
    "ScoreTable",
    "history_summary",
    "ruler_position",
    "starved_steps",
    "tail_means",
]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _text_table(caption: str, head: list[str], body: list[list[str]]) -> str:
    """A plain-text table: the caption (if any), the header, a rule, the rows; the first column
    left-aligned, the others right-aligned, two spaces apart."""
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [caption] if caption else []
    for r in [head, ["-" * w for w in widths], *body]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


FORMATS = {"starved": "{:.0f}", "grad_g": "{:.3g}", "loss_d": "{:.3f}", "loss_g": "{:.3f}", "n": "{:.0f}",
            "uniform_expected": "{:.0f}", "diversity": "{:.2f}", "fid": "{:.2f}", "modes_covered": "{:.1f}", "kl": "{:.3f}", "confident": "{:.3f}",
            "precision": "{:.3f}", "recall": "{:.3f}", "d_real": "{:.2f}", "d_fake": "{:.2f}",
            "seconds": "{:.1f}"}
TITLES = {"grad_g": "|grad G|", "loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)",
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
        fmt = FORMATS.get(metric, "{:.3g}")
        name = TITLES.get(metric, metric)
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
        head = ["variant", *(TITLES.get(c, c) for c in cols)]
        body = []
        for s in self.summary():
            line = [s["variant"]]
            for c in cols:
                fmt = FORMATS.get(c, "{:.3g}")
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
        return _text_table(self.caption(), *self._cells())

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
        titles = {**TITLES, **(self.titles or {})}
        head = ["", *(titles.get(c, c) for c in cols)]
        body = [[name, *(FORMATS.get(c, "{:.3g}").format(row[c]) if c in row else "-"
                         for c in cols)] for name, row in self.scores.items()]
        return head, body

    def __getitem__(self, name: str) -> dict[str, float]:
        return self.scores[name]

    def __str__(self) -> str:
        return _text_table(self.caption, *self._cells())

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
                      titles={c: f"median {TITLES.get(c, c)}" for c in columns} | {
                          "starved": f"steps with D(G(z)) < {threshold:g}"})
