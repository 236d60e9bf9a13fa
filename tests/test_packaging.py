"""The install recipes agree: environment.yml's pip section == pyproject's [all] extra."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _norm(req: str) -> str:
    name, rest = re.match(r"^\s*([A-Za-z0-9_.\-]+)(.*)$", req).groups()
    return name.lower().replace("_", "-") + rest.replace(" ", "")


def _pyproject_all() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(project["dependencies"])
    # `gpu` (tensorflow[and-cuda]) replaces `keras`'s tensorflow-cpu on a GPU machine
    # (scripts/setup.sh --gpu): the two provide the same module, so [all] leaves it out.
    for extra, items in project["optional-dependencies"].items():
        if extra not in ("all", "gpu"):
            reqs |= set(items)
    all_extras = project["optional-dependencies"]["all"]
    named = set(re.search(r"\[(.*)\]", all_extras[0]).group(1).split(","))
    assert named == set(project["optional-dependencies"]) - {"all", "gpu"}, \
        "the [all] extra misses one"
    return {_norm(r) for r in reqs}


def test_environment_yml_matches_pyproject():
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(r) for r in pip if not r.startswith("-e")}
    assert "-e ." in pip
    assert listed == _pyproject_all()


def test_console_script_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["dcgan-lab"] == "dcgan_lab.cli:main"


def test_every_chapter_in_toc_exists():
    yaml = pytest.importorskip("yaml")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert any((ROOT / (f + ext)).exists() for ext in (".md", ".ipynb")), f


def test_notebooks_are_stored_without_outputs():
    import json

    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        with_outputs = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and c["outputs"]]
        assert not with_outputs, f"{nb.name}: cells {with_outputs} have stored outputs"


def test_gpu_setup_switch_and_extra():
    """scripts/setup.sh --gpu (or DCGAN_LAB_GPU=1) installs the `gpu` extra instead of [all]."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    gpu = project["optional-dependencies"]["gpu"]
    assert any(r.startswith("tensorflow[and-cuda]") for r in gpu)
    assert not any("tensorflow-cpu" in r for r in gpu)
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "--gpu" in setup and "DCGAN_LAB_GPU" in setup and "torch,gpu,book,test" in setup
    workflow = (ROOT / ".github" / "workflows" / "gpu.yml").read_text()
    assert "torch.cuda.is_available()" in workflow
    assert "list_physical_devices('GPU')" in workflow or 'list_physical_devices("GPU")' in workflow
