"""dcgan_lab.ablation: the cached ablation runner, with either framework's trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from dcgan_lab import ablation, frameworks  # noqa: E402
from dcgan_lab.run.config import TrainOptions  # noqa: E402


def _count_trains(monkeypatch) -> list[str]:
    module = frameworks.get("torch")  # run_ablation finds its trainer there
    calls: list[str] = []
    real_train = module.train

    def counting(recipe, out_dir, **kw):
        calls.append(str(out_dir))
        return real_train(recipe, out_dir, **kw)

    monkeypatch.setattr(module, "train", counting)
    return calls


def test_run_ablation_table_and_cache(tmp_path, monkeypatch):
    calls = _count_trains(monkeypatch)
    variants = {"baseline": TrainOptions(), "smooth 0.1": TrainOptions(label_smoothing=0.1)}
    kw = dict(seeds=(0, 1), steps=3, batch_size=8, out_dir=tmp_path, n_eval=64, verbose=False)
    table = ablation.run_ablation(variants, **kw)
    assert len(calls) == 4 and table.n_cached == 0
    assert [(r["variant"], r["seed"]) for r in table.rows] == [
        ("baseline", 0), ("baseline", 1), ("smooth 0.1", 0), ("smooth 0.1", 1)]
    assert (tmp_path / "smooth-0.1" / "seed1" / "generator.pt").exists()
    summary = {s["variant"]: s for s in table.summary()}
    fids = table.values("smooth 0.1", "fid")
    assert summary["smooth 0.1"]["fid_mean"] == pytest.approx(np.mean(fids))
    assert summary["smooth 0.1"]["fid_std"] == pytest.approx(np.std(fids, ddof=1))
    assert fids[0] != fids[1]  # the seeds really differ
    text, page = str(table), table._repr_html_()
    for s in (text, page):
        assert "smooth 0.1" in s and "±" in s and "3 steps at batch 8" in s
    assert page.startswith("<table") and ">FD (classifier)</th>" in page
    cache = json.loads((tmp_path / ablation.CACHE_FILE).read_text())
    assert len(cache["runs"]) == 4

    again = ablation.run_ablation(variants, **kw)  # same settings: nothing is retrained
    assert len(calls) == 4 and again.n_cached == 4
    assert again.values("smooth 0.1", "fid") == fids

    longer = ablation.run_ablation({"baseline": TrainOptions()}, **{**kw, "seeds": (0,),
                                                                      "steps": 4})
    assert len(calls) == 5 and longer.n_cached == 0  # another budget is another key


def test_run_ablation_errors(tmp_path):
    with pytest.raises(ValueError, match="clashing folder names"):
        ablation.run_ablation({"a b": TrainOptions(), "a-b": TrainOptions()}, out_dir=tmp_path)
    with pytest.raises(TypeError, match="expected TrainOptions"):
        ablation.run_ablation({"a": {"lr_d": 1e-4}}, out_dir=tmp_path, steps=1, seeds=(0,))
    with pytest.raises(ValueError, match="framework='jax'"):
        ablation.run_ablation({"a": TrainOptions()}, out_dir=tmp_path, framework="jax")


def test_metric_every_is_honoured_by_run_ablation(tmp_path):
    table = ablation.run_ablation({"m": TrainOptions(metric_every=2)}, seeds=(0,), steps=2,
                                     batch_size=8, out_dir=tmp_path, n_eval=32, verbose=False)
    header = (tmp_path / "m" / "seed0" / "history.csv").read_text().splitlines()[0]
    assert "fid" in header.split(",") and len(table.rows) == 1


def test_run_ablation_with_the_keras_trainer(tmp_path):
    pytest.importorskip("tensorflow")
    variants = {"baseline": TrainOptions(),
                "soft labels": TrainOptions(real_label_range=(0.7, 1.0), fake_label_range=(0.0, 0.3))}
    table = ablation.run_ablation(variants, seeds=(0,), steps=2, batch_size=8, out_dir=tmp_path,
                                     framework="keras", n_eval=32, verbose=False)
    assert [r["variant"] for r in table.rows] == ["baseline", "soft labels"]
    assert all(np.isfinite(r["fid"]) and 1 <= r["modes_covered"] <= 10 for r in table.rows)
    assert "torch-mnist (keras)" in str(table)
