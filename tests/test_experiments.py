"""dcgan_lab.experiments: evaluation, training callbacks, the cached ablation runner, Stacked MNIST."""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dcgan_lab import classifier, experiments, stacked_mnist  # noqa: E402
from dcgan_lab.training import TrainOptions  # noqa: E402


class ConstantGenerator(torch.nn.Module):
    """Ignores z and returns the same image every time (the extreme of mode collapse)."""

    input_shape = (100,)

    def __init__(self, image_uint8: np.ndarray):
        super().__init__()
        x = torch.from_numpy(image_uint8.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)
        self.register_buffer("image", x.contiguous())
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return self.image.expand(len(z), *self.image.shape) + 0 * self.dummy


def test_evaluate_real_images_vs_a_constant_generator():
    x, _ = classifier.load_real("mnist", "train")
    real = experiments.evaluate(x[:400], n=400)
    const = experiments.evaluate(ConstantGenerator(x[0]), n=400)
    assert set(real) == set(experiments.METRICS)
    # real training images against the test split: all classes, near-uniform, confident
    assert real["modes_covered"] == 10 and real["kl"] < 0.05 and real["confident"] > 0.9
    assert real["precision"] > 0.6 and real["recall"] > 0.6
    # one image repeated: one class, KL = log 10, no recall, a far larger Frechet distance
    assert const["modes_covered"] == 1
    assert const["kl"] == pytest.approx(math.log(10), abs=1e-9)
    assert const["recall"] < 0.05
    assert const["fid"] > 10 * real["fid"]


def test_classify_numpy_and_torch_paths_agree(monkeypatch):
    x, _ = classifier.load_real("mnist", "test")
    f_t, p_t = experiments.classify(x[:50])
    monkeypatch.delitem(experiments.sys.modules, "torch")  # force the numpy path
    f_n, p_n = experiments.classify(x[:50])
    np.testing.assert_allclose(f_t, f_n, atol=1e-4)
    np.testing.assert_allclose(p_t, p_n, atol=1e-5)
    np.testing.assert_allclose(p_n.sum(axis=1), 1.0, atol=1e-6)


def test_evaluate_rejects_other_objects():
    with pytest.raises(TypeError, match="torch.nn.Module or keras.Model"):
        experiments.evaluate("not a generator")


def _count_trains(monkeypatch) -> list[str]:
    module = importlib.import_module("dcgan_lab.torch.train")
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
    table = experiments.run_ablation(variants, **kw)
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
    cache = json.loads((tmp_path / experiments.CACHE_FILE).read_text())
    assert len(cache["runs"]) == 4

    again = experiments.run_ablation(variants, **kw)  # same settings: nothing is retrained
    assert len(calls) == 4 and again.n_cached == 4
    assert again.values("smooth 0.1", "fid") == fids

    longer = experiments.run_ablation({"baseline": TrainOptions()}, **{**kw, "seeds": (0,),
                                                                      "steps": 4})
    assert len(calls) == 5 and longer.n_cached == 0  # another budget is another key


def test_run_ablation_errors(tmp_path):
    with pytest.raises(ValueError, match="clashing folder names"):
        experiments.run_ablation({"a b": TrainOptions(), "a-b": TrainOptions()}, out_dir=tmp_path)
    with pytest.raises(TypeError, match="expected TrainOptions"):
        experiments.run_ablation({"a": {"lr_d": 1e-4}}, out_dir=tmp_path, steps=1, seeds=(0,))
    with pytest.raises(ValueError, match="framework='jax'"):
        experiments.run_ablation({"a": TrainOptions()}, out_dir=tmp_path, framework="jax")


def _table(values: dict[str, list[float]]) -> experiments.AblationTable:
    rows = [{"variant": v, "seed": i, "fid": f, "modes_covered": 10.0, "kl": 0.1,
             "confident": 0.5, "precision": 0.5, "recall": 0.5, "d_real": 0.6, "d_fake": 0.3,
             "seconds": 1.0} for v, fs in values.items() for i, f in enumerate(fs)]
    settings = {"recipe": "torch-mnist", "framework": "torch", "steps": 1, "batch_size": 2,
                "seeds": [0, 1, 2], "n_eval": 10, "dataset": "mnist"}
    return experiments.AblationTable(rows, list(values), settings)


