"""dcgan_lab.figures: grids, PNG/GIF files and training-curve plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from dcgan_lab import figures  # noqa: E402
from dcgan_lab.data import to_float  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def batch(n=10, h=6, w=5, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("c", [1, 3])
def test_grid_shape_and_layout(c):
    x = batch(10, 6, 5, c)
    g = figures.make_grid(x, nrow=4, padding=2, pad_value=7)
    # 3 rows x 4 columns of 6x5 tiles with 2 px of padding around and between them
    assert g.shape == (3 * 8 + 2, 4 * 7 + 2, c) and g.dtype == np.uint8
    assert np.array_equal(g[2:8, 2:7], x[0])  # first tile
    assert np.array_equal(g[10:16, 2 + 7: 7 + 7], x[5])  # row 1, col 1
    assert (g[0] == 7).all() and (g[-6:, -7:] == 7).all()  # border, empty last slots


def test_grid_accepts_nchw_float_and_gray_batches():
    x = batch(6, 6, 5, 3)
    ref = figures.make_grid(x, nrow=3)
    assert np.array_equal(figures.make_grid(x.transpose(0, 3, 1, 2), nrow=3), ref)  # NCHW
    assert np.array_equal(figures.make_grid(to_float(x), nrow=3), ref)  # float [-1, 1]
    assert np.array_equal(figures.make_grid(to_float(x).transpose(0, 3, 1, 2), nrow=3), ref)
    g = batch(6, 6, 5, 1)
    ref_g = figures.make_grid(g, nrow=3)
    assert ref_g.shape[-1] == 1
    assert np.array_equal(figures.make_grid(g[..., 0], nrow=3), ref_g)  # (N, H, W)
    assert np.array_equal(figures.make_grid(g.transpose(0, 3, 1, 2), nrow=3), ref_g)  # (N, 1, H, W)
    # [0, 1] floats with value_range
    assert np.array_equal(figures.make_grid(x / 255.0, nrow=3, value_range=(0, 1)), ref)
    with pytest.raises(ValueError, match="channels"):
        figures.make_grid(np.zeros((2, 5, 5, 2), np.uint8))


def test_grid_of_torch_tensor():
    torch = pytest.importorskip("torch")
    x = batch(4, 6, 6, 3)
    t = torch.from_numpy(to_float(x)).permute(0, 3, 1, 2).requires_grad_(True)
    assert np.array_equal(figures.make_grid(t, nrow=2), figures.make_grid(x, nrow=2))


def test_save_png(tmp_path):
    x = batch(16, 8, 8, 1)
    p = figures.save_png(to_float(x), tmp_path / "out" / "grid.png", nrow=4)
    with Image.open(p) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (4 * 10 + 2, 4 * 10 + 2)
        assert np.array_equal(np.asarray(im)[..., None], figures.make_grid(x, nrow=4))
    grid = figures.make_grid(batch(3), nrow=3)
    with Image.open(figures.save_png(grid, tmp_path / "g.png")) as im:  # a finished grid as is
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), grid)


def test_save_gif_from_frames_and_pngs(tmp_path):
    frames = [figures.make_grid(batch(4, seed=s), nrow=2) for s in range(3)]
    p = figures.save_gif(frames, tmp_path / "train.gif", duration=100)
    with Image.open(p) as im:
        assert im.format == "GIF" and im.n_frames == 3 and im.size == frames[0].shape[1::-1]
    pngs = [figures.save_png(batch(4, seed=s), tmp_path / f"epoch_{s}.png", nrow=2) for s in range(4)]
    with Image.open(figures.save_gif([str(q) for q in pngs], tmp_path / "b.gif")) as im:
        assert im.n_frames == 4
    with pytest.raises(ValueError, match="no frames"):
        figures.save_gif([], tmp_path / "c.gif")


def _line_labels(ax):
    return [ln.get_label() for ln in ax.get_lines()]


def test_plot_losses_dict_rows_and_columns():
    n = 20
    cols = {"step": list(range(n)), "loss_d": list(np.linspace(1.4, 0.6, n)),
            "loss_g": list(np.linspace(0.7, 2.0, n)), "d_real": [0.6] * n, "d_fake": [0.3] * n}
    fig = figures.plot_losses(cols)
    loss_ax, d_ax = fig.axes[:2]
    assert _line_labels(loss_ax) == ["D loss", "G loss"]
    assert _line_labels(d_ax) == ["D(x)", "D(G(z))", "0.5"]
    assert np.array_equal(loss_ax.get_lines()[0].get_xdata(), np.arange(n))

    rows = [{k: v[i] for k, v in cols.items()} for i in range(n)]
    assert _line_labels(figures.plot_losses(rows).axes[0]) == ["D loss", "G loss"]

    class Hist:
        def columns(self):
            return cols

    fig = figures.plot_losses(Hist(), smooth=0.9)
    y = fig.axes[0].get_lines()[1].get_ydata()
    assert y[0] == pytest.approx(0.7) and y[-1] < 2.0  # smoothed lags behind the raw curve

    only_losses = figures.plot_losses({"loss_d": [1, 2], "loss_g": [2, 1]})
    assert len(only_losses.axes) == 1 and len(only_losses.axes[0].get_lines()) == 2
    fig, ax = plt.subplots()
    assert figures.plot_losses(cols, ax=ax) is fig and len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="no loss"):
        figures.plot_losses({"step": [1, 2]})


def test_show_and_compare_grids():
    fig = figures.show_grid(batch(8, c=1), title="digits", nrow=4)
    (ax,) = fig.axes
    assert ax.get_title() == "digits" and list(ax.get_xticks()) == [] and len(ax.images) == 1
    fig = figures.compare_grids(batch(4), to_float(batch(4, seed=1)))
    assert [a.get_title() for a in fig.axes] == ["real", "generated"]


def test_experiment_plots_return_figures():
    from dcgan_lab.run.history import History
    from dcgan_lab.scoring.evaluation import blur
    from dcgan_lab.scoring.tables import AblationTable

    rows = [{"variant": v, "seed": i, "fid": f, "kl": 0.1}
            for v, fs in {"baseline": [10, 11, 12], "x": [5, 6, 7]}.items() for i, f in enumerate(fs)]
    t = AblationTable(rows, ["baseline", "x"], {})
    fig = figures.plot_ablation(t, ("fid", "kl"))
    ax = fig.axes[0]
    ticks = dict(zip([lbl.get_text() for lbl in ax.get_yticklabels()], ax.get_yticks(),
                     strict=True))
    assert len(fig.axes) == 2 and ticks["baseline"] > ticks["x"]  # first variant on top
    h = History()
    for i in range(5):
        h.log(step=i + 1, loss_d=1.0 / (i + 1), d_fake=0.5, grad_g=10.0 ** -i)
    h.rows[2]["fid"] = 3.0
    fig2 = figures.plot_curves({"a": h}, ("loss_d", "grad_g", "fid"), logy=("grad_g",))
    assert fig2.axes[1].get_yscale() == "log" and len(fig2.axes[2].lines[0].get_xdata()) == 1
    from dcgan_lab.scoring import classifier

    x, _ = classifier.load_real("mnist", "test")
    fig3 = figures.show_rows({"real": x[:5], "blurred": blur(x[:5], 1.0)}, n=5)
    assert [ax.get_ylabel() for ax in fig3.axes] == ["real", "blurred"]
    plt.close("all")
