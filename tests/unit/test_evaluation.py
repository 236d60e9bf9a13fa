"""dcgan_lab.scoring.evaluation: scores against real images, training callbacks, degraded images."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dcgan_lab.run.config import TrainOptions  # noqa: E402
from dcgan_lab.scoring import classifier, evaluation  # noqa: E402


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
    real = evaluation.evaluate(x[:400], n=400)
    const = evaluation.evaluate(ConstantGenerator(x[0]), n=400)
    assert set(real) == set(evaluation.METRICS)
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
    f_t, p_t = evaluation.classify(x[:50])
    monkeypatch.delitem(evaluation.sys.modules, "torch")  # force the numpy path
    f_n, p_n = evaluation.classify(x[:50])
    np.testing.assert_allclose(f_t, f_n, atol=1e-4)
    np.testing.assert_allclose(p_t, p_n, atol=1e-5)
    np.testing.assert_allclose(p_n.sum(axis=1), 1.0, atol=1e-6)


def test_evaluate_rejects_other_objects():
    with pytest.raises(TypeError, match="torch.nn.Module or keras.Model"):
        evaluation.evaluate("not a generator")


def test_fid_callback_adds_columns_every_n_steps(tmp_path):
    lab_torch = importlib.import_module("dcgan_lab.torch")
    opts = TrainOptions(steps=5, batch_size=8)
    h = lab_torch.train("torch-mnist", tmp_path / "run", options=opts, force=True, progress=False,
                        callbacks=[evaluation.fid_callback(2, n=64),
                                   evaluation.grad_norm_callback()])
    has = [("fid" in r, "modes_covered" in r, "kl" in r) for r in h.rows]
    assert has == [(False,) * 3, (True,) * 3, (False,) * 3, (True,) * 3, (False,) * 3]
    assert all(r["fid"] > 0 and 1 <= r["modes_covered"] <= 10 for r in h.rows if "fid" in r)
    assert all(r["grad_g"] > 0 for r in h.rows)
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"fid", "kl", "grad_g"} <= set(header)
    with pytest.raises(ValueError, match="every=0"):
        evaluation.fid_callback(0)


def test_grad_norm_shows_the_saturating_loss():
    """With D winning (lr_d 10x), the minimax G loss has a far smaller gradient than the
    non-saturating one: measured on the same four steps."""
    x, _ = classifier.load_real("mnist", "train")
    lab_torch = importlib.import_module("dcgan_lab.torch")
    norms = {}
    for loss in ("non_saturating", "minimax"):
        from dcgan_lab.run.config import resolve
        from dcgan_lab.run.history import History

        cfg = resolve("torch-mnist", "torch", TrainOptions(steps=4, batch_size=8, lr_d=2e-3,
                                                           g_loss=loss))
        torch.manual_seed(0)
        G, D = lab_torch.build("torch-mnist")
        opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
        h, cb = History(), evaluation.grad_norm_callback()
        for step in range(1, 5):
            h.log(step=step, **lab_torch.train_step(step, G, D, opt_g, opt_d, x[:2000], cfg,
                                                    torch.device("cpu")))
            cb(step, G, D, h)
        norms[loss] = h.last("grad_g")
    assert norms["minimax"] < norms["non_saturating"] / 5


def test_noise_and_blur_degrade_images_and_raise_the_distance():
    x, _ = classifier.load_real("mnist", "train")
    x = x[:200]
    assert evaluation.blur(x, 0) is not x and np.array_equal(evaluation.blur(x, 0), x)
    b = evaluation.blur(x, 1.0)
    assert b.shape == x.shape and b.dtype == np.uint8
    assert abs(float(b.mean()) - float(x.mean())) < 2.0  # blurring keeps the brightness
    assert b.std() < x.std()
    n = evaluation.add_noise(x, 0.5, seed=0)
    assert n.dtype == np.uint8 and np.array_equal(n, evaluation.add_noise(x, 0.5, seed=0))
    clean, noisy = (evaluation.evaluate(im, n=200)["fid"] for im in (x, n))
    assert noisy > clean
