"""One scorer everywhere (issue 24, item 4): every chapter, chapter 5's budgets and the ablation's
callback score at the dataset's one sample size (``evaluation.SAMPLE_SIZES``), against the one
real reference, with the one coverage rule (``metrics.coverage_min_count``).

The chapters are checked by reading their code cells (``ast``): a scorer called with a sample
size typed as a number, a real reference sliced by hand from the test split, or a coverage
threshold of its own fails, and so does each planted example below.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from dcgan_lab import profiles
from dcgan_lab.book import budgets
from dcgan_lab.scoring import evaluation

BOOK = Path(__file__).resolve().parents[2] / "book"

# the functions that draw or score samples; a number typed into their size argument is a
# sample size of the chapter's own
SCORERS = {"sample_report", "evaluate", "fid_callback", "real_reference", "real_subsets",
           "scores", "sample", "run_ablation"}
SIZE_NAMES = {"n", "N", "Nc", "n_eval", "want", "n_samples_eval"}
COVERAGE = {"mode_coverage", "modes_covered", "coverage_min_count"}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _numbers(node: ast.AST, at_least: int = 100) -> list[int]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and type(n.value) is int and n.value >= at_least]


def scorer_violations(code: str) -> list[str]:
    """What in ``code`` departs from the one scorer (an empty list when nothing does)."""
    from IPython.core.inputtransformer2 import TransformerManager

    tree = ast.parse(TransformerManager().transform_cell(code))  # magics become calls
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            toy_points = (isinstance(node.func, ast.Attribute)   # toy.sample: 2-D points, not
                          and getattr(node.func.value, "id", "") == "toy")  # images to score
            if name in SCORERS and not toy_points:
                sizes = [kw.value for kw in node.keywords if kw.arg in ("n", "n_eval")]
                sizes += node.args[1:2] if name in ("sample", "evaluate", "real_reference",
                                                    "real_subsets", "fid_callback") else []
                if name == "fid_callback":
                    sizes = [kw.value for kw in node.keywords if kw.arg == "n"] + node.args[2:3]
                for size in sizes:
                    if _numbers(size):
                        found.append(f"{name}(...) with a sample size typed as a number: "
                                     f"{ast.unparse(size)}")
                if name == "sample_report":
                    real = [kw.value for kw in node.keywords if kw.arg == "real"] + node.args[1:2]
                    if real and isinstance(real[0], ast.Subscript):
                        found.append("sample_report(...) against a real slice of the chapter's "
                                     f"own: {ast.unparse(real[0])}")
            if name in COVERAGE and any(kw.arg == "min_count" for kw in node.keywords):
                found.append(f"{name}(...) with a coverage threshold of its own")
            if name == "evaluate" and any(kw.arg == "k" for kw in node.keywords):
                found.append("evaluate(...) with a k of its own")
        if isinstance(node, ast.Assign):
            targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
            if targets & SIZE_NAMES and _numbers(node.value):
                found.append(f"a sample size typed as a number: {ast.unparse(node)}")
        if isinstance(node, ast.FunctionDef) and node.name in COVERAGE | {"covered"}:
            found.append(f"a coverage rule of the chapter's own: def {node.name}")
    return found


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("planted", [
    'reports = {"a": keras_notes.sample_report(fake, x_test[:1000], "mnist")}',
    "r = sample_report(fake, real=x_test[N:2 * N])",
    "n_eval = min(1000, len(real_test), len(x_train))",
    'want = 256 if profile == "smoke" else 1000',
    "cb = evaluation.fid_callback(25, n=500)",
    'cb = fid_callback(25, "mnist", 300)',
    "s = evaluation.evaluate(G, n=2000)",
    'ref = evaluation.real_reference("mnist", 500)',
    "table = ablation.run_ablation(v, 'torch-mnist', n_eval=10000)",
    "fake = lab_torch.sample(G, 1000, seed=1)",
    "n_eval = min(256 if profile == 'smoke' else evaluation.sample_size('mnist'), len(x_test))",
    "cov = metrics.mode_coverage(labels, 10, min_count=1)",
    "def coverage_min_count(n):\n    return 1",
])
def test_a_planted_departure_is_found(planted):
    assert scorer_violations(planted), planted


@pytest.mark.parametrize("fine", [
    "fake = lab_torch.sample(G, n_eval, seed=1)",
    "rows = {name: lab_torch.sample(G, 12) for name, G in gens.items()}",
    'sets = keras_notes.real_sets("mnist")\nr = sample_report(fake, sets.reference)',
    "cb = evaluation.fid_callback(demo.every, n=demo.n_eval)",
    "n = min(ab.n_eval, int((y_train == 7).sum()), len(x_test))",
    "r = sample_report(x_train[:n_eval], real_test)",   # a training slice as a row is fine
    'x_chk = toy.sample("ring", 512, seed=2)',           # the toy mixture's points
])
def test_the_one_scorer_passes(fine):
    assert not scorer_violations(fine), fine


@pytest.mark.parametrize("chapter", sorted(p.name for p in BOOK.glob("*.ipynb")))
def test_no_chapter_scores_with_its_own_size_reference_or_rule(chapter):
    found = [f"code cell {i}: {v}" for i, code in enumerate(_code_cells(BOOK / chapter))
             for v in scorer_violations(code)]
    assert not found, (chapter, found)


@pytest.mark.parametrize("profile", profiles.PROFILES)
def test_chapter_5_budgets_score_at_the_one_sample_size(profile):
    n = evaluation.sample_size("mnist")
    assert budgets.ablation_budget(profile).n_eval == n
    assert budgets.demo_budget(profile).n_eval == n


def test_the_ablation_and_its_fid_callback_score_at_the_one_sample_size(tmp_path, monkeypatch):
    """run_ablation's final score and its per-step callback draw the dataset's sample size."""
    from dcgan_lab import ablation
    from dcgan_lab.run.config import TrainOptions

    sizes = {}
    real_callback = ablation.fid_callback

    def fid_callback(every, dataset="mnist", n=None, **kw):
        sizes["callback"] = n
        return real_callback(every, dataset, n=n, **kw)

    def train_and_score(train, load_generator, r, run_dir, opts, data, cbs, dataset, n_eval):
        sizes["evaluate"] = n_eval
        return {"fid": 1.0, "modes_covered": 10, "kl": 0.0, "confident": 0.5, "precision": 0.5,
                "recall": 0.5, "diversity": 1.0, "d_real": 0.5, "d_fake": 0.5}, 0.0

    monkeypatch.setattr(ablation, "fid_callback", fid_callback)
    monkeypatch.setattr(ablation, "_train_and_score", train_and_score)
    images = np.zeros((64, 28, 28), np.uint8)
    ablation.run_ablation({"baseline": TrainOptions(metric_every=1)}, "torch-mnist", seeds=(0,),
                          steps=2, batch_size=8, out_dir=tmp_path, data=images, verbose=False)
    n = evaluation.sample_size("mnist")
    assert sizes == {"callback": n, "evaluate": n}


def test_real_sets_are_the_one_reference_and_a_disjoint_floor():
    from dcgan_lab.book import keras_notes

    sets = keras_notes.real_sets("mnist")
    ref = evaluation.real_reference("mnist", sets.n)
    np.testing.assert_array_equal(sets.reference, ref.images)
    assert sets.floor is not None and len(sets.floor) == sets.n
    assert sets.n == evaluation.sample_size("mnist") or any("loaded" in n for n in sets.notes)
    flat = {bytes(x) for x in sets.reference.reshape(sets.n, -1)}
    assert sum(bytes(x) in flat for x in sets.floor.reshape(sets.n, -1)) < sets.n // 100
