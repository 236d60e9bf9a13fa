"""The Keras stacked style with BatchNorm in D (issue 13): TF1BatchNormalization and StackedGAN.

Keras 3 runs a frozen BatchNormalization in inference mode, so inside the stacked ``combined``
model G used to be trained against D's moving-average function while ``D.train_on_batch`` trained
the batch-statistics one. These checks pin the fix: the frozen D inside ``combined`` computes what
D's own training pass computes, G's update leaves every variable of D alone, and a short
gia-dcgan-mnist run plays one game (G's loss agrees with D's verdict on the fakes).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dcgan_lab import data  # noqa: E402
from dcgan_lab.run import rundir  # noqa: E402
from dcgan_lab.run.config import TrainOptions, resolve  # noqa: E402

T = importlib.import_module("dcgan_lab.keras.backend")
M = importlib.import_module("dcgan_lab.keras.models")


@pytest.fixture(scope="module")
def mnist() -> np.ndarray:
    x, _ = data.load("mnist", "train", verbose=False)
    return np.ascontiguousarray(x[:2048])


def _values(variables) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


def test_tf1_batchnorm_frozen_uses_batch_statistics_and_stays_frozen():
    rng = np.random.default_rng(0)
    x = (3.0 + 2.0 * rng.standard_normal((16, 4, 4, 8))).astype("float32")
    stock = keras.layers.BatchNormalization(momentum=0.9)
    tf1 = M.TF1BatchNormalization(momentum=0.9)
    for layer in (stock, tf1):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 8).astype("float32"))
        layer.beta.assign(np.linspace(-0.2, 0.2, 8).astype("float32"))
    # trainable: exactly the stock layer, in both modes, moving statistics updated alike
    for training_flag in (True, False):
        np.testing.assert_allclose(np.asarray(tf1(x, training=training_flag)),
                                   np.asarray(stock(x, training=training_flag)), atol=1e-6)
    np.testing.assert_allclose(tf1.moving_mean.numpy(), stock.moving_mean.numpy(), atol=1e-6)
    # frozen, training=True: batch statistics (the stock layer switches to its moving ones) ...
    stock.trainable = tf1.trainable = False
    before = _values(tf1.variables)
    out = np.asarray(tf1(x, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    expected = (x - mean) / np.sqrt(var + tf1.epsilon) * tf1.gamma.numpy() + tf1.beta.numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.abs(np.asarray(stock(x, training=True)) - out).max() > 0.1  # the Keras 3 trap
    # ... and nothing moves, moving statistics included
    for a, b in zip(before, _values(tf1.variables), strict=True):
        np.testing.assert_array_equal(a, b)
    # frozen, inference: the moving statistics, as the stock layer
    np.testing.assert_allclose(np.asarray(tf1(x, training=False)),
                               np.asarray(stock(x, training=False)), atol=1e-6)


def test_tf1_batchnorm_models_save_load_and_port(tmp_path):
    torch = pytest.importorskip("torch")
    from dcgan_lab import torch as lab_torch
    from dcgan_lab.interop import port

    G, D = M.build("gia-dcgan-mnist", tf1_batchnorm=True)
    G0, D0 = M.build("gia-dcgan-mnist")
    assert sum(isinstance(la, M.TF1BatchNormalization) for la in D.layers) == 2
    assert not any(isinstance(la, M.TF1BatchNormalization) for la in G.layers)
    assert D.count_params() == D0.count_params()
    assert sum(int(np.prod(w.shape)) for w in D.trainable_weights) == 95_105
    path = tmp_path / "d.keras"
    D.save(path)
    D2 = keras.models.load_model(path, safe_mode=True)
    assert sum(isinstance(la, M.TF1BatchNormalization) for la in D2.layers) == 2
    x = np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(D2(x)), np.asarray(D(x)), atol=1e-6)
    _, TD = lab_torch.build("gia-dcgan-mnist")
    port.keras_to_torch(D, TD)
    TD.eval()
    with torch.no_grad():
        t_out = TD(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(t_out.reshape(-1), np.asarray(D(x)).reshape(-1), atol=1e-4)
    port.torch_to_keras(TD, D0)
    np.testing.assert_allclose(np.asarray(D0(x)), np.asarray(D(x)), atol=1e-4)


def _stacked(mnist):
    cfg = resolve("gia-dcgan-mnist", "keras", TrainOptions(steps=4, batch_size=16))
    keras.utils.set_random_seed(0)
    G, D = M.build(cfg.recipe, tf1_batchnorm=True)
    st = T.StackedGAN.from_config_of(cfg, G, D)
    inputs = T.step_inputs(1, mnist, cfg)
    st.train_d(inputs["real"][0], st.make_fakes(inputs["z_d"][0]), inputs["t_real"][0],
               inputs["t_fake"][0])  # BN moving statistics and weights away from their init
    return st, G, D, inputs["z_g"][0]


def test_combined_sees_the_discriminator_that_d_trains(mnist):
    """On the same batch, D frozen inside ``combined`` = D's own training pass (to 1e-6)."""
    st, G, D, z = _stacked(mnist)
    saved = _values(G.variables) + _values(D.variables)
    D.trainable = False
    inside = np.asarray(st.combined(z, training=True))
    D.trainable = True
    own = np.asarray(D(G(z, training=True), training=True))
    np.testing.assert_allclose(inside, own, atol=1e-6, rtol=0)
    assert np.abs(own - np.asarray(D(G(z, training=True), training=False))).max() > 1e-3
    for v, a in zip(G.variables + D.variables, saved, strict=True):  # as it was
        v.assign(a)


