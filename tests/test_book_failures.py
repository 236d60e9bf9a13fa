"""scripts/book_failures.py names the chapter and cell of a failed book build."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("book_failures", ROOT / "scripts" / "book_failures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _first_code_cell(name: str) -> tuple[int, str]:
    cells = json.loads((ROOT / "book" / name).read_text(encoding="utf8"))["cells"]
    i = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    return i, "".join(cells[i]["source"])


def _report(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "_build" / "html" / "reports" / "book"
    folder.mkdir(parents=True)
    (folder / name.replace(".ipynb", ".err.log")).write_text(text)
    return tmp_path / "_build"


def test_an_error_names_the_cell_and_the_last_line(tmp_path, capsys):
    i, source = _first_code_cell("02_transposed_convolutions.ipynb")
    build = _report(tmp_path, "02_transposed_convolutions.ipynb",
                    "An error occurred while executing the following cell:\n------------------\n"
                    f"{source}\n------------------\n\nTraceback ...\nValueError: bad size 7\n")
    assert _module().main(build) == 1
    out = capsys.readouterr().out
    assert f"FAILED book/02_transposed_convolutions.ipynb, cell {i} (code cell 1): ValueError: bad size 7" in out


def test_a_timeout_names_the_cell_and_the_limit(tmp_path, capsys):
    i, source = _first_code_cell("04_pytorch_dcgans.ipynb")
    first = source.splitlines()[0]
    build = _report(tmp_path, "04_pytorch_dcgans.ipynb",
                    "nbclient.exceptions.CellTimeoutError: A cell timed out while it was being "
                    "executed, after 1800 seconds.\nHere is a preview of the cell contents:\n"
                    f"-------------------\n['{first}', '']\n-------------------\n")
    assert _module().main(build) == 1
    out = capsys.readouterr().out
    assert f"04_pytorch_dcgans.ipynb, cell {i} (code cell 1): the cell timed out after 1800 s" in out
