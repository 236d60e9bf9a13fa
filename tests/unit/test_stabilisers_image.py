"""The image trainer's critic objectives and update schemes as twins: from the same weights
(ported PyTorch -> Keras) and the same stateless inputs, one step of WGAN-GP, hinge or the
simultaneous update gives the same losses and weights in both frameworks (max difference
asserted); the penalty against a hand computation; D a critic (no BatchNorm, no sigmoid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcgan_lab.run import streams
from dcgan_lab.run.config import TrainOptions, resolve
from dcgan_lab.torch import step as T
from dcgan_lab.torch.models import build as torch_build


@pytest.fixture(scope="module")
def keras_parts():
    from dcgan_lab.tfquiet import import_tensorflow

    import_tensorflow()
    import keras

    from dcgan_lab.interop import port
    from dcgan_lab.keras import step as K
    from dcgan_lab.keras.models import build as keras_build

    return keras, port, K, keras_build


def _weights(model) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in model.parameters()]


# after one SGD step (linear in the gradient: Adam's first step, about lr * sign(g), would turn
# a float-level difference in a near-zero gradient into a whole lr) from the same start;
# measured at most 1e-6 on the metrics (relative where above 1) and 1e-6 on the weights
LOSS_TOL, WEIGHT_TOL = 1e-5, 5e-6
CASES = {
    "wgan-gp": dict(objective="wgan-gp", d_steps=2),
    "hinge": dict(objective="hinge"),
    "simultaneous": dict(update="simultaneous"),
    "wgan-gp-simultaneous": dict(objective="wgan-gp", update="simultaneous"),
}


@pytest.mark.parametrize("recipe", ["torch-mnist", "gia-dcgan-mnist"])
@pytest.mark.parametrize("name", list(CASES))
def test_one_step_is_the_same_in_both_frameworks(keras_parts, name, recipe):
    keras, port, K, keras_build = keras_parts
    cfg = resolve(recipe, "torch", TrainOptions(batch_size=8, keras_style="train_step",
                                                **CASES[name]))
    critic = cfg.critic
    torch.manual_seed(0)
    Gt, Dt = torch_build(recipe, critic=critic)
    Gk, Dk = keras_build(recipe, critic=critic)
    port.torch_to_keras(Gt, Gk)
    port.torch_to_keras(Dt, Dk)
    lr = 0.1
    opt_g, opt_d = torch.optim.SGD(Gt.parameters(), lr), torch.optim.SGD(Dt.parameters(), lr)
    gan = K.GAN(Gk, Dk, loss=cfg.loss, g_loss=cfg.g_loss, d_steps=cfg.d_steps,
                objective=cfg.objective, update=cfg.update)
    gan.compile(d_optimizer=keras.optimizers.SGD(lr), g_optimizer=keras.optimizers.SGD(lr))
    images = np.random.default_rng(1).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    start_d, start_g = _weights(Dt), _weights(Gt)
    mt = T.train_step(1, Gt, Dt, opt_g, opt_d, images, cfg, torch.device("cpu"))
    mk = gan.train_batch(streams.step_inputs(1, images, cfg))
    twin_g = not (streams.reuses_fake(cfg) and cfg.update == "alternating")
    # by design, not a twin: a PyTorch-origin recipe's alternating G update trains on D's fake
    # batch (pytorch/examples), the Keras trainer's on fresh z; gia-dcgan-mnist is G's twin
    loss_diff = max(abs(mt[k] - mk[k]) / max(1.0, abs(mt[k]))   # relative above 1
                    for k in mt if twin_g or k != "loss_g")
    Gb, Db = torch_build(recipe, critic=critic)
    port.keras_to_torch(Gk, Gb)
    port.keras_to_torch(Dk, Db)
    d_diff = max(np.abs(a - b).max() for a, b in zip(_weights(Dt), _weights(Db), strict=True))
    g_diff = max(np.abs(a - b).max() for a, b in zip(_weights(Gt), _weights(Gb), strict=True))
    moved = max(np.abs(a - b).max() for a, b in zip(_weights(Dt), start_d, strict=True))
    g_moved = max(np.abs(a - b).max() for a, b in zip(_weights(Gt), start_g, strict=True))
    print(f"{recipe} {name}: max |difference| metrics {loss_diff:.2g}, D {d_diff:.2g}, "
          f"G {g_diff:.2g} (D moved {moved:.2g}, G {g_moved:.2g})")
    assert moved > 10 * WEIGHT_TOL and g_moved > 10 * WEIGHT_TOL   # the step moved both
    assert loss_diff < LOSS_TOL, (mt, mk)
    assert d_diff < WEIGHT_TOL, d_diff
    if twin_g:
        assert g_diff < WEIGHT_TOL, g_diff


def test_a_critic_has_no_batchnorm_and_no_sigmoid(keras_parts):
    _, _, _, keras_build = keras_parts
    _, D = torch_build("dcgan64", critic=True)
    kinds = {type(m).__name__ for m in D.modules()}
    assert not kinds & {"BatchNorm2d", "Sigmoid"}, kinds
    _, Dk = keras_build("dcgan64", critic=True)
    assert not any("BatchNormalization" in type(layer).__name__ for layer in Dk.layers)
    # the default D keeps both: unchanged recipes
    _, D0 = torch_build("dcgan64")
    assert {"BatchNorm2d", "Sigmoid"} <= {type(m).__name__ for m in D0.modules()}


def test_gradient_penalty_of_a_linear_critic(keras_parts):
    # D(x) = sum(w * x) over a 2x2x1 image, w = (1, 2, 2, 4) / 1: norm 5 -> 10 * (5 - 1)^2 = 160
    keras, _, K, _ = keras_parts
    w = np.array([1.0, 2.0, 2.0, 4.0], np.float32)
    Dt = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        Dt[1].weight.copy_(torch.from_numpy(w[None]))
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 1, 2, 2)).astype(np.float32)
    fake = rng.standard_normal((3, 1, 2, 2)).astype(np.float32)
    eps = rng.random((3, 1, 1, 1)).astype(np.float32)
    gp_t = T.gradient_penalty(Dt, *(torch.from_numpy(a) for a in (real, fake, eps))).item()
    Dk = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                           keras.layers.Dense(1, use_bias=False)])
    Dk.layers[-1].kernel.assign(w[:, None])   # NHWC flatten of a 1-channel 2x2 image: same order
    perm = (0, 2, 3, 1)
    gp_k = float(K.gradient_penalty(Dk, real.transpose(perm), fake.transpose(perm), eps))
    assert gp_t == pytest.approx(160.0, rel=1e-5)
    assert gp_k == pytest.approx(160.0, rel=1e-5)


def test_resolve_rejects_what_a_critic_or_simultaneous_step_cannot_do():
    with pytest.raises(ValueError, match="objective='wgan'.*gan, wgan-gp, hinge"):
        resolve("dcgan64", "torch", TrainOptions(objective="wgan"))
    with pytest.raises(ValueError, match="update='both'.*alternating, simultaneous"):
        resolve("dcgan64", "torch", TrainOptions(update="both"))
    with pytest.raises(ValueError, match="d_steps=5.*simultaneous"):
        resolve("dcgan64", "torch", TrainOptions(update="simultaneous", d_steps=5))
    with pytest.raises(ValueError, match="g_loss='minimax'.*wgan-gp"):
        resolve("dcgan64", "torch", TrainOptions(objective="wgan-gp", g_loss="minimax"))
    with pytest.raises(ValueError, match="label_smoothing.*hinge"):
        resolve("dcgan64", "torch", TrainOptions(objective="hinge", label_smoothing=0.1))
    with pytest.raises(ValueError, match="keras_style='train_step'"):
        resolve("gia-dcgan-mnist", "keras", TrainOptions(objective="hinge"))
    cfg = resolve("dcgan64", "torch")
    assert (cfg.objective, cfg.update, cfg.critic) == ("gan", "alternating", False)
