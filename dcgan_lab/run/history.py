"""Training history: one row per step, filled the same way by both frameworks, kept as CSV.

The run loop (:mod:`dcgan_lab.run.loop`) appends each step's row to ``history.csv`` as it goes
(:class:`CsvAppender`: nothing is lost on a crash) and rewrites the whole file at every
checkpoint (so that columns a callback added appear), with a copy beside the checkpoint; on
resume the rows after the checkpoint's step are dropped so the file matches the restored state,
and a file that is missing, cut short or lacks rows is restored from that copy.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Columns every trainer writes, in this order; extra columns (metrics) follow.
COLUMNS = ("step", "loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake", "seconds")
#: The metrics every training step returns (both frameworks).
STEP_METRICS = COLUMNS[1:-1]


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

    def mismatch(self, step: int) -> str | None:
        """None if the rows up to ``step`` are steps 1..``step``, one each, in order (rows after
        ``step`` do not count); else what differs, e.g. ``"steps 1-4 missing"``."""
        have = [r.get("step", math.nan) for r in self.rows]
        have = [s for s in have if not s > step]  # a row without a step counts against
        if have == list(range(1, step + 1)):
            return None
        missing = sorted(set(range(1, step + 1)) - set(have))
        if missing:
            return f"step{'s' if len(missing) > 1 else ''} {_spans(missing)} missing"
        return f"rows repeated or out of order among steps 1-{step}"

    def to_dict(self) -> dict[str, list[float]]:
        return {c: self[c] for c in self.columns()}

    # --- CSV -------------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> None:
        """Write the whole history (atomically) to ``path``."""
        from .atomic import atomic_write_text

        cols = self.columns()
        lines = [",".join(cols)]
        for r in self.rows:
            lines.append(",".join(_fmt(r.get(c, math.nan)) for c in cols))
        atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def from_csv(cls, path: str | Path) -> History:
        """Read a CSV written by :meth:`to_csv` (a missing file is an empty history).

        Raises ``ValueError`` naming the file (and line) if it is not UTF-8 text, a row has more
        or fewer fields than the header, a value is not a number, or the last row is cut short
        (no line end).
        """
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            text = path.read_text(encoding="utf8")
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a CSV text file (it holds binary data)") from None
        if text and not text.endswith("\n"):
            raise ValueError(f"{path}, line {text.count(chr(10)) + 1}: the row is cut short "
                             f"(no line end)")
        try:
            records = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as e:
            raise ValueError(f"{path} is not a readable CSV file ({e})") from None
        if not records:
            return cls()
        header, rows = records[0], []
        for line_no, rec in enumerate(records[1:], start=2):
            if not rec:  # a blank line
                continue
            if len(rec) != len(header):
                raise ValueError(f"{path}, line {line_no}: {len(rec)} fields where the header "
                                 f"has {len(header)} (a row cut short or joined)")
            try:
                rows.append({k: float(v) for k, v in zip(header, rec, strict=True) if k and v})
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


def _spans(steps: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (sorted steps as ranges)."""
    spans: list[list[int]] = []
    for s in steps:
        if spans and s == spans[-1][1] + 1:
            spans[-1][1] = s
        else:
            spans.append([s, s])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans]
    return ", ".join(text[:5] + (["..."] if len(text) > 5 else []))


def _fmt(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return ""
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"
