"""Chapter-only helpers for the toy 2-D GANs of chapters 1 and 5: budgets, figures, tables.

:func:`budget` gives the seeds and steps of a profile (``smoke`` shrinks the steps so that CI only
checks that the cells run; ``cpu`` and ``gpu`` train the chapter's settings). :func:`plot_run`
draws a row of panels, one per snapshot: D's probability of "real" as a colour map, the data as
orange dots and G's points in black. :func:`coverage_strip` draws which modes were covered at each
snapshot (mode collapse and mode hopping as they happen); :func:`table` renders per-seed results
as a Markdown table of mean ± std and range.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from .. import profiles, toy


@dataclass(frozen=True)
class ToyBudget:
    seeds: tuple[int, ...]
    steps: int          # chapter 1's runs
    steps_ch5: int      # chapter 5's ablation runs
    n_snapshots: int    # snapshots per run (evenly spaced, step 0 included)

    def snapshot_steps(self, steps: int | None = None) -> tuple[int, ...]:
        steps = steps or self.steps
        return tuple(int(round(s)) for s in np.linspace(0, steps, self.n_snapshots + 1)[:-1])


def budget(profile: str | None = None) -> ToyBudget:
    """The toy runs' budget at ``profile`` (default: the current one): always 10 seeds."""
    p = profiles.current(profile)
    if p == "smoke":
        return ToyBudget(tuple(range(10)), 150, 150, 5)
    return ToyBudget(tuple(range(10)), 2000, 1500, 20)


def _panel(ax, run: toy.ToyRun, i: int, n_points: int = 1000, real: np.ndarray | None = None):
    m = toy.mixture(run.config.mixture)
    e = m.extent
    im = ax.imshow(run.surfaces[i], origin="lower", extent=(-e, e, -e, e), cmap="RdBu",
                   vmin=0, vmax=1, alpha=0.8)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:orange", lw=0)
    p = run.points[i][:n_points]
    ax.scatter(p[:, 0], p[:, 1], s=2, c="k", lw=0)
    s = run.summary(i)
    ax.set_title(f"step {run.steps[i]}\n{s['modes_covered']}/{s['n_modes']} modes, "
                 f"HQ {s['high_quality']:.0%}", fontsize=8)
    ax.set(xlim=(-e, e), ylim=(-e, e), xticks=[], yticks=[], aspect="equal")
    return im


def plot_run(run: toy.ToyRun, indices=None, label: str | None = None, axes=None, size: float = 2.2):
    """One row of panels, one per snapshot in ``indices`` (default: up to six, evenly spaced)."""
    n = len(run.steps)
    if indices is None:
        indices = sorted(set(np.linspace(0, n - 1, min(6, n)).round().astype(int)))
    if axes is None:
        fig, axes = plt.subplots(1, len(indices), figsize=(size * len(indices), size + 0.3))
    axes = np.atleast_1d(axes)
    real = toy.sample(run.config.mixture, 1000, seed=99)
    for ax, i in zip(axes, indices, strict=False):
        im = _panel(ax, run, i, real=real)
    if label:
        axes[0].set_ylabel(label, fontsize=9)
    return axes[0].figure, im


def plot_rows(runs: dict[str, toy.ToyRun], indices=None, size: float = 2.2):
    """One row per run (the same snapshot indices in every row) and a colour bar for D."""
    first = next(iter(runs.values()))
    n = len(first.steps)
    if indices is None:
        indices = sorted(set(np.linspace(0, n - 1, min(6, n)).round().astype(int)))
    fig, axes = plt.subplots(len(runs), len(indices), squeeze=False,
                             figsize=(size * len(indices) + 0.8, (size + 0.3) * len(runs)))
    for row, (label, run) in zip(axes, runs.items(), strict=False):
        _, im = plot_run(run, indices, label, row)
    fig.colorbar(im, ax=axes, shrink=0.6, label="D(x): probability of real")
    return fig


def coverage_strip(runs: dict[str, toy.ToyRun], size: float = 3.0):
    """Per run, an image: snapshots (x) by modes (y), dark where the mode was covered."""
    fig, axes = plt.subplots(1, len(runs), figsize=(size * len(runs), size * 0.8), squeeze=False)
    for ax, (label, run) in zip(axes[0], runs.items(), strict=False):
        cov = run.coverage_over_time().T
        steps = run.steps
        ax.imshow(cov, aspect="auto", cmap="Greys", vmin=0, vmax=1, origin="lower",
                  extent=(steps[0], steps[-1], -0.5, cov.shape[0] - 0.5), interpolation="nearest")
        ax.set(title=f"{label}: {run.hops()} mode losses", xlabel="step", ylabel="mode")
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def table(results: dict[str, dict[str, np.ndarray]], n_modes: dict[str, int] | None = None) -> str:
    """Markdown: per row, modes covered and high-quality share as mean ± std [min, max]."""
    lines = ["| setting | seeds | modes covered | high-quality share |", "|---|---|---|---|"]
    for name, r in results.items():
        m, q = r["modes_covered"], r["high_quality"]
        k = f" / {n_modes[name]}" if n_modes and name in n_modes else ""
        lines.append(f"| {name} | {len(m)} | {m.mean():.1f} ± {m.std(ddof=1):.1f}{k} "
                     f"[{m.min():.0f}, {m.max():.0f}] | {q.mean():.1%} ± {q.std(ddof=1):.1%} "
                     f"[{q.min():.1%}, {q.max():.1%}] |")
    return "\n".join(lines)
