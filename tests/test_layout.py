"""The package stays readable at a glance (issue 11): no module over 700 lines and no function
over 90 lines in ``dcgan_lab/``; a failure names the offender and its size."""

from __future__ import annotations

import ast
from pathlib import Path

import dcgan_lab

PACKAGE = Path(dcgan_lab.__file__).parent
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 700, 90


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def long_functions(path: Path, limit: int) -> list[str]:
    """``"file:line name (N lines)"`` for every function or method of ``path`` over ``limit``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            n = node.end_lineno - first + 1
            if n > limit:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
                             f"({n} lines)")
    return found


def test_the_walk_sees_the_whole_package():
    names = {p.relative_to(PACKAGE).as_posix() for p in _modules()}
    assert {"loop.py", "torch/train.py", "keras/train.py", "book/gan_math.py"} <= names


def test_no_module_over_700_lines():
    long = [f"{p.relative_to(PACKAGE.parent)} ({n} lines)" for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {', '.join(long)}"


def test_no_function_over_90_lines():
    long = [f for p in _modules() for f in long_functions(p, MAX_FUNCTION_LINES)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_the_checker_names_a_function_over_its_limit():
    loop_py = PACKAGE / "loop.py"
    assert long_functions(loop_py, 10_000) == []
    found = long_functions(loop_py, 3)
    assert any(f.startswith("dcgan_lab/loop.py:") and " run (" in f for f in found), found
