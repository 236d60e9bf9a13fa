"""What the scripts promise a reader and CI: .ci/run's stages and build-book.sh's flow."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _function(text: str, name: str) -> str:
    m = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}", text, re.S | re.M)
    assert m, f"no function {name}"
    return m.group(1)


def test_fresh_reader_has_no_offline_switch_and_runs_both_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in ci
    fresh = _function(ci, "fresh_reader")
    assert "DCGAN_LAB_OFFLINE=1" not in fresh and "-u DCGAN_LAB_OFFLINE" in fresh
    assert "-u DCGAN_LAB_DATA" in fresh and "XDG_CACHE_HOME=" in fresh
    book = fresh.index("DCGAN_LAB_PROFILE=smoke bash scripts/build-book.sh")
    assert book < fresh.index("bash scripts/test.sh")
    assert 'return "$rc"' in fresh


def test_ci_has_the_golden_stage_on_the_default_isa_and_stage_times():
    ci = (ROOT / ".ci" / "run").read_text()
    stage = re.search(r"^stage golden-default-isa bash -c '(.*)'$", ci, re.M)
    assert stage, "no golden-default-isa stage"
    assert "source scripts/env.sh" in stage.group(1)
    assert ("ATEN_CPU_CAPABILITY=default python -m pytest tests/integration/test_golden.py -q "
            "-p no:cacheprovider") in stage.group(1)
    assert "=== stage times ===" in ci and "times+=(" in ci


def test_build_book_runs_chapters_one_by_one_then_renders_with_execution_off():
    script = (ROOT / "scripts" / "build-book.sh").read_text()
    assert "set -euo pipefail" in script
    execute = script.index("scripts/book_failures.py execute")
    build = script.index("jupyter-book build _build/src")
    assert execute < build and "times _build" in script[build:]
    assert 'rm -rf _build/html' in script and "exit 1" in script


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
def test_scripts_parse():
    for script in ("scripts/setup.sh", "scripts/build-book.sh", "scripts/test.sh", ".ci/run"):
        subprocess.run(["bash", "-n", str(ROOT / script)], check=True)
