"""dcgan_lab.book.keras_notes: classifier report, the frozen-BatchNorm check, run grids, excerpts."""

from __future__ import annotations

import numpy as np
import pytest

from dcgan_lab.book import keras_notes
from dcgan_lab.run.rundir import RunDir
from dcgan_lab.scoring import classifier


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    return classifier.load_real("mnist", "test")


def test_sample_report_real_digits_vs_noise_vs_one_class(mnist_test):
    x, y = mnist_test
    real, held = x[:500], x[500:1000]
    good = keras_notes.sample_report(held, real, "mnist")
    assert good.n == 500 and good.n_real == 500
    assert good.confident > 0.9
    assert good.coverage.covered == 10 and good.coverage.kl < 0.05
    noise = np.random.default_rng(0).integers(0, 256, size=(500, 28, 28, 1), dtype=np.uint8)
    bad = keras_notes.sample_report(noise, real, "mnist")
    assert bad.fid > 10 * good.fid
    ones = x[1000:][y[1000:] == 1][:300]
    collapsed = keras_notes.sample_report(ones, real, "mnist")
    assert collapsed.coverage.covered == 1 and collapsed.coverage.kl > 1.5
    assert collapsed.fid > good.fid
    # float [-1, 1] NCHW input (a PyTorch generator's output) gives the same numbers
    as_float = (held.astype(np.float32) / 127.5 - 1).transpose(0, 3, 1, 2)
    same = keras_notes.sample_report(as_float, real, "mnist")
    assert same.confident == pytest.approx(good.confident)
    assert same.fid == pytest.approx(good.fid, rel=1e-4)
    text = str(good)
    assert "10/10 modes" in text and "p > 0.9" in text
    assert set(good.as_dict()) == {"confident", "modes", "kl", "fid"}
    table = keras_notes.report_table({"real": good, "one class": collapsed}).splitlines()
    assert len(table) == 3 and "p > 0.9" in table[0]
    assert table[2].startswith("one class") and " 1/10 " in table[2]
    with pytest.raises(ValueError, match="at least one"):
        keras_notes.report_table({})


def test_sample_report_errors(mnist_test):
    x, _ = mnist_test
    with pytest.raises(TypeError):  # one rule for the whole course: no per-call coverage share
        keras_notes.sample_report(x[:10], x[:10], min_share=0.05)
    with pytest.raises(ValueError, match="at least 2"):
        keras_notes.sample_report(x[:1], x[:10])
    with pytest.raises(ValueError, match="do not fit the mnist classifier"):
        keras_notes.sample_report(np.zeros((4, 32, 32, 3), np.uint8), x[:10])


def test_bn_mode_gap_measures_both_modes_and_restores_the_model():
    keras = pytest.importorskip("keras")
    from keras import layers

    inp = keras.Input((4, 4, 1))
    h = layers.BatchNormalization(momentum=0.9)(layers.Flatten()(inp))
    D = keras.Model(inp, layers.Dense(1, activation="sigmoid")(h))
    D.layers[-1].set_weights([np.ones((16, 1), np.float32), np.zeros(1, np.float32)])
    # moving statistics of real-like inputs (mean 0, var 1): the frozen D sees raw values
    rng = np.random.default_rng(0)
    real = rng.normal(3.0, 0.1, (32, 4, 4, 1)).astype(np.float32)
    fake = rng.normal(-3.0, 0.1, (32, 4, 4, 1)).astype(np.float32)
    before = [v.numpy().copy() for v in D.variables]
    gap = keras_notes.bn_mode_gap(D, real, fake)
    # trained mode: each batch is normalised to mean 0 by its own statistics -> ~0.5 for both
    assert abs(gap.real_trained - 0.5) < 0.2 and abs(gap.fake_trained - 0.5) < 0.2
    # frozen mode: moving mean 0, var 1 -> the raw +-3 per pixel decides: real ~1, fake ~0
    assert gap.real_frozen > 0.99 and gap.fake_frozen < 0.01
    assert gap.fake_gap == pytest.approx(gap.fake_frozen - gap.fake_trained)
    for v, b in zip(D.variables, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), b)
    assert D.trainable
    D.trainable = False
    keras_notes.bn_mode_gap(D, real, fake)
    assert not D.trainable
    assert "moving stats" in str(gap)
    logits = keras_notes.bn_mode_gap(D, real, fake, from_logits=True)
    assert 0.5 <= logits.real_frozen <= 1.0  # sigmoid of a probability lies in [0.5, 0.73]


def test_pick_grids():
    paths = [f"p{i}" for i in range(10)]
    assert keras_notes.pick_grids(paths, 3) == ["p0", "p5", "p9"] or \
        keras_notes.pick_grids(paths, 3) == ["p0", "p4", "p9"]
    assert keras_notes.pick_grids(paths, 2) == ["p0", "p9"]
    assert keras_notes.pick_grids(paths, 1) == ["p9"]
    assert keras_notes.pick_grids(paths[:2], 3) == ["p0", "p1"]
    with pytest.raises(ValueError, match="n must be"):
        keras_notes.pick_grids(paths, 0)


def test_show_run_grids(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dcgan_lab import figures

    run = RunDir(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no step_"):
        keras_notes.show_run_grids(run.path)
    for step in (10, 20, 30, 40):
        figures.save_png(np.full((4, 8, 8, 1), step, np.uint8), run.sample_path(step), nrow=2)
    fig = keras_notes.show_run_grids(run.path, n=3, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "step 10" and titles[-1] == "step 40" and len(titles) == 3
    plt.close(fig)


class _Demo:
    def method(self, x):
        """A docstring
        over two lines."""
        y = x + 1
        return y

    def one_line(self):
        """One line."""
        return 1

    def bare(self):
        return 2


def test_source_excerpt_drops_docstrings():
    src = keras_notes.source_excerpt(_Demo.method)
    assert src.startswith("def method(self, x):\n")
    assert "docstring" not in src and "y = x + 1" in src and "return y" in src
    assert keras_notes.source_excerpt(_Demo.one_line) == "def one_line(self):\n    return 1\n"
    assert keras_notes.source_excerpt(_Demo.bare) == "def bare(self):\n    return 2\n"
    assert '"""A docstring' in keras_notes.source_excerpt(_Demo.method, docstring=True)


def test_compact_side_by_side():
    from dcgan_lab.shapes import ShapeTable, side_by_side

    a = ShapeTable.from_rows([("z (Input)", (100,), 0), ("dense (Dense)", (6272,), 633_472)],
                             title="A (Keras)")
    b = ShapeTable.from_rows([("input", (100,), 0), ("net.0 (Linear)", (6272,), 633_472)],
                             title="B (PyTorch)")
    sbs = side_by_side(a, b)
    c = keras_notes.compact(sbs)
    assert str(c) == str(sbs)
    out = c._repr_html_()
    assert out.count("<table") == 2 and "<h4>" not in out
    assert out.count("<caption>A (Keras)</caption>") == 1 and "overflow-x:auto" in out
    assert "white-space:nowrap" in out and "633,472" in out
    renamed = keras_notes.compact(side_by_side(a, b, titles=("left", "right")))._repr_html_()
    assert "<caption>left</caption>" in renamed and "A (Keras)" not in renamed
