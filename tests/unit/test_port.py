"""Weight porting between the PyTorch and Keras twins: eval-mode outputs must agree to 1e-4.

Run with ``-s`` to print the largest difference per recipe and direction.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from dcgan_lab import keras as lab_keras  # noqa: E402
from dcgan_lab import recipes  # noqa: E402
from dcgan_lab import torch as lab_torch  # noqa: E402
from dcgan_lab.interop import port  # noqa: E402

NAMES = recipes.names()
TOL = 1e-4
PARITY: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if PARITY:
        print("\nlargest |torch - keras| after porting (eval mode, float64 comparison):")
        print(f"{'recipe':<17} {'torch->keras G':>15} {'torch->keras D':>15} "
              f"{'keras->torch G':>15} {'keras->torch D':>15}")
        for name, d in PARITY.items():
            print(f"{name:<17} " + " ".join(
                f"{d.get(k, float('nan')):>15.2e}" for k in ("t2k_G", "t2k_D", "k2t_G", "k2t_D")))


def _batch(r) -> int:
    return 2 if r.image_shape[0] >= 64 else 4


def _inputs(r, seed=0):
    rng = np.random.default_rng(seed)
    h, w, c = r.image_shape
    z = rng.standard_normal((_batch(r), r.latent_dim)).astype("float32")
    x = rng.uniform(-1, 1, (_batch(r), h, w, c)).astype("float32")
    return z, x


def _randomize_torch(model, seed):
    """Non-trivial BatchNorm affine parameters and statistics, so the port of those is tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))


def _randomize_keras(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                (0.5 + rng.random(n)).astype("float32"),
                (0.1 * rng.standard_normal(n)).astype("float32"),
                (0.1 * rng.standard_normal(n)).astype("float32"),
                (0.5 + 1.5 * rng.random(n)).astype("float32"),
            ])
        elif layer.weights:  # fresh kernels, so stale torch weights cannot pass by accident
            layer.set_weights([(np.asarray(w) + 0.01 * rng.standard_normal(w.shape)).astype("float32")
                               for w in layer.get_weights()])


def _outputs(tg, td, kg, kd, z, x):
    tg.eval()
    td.eval()
    with torch.no_grad():
        t_img = tg(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)  # NCHW -> NHWC
        t_d = td(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    k_img = np.asarray(kg(z, training=False))
    k_d = np.asarray(kd(x, training=False))
    return (t_img.astype(np.float64), k_img.astype(np.float64),
            t_d.astype(np.float64), k_d.astype(np.float64))


def _check(name, direction, t_img, k_img, t_d, k_d):
    assert t_img.shape == k_img.shape and t_d.shape == k_d.shape
    dg, dd = np.abs(t_img - k_img).max(), np.abs(t_d - k_d).max()
    PARITY.setdefault(name, {})[f"{direction}_G"] = dg
    PARITY.setdefault(name, {})[f"{direction}_D"] = dd
    assert dg < TOL, f"{name} {direction} generator differs by {dg:.3g}"
    assert dd < TOL, f"{name} {direction} discriminator differs by {dd:.3g}"
    # Relative check too: some generators' outputs are small at initialisation.
    assert dg < 1e-3 * np.abs(k_img).max(), f"{name} {direction} generator: relative error"
    assert dd < 1e-3 * max(np.abs(k_d).max(), 1e-3), f"{name} {direction} discriminator: relative"


@pytest.mark.parametrize("name", NAMES)
def test_parity_both_directions(name):
    r = recipes.get(name)
    torch.manual_seed(0)
    tg, td = lab_torch.build(name)
    kg, kd = lab_keras.build(name)
    z, x = _inputs(r)

    _randomize_torch(tg, 1)
    _randomize_torch(td, 2)
    port.torch_to_keras(tg, kg)
    port.torch_to_keras(td, kd)
    _check(name, "t2k", *_outputs(tg, td, kg, kd, z, x))

    _randomize_keras(kg, 3)
    _randomize_keras(kd, 4)
    t_before = _outputs(tg, td, kg, kd, z, x)
    assert np.abs(t_before[0] - t_before[1]).max() > TOL  # the twins now differ ...
    port.keras_to_torch(kg, tg)
    port.keras_to_torch(kd, td)
    _check(name, "k2t", *_outputs(tg, td, kg, kd, z, x))  # ... and agree again


def test_symmetric_padding_would_break_parity():
    """keras-faces64 uses Keras "same" with k5 s2: PyTorch-style symmetric padding is NOT the
    same function (the taps shift by one pixel); the exact twin pads/crops asymmetrically."""
    r = recipes.get("keras-faces64")
    tg, td = lab_torch.build(r)
    kg, kd = lab_keras.build(r)
    port.torch_to_keras(tg, kg)
    port.torch_to_keras(td, kd)
    z, x = _inputs(r)
    t_img, k_img, t_d, k_d = _outputs(tg, td, kg, kd, z, x)
    assert np.abs(t_img - k_img).max() < TOL and np.abs(t_d - k_d).max() < TOL
    n_changed = 0
    for m in list(tg.modules()) + list(td.modules()):
        if isinstance(m, lab_torch.Crop2d) and m.top != m.bottom:
            m.top, m.bottom, m.left, m.right = m.bottom, m.top, m.right, m.left
            n_changed += 1
        elif isinstance(m, torch.nn.ZeroPad2d) and m.padding[0] != m.padding[1]:
            left, right, top, bottom = m.padding
            m.padding = (right, left, bottom, top)
            n_changed += 1
    assert n_changed == 4 + 4
    t_img, k_img, t_d, k_d = _outputs(tg, td, kg, kd, z, x)
    assert np.abs(t_img - k_img).max() > 100 * TOL * np.abs(k_img).max()
    assert np.abs(t_d - k_d).max() > 100 * TOL


def test_dense_reshape_permutation_matters():
    """Without the (H, W, C) <-> (C, H, W) feature permutation the projection would scramble."""
    r = recipes.get("paper-lsun64")
    tg, _ = lab_torch.build(r)
    kg, _ = lab_keras.build(r)
    port.torch_to_keras(tg, kg)
    dense = next(la for la in kg.layers if isinstance(la, keras.layers.Dense))
    kernel = tg.net[0].weight.detach().numpy().T  # plain transpose, no permutation
    dense.set_weights([kernel])
    z, x = _inputs(r)
    tg.eval()
    with torch.no_grad():
        t_img = tg(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    assert np.abs(t_img - np.asarray(kg(z, training=False))).max() > 100 * TOL


def test_mismatched_models_raise_naming_the_layers():
    tg, td = lab_torch.build("dcgan64")
    kg, _ = lab_keras.build("torch-mnist")
    # same kinds, different shapes: the error names both layers and both shapes
    with pytest.raises(port.PortError, match=r"PyTorch 'net\.1' \(ConvTranspose2d\) weight "
                       r"\(100, 512, 4, 4\).*Keras 'conv2d_transpose'.*\(100, 128, 4, 4\)"):
        port.torch_to_keras(tg, kg)
    # different kinds
    with pytest.raises(port.PortError, match=r"PyTorch 'net\.0' \(Conv2d\) cannot pair with Keras"):
        port.keras_to_torch(kg, td)
    # a prefix that matches, then a different number of weighted layers
    kg2, _ = lab_keras.build("dense-mnist")
    with pytest.raises(port.PortError, match="PyTorch model has 1 weighted layers.*has 2"):
        port.torch_to_keras(torch.nn.Sequential(torch.nn.Linear(100, 128)), kg2)
