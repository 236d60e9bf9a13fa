"""Each chapter records how long it ran; the appendix shows the table for the build at hand.

A chapter starts a :class:`ChapterClock` in its first cell and calls :meth:`ChapterClock.record`
in its last. Records are small JSON files in ``runs/timings/`` beside the notebooks (the kernel's
working folder), written atomically, one per chapter, overwritten by the next run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

FOLDER = Path("runs") / "timings"


class ChapterClock:
    """Wall time of one chapter, from construction to :meth:`record`."""

    def __init__(self, chapter: str) -> None:
        self.chapter = chapter
        self.t0 = time.perf_counter()

    def record(self, profile: str, folder: str | os.PathLike = FOLDER) -> float:
        """Write ``{chapter, profile, seconds, date}`` to ``folder/<chapter>.json``; return seconds."""
        seconds = time.perf_counter() - self.t0
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        row = {"chapter": self.chapter, "profile": profile, "seconds": round(seconds, 1),
               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "cpus": os.cpu_count()}
        tmp = out / f".{self.chapter}.json.tmp"
        tmp.write_text(json.dumps(row))
        os.replace(tmp, out / f"{self.chapter}.json")
        return seconds


def read(folder: str | os.PathLike = FOLDER) -> list[dict]:
    """Every recorded chapter, in chapter order (unreadable files are skipped)."""
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return rows
