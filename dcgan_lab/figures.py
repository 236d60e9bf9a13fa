"""Figures and notebook display of image grids (numpy + Pillow; matplotlib imported lazily).

Above :mod:`dcgan_lab.scoring` in the house: the run loop writes its PNGs and GIF with
:mod:`dcgan_lab.grids` and never reaches this module, the tables or the scores.

- Images: :func:`make_grid`, :func:`save_png`, :func:`save_gif` (from :mod:`dcgan_lab.grids`,
  re-exported here), :func:`show_grid`, :func:`compare_grids`, :func:`show_rows` (one labelled
  row of images per entry).
- Training and experiments: :func:`plot_losses` (one run's losses), :func:`plot_curves` (a
  history column per panel, one line per run), :func:`plot_ablation` (an ablation's seeds, mean ±
  std and the baseline's band).

Every function accepts images as numpy arrays, torch tensors or TF tensors, uint8 (0..255) or
float in [-1, 1], channels-last (NHWC, Keras) or channels-first (NCHW, PyTorch), grayscale or RGB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .grids import make_grid, save_gif, save_png  # noqa: F401  (re-exported: chapters use figures.*)

if TYPE_CHECKING:
    from .scoring.tables import AblationTable

__all__ = ["compare_grids", "make_grid", "plot_ablation", "plot_curves", "plot_losses", "save_gif",
           "save_png", "show_grid", "show_rows"]


# --------------------------------------------------------------------------------------------
# training curves

_LABELS = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))"}
_X_KEYS = ("step", "iteration", "epoch")


def _columns(history) -> dict[str, list]:
    """dict of lists / object with .columns() / DataFrame / list of dict rows -> dict of lists."""
    cols = getattr(history, "columns", None)
    if callable(cols):
        out = cols()
        if isinstance(out, Mapping):
            return {k: list(v) for k, v in out.items()}
        return {k: list(history[k]) for k in out}
    if cols is not None and hasattr(history, "__getitem__"):  # pandas DataFrame
        return {str(k): list(history[k]) for k in cols}
    if isinstance(history, Mapping):
        return {k: list(v) for k, v in history.items()}
    rows = getattr(history, "rows", history)
    rows = list(rows)
    if rows and isinstance(rows[0], Mapping):
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        return {k: [r.get(k, math.nan) for r in rows] for k in keys}
    raise TypeError("plot_losses expects a dict of lists, a list of dict rows, or an object with "
                    f".columns(); got {type(history).__name__}")


def _numeric(v: list) -> np.ndarray | None:
    try:
        a = np.asarray([math.nan if x is None else x for x in v], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == 1 else None


def _ema(a: np.ndarray, alpha: float) -> np.ndarray:
    if alpha <= 0:
        return a
    out, acc = np.empty_like(a), math.nan
    for i, v in enumerate(a):
        acc = v if math.isnan(acc) else (acc if math.isnan(v) else alpha * acc + (1 - alpha) * v)
        out[i] = acc
    return out


def plot_losses(history, ax=None, smooth: float = 0.0):
    """Plot GAN training curves; return the matplotlib Figure.

    ``history``: a dict of lists, an object with ``.columns()``, a DataFrame, or a list of dict
    rows. Keys starting with ``loss`` (``loss_d``, ``loss_g``) go on the loss panel; keys starting
    with ``d_`` (``d_real`` = D(x), ``d_fake`` = D(G(z))) on a second panel with a 0.5 reference
    line. The x axis is ``step`` (or ``iteration``/``epoch``) if present, else the row index.
    ``ax``: one Axes (everything there, D outputs on a twin axis) or two Axes. ``smooth`` in
    [0, 1) is an exponential moving-average factor (0 = raw values).
    """
    import matplotlib.pyplot as plt

    cols = _columns(history)
    xkey = next((k for k in _X_KEYS if k in cols), None)
    series = {k: a for k, v in cols.items() if k != xkey and (a := _numeric(v)) is not None}
    n = max((len(a) for a in series.values()), default=0)
    x = _numeric(cols[xkey]) if xkey else np.arange(n)
    losses = {k: a for k, a in series.items() if k.startswith("loss")}
    dvals = {k: a for k, a in series.items() if k.startswith("d_")}
    if not losses and not dvals:
        raise ValueError(f"plot_losses: no loss_* or d_* columns in {sorted(cols)}")

    twin = False
    if ax is None:
        panels = int(bool(losses)) + int(bool(dvals))
        fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.6), squeeze=False)
        axes = list(axes[0])
        ax_l = axes[0] if losses else None
        ax_d = axes[-1] if dvals else None
    elif isinstance(ax, (Sequence, np.ndarray)):
        ax_l, ax_d = list(ax)[:2]
        fig = ax_l.figure
    else:
        fig, ax_l = ax.figure, ax
        twin = bool(dvals and losses)
        ax_d = ax.twinx() if twin else ax

    if losses and ax_l is not None:
        for k, a in losses.items():
            ax_l.plot(x[: len(a)], _ema(a, smooth), label=_LABELS.get(k, k))
        ax_l.set_xlabel(xkey or "row")
        ax_l.set_ylabel("loss")
        ax_l.set_title("losses")
        ax_l.legend(loc="best")
    if dvals and ax_d is not None:
        style = "--" if twin else "-"
        for k, a in dvals.items():
            ax_d.plot(x[: len(a)], _ema(a, smooth), style, label=_LABELS.get(k, k))
        ax_d.axhline(0.5, color="grey", lw=0.8, ls=":", label="0.5")
        ax_d.set_ylim(-0.02, 1.02)
        ax_d.set_ylabel("D output")
        if not twin:
            ax_d.set_xlabel(xkey or "row")
            ax_d.set_title("D(x) and D(G(z))")
        ax_d.legend(loc="best")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# notebook display


def _imshow(ax, grid: np.ndarray, title: str | None) -> None:
    if grid.shape[-1] == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title)


def show_grid(images, title: str | None = None, nrow: int = 8, scale: float = 1.0):
    """Show a batch as one grid in a matplotlib Figure (no ticks); return the Figure."""
    import matplotlib.pyplot as plt

    grid = make_grid(images, nrow=nrow)
    h, w = grid.shape[:2]
    inches = scale * max(2.5, min(8.0, w / 40))
    fig, ax = plt.subplots(figsize=(inches, inches * h / w + (0.4 if title else 0)))
    _imshow(ax, grid, title)
    fig.tight_layout()
    return fig


def compare_grids(real, fake, titles: tuple[str, str] = ("real", "generated"), nrow: int = 8):
    """Real and generated batches side by side (two panels); return the Figure."""
    import matplotlib.pyplot as plt

    grids = [make_grid(real, nrow=nrow), make_grid(fake, nrow=nrow)]
    aspect = max(g.shape[0] / g.shape[1] for g in grids)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5 * aspect + 0.5))
    for ax, g, t in zip(axes, grids, titles, strict=True):
        _imshow(ax, g, t)
    fig.tight_layout()
    return fig


def show_rows(named_images: Mapping[str, np.ndarray], n: int = 10, scale: float = 0.9):
    """One labelled row of ``n`` images per entry; return the matplotlib Figure."""
    import matplotlib.pyplot as plt

    k = len(named_images)
    fig, axes = plt.subplots(k, 1, figsize=(scale * n * 0.75 + 2.2, scale * 0.85 * k + 0.2),
                             squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], named_images.items(), strict=True):
        _imshow(ax, make_grid(np.asarray(images)[:n], nrow=n), None)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_ablation(table: AblationTable, columns: Sequence[str] = ("fid", "modes_covered", "kl"),
                  baseline: str | None = "baseline"):
    """One panel per metric: each seed as a dot, the mean ± std as a bar, the baseline's band
    shaded; return the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from .scoring.evaluation import METRICS
    from .scoring.tables import TITLES

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
        ax.set_title(TITLES.get(m, m) + (" (lower is better)" if METRICS.get(m) else ""),
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
