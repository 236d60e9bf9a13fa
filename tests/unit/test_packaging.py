"""The install recipes agree: environment.yml's pip section == pyproject's [all] extra, both at
the versions of the lock (constraints.txt), which the venv that setup.sh made holds."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

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
    listed = {_norm(r) for r in pip if not r.startswith(("-e", "-c"))}
    assert "-e ." in pip and "-c constraints.txt" in pip
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


# ------------------------------------------------------------------------------- the lock

LOCK = ROOT / "constraints.txt"


def _lock() -> dict[str, str]:
    """constraints.txt as {normalized name: exact version}."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and not re.search(r"[<>=!~;,\s]", version), \
                f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[name.lower().replace("_", "-").replace(".", "-")] = version
    return pins


def test_lock_pins_every_requirement_exactly():
    from packaging.requirements import Requirement

    pins = _lock()
    text = LOCK.read_text()
    assert "bash scripts/setup.sh --relock" in text and re.search(r"^# python: 3\.\d+$", text, re.M)
    assert not [n for n in pins if n == "dcgan-lab" or n.startswith(("nvidia-", "triton"))]
    assert pins["torch"] == "2.13.0"  # no local label: the CPU and the CUDA wheel both match
    for req in map(Requirement, _pyproject_all()):
        name = req.name.lower().replace("_", "-").replace(".", "-")
        assert name in pins, f"constraints.txt pins no version of {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt: {name}=={pins[name]} is outside pyproject's {req}"


def test_setup_installs_from_the_lock():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "lock=constraints.txt" in setup and '-c "$constraints"' in setup
    assert '[ "$lock" -nt "$stamp" ]' in setup  # a newer lock reinstalls
    assert "--relock" in setup and "pip freeze --exclude-editable" in setup


def test_installed_versions_match_the_lock():
    """The venv that scripts/setup.sh made holds the lock's version of every pinned package."""
    import importlib.metadata as md

    from packaging.specifiers import SpecifierSet

    stamp = Path(sys.prefix) / ".dcgan-lab-installed"
    if not stamp.is_file():
        pytest.skip("not running in a venv made by scripts/setup.sh")
    mode, _, note = stamp.read_text().partition("\n")
    if not note.startswith("locked"):
        pytest.skip(f"this venv was installed without the lock ({note.strip() or 'an old stamp'})")
    skip = {"torch", "tensorflow-cpu"} if mode.strip() == "gpu" else set()
    wrong = []
    for name, version in _lock().items():
        if name in skip:
            continue
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue
        if not SpecifierSet(f"=={version}").contains(installed, prereleases=True):
            wrong.append(f"{name} {installed} (the lock: {version})")
    assert not wrong, f"installed versions differ from constraints.txt: {', '.join(wrong)}; " \
                      "run bash scripts/setup.sh"
