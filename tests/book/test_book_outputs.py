"""The executed chapters show their figures: images per chapter, no figure printed as text, no errors.

These checks read the notebooks' stored outputs, so they run after an execution that keeps them
(CI's nbmake pass with ``--overwrite``; ``scripts/test.sh`` then runs this file with
``DCGAN_LAB_EXECUTED=1``, under which a chapter without outputs fails). Notebooks are committed
without outputs, so in a plain checkout the checks skip and say why.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_pages", ROOT / "scripts" / "check_pages.py")
check_pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_pages)

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# pages beside the chapters that must show figures too (check_pages.MIN_IMAGES_PAGES)
PAGES = CHAPTERS + [ROOT / "book" / f"{stem}.ipynb" for stem in sorted(check_pages.MIN_IMAGES_PAGES)]
IMAGE_MIMES = ("image/png", "image/gif", "image/jpeg", "image/svg+xml")


def outputs(nb_path: Path) -> list[tuple[int, dict]]:
    nb = json.loads(nb_path.read_text(encoding="utf8"))
    return [(i, out) for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
            for out in cell.get("outputs", [])]


def test_every_chapter_has_a_minimum() -> None:
    assert {p.name[:2] for p in CHAPTERS} == set(check_pages.MIN_IMAGES)


def test_every_extra_page_exists_and_has_a_minimum() -> None:
    for path in PAGES[len(CHAPTERS):]:
        assert path.exists(), path
        assert check_pages.min_images(path.name) == check_pages.MIN_IMAGES_PAGES[path.stem] > 0


@pytest.mark.parametrize("nb_path", PAGES, ids=lambda p: p.stem)
def test_executed_chapter_shows_its_figures(nb_path: Path) -> None:
    outs = outputs(nb_path)
    if not outs:
        if os.environ.get("DCGAN_LAB_EXECUTED") == "1":
            pytest.fail(f"{nb_path.name} has no outputs: it was not executed with --overwrite")
        pytest.skip(f"{nb_path.name} carries no outputs (notebooks are stored without them)")
    images = 0
    problems = []
    for i, out in outs:
        if out.get("output_type") == "error":
            problems.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
        text = out.get("text", "") if out.get("output_type") == "stream" else ""
        data = out.get("data", {})
        text = "".join(text) + "".join(data.get("text/plain", ""))
        has_image = any(m in data for m in IMAGE_MIMES)
        images += has_image
        if "Traceback (most recent call last)" in text:
            problems.append(f"cell {i}: a traceback in the output")
        if "<Figure size" in text and not has_image:
            problems.append(f"cell {i}: a figure printed as text ({text.strip()[:40]!r})")
    need = check_pages.min_images(nb_path.name)
    if images < need:
        problems.append(f"{images} image outputs, expected at least {need}")
    assert not problems, f"{nb_path.name}: " + "; ".join(problems)