def test_compare_and_describe_only_claim_what_the_spread_allows():
    t = _table({"baseline": [10, 11, 12], "good": [5, 6, 7], "bad": [20, 21, 22],
                "same": [9, 11, 13]})
    assert t.compare("fid") == {"good": "better", "bad": "worse", "same": "within the spread"}
    text = t.describe("fid")
    assert "better beyond the spread: good (6.00 ± 1.00)" in text
    assert "worse beyond the spread: bad" in text and "1 other variant within the spread" in text
    assert "every other variant within the spread" in _table(
        {"baseline": [1, 2, 3], "x": [2, 3, 4]}).describe("fid")
    # higher is better for modes covered: a larger mean counts as better
    t2 = _table({"baseline": [1, 1, 1], "x": [2, 2, 2]})
    for r in t2.rows:
        r["modes_covered"] = r["fid"]
    assert t2.compare("modes_covered") == {"x": "better"}


def test_fid_callback_adds_columns_every_n_steps(tmp_path):
    lab_torch = importlib.import_module("dcgan_lab.torch")
    opts = TrainOptions(steps=5, batch_size=8)
    h = lab_torch.train("torch-mnist", tmp_path / "run", options=opts, force=True, progress=False,
                        callbacks=[experiments.fid_callback(2, n=64),
                                   experiments.grad_norm_callback()])
    has = [("fid" in r, "modes_covered" in r, "kl" in r) for r in h.rows]
    assert has == [(False,) * 3, (True,) * 3, (False,) * 3, (True,) * 3, (False,) * 3]
    assert all(r["fid"] > 0 and 1 <= r["modes_covered"] <= 10 for r in h.rows if "fid" in r)
    assert all(r["grad_g"] > 0 for r in h.rows)
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"fid", "kl", "grad_g"} <= set(header)
    with pytest.raises(ValueError, match="every=0"):
        experiments.fid_callback(0)


def test_metric_every_is_honoured_by_run_ablation(tmp_path):
    table = experiments.run_ablation({"m": TrainOptions(metric_every=2)}, seeds=(0,), steps=2,
                                     batch_size=8, out_dir=tmp_path, n_eval=32, verbose=False)
    header = (tmp_path / "m" / "seed0" / "history.csv").read_text().splitlines()[0]
    assert "fid" in header.split(",") and len(table.rows) == 1


def test_grad_norm_shows_the_saturating_loss():
    """With D winning (lr_d 10x), the minimax G loss has a far smaller gradient than the
    non-saturating one: measured on the same four steps."""
    x, _ = classifier.load_real("mnist", "train")
    lab_torch = importlib.import_module("dcgan_lab.torch")
    norms = {}
    for loss in ("non_saturating", "minimax"):
        from dcgan_lab.history import History
        from dcgan_lab.training import resolve

        cfg = resolve("torch-mnist", "torch", TrainOptions(steps=4, batch_size=8, lr_d=2e-3,
                                                           g_loss=loss))
        torch.manual_seed(0)
        G, D = lab_torch.build("torch-mnist")
        opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
        h, cb = History(), experiments.grad_norm_callback()
        for step in range(1, 5):
            h.log(step=step, **lab_torch.train_step(step, G, D, opt_g, opt_d, x[:2000], cfg,
                                                    torch.device("cpu")))
            cb(step, G, D, h)
        norms[loss] = h.last("grad_g")
    assert norms["minimax"] < norms["non_saturating"] / 5


def test_stacked_models_train_and_count_modes():
    G, D = experiments.stacked_models(0)
    z = torch.zeros(2, 100)
    assert tuple(G(z).shape) == (2, 3, 28, 28) and tuple(D(G(z)).shape) == (2, 1)
    images, modes = stacked_mnist.make(300, seed=1)
    G, D, h = experiments.train_stacked(TrainOptions(), steps=2, batch_size=8, data=images)
    assert len(h) == 2 and np.isfinite(h["loss_d"]).all()
    fake = experiments.stacked_evaluate(G, n=64)
    assert 1 <= fake["modes_covered"] <= 64 and fake["n"] == 64
    real = experiments.stacked_evaluate(images)
    assert real["modes_covered"] >= 0.95 * len(set(modes.tolist()))
    assert real["uniform_expected"] == pytest.approx(1000 * (1 - 0.999 ** 300))
    const = experiments.stacked_evaluate(np.repeat(images[:1], 50, axis=0))
    assert const["modes_covered"] == 1 and const["kl"] == pytest.approx(math.log(1000))
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 3\)"):
        experiments.train_stacked(steps=1, data=images[..., :1])


