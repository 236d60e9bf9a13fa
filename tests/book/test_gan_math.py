"""Tests for dcgan_lab.book.gan_math: the value function, D*, the JSD identity, the losses and their
gradients (checked against torch autograd and torch's BCE), and the dense-layer permutation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dcgan_lab.book import gan_math as gm

X = np.linspace(-12.0, 12.0, 8001)


def test_normal_pdf_integrates_to_one_and_rejects_bad_std() -> None:
    for mean, std in [(0.0, 1.0), (1.5, 0.5), (-2.0, 2.0)]:
        p = gm.normal_pdf(X, mean, std)
        assert gm._trapezoid(p, X) == pytest.approx(1.0, abs=1e-6)
        assert X[np.argmax(p)] == pytest.approx(mean, abs=0.01)
    with pytest.raises(ValueError, match="std"):
        gm.normal_pdf(X, 0.0, 0.0)


def test_optimal_discriminator_values() -> None:
    p = np.array([1.0, 0.0, 3.0, 0.0])
    q = np.array([1.0, 2.0, 1.0, 0.0])
    np.testing.assert_allclose(gm.optimal_discriminator(p, q), [0.5, 0.0, 0.75, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        gm.optimal_discriminator(np.array([-1.0]), np.array([1.0]))


def test_equilibrium_value_is_minus_log4() -> None:
    p = gm.normal_pdf(X)
    d_star = gm.optimal_discriminator(p, p)
    np.testing.assert_allclose(d_star, 0.5)
    assert gm.value_function(d_star, p, p, X) == pytest.approx(-math.log(4), abs=1e-6)
    assert gm.EQUILIBRIUM_VALUE == pytest.approx(-math.log(4))
    # a constant D = 1/2 gets -log 4 whatever G is
    q = gm.normal_pdf(X, 3.0)
    assert gm.value_function(0.5, p, q, X) == pytest.approx(-math.log(4), abs=1e-6)


@pytest.mark.parametrize("mu", [0.5, 1.0, 3.0])
def test_value_at_optimal_d_equals_jsd_identity(mu: float) -> None:
    p, q = gm.normal_pdf(X), gm.normal_pdf(X, mu)
    v = gm.value_function(gm.optimal_discriminator(p, q), p, q, X)
    jsd = gm.js_divergence(p, q, X)
    assert 0 < jsd < math.log(2)
    assert v == pytest.approx(-math.log(4) + 2 * jsd, abs=1e-6)


def test_optimal_d_beats_other_discriminators() -> None:
    rng = np.random.default_rng(0)
    p, q = gm.normal_pdf(X), gm.normal_pdf(X, 1.0, 1.5)
    d_star = gm.optimal_discriminator(p, q)
    v_star = gm.value_function(d_star, p, q, X)
    for _ in range(20):
        d = np.clip(d_star + rng.normal(0, 0.05, X.shape), 1e-3, 1 - 1e-3)
        assert gm.value_function(d, p, q, X) < v_star
    assert v_star > gm.value_function(0.5, p, q, X)


def test_jsd_bounds() -> None:
    p = np.where(np.abs(X + 5) < 1, 0.5, 0.0)
    q = np.where(np.abs(X - 5) < 1, 0.5, 0.0)
    assert gm.js_divergence(p, q, X) == pytest.approx(math.log(2), abs=2e-3)  # disjoint supports
    assert gm.js_divergence(p, p, X) == pytest.approx(0.0, abs=1e-12)


def test_grid_and_probability_errors() -> None:
    p = gm.normal_pdf(X)
    with pytest.raises(ValueError, match="increasing"):
        gm.value_function(0.5, p, p, X[::-1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gm.value_function(1.5, p, p, X)
    with pytest.raises(ValueError, match="sigmoid"):
        gm.d_loss(np.array([0.5, 2.0]), np.array([0.1]))
    with pytest.raises(ValueError, match="empty"):
        gm.empirical_value(np.array([]), np.array([0.1]))


def test_d_loss_is_torch_bce_sum_and_minus_value() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    d_real, d_fake = rng.uniform(0.05, 0.95, 64), rng.uniform(0.05, 0.95, 32)
    bce = torch.nn.BCELoss()
    ref = (bce(torch.tensor(d_real), torch.ones(64, dtype=torch.float64))
           + bce(torch.tensor(d_fake), torch.zeros(32, dtype=torch.float64))).item()
    assert gm.d_loss(d_real, d_fake) == pytest.approx(ref, rel=1e-12)
    assert gm.empirical_value(d_real, d_fake) == pytest.approx(-ref, rel=1e-12)
    eq = gm.equilibrium_losses()
    assert gm.d_loss(np.full(4, 0.5), np.full(4, 0.5)) == pytest.approx(eq["loss_d"])
    assert eq["loss_g"] == pytest.approx(-math.log(0.5))


def test_g_loss_grads_match_autograd() -> None:
    torch = pytest.importorskip("torch")
    logits = np.linspace(-12, 4, 33)
    a = torch.tensor(logits, requires_grad=True)
    torch.log1p(-torch.sigmoid(a)).sum().backward()
    minimax = a.grad.numpy().copy()
    a.grad = None
    (-torch.nn.functional.logsigmoid(a)).sum().backward()
    non_sat = a.grad.numpy().copy()
    g = gm.g_loss_logit_grads(logits)
    np.testing.assert_allclose(g["minimax"], minimax, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(g["non_saturating"], non_sat, rtol=1e-9, atol=1e-15)
    # the point of the non-saturating loss: as D(G(z)) -> 0 one gradient vanishes, one does not
    assert abs(g["minimax"][0]) < 1e-5 and abs(g["non_saturating"][0]) > 0.99999


def test_sigmoid_is_stable() -> None:
    s = gm.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])
    assert np.all(np.isfinite(s))


def test_confident_share() -> None:
    logits = np.array([[10.0, 0, 0], [1.0, 1.0, 1.0], [0, 5.0, 0], [2.0, 0, 0]])
    # top probabilities: ~0.9999, 1/3, ~0.987, ~0.787
    assert gm.confident_share(logits, 0.9) == pytest.approx(0.5)
    assert gm.confident_share(logits, 0.5) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="threshold"):
        gm.confident_share(logits, 1.0)
    with pytest.raises(ValueError, match="N, n_classes"):
        gm.confident_share(np.zeros(3))


@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_permute_dense_inputs_gives_equal_outputs_within_1e10(layout: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 784))
    w = rng.normal(size=(128, 784))  # torch layout (out, in)
    perm = rng.permutation(784)
    if layout == "torch":
        w2 = gm.permute_dense_inputs(w, perm, "torch")
        np.testing.assert_allclose(x[:, perm] @ w2.T, x @ w.T, rtol=1e-12, atol=1e-10)
    else:
        k = w.T  # keras kernel (in, out)
        k2 = gm.permute_dense_inputs(k, perm, "keras")
        np.testing.assert_allclose(x[:, perm] @ k2, x @ k, rtol=1e-12, atol=1e-10)
    # the unpermuted weights on permuted pixels give something else
    assert not np.allclose(x[:, perm] @ w.T, x @ w.T)


def test_permute_dense_inputs_errors() -> None:
    w = np.zeros((4, 6))
    with pytest.raises(ValueError, match="permutation of 0..5"):
        gm.permute_dense_inputs(w, np.array([0, 1, 2, 3, 4, 4]))
    with pytest.raises(ValueError, match="layout"):
        gm.permute_dense_inputs(w, np.arange(6), "jax")
    with pytest.raises(ValueError, match="permutation of 0..3"):
        gm.permute_dense_inputs(w, np.arange(6), "keras")
