"""The package stays readable at a glance (issue 11): no module over 700 lines and no function
over 90 lines in ``dcgan_lab/``; a failure names the offender and its size. No import circle
among its modules (a failure names it, ``a -> b -> a``), no import that runs up a floor of the
house (issue 23; a failure names the import and both floors), and ``dcgan_lab.frameworks.get``
is the one place a framework is chosen by name."""

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
    assert {"run/loop.py", "torch/step.py", "keras/step.py", "book/gan_math.py"} <= names


def test_no_module_over_700_lines():
    long = [f"{p.relative_to(PACKAGE.parent)} ({n} lines)" for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {', '.join(long)}"


def test_no_function_over_90_lines():
    long = [f for p in _modules() for f in long_functions(p, MAX_FUNCTION_LINES)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_the_checker_names_a_function_over_its_limit():
    loop_py = PACKAGE / "run" / "loop.py"
    assert long_functions(loop_py, 10_000) == []
    found = long_functions(loop_py, 3)
    assert any(f.startswith("dcgan_lab/run/loop.py:") and " run (" in f for f in found), found


# --------------------------------------------------------------------------------------------
# the import graph (issue "house redesign"): no circle among the package's modules
#
# An edge is an import that runs when the module is imported: module level, class bodies,
# try/if blocks, but not `if TYPE_CHECKING:` blocks nor function bodies (``functions=True``
# counts those too). With every import counted, the graph has no circle and no import runs up a
# floor (FLOORS below): the framework-free basics, then run/, the twins, scoring/, what uses
# scoring (interop/, ablation, figures), the command line, and book/ on top.


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(body: list[ast.stmt], functions: bool):
    """The import statements of ``body`` that run at import time (all of them if ``functions``)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if functions:
                yield from _imports(node.body, functions)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _imports(node.orelse, functions)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                yield from _imports(getattr(node, field, None) or [], functions)


def import_graph(root: Path, functions: bool = False) -> dict[str, list[str]]:
    """Module -> the package's modules it imports (``dcgan_lab.a.b`` names), read with ``ast``.

    ``from .x import y`` points at ``x.y`` when that is a module, else at ``x``; imports of
    anything outside the package are left out.
    """
    paths = {_module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")).body, functions):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = alias.name
                    while target and target not in paths:
                        target = target.rpartition(".")[0]
                    targets.add(target)
                continue
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base)
        graph[name] = sorted(t for t in targets if t in paths and t != name)
    return graph


def import_circles(graph: dict[str, list[str]]) -> list[str]:
    """One circle per strongly connected group of modules, as ``"a -> b -> c -> a"``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while not group or w != v:
                w = stack.pop()
                group.add(w)
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    circles = []
    for group in groups:  # the shortest way from the group's first module back to itself
        start = min(group)
        came_from: dict[str, str] = {}
        queue = [start]
        while start not in came_from:
            v = queue.pop(0)
            for w in graph[v]:
                if w in group and w not in came_from:
                    came_from[w] = v
                    queue.append(w)
        path, v = [start], came_from[start]
        while v != start:
            path.append(v)
            v = came_from[v]
        circles.append(" -> ".join([start, *reversed(path)]))
    return sorted(circles)


def test_no_import_circle():
    graph = import_graph(PACKAGE)
    assert {"dcgan_lab.run.loop", "dcgan_lab.grids", "dcgan_lab.torch.backend"} <= set(graph)
    assert "dcgan_lab.grids" in graph["dcgan_lab.run.loop"]
    circles = import_circles(graph)
    assert not circles, f"import circles in dcgan_lab: {'; '.join(circles)}"


def test_no_import_circle_even_through_imports_inside_functions():
    """The circle this package once had (evaluation -> keras.train -> viz -> evaluation) ran
    through imports inside functions only: they count here too."""
    circles = import_circles(import_graph(PACKAGE, functions=True))
    assert not circles, f"import circles in dcgan_lab: {'; '.join(circles)}"


def test_the_run_loop_never_reaches_figures_tables_or_scoring():
    graph = import_graph(PACKAGE, functions=True)
    seen, todo = set(), ["dcgan_lab.run.loop"]
    while todo:
        for m in graph[todo.pop()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    assert not seen & {"dcgan_lab.figures", "dcgan_lab.scoring.tables",
                        "dcgan_lab.scoring.evaluation"}, sorted(seen)


def test_the_checker_names_a_planted_circle(tmp_path):
    pkg = tmp_path / "fake"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "from .sub.c import thing\n",
        "sub/__init__.py": "",
        "sub/c.py": "import fake.a\nthing = 1\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import e\n",
        "e.py": "from . import d\n\n\ndef later():\n    from . import d\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    graph = import_graph(pkg)
    assert graph["fake.b"] == ["fake.sub.c"] and graph["fake.d"] == []
    assert import_circles(graph) == ["fake.a -> fake.b -> fake.sub.c -> fake.a"]
    (pkg / "d.py").write_text("from . import e\n", encoding="utf-8")
    assert import_circles(import_graph(pkg)) == ["fake.a -> fake.b -> fake.sub.c -> fake.a",
                                                 "fake.d -> fake.e -> fake.d"]


# --------------------------------------------------------------------------------------------
# frameworks.get: the one place a framework is chosen by name


def test_frameworks_get_names_the_choices():
    import pytest

    from dcgan_lab import frameworks

    with pytest.raises(ValueError, match=r"framework='jax': choose one of torch, keras"):
        frameworks.get("jax")
    assert frameworks.NAMES == ("torch", "keras")


def test_a_missing_framework_names_its_pip_extra(monkeypatch):
    import sys

    import pytest

    from dcgan_lab import cli, frameworks

    monkeypatch.delattr(dcgan_lab, "keras", raising=False)
    monkeypatch.setitem(sys.modules, "dcgan_lab.keras", None)  # import of it fails
    with pytest.raises(frameworks.FrameworkMissing,
                       match=r"the keras side is not available .*pip install 'dcgan-lab\[keras\]'"):
        frameworks.get("keras")
    assert frameworks.FrameworkMissing in cli._user_errors()  # one line, exit status 1


# --------------------------------------------------------------------------------------------
# floors (issue 23): a module imports only from its own floor or the floors below it

#: floor -> the modules on it (a name ending in "." is a whole subpackage), lowest first
FLOORS = {
    "basics": ("dcgan_lab", "dcgan_lab.recipes", "dcgan_lab.profiles", "dcgan_lab.shapes",
               "dcgan_lab.arithmetic", "dcgan_lab.data", "dcgan_lab.archives", "dcgan_lab.images",
               "dcgan_lab.grids", "dcgan_lab.speed", "dcgan_lab.tfquiet", "dcgan_lab.toy"),
    "run": ("dcgan_lab.run", "dcgan_lab.run."),
    "twins": ("dcgan_lab.torch", "dcgan_lab.torch.", "dcgan_lab.keras", "dcgan_lab.keras.",
              "dcgan_lab.frameworks"),
    "scoring": ("dcgan_lab.scoring", "dcgan_lab.scoring."),
    "uses scoring": ("dcgan_lab.interop", "dcgan_lab.interop.", "dcgan_lab.ablation",
                     "dcgan_lab.figures", "dcgan_lab.stacked_mnist"),
    "cli": ("dcgan_lab.cli", "dcgan_lab.__main__"),
    "book": ("dcgan_lab.book", "dcgan_lab.book."),
}


def floor_of(module: str, floors: dict[str, tuple[str, ...]] = FLOORS) -> int:
    """The floor number of ``module`` (0 = lowest); a ``KeyError`` for a module on no floor."""
    for i, names in enumerate(floors.values()):
        if module in names or any(n.endswith(".") and module.startswith(n) for n in names):
            return i
    raise KeyError(f"{module} is on no floor of FLOORS: add it to tests/unit/test_layout.py")


def imports_up(graph: dict[str, list[str]], floors: dict[str, tuple[str, ...]] = FLOORS
               ) -> list[str]:
    """``"a (floor) -> b (higher floor)"`` for every import that runs up a floor."""
    names = list(floors)
    found = []
    for a, targets in sorted(graph.items()):
        fa = floor_of(a, floors)
        for b in targets:
            fb = floor_of(b, floors)
            if fb > fa:
                found.append(f"{a} ({names[fa]}) -> {b} ({names[fb]})")
    return found


def test_every_module_is_on_a_floor():
    for module in import_graph(PACKAGE):
        floor_of(module)


def test_no_import_runs_up_a_floor_even_inside_functions():
    up = imports_up(import_graph(PACKAGE, functions=True))
    assert not up, f"imports that run up a floor: {'; '.join(up)}"


def test_the_library_never_imports_the_book():
    graph = import_graph(PACKAGE, functions=True)
    bad = [f"{a} -> {b}" for a, ts in graph.items() for b in ts
           if b.startswith("dcgan_lab.book") and not a.startswith("dcgan_lab.book")]
    assert not bad, bad


def test_the_checker_names_an_import_up_a_floor(tmp_path):
    pkg = tmp_path / "fake"
    (pkg / "low").mkdir(parents=True)
    files = {"__init__.py": "", "low/__init__.py": "", "low/a.py": "from .. import high\n",
             "high.py": "from .low import a\n", "ok.py": "def later():\n    from . import high\n"}
    for name, text in files.items():
        (pkg / name).write_text(text, encoding="utf-8")
    floors = {"ground": ("fake", "fake.low."), "first": ("fake.low", "fake.ok"),
              "top": ("fake.high",)}
    graph = import_graph(pkg, functions=True)
    assert imports_up(graph, floors) == ["fake.low.a (ground) -> fake.high (top)",
                                         "fake.ok (first) -> fake.high (top)"]
    (pkg / "low" / "a.py").write_text("x = 1\n", encoding="utf-8")
    (pkg / "ok.py").write_text("", encoding="utf-8")
    assert imports_up(import_graph(pkg, functions=True), floors) == []


def test_no_module_shares_its_name_with_a_function_it_defines():
    """``dcgan_lab.torch.train`` was both a module and a function: no module defines (or
    imports) a top-level function named as the module itself."""
    same = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        names |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                  for a in n.names}
        if path.stem in names:
            same.append(str(path.relative_to(PACKAGE.parent)))
    assert not same, f"modules that share a name with a function: {', '.join(same)}"
