"""Run the book's chapters one by one, stopping at the first that would fail the build, and name
each chapter and cell that failed.

Usage:

``python scripts/book_failures.py execute [--mode auto|off] [--stage _build/src]``
    Executes every chapter of ``_toc.yml`` in order (each in ``book/``, as jupyter-book would),
    checking each cell as soon as it has run: an error, any stderr output (the build treats it
    as an error: ``stderr_output`` in ``_config.yml``), a traceback printed as text or a figure
    printed as text (``<Figure size ...>``). The first such cell stops everything with
    ``FAILED book/03_keras_dcgans.ipynb, cell 27 (code cell 14): <last line of the error>``
    (the notebook as far as it ran is kept in ``_build/failed/``) and exit status 1. Otherwise
    it writes the stage that ``jupyter-book build`` then renders with execution off: the
    executed chapters, the configuration (execution off) and links to everything else in
    ``book/``. The stored notebooks in ``book/`` are never written. ``--mode auto`` executes
    the chapters that have no stored outputs and checks the others' stored outputs (CI's nbmake
    pass stores them); ``--mode off`` executes none. Each chapter's time goes to
    ``_build/chapter_times.json``.
``python scripts/book_failures.py times [_build] [--build-seconds N]``
    Prints the chapters' times (and the HTML build's) as a small table.
``python scripts/book_failures.py [_build]``
    After a failed ``jupyter-book build``: one block per failure from myst-nb's reports and the
    build log's warnings and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRACEBACK = "Traceback (most recent call last)"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


def locate_cell(notebook: Path, source: str) -> str:
    """'cell N (code cell M)' for the cell whose source matches the failing one."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf8"))["cells"]
    except (OSError, ValueError):
        return "cell ?"
    want = source.strip()
    code = 0
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        code += 1
        if want and "".join(cell["source"]).strip() == want:
            return f"cell {i} (code cell {code})"
    return "cell ?"


def locate_preview(notebook: Path, text: str) -> str:
    """For a timeout: nbclient shows the cell as a preview list of its first lines."""
    m = re.search(r"preview of the cell contents:\n-+\n\[?'([^'\n]*)'", text)
    if not m:
        return "cell ?"
    try:
        cells = json.loads(notebook.read_text(encoding="utf8"))["cells"]
    except (OSError, ValueError):
        return "cell ?"
    code = 0
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            code += 1
            if "".join(cell["source"]).lstrip().startswith(m.group(1).strip()):
                return f"cell {i} (code cell {code})"
    return "cell ?"


def main(build: Path) -> int:
    reports = sorted((build / "html" / "reports").rglob("*.err.log"))
    failures = 0
    for log in reports:
        text = log.read_text(errors="replace")
        rel = log.relative_to(build / "html" / "reports").with_suffix("").with_suffix(".ipynb")
        notebook = ROOT / rel
        m = re.search(r"An error occurred while executing the following cell:\n-+\n(.*?)\n-+\n",
                      text, re.S)
        where = locate_cell(notebook, m.group(1)) if m else "cell ?"
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the traceback's terminal colours
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["(empty report)"]
        timeout = re.search(r"A cell timed out while it was being executed, after (\d+) seconds", text)
        if timeout:  # the execute.timeout of _config.yml (a busy machine makes cells slower)
            where = locate_preview(notebook, text)
            last = [f"the cell timed out after {timeout.group(1)} s (execute.timeout in _config.yml)"]
        print(f"FAILED {rel}, {where}: {last[0].strip()}")
        print(f"       full report: {log}")
        failures += 1
    logfile = build / "book.log"
    if not failures and logfile.exists():
        for line in logfile.read_text(errors="replace").splitlines():
            if "WARNING" in line or "ERROR" in line:
                print(line)
                failures += 1
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------
# executing the chapters one by one


