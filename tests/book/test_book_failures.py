"""scripts/book_failures.py names the chapter and cell of a failed book build."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


# ------------------------------------------------------------------------- chapter by chapter


def _code(source: str, outputs: list | None = None, tags: list | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": f"c{abs(hash(source)) % 10**8}",
            "metadata": {"tags": tags or []}, "outputs": outputs or [], "source": source}


def _notebook(path: Path, *cells: dict) -> Path:
    nb = {"cells": [{"cell_type": "markdown", "id": "m0", "metadata": {}, "source": "# t"},
                    *cells],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def _book(tmp_path: Path, names: list[str]) -> Path:
    """A minimal book: _toc.yml, _config.yml (stderr fails the build) and a page."""
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# intro\n")
    chapters = "".join(f"      - file: book/{n}\n" for n in names)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n"
                                   f"    chapters:\n{chapters}")
    (root / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: auto\n"
                                      "  timeout: 60\n  stderr_output: remove-warn\n")
    return root


def test_cell_problem_names_what_fails_the_build():
    mod = _module()
    ok = _code("print(1)", [{"output_type": "stream", "name": "stdout", "text": "1\n"}])
    assert mod.cell_problem(ok, "remove-warn") is None
    err = _code("1/0", [{"output_type": "error", "ename": "ZeroDivisionError",
                         "evalue": "division by zero", "traceback": []}])
    assert mod.cell_problem(err) == "ZeroDivisionError: division by zero"
    assert mod.cell_problem({**err, "metadata": {"tags": ["raises-exception"]}}) is None
    warn = _code("w()", [{"output_type": "stream", "name": "stderr",
                          "text": "UserWarning: dcgan_lab: download of mnist failed\n"}])
    assert "stderr" in mod.cell_problem(warn, "remove-warn")
    assert mod.cell_problem(warn, "show") is None  # a config that shows stderr does not fail
    assert mod.cell_problem({**warn, "metadata": {"tags": ["remove-stderr"]}}, "warn") is None
    fig = _code("f", [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                       "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}}])
    assert "figure printed as text" in mod.cell_problem(fig)
    tb = _code("p", [{"output_type": "stream", "name": "stdout",
                      "text": "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"}])
    assert mod.cell_problem(tb) == "a traceback printed in the output: KeyError: 'x'"


def test_execute_stops_at_the_first_failing_chapter_and_cell(tmp_path, capsys):
    pytest.importorskip("nbclient")
    mod = _module()
    root = _book(tmp_path, ["a", "b", "c"])
    marker = tmp_path / "ran-after-the-failure"
    _notebook(root / "book" / "a.ipynb", _code("x = 1"))
    _notebook(root / "book" / "b.ipynb", _code("print('fine')"),
              _code("import sys; print('careful', file=sys.stderr)"),
              _code(f"open({str(marker)!r}, 'w').close()"))
    _notebook(root / "book" / "c.ipynb", _code(f"open({str(marker)!r}, 'w').close()"))
    build = tmp_path / "_build"
    assert mod.execute("auto", build / "src", build, root=root) == 1
    out = capsys.readouterr().out
    assert "FAILED book/b.ipynb, cell 2 (code cell 2): output on stderr, which fails the build: careful" in out
    assert not marker.exists()  # neither b's next cell nor chapter c ran
    assert "book/c.ipynb" in out and "(not run)" in out and "(FAILED)" in out
    assert (build / "failed" / "b.ipynb").is_file() and not (build / "src" / "book" / "b.ipynb").exists()
    assert json.loads((root / "book" / "b.ipynb").read_text())["cells"][1]["outputs"] == []


def test_execute_stages_executed_copies_and_times_them(tmp_path, capsys):
    pytest.importorskip("nbclient")
    mod = _module()
    root = _book(tmp_path, ["a", "b"])
    _notebook(root / "book" / "a.ipynb", _code("print(6 * 7)"))
    stored = _code("print('stored')", [{"output_type": "stream", "name": "stdout", "text": "stored\n"}])
    _notebook(root / "book" / "b.ipynb", stored)  # stored outputs: checked, not executed again
    build = tmp_path / "_build"
    assert mod.execute("auto", build / "src", build, root=root) == 0
    a = json.loads((build / "src" / "book" / "a.ipynb").read_text())
    assert "".join(a["cells"][1]["outputs"][0]["text"]) == "42\n"
    assert json.loads((root / "book" / "a.ipynb").read_text())["cells"][1]["outputs"] == []
    assert (build / "src" / "book" / "intro.md").resolve() == (root / "book" / "intro.md").resolve()
    assert 'execute_notebooks: "off"' in (build / "src" / "_config.yml").read_text()
    rows = json.loads((build / "chapter_times.json").read_text())
    assert [r["status"] for r in rows] == ["executed", "stored outputs"]
    assert mod.cli(["times", str(build), "--build-seconds", "75"]) == 0
    table = capsys.readouterr().out
    assert "book/a.ipynb" in table and "HTML build (jupyter-book)  1m 15s" in table