def test_g_update_moves_no_variable_of_d(mnist):
    st, G, D, z = _stacked(mnist)
    d0, g0 = _values(D.variables), _values(G.trainable_weights)
    g_stats = [v for v in G.non_trainable_variables if "moving" in v.path]
    s0 = _values(g_stats)
    st.train_g(z)
    assert len(d0) == 4 * 2 + 2 * 4  # 3 convs and a dense (kernel, bias), 2 BN (4 arrays each)
    for v, a in zip(D.variables, d0, strict=True):
        np.testing.assert_array_equal(np.asarray(v.numpy()), a, err_msg=v.path)
    assert all((a != np.asarray(v.numpy())).any() for v, a in zip(G.trainable_weights, g0,
                                                                    strict=True))
    assert all((a != np.asarray(v.numpy())).any() for v, a in zip(g_stats, s0, strict=True))
    assert D.trainable


def test_short_stacked_gia_run_plays_one_game(tmp_path, mnist):
    """100 steps of batch 32 on 2048 MNIST digits (25-40 s on one core).

    The bug's signature is a G loss that disagrees with D's verdict on the fakes: G fools some
    other function than the D that reports. Measured with this very run (seed 0), means over
    steps 51-100:

    ==================================================  ===========  ======  ===========  =====
    version                                             mean d_fake  loss_g  -log d_fake  ratio
    ==================================================  ===========  ======  ===========  =====
    stock BatchNorm in D, fakes from G.predict (before)  0.053        0.95    2.95         0.32
    TF1BatchNormalization, fakes from G.predict          0.0037       0.044   5.6          0.008
    TF1BatchNormalization, fakes in training mode (now)  0.029        6.0     3.55         1.7
    ==================================================  ===========  ======  ===========  =====

    Jensen: the mean of -log D(G(z)) (loss_g) is at least -log of the mean D(G(z)), so when G and
    D play one game the ratio loss_g / -log(mean d_fake) is about 1 or more (D is updated between
    the two, so not exactly). Threshold: 0.5. At 400 steps of 64 (the old cpu budget) the two broken
    versions end at D(G(z)) 0.001; here D(G(z)) must stay above 0.003.
    """
    opts = TrainOptions(steps=100, batch_size=32, sample_every=100, checkpoint_every=100,
                        n_fixed=4, keras_style="stacked")
    h = T.train("gia-dcgan-mnist", tmp_path, options=opts, data=mnist, progress=False)
    d_fake = float(np.mean(h["d_fake"][50:]))
    loss_g = float(np.mean(h["loss_g"][50:]))
    assert d_fake > 0.003, (d_fake, loss_g)
    assert loss_g / -math.log(d_fake) > 0.5, (d_fake, loss_g)
    assert all(math.isfinite(v) for v in h["loss_d"])
    cfg = rundir.RunDir(tmp_path).read_config()
    assert cfg.keras_style == "stacked"