class ChapterFailed(Exception):
    """A cell that would fail the book build: ``where`` is 'cell N (code cell M)'."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.where = where
        self.why = why


def chapters(root: Path = ROOT) -> list[Path]:
    """The notebooks of ``_toc.yml``, in reading order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf8"))
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", [])
                             for c in part.get("chapters", [])]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def execute_config(root: Path = ROOT) -> dict[str, Any]:
    """The ``execute:`` section of ``_config.yml``."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
    return dict(config.get("execute") or {})


def where(cells: list, index: int) -> str:
    """'cell N (code cell M)': N counts every cell from 0, M the code cells from 1."""
    code = sum(1 for c in cells[: index + 1] if c.get("cell_type") == "code")
    return f"cell {index} (code cell {code})"


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "(empty)"


def cell_problem(cell: dict, stderr_mode: str = "remove-warn") -> str | None:
    """Why this executed cell would fail the book build (``-W``), or None.

    ``stderr_mode``: ``execute.stderr_output`` of ``_config.yml``; a cell's own ``mystnb``
    metadata or its ``remove-stderr`` tag overrides it, as myst-nb does.
    """
    meta = cell.get("metadata", {})
    tags = meta.get("tags", [])
    stderr_mode = (meta.get("mystnb") or {}).get("output_stderr", stderr_mode)
    stderr_fails = stderr_mode in ("remove-warn", "warn", "error", "severe")
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "error" and "raises-exception" not in tags:
            return f"{out.get('ename', 'Error')}: {_first_line(out.get('evalue', ''))}"
        if kind == "stream":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            if out.get("name") == "stderr" and stderr_fails and "remove-stderr" not in tags:
                return f"output on stderr, which fails the build: {_first_line(text)}"
            if TRACEBACK in text:
                tail = [ln for ln in text.splitlines() if ln.strip()][-1]
                return f"a traceback printed in the output: {tail.strip()}"
        if kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            plain = data.get("text/plain", "")
            plain = "".join(plain) if isinstance(plain, list) else plain
            if "<Figure size" in plain and not any(t in data for t in IMAGE_TYPES):
                return f"a figure printed as text instead of shown: {_first_line(plain)}"
    return None


def has_outputs(nb: dict) -> bool:
    return any(c.get("outputs") for c in nb["cells"] if c.get("cell_type") == "code")


def check_stored(nb: dict, stderr_mode: str) -> None:
    """Raise :class:`ChapterFailed` for the first stored cell that would fail the build."""
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") == "code":
            why = cell_problem(cell, stderr_mode)
            if why:
                raise ChapterFailed(where(nb["cells"], i), why)


def run_notebook(nb: Any, cwd: Path, timeout: int, stderr_mode: str) -> None:
    """Execute ``nb`` in place, stopping at the first cell that would fail the build."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    current = {"index": 0}

    def on_start(cell: Any, cell_index: int) -> None:
        current["index"] = cell_index

    def on_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        why = cell_problem(cell, stderr_mode)
        if why:
            raise ChapterFailed(where(nb.cells, cell_index), why)

    client = NotebookClient(nb, timeout=timeout, startup_timeout=180, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}},
                            on_cell_start=on_start, on_cell_executed=on_executed)
    try:
        client.execute()
    except CellTimeoutError as exc:
        raise ChapterFailed(where(nb.cells, current["index"]),
                            f"the cell timed out after {timeout} s (execute.timeout in "
                            "_config.yml)") from exc
    except DeadKernelError as exc:
        raise ChapterFailed(where(nb.cells, current["index"]),
                            f"the kernel died ({exc}; out of memory?)") from exc
    except CellExecutionError as exc:  # an error output the hook did not see
        raise ChapterFailed(where(nb.cells, current["index"]),
                            f"{exc.ename}: {_first_line(exc.evalue)}") from exc


def _link_book(stage: Path, notebooks: list[Path], root: Path) -> None:
    """The stage: configuration with execution off, the toc, and book/ as links to everything
    that is not an executed chapter (pages, figures, the static files)."""
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "book").mkdir(parents=True)
    config = (root / "_config.yml").read_text(encoding="utf8")
    config = re.sub(r"^(\s*execute_notebooks:).*$", r'\1 "off"', config, flags=re.M)
    (stage / "_config.yml").write_text(config, encoding="utf8")
    shutil.copy2(root / "_toc.yml", stage / "_toc.yml")
    executed = {nb.name for nb in notebooks}
    for entry in sorted((root / "book").iterdir()):
        if entry.name not in executed:
            (stage / "book" / entry.name).symlink_to(entry)