def test_noise_and_blur_degrade_images_and_raise_the_distance():
    x, _ = classifier.load_real("mnist", "train")
    x = x[:200]
    assert experiments.blur(x, 0) is not x and np.array_equal(experiments.blur(x, 0), x)
    b = experiments.blur(x, 1.0)
    assert b.shape == x.shape and b.dtype == np.uint8
    assert abs(float(b.mean()) - float(x.mean())) < 2.0  # blurring keeps the brightness
    assert b.std() < x.std()
    n = experiments.add_noise(x, 0.5, seed=0)
    assert n.dtype == np.uint8 and np.array_equal(n, experiments.add_noise(x, 0.5, seed=0))
    clean, noisy = (experiments.evaluate(im, n=200)["fid"] for im in (x, n))
    assert noisy > clean


def test_a_single_seed_is_never_judged():
    t = _table({"baseline": [10], "x": [1]})
    assert t.compare("fid") == {"x": "not judged (one seed)"}
    assert "no variant is judged" in t.describe("fid")


def test_ruler_position_and_score_tables():
    ruler = {"real": 1.0, "blur 1": 10.0, "noise": 100.0}
    assert experiments.ruler_position(0.5, ruler).startswith("below every reference")
    assert experiments.ruler_position(5.0, ruler) == "between 'real' (1.00) and 'blur 1' (10.00)"
    assert experiments.ruler_position(500.0, ruler).startswith("above every reference, even 'noise'")
    st = experiments.ScoreTable({"a": {"fid": 1.234, "kl": 0.5}, "b": {"fid": 2.0}})
    assert "1.23" in str(st) and "-" in str(st).splitlines()[-1] and "<td" in st._repr_html_()
    from dcgan_lab.history import History

    h = History()
    for i in range(10):
        h.log(step=i + 1, loss_d=float(i), d_real=1.0, d_fake=0.0, grad_g=2.0)
    means = experiments.tail_means({"run": h}, frac=0.2)
    assert means["run"]["loss_d"] == pytest.approx(8.5)


def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dcgan_lab.history import History

    t = _table({"baseline": [10, 11, 12], "x": [5, 6, 7]})
    fig = experiments.plot_ablation(t, ("fid", "kl"))
    ax = fig.axes[0]
    ticks = dict(zip([lbl.get_text() for lbl in ax.get_yticklabels()], ax.get_yticks(),
                     strict=True))
    assert len(fig.axes) == 2 and ticks["baseline"] > ticks["x"]  # first variant on top
    h = History()
    for i in range(5):
        h.log(step=i + 1, loss_d=1.0 / (i + 1), d_fake=0.5, grad_g=10.0 ** -i)
    h.rows[2]["fid"] = 3.0
    fig2 = experiments.plot_curves({"a": h}, ("loss_d", "grad_g", "fid"), logy=("grad_g",))
    assert fig2.axes[1].get_yscale() == "log" and len(fig2.axes[2].lines[0].get_xdata()) == 1
    x, _ = classifier.load_real("mnist", "test")
    fig3 = experiments.show_rows({"real": x[:5], "blurred": experiments.blur(x[:5], 1.0)}, n=5)
    assert [ax.get_ylabel() for ax in fig3.axes] == ["real", "blurred"]
    plt.close("all")


@pytest.mark.slow
def test_run_ablation_with_the_keras_trainer(tmp_path):
    pytest.importorskip("tensorflow")
    variants = {"baseline": TrainOptions(),
                "soft labels": TrainOptions(real_label_range=(0.7, 1.0), fake_label_range=(0.0, 0.3))}
    table = experiments.run_ablation(variants, seeds=(0,), steps=2, batch_size=8, out_dir=tmp_path,
                                     framework="keras", n_eval=32, verbose=False)
    assert [r["variant"] for r in table.rows] == ["baseline", "soft labels"]
    assert all(np.isfinite(r["fid"]) and 1 <= r["modes_covered"] <= 10 for r in table.rows)
    assert "torch-mnist (keras)" in str(table)


def test_history_summary_counts_starved_steps():
    from dcgan_lab.history import History

    h = History()
    for i, df in enumerate([0.5, 0.005, 0.001, 0.2]):
        h.log(step=i + 1, loss_d=float(i), d_fake=df, grad_g=float(10 - i))
    assert experiments.starved_steps(h) == 2
    h.log(step=5, loss_d=0.0, d_fake=0.0, grad_g=0.0)
    assert experiments.starved_steps(h, consecutive=True) == 2  # steps 2-3 (step 5 is alone)
    h.rows.pop()
    s = experiments.history_summary({"run": h})
    assert s["run"] == {"loss_d": 1.5, "d_fake": pytest.approx(0.1025), "grad_g": 8.5,
                        "starved": 2.0}
    assert "steps with D(G(z)) < 0.01" in str(s)
