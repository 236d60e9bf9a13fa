"""Chapter 1's own network and loop cells against the package, so page and package cannot drift.

The chapter writes the dense-mnist networks and the two-step training loop in cells tagged
``page-model-keras``, ``page-model-torch``, ``page-loop-keras`` and ``page-loop-torch``. These
tests execute exactly those cells' source from ``book/01_dense_gan.ipynb`` and check, with the
bounds the chapter prints: equal trainable-parameter counts (and the recipe's), the page's weights
loaded into the package's builder give the same outputs (1e-6), and k steps of the page's loop
and of the package's step on the same inputs give the same weights (1e-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "01_dense_gan.ipynb"
TAGS = ("page-model-keras", "page-model-torch", "page-loop-keras", "page-loop-torch")
K = 3
MODEL_TOL, LOOP_TOL = 1e-6, 1e-5


def _tagged_sources() -> dict[str, str]:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    found: dict[str, str] = {}
    for cell in cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if tag in TAGS:
                assert tag not in found, f"{NOTEBOOK.name}: two cells are tagged {tag!r}"
                assert cell["cell_type"] == "code", f"{NOTEBOOK.name}: {tag!r} is not a code cell"
                src = cell["source"]
                found[tag] = "".join(src) if isinstance(src, list) else src
    missing = [t for t in TAGS if t not in found]
    assert not missing, f"{NOTEBOOK.name} has no cell tagged {missing}"
    return found


@pytest.fixture(scope="module")
def page() -> dict:
    """The namespace the tagged cells define (they import what they use)."""
    ns: dict = {"__name__": "page_ch1"}
    for tag, src in _tagged_sources().items():
        exec(compile(src, f"{NOTEBOOK.name}[{tag}]", "exec"), ns)  # noqa: S102 - our own notebook
    return ns


def _images(n: int = 512) -> np.ndarray:
    """Random uint8 'digits': the check is about arithmetic, not about data."""
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def _cfg(framework: str):
    from dcgan_lab.run import config

    # batch 64: small and fast; everything else is the recipe's
    return config.resolve("dense-mnist", framework, config.TrainOptions(batch_size=64))


def _gap(a, b) -> float:
    return max(float(np.abs(np.asarray(u) - np.asarray(v)).max()) for u, v in
               zip(a, b, strict=True))


def test_tagged_cells_define_the_page_code(page):
    for name in ("dense_generator_keras", "dense_discriminator_keras", "dense_generator_torch",
                 "dense_discriminator_torch", "compile_stacked", "train_step_keras",
                 "make_optimizers", "train_step_torch"):
        assert callable(page.get(name)), name


def test_keras_page_model_is_the_package_model(page):
    import keras

    from dcgan_lab import keras as lab_keras
    from dcgan_lab import recipes

    r = recipes.get("dense-mnist")
    keras.utils.set_random_seed(3)
    G, D = page["dense_generator_keras"](), page["dense_discriminator_keras"]()
    Gp, Dp = lab_keras.build("dense-mnist")
    count = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    assert (count(G), count(D)) == (count(Gp), count(Dp)) == (r.g_params, r.d_params)
    Gp.set_weights(G.get_weights())
    Dp.set_weights(D.get_weights())
    z = np.random.default_rng(1).standard_normal((32, r.latent_dim)).astype(np.float32)
    x = (_images(32).astype(np.float32) - 127.5) / 127.5
    assert _gap([G(z), D(x)], [Gp(z), Dp(x)]) <= MODEL_TOL


def test_torch_page_model_is_the_package_model(page):
    import torch

    from dcgan_lab import recipes
    from dcgan_lab import torch as lab_torch

    r = recipes.get("dense-mnist")
    torch.manual_seed(3)
    G, D = page["dense_generator_torch"](), page["dense_discriminator_torch"]()
    Gp, Dp = lab_torch.build("dense-mnist")
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    assert (count(G), count(D)) == (count(Gp), count(Dp)) == (r.g_params, r.d_params)
    Gp.net.load_state_dict(G.state_dict())
    Dp.net.load_state_dict(D.state_dict())
    z = torch.randn(32, r.latent_dim)
    x = torch.rand(32, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert _gap([G(z), D(x)], [Gp(z), Dp(x)]) <= MODEL_TOL
    # and the page's init is Keras' (Glorot uniform, zero biases), as the package's twin
    w = G[0].weight.detach().numpy()
    assert np.abs(w).max() <= np.sqrt(6 / (100 + 128)) and not G[0].bias.detach().any()


def test_keras_page_loop_is_the_package_step(page):
    import keras

    from dcgan_lab import keras as lab_keras

    cfg, images = _cfg("keras"), _images()
    keras.utils.set_random_seed(4)
    G1, D1 = page["dense_generator_keras"](), page["dense_discriminator_keras"]()
    G2, D2 = lab_keras.build("dense-mnist")
    G2.set_weights(G1.get_weights())
    D2.set_weights(D1.get_weights())
    start = G1.get_weights() + D1.get_weights()
    combined = page["compile_stacked"](G1, D1, cfg.lr_d, cfg.beta1)
    trainer = lab_keras.make_trainer(cfg, G2, D2)
    for t in range(1, K + 1):
        x = lab_keras.step_inputs(t, images, cfg)
        page["train_step_keras"](G1, D1, combined, x["real"][0], x["z_d"][0], x["z_g"][0])
        lab_keras.train_step(t, trainer, images, cfg, inputs=x)
    after = G1.get_weights() + D1.get_weights()
    assert _gap(after, start) > 1e-4  # both trained: the comparison is not vacuous
    assert _gap(after, G2.get_weights() + D2.get_weights()) <= LOOP_TOL


def test_torch_page_loop_is_the_package_step(page):
    import torch

    from dcgan_lab import torch as lab_torch

    cfg, images = _cfg("torch"), _images()
    torch.manual_seed(4)
    G1, D1 = page["dense_generator_torch"](), page["dense_discriminator_torch"]()
    G2, D2 = lab_torch.build("dense-mnist")
    G2.net.load_state_dict(G1.state_dict())
    D2.net.load_state_dict(D1.state_dict())

    def weights(*nets):
        return [p.detach().clone() for net in nets for p in net.parameters()]

    start = weights(G1, D1)
    opt_g1, opt_d1 = page["make_optimizers"](G1, D1, cfg.lr_d, cfg.beta1)
    opt_g2, opt_d2 = page["make_optimizers"](G2, D2, cfg.lr_d, cfg.beta1)
    # the package's own optimisers are built the same way (lr, betas; everything else default)
    assert opt_d1.defaults == torch.optim.Adam(D2.parameters(), lr=cfg.lr_d,
                                               betas=(cfg.beta1, cfg.beta2)).defaults
    for t in range(1, K + 1):
        x = lab_torch.step_inputs(t, images, cfg)
        page["train_step_torch"](G1, D1, opt_g1, opt_d1, x["real"][0], x["z_d"][0], x["z_g"][0])
        lab_torch.train_step(t, G2, D2, opt_g2, opt_d2, images, cfg, torch.device("cpu"),
                             inputs=x)
    assert _gap(weights(G1, D1), start) > 1e-4
    assert _gap(weights(G1, D1), weights(G2, D2)) <= LOOP_TOL
