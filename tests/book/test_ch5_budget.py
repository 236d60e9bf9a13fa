"""Chapter 5's MNIST half says honestly where it stands (issue 24, item 2): the budget where
``torch-mnist`` meets its quality targets (``benchmarks/quality_cpu.md``) is named in the package,
the gpu ablation trains at it, and the chapter glues a sentence, made from its budgets and its
measured baseline, that places its MNIST numbers relative to that budget."""

from __future__ import annotations

import json
from pathlib import Path

from dcgan_lab import recipes
from dcgan_lab.book import budgets

BOOK = Path(__file__).resolve().parents[2] / "book"
QUALITY = Path(__file__).resolve().parents[2] / "benchmarks" / "quality_cpu.md"


def test_the_effect_budget_is_the_recipes_cpu_budget_of_the_benchmark():
    eff = budgets.effect_budget()
    assert eff == recipes.get("torch-mnist").budget("cpu")
    row = next(line for line in QUALITY.read_text(encoding="utf8").splitlines()
               if line.startswith("| torch-mnist | torch |"))
    assert f"{eff.steps} x {eff.batch_size}" in row
    assert budgets.TORCH_MNIST_TARGETS == {"confident": 0.60, "fid": 100.0}
    assert ">= 60 %, FD <= 100" in row


def test_gpu_ablation_reaches_the_effect_budget_and_cpu_does_not():
    eff = budgets.effect_budget()
    images = {p: budgets.ablation_budget(p).steps * budgets.ablation_budget(p).batch_size
              for p in ("cpu", "gpu")}
    assert images["gpu"] >= eff.steps * eff.batch_size
    assert images["cpu"] < eff.steps * eff.batch_size   # hence the chapter's glued note


def test_chapter_5_glues_and_shows_its_budget_note():
    nb = json.loads((BOOK / "05_failure_modes.ipynb").read_text(encoding="utf8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for key in ("mnist_budget_note", "abl_targets"):
        assert f'glue("{key}"' in code and f"{{glue:md}}`{key}`" in md, key
    for name in ("budgets.effect_budget()", "budgets.TORCH_MNIST_TARGETS",
                 'table.mean("baseline", "confident")'):
        assert name in code, name
