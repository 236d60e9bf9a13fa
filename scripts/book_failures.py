"""Name each chapter and cell that failed in a book build, from myst-nb's reports and the log.

Usage: ``python scripts/book_failures.py [_build]``. Prints one block per failure:
``FAILED book/03_keras_dcgans.ipynb, cell 27 (code cell 14): <last line of the error>``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build"))