def _fmt(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def print_times(rows: list[dict], build_seconds: float | None = None) -> None:
    """The chapters' times as a small table (and the HTML build's, when given)."""
    profile = os.environ.get("DCGAN_LAB_PROFILE") or "<auto>"
    print(f"book: times (profile {profile})")
    total = 0.0
    build_label = "HTML build (jupyter-book)"
    width = max([len(r["chapter"]) for r in rows] + [len(build_label)])
    for r in rows:
        secs = r.get("seconds")
        total += secs or 0.0
        status = r["status"]
        shown = _fmt(secs) if secs is not None else ""
        if status != "executed":
            shown = f"{shown} ({status})" if shown else f"({status})"
        print(f"  {r['chapter']:<{width}}  {shown}")
    if build_seconds is not None:
        total += build_seconds
        print(f"  {build_label:<{width}}  {_fmt(build_seconds)}")
    print(f"  {'total':<{width}}  {_fmt(total)}")


def execute(mode: str, stage: Path, build: Path, root: Path = ROOT) -> int:
    """Run (or check) every chapter in order; stop at the first that would fail the build."""
    import nbformat

    notebooks = chapters(root)
    cfg = execute_config(root)
    timeout = int(cfg.get("timeout") or 1800)
    stderr_mode = str(cfg.get("stderr_output") or "show")
    build.mkdir(parents=True, exist_ok=True)
    times_file = build / "chapter_times.json"
    failed_dir = build / "failed"
    shutil.rmtree(failed_dir, ignore_errors=True)
    _link_book(stage, notebooks, root)
    rows = [{"chapter": str(p.relative_to(root)), "seconds": None, "status": "not run"}
            for p in notebooks]
    warmed = False
    for row, path in zip(rows, notebooks, strict=True):
        nb = nbformat.read(path, as_version=4)
        run = mode == "auto" and not has_outputs(nb)
        if run and not warmed:
            # matplotlib's first import in a fresh environment builds its font cache and says so
            # on stderr: done here, it never reaches (and fails) a chapter
            import matplotlib.font_manager  # noqa: F401

            warmed = True
        print(f"book: {'executing' if run else 'checking the stored outputs of'} {row['chapter']}",
              flush=True)
        t0 = time.perf_counter()
        try:
            if run:
                run_notebook(nb, path.parent, timeout, stderr_mode)
            else:
                check_stored(nb, stderr_mode)
        except ChapterFailed as exc:
            row.update(seconds=time.perf_counter() - t0 if run else None, status="FAILED")
            times_file.write_text(json.dumps(rows, indent=1))
            print(f"FAILED {row['chapter']}, {exc.where}: {exc.why}")
            if run:
                failed_dir.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, failed_dir / path.name)
                print(f"       the chapter as far as it ran: {failed_dir / path.name}")
            print_times(rows)
            return 1
        row.update(seconds=time.perf_counter() - t0 if run else None,
                   status="executed" if run else "stored outputs")
        nbformat.write(nb, stage / "book" / path.name)
        times_file.write_text(json.dumps(rows, indent=1))
    return 0


def cli(argv: list[str]) -> int:
    if not argv or argv[0] not in ("execute", "times"):
        return main(Path(argv[0]) if argv else ROOT / "_build")
    parser = argparse.ArgumentParser(prog="book_failures.py")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("execute", help="run the chapters one by one; stop at the first failure")
    ex.add_argument("--mode", choices=("auto", "off"), default="auto")
    ex.add_argument("--stage", type=Path, default=ROOT / "_build" / "src")
    ex.add_argument("--build", type=Path, default=ROOT / "_build")
    tm = sub.add_parser("times", help="print the chapters' times")
    tm.add_argument("build", type=Path, nargs="?", default=ROOT / "_build")
    tm.add_argument("--build-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    if args.command == "execute":
        return execute(args.mode, args.stage.resolve(), args.build.resolve())
    times = args.build / "chapter_times.json"
    if not times.is_file():
        print(f"book: no chapter times ({times} is missing)")
        return 1
    print_times(json.loads(times.read_text()), args.build_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
