"""Training history: one row per step, filled the same way by both frameworks, kept as CSV.

The run loop (:mod:`dcgan_lab.loop`) appends each step's row to ``history.csv`` as it goes
(:class:`CsvAppender`: nothing is lost on a crash) and rewrites the whole file at every
checkpoint (so that columns a callback added appear); on resume the rows after the checkpoint's
step are dropped so the file matches the restored state.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Columns every trainer writes, in this order; extra columns (metrics) follow.
COLUMNS = ("step", "loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake", "seconds")
#: The metrics every training step returns (both frameworks).
METRICS = COLUMNS[1:-1]


class History:
    """Per-step records: ``history.log(step=..., loss_d=...)``; ``history["loss_g"]`` is a column."""

    def __init__(self, rows: Iterable[Mapping[str, float]] = ()):
        self.rows: list[dict[str, float]] = [dict(r) for r in rows]

    def log(self, **values: float) -> dict[str, float]:
        row = {k: float(v) for k, v in values.items()}
        self.rows.append(row)
        return row

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[str]:
        seen = list(COLUMNS)
        for row in self.rows:
            seen.extend(k for k in row if k not in seen)
        return [c for c in seen if any(c in r for r in self.rows)]

    def __getitem__(self, column: str) -> list[float]:
        if not any(column in r for r in self.rows):
            raise KeyError(f"no column {column!r} in history: columns are {', '.join(self.columns())}")
        return [r.get(column, math.nan) for r in self.rows]

    def last(self, column: str, default: float = math.nan) -> float:
        for row in reversed(self.rows):
            if column in row:
                return row[column]
        return default

    def truncate(self, step: int) -> None:
        """Drop rows whose step is greater than ``step`` (used when resuming)."""
        self.rows = [r for r in self.rows if r.get("step", 0) <= step]

    def to_dict(self) -> dict[str, list[float]]:
        return {c: self[c] for c in self.columns()}

    # --- CSV -------------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> None:
        """Write the whole history (atomically) to ``path``."""
        from .checkpoint import atomic_write_text

        cols = self.columns()
        lines = [",".join(cols)]
        for r in self.rows:
            lines.append(",".join(_fmt(r.get(c, math.nan)) for c in cols))
        atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def from_csv(cls, path: str | Path) -> History:
        path = Path(path)
        if not path.exists():
            return cls()
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = []
            for line_no, rec in enumerate(reader, start=2):
                try:
                    rows.append({k: float(v) for k, v in rec.items() if k and v not in ("", None)})
                except ValueError as e:
                    raise ValueError(f"{path}, line {line_no}: not a number ({e})") from None
        return cls(rows)


class CsvAppender:
    """Appends one history row per step to ``history.csv`` (one ``write()`` per row, so a
    ``kill -9`` never leaves half a row); the columns are those of the header last written."""

    def __init__(self, path: str | Path, history: History):
        self.path = Path(path)
        self.rewrite(history)

    def rewrite(self, history: History) -> None:
        """Write the whole history (atomically); later rows follow its columns."""
        history.to_csv(self.path)
        with self.path.open() as f:
            self.columns = f.readline().strip().split(",")
        if self.columns == [""]:
            self.columns = list(COLUMNS)
            self.path.write_text(",".join(self.columns) + "\n")

    def append(self, row: Mapping[str, float]) -> None:
        import os

        line = ",".join(_fmt(row.get(c, math.nan)) for c in self.columns) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _fmt(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return ""
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"
