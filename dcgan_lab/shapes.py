"""Layer-by-layer shape tables, framework-free.

``dcgan_lab.torch.summary(model)`` and ``dcgan_lab.keras.summary(model)`` both return a
:class:`ShapeTable`: one row per layer with its output shape (without the batch dimension; PyTorch
(C, H, W), Keras (H, W, C)) and its trainable parameters. ``str(table)`` is an aligned text table,
and in Jupyter the table renders as HTML. :func:`side_by_side` puts two tables next to each other
(e.g. the PyTorch and Keras twins of one recipe).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["ShapeRow", "ShapeTable", "SideBySide", "side_by_side", "format_shape"]


def format_shape(shape: Sequence[int | None]) -> str:
    """``(1024, 4, 4)`` -> ``"1024x4x4"``; ``(100,)`` -> ``"100"``; unknown sizes print as ``?``."""
    return "x".join("?" if s is None else str(int(s)) for s in shape) or "scalar"


@dataclass(frozen=True)
class ShapeRow:
    """One layer: its name, output shape (no batch dimension) and trainable parameters."""

    layer: str
    output_shape: tuple[int | None, ...]
    params: int = 0


@dataclass
class ShapeTable:
    """Rows of (layer, output shape, trainable params) with the total; text and HTML renderings."""

    rows: list[ShapeRow]
    title: str = ""
    layout: str = ""  # "CHW" (PyTorch) or "HWC" (Keras)
    non_trainable_params: int = 0
    headers: tuple[str, str, str] = field(default=("layer", "output shape", "params"))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, Sequence[int | None], int]], **kw) -> ShapeTable:
        return cls([ShapeRow(str(n), tuple(s), int(p)) for n, s, p in rows], **kw)

    @property
    def total_params(self) -> int:
        """Total trainable parameters (the sum of the params column)."""
        return sum(r.params for r in self.rows)

    @property
    def shapes(self) -> list[tuple[int | None, ...]]:
        """The output shapes, first row (the input) to last."""
        return [r.output_shape for r in self.rows]

    @property
    def path(self) -> str:
        """The shapes as one line, e.g. ``"100 -> 1024x4x4 -> ... -> 3x64x64"`` (changes only)."""
        out: list[str] = []
        for s in self.shapes:
            f = format_shape(s)
            if not out or out[-1] != f:
                out.append(f)
        return " -> ".join(out)

    def _cells(self) -> list[tuple[str, str, str]]:
        body = [(r.layer, format_shape(r.output_shape), f"{r.params:,}") for r in self.rows]
        total = ("total trainable", "", f"{self.total_params:,}")
        return [self.headers, *body, total]

    def lines(self) -> list[str]:
        """The text rendering, one string per line."""
        cells = self._cells()
        widths = [max(len(c[i]) for c in cells) for i in range(3)]

        def fmt(c):
            return f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:>{widths[2]}}"

        rule = "-" * (sum(widths) + 4)
        out = [self.title] if self.title else []
        out += [fmt(cells[0]), rule, *(fmt(c) for c in cells[1:-1]), rule, fmt(cells[-1])]
        if self.non_trainable_params:
            out.append(f"(+ {self.non_trainable_params:,} non-trainable: BatchNorm statistics)")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th style='text-align:{a}'>{e(h)}</th>"
                       for h, a in zip(self.headers, ("left", "left", "right"), strict=True))
        body = "".join(
            f"<tr><td style='text-align:left'><code>{e(r.layer)}</code></td>"
            f"<td style='text-align:left'>{e(format_shape(r.output_shape))}</td>"
            f"<td style='text-align:right'>{r.params:,}</td></tr>"
            for r in self.rows
        )
        foot = (f"<tr><th style='text-align:left'>total trainable</th><td></td>"
                f"<th style='text-align:right'>{self.total_params:,}</th></tr>")
        cap = f"<caption>{e(self.title)}</caption>" if self.title else ""
        return (f"<table class='dcgan-lab-shapes'>{cap}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}{foot}</tbody></table>")


@dataclass
class SideBySide:
    """Two (or more) tables next to each other: text columns, or HTML tables in a flex row."""

    tables: list[ShapeTable]
    titles: list[str]
    gap: int = 4

    def __str__(self) -> str:
        blocks = []
        for t, title in zip(self.tables, self.titles, strict=True):
            lines = t.lines()
            if t.title:
                lines = lines[1:]
            blocks.append([title, *lines] if title else lines)
        widths = [max(len(x) for x in b) for b in blocks]
        n = max(len(b) for b in blocks)
        sep = " " * self.gap
        rows = []
        for i in range(n):
            rows.append(sep.join(f"{(b[i] if i < len(b) else ''):<{w}}"
                                 for b, w in zip(blocks, widths, strict=True)).rstrip())
        return "\n".join(rows)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<div><h4>{html.escape(title)}</h4>{t._repr_html_()}</div>"
            for t, title in zip(self.tables, self.titles, strict=True)
        )
        return f"<div style='display:flex;gap:2em;align-items:flex-start'>{cells}</div>"


def side_by_side(
    table_a: ShapeTable, table_b: ShapeTable, *more: ShapeTable,
    titles: Sequence[str] | None = None,
) -> SideBySide:
    """Put shape tables next to each other, e.g. ``side_by_side(torch_t, keras_t,
    titles=("PyTorch (C, H, W)", "Keras (H, W, C)"))``; prints as text, renders as HTML."""
    tables = [table_a, table_b, *more]
    if titles is None:
        titles = [t.title for t in tables]
    if len(titles) != len(tables):
        raise ValueError(f"side_by_side got {len(tables)} tables but {len(titles)} titles")
    return SideBySide(list(tables), list(titles))
