"""The toy twins' critic objectives (WGAN-GP, hinge) and update schemes (alternating,
simultaneous): the gradient penalty against a hand computation, one step of each the same in
PyTorch and Keras from the same starting weights, and the options validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcgan_lab import toy
from dcgan_lab.torch import toy as torch_toy


@pytest.fixture(scope="module")
def keras_toy():
    from dcgan_lab.tfquiet import import_tensorflow

    import_tensorflow()
    return pytest.importorskip("dcgan_lab.keras.toy")


def _hand_penalty(w1, b1, w2, real, fake, eps, weight):
    """grad_x of LeakyReLU(0.2) MLP x -> w2 . lrelu(W1 x + b1), by the chain rule in NumPy."""
    x_hat = eps * real + (1 - eps) * fake
    h = x_hat @ w1 + b1
    slope = np.where(h > 0, 1.0, 0.2)                       # lrelu'(h)
    grad = (slope * w2[:, 0]) @ w1.T                        # (N, 2)
    norm = np.sqrt((grad ** 2).sum(axis=1) + 1e-12)
    return weight * np.mean((norm - 1) ** 2)


def _tiny():
    rng = np.random.default_rng(7)
    w1 = rng.standard_normal((2, 3)).astype(np.float32)
    b1 = rng.standard_normal(3).astype(np.float32)
    w2 = rng.standard_normal((3, 1)).astype(np.float32)
    real = rng.standard_normal((5, 2)).astype(np.float32)
    fake = rng.standard_normal((5, 2)).astype(np.float32)
    eps = rng.random((5, 1)).astype(np.float32)
    return w1, b1, w2, real, fake, eps


def test_gradient_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared(keras_toy):
    # D(x) = 3 x_1 + 4 x_2: its gradient is (3, 4) everywhere, norm 5 -> 10 * (5 - 1)^2 = 160
    w = [[np.array([[3.0], [4.0]], np.float32), np.zeros(1, np.float32)]]
    x = np.random.default_rng(0).standard_normal((1, 6, 2)).astype(np.float32)
    eps = np.full((1, 6, 1), 0.3, np.float32)
    Dt = torch_toy.set_weights(torch_toy.ToyMLP([2, 1], 1, "leaky_relu"), w)
    Dk = keras_toy.set_weights(keras_toy.ToyMLP([2, 1], 1, "leaky_relu"), w)
    gp_t = torch_toy.gradient_penalty(Dt, torch.from_numpy(x), torch.from_numpy(-x),
                                      torch.from_numpy(eps), 10.0)
    gp_k = keras_toy.gradient_penalty(Dk, x, -x, eps, 10.0)
    assert abs(float(gp_t[0].detach()) - 160.0) < 1e-3
    assert abs(float(np.asarray(gp_k)[0]) - 160.0) < 1e-3


def test_gradient_penalty_equals_the_chain_rule_by_hand(keras_toy):
    w1, b1, w2, real, fake, eps = _tiny()
    want = _hand_penalty(w1, b1, w2, real, fake, eps, 10.0)
    w = [[w1, b1, w2, np.zeros(1, np.float32)]]
    Dt = torch_toy.set_weights(torch_toy.ToyMLP([2, 3, 1], 1, "leaky_relu"), w)
    Dk = keras_toy.set_weights(keras_toy.ToyMLP([2, 3, 1], 1, "leaky_relu"), w)
    t = [torch.from_numpy(a[None]) for a in (real, fake, eps)]
    got_t = float(torch_toy.gradient_penalty(Dt, *t, 10.0)[0].detach())
    got_k = float(np.asarray(keras_toy.gradient_penalty(Dk, real[None], fake[None], eps[None],
                                                        10.0))[0])
    assert want > 1.0                                        # not a trivial zero
    assert abs(got_t - want) < 1e-4 * want, (got_t, want)
    assert abs(got_k - want) < 1e-4 * want, (got_k, want)
    # the penalty can fail: another lambda, or x_hat at the wrong end, gives another number
    assert abs(_hand_penalty(w1, b1, w2, real, fake, 1 - eps, 10.0) - got_t) > 1e-3


def test_critic_losses_by_hand():
    real = torch.tensor([[[2.0], [-0.5]]])
    fake = torch.tensor([[[0.5], [-3.0]]])
    t = torch.zeros(1, 2, 1)
    assert torch_toy.d_loss(real, fake, t, t, "wgan-gp").item() == pytest.approx(-1.25 - 0.75)
    # hinge: mean(relu(1 - [2, -.5])) = .75, mean(relu(1 + [.5, -3])) = .75
    assert torch_toy.d_loss(real, fake, t, t, "hinge").item() == pytest.approx(1.5)
    assert torch_toy.g_loss(fake, "hinge").item() == pytest.approx(1.25)
    assert torch_toy.g_loss(fake, "wgan-gp").item() == pytest.approx(1.25)


# max |difference| after one step from the same weights and inputs, G and D trained by SGD
# (linear in the gradient, so the weights carry the gradients' float error only: Adam's first
# step, about lr * sign(g), would turn a float-level difference in a near-zero gradient into a
# full lr); measured at most 5e-7 (the losses), 6e-8 (the weights)
TWIN_TOL = 1e-6
CASES = {
    "wgan-gp": dict(loss="wgan-gp", d_steps=5),
    "hinge": dict(loss="hinge"),
    "simultaneous": dict(update="simultaneous"),
    "wgan-gp-simultaneous": dict(loss="wgan-gp", update="simultaneous"),
    "ttur": dict(lr_d=0.2, lr_g=0.05),         # two learning rates (SGD here, see above)
}


@pytest.mark.parametrize("name", list(CASES))
def test_one_step_is_the_same_in_both_frameworks(keras_toy, name):
    opts = dict(CASES[name], d_optimizer="sgd", g_optimizer="sgd",
                lr_d=CASES[name].get("lr_d", 0.05), lr_g=CASES[name].get("lr_g", 0.05))
    rt = torch_toy.train_toy("ring", 1, 3, **opts)
    rk = keras_toy.train_toy("ring", 1, 3, **opts)
    loss_diff = np.abs(rt.losses - rk.losses).max()
    d_diff = max(np.abs(a - b).max() for a, b in zip(
        torch_toy.get_weights(rt.extras["D"]), keras_toy.get_weights(rk.extras["D"]), strict=True))
    start = toy.init_weights(rt.config)["D"]
    moved = max(np.abs(a - b).max() for a, b in zip(torch_toy.get_weights(rt.extras["D"]), start,
                                                    strict=True))
    assert moved > 100 * TWIN_TOL                           # the step did move D
    assert loss_diff < TWIN_TOL, loss_diff
    assert d_diff < TWIN_TOL, d_diff
    g_diff = max(np.abs(a - b).max() for a, b in zip(
        torch_toy.get_weights(rt.extras["G"]), keras_toy.get_weights(rk.extras["G"]), strict=True))
    assert g_diff < TWIN_TOL, g_diff
    print(f"{name}: max |difference| losses {loss_diff:.2g}, D {d_diff:.2g}, G {g_diff:.2g}")


def test_simultaneous_differs_from_alternating():
    # one step from one start: G's update sees the old D (simultaneous) or the updated D
    a = torch_toy.train_toy("ring", 1, 0)
    s = torch_toy.train_toy("ring", 1, 0, update="simultaneous")
    assert np.abs(a.final_points - s.final_points).max() > 1e-4
    assert a.losses[0, 0] == pytest.approx(s.losses[0, 0])   # the same D loss (same z_d, real)


def test_bad_loss_and_update_are_named():
    with pytest.raises(ValueError, match="loss='wgan'.*'wgan-gp'"):
        toy.make_config("ring", 10, 0, "wgan")
    with pytest.raises(ValueError, match="update='both'.*'alternating', 'simultaneous'"):
        toy.make_config("ring", 10, 0, update="both")
    with pytest.raises(ValueError, match="d_steps=5.*simultaneous"):
        toy.make_config("ring", 10, 0, update="simultaneous", d_steps=5)
