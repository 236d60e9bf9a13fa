"""Chapter 3's page code and the package are twins (issues 12 and 13).

The chapter writes its Keras networks and both training loops in its own cells, tagged
``page-model`` and ``page-loop``. These checks exec exactly those cells' source from the
notebook, then prove what the chapter's proof cells prove, on small random inputs: the page's
networks have the recipes' parameter counts and, with their weights loaded into
``lab_keras.build(name)``, compute the same outputs; a few steps of the page's stacked loop
(``compile_stacked`` + ``stacked_step``, with ``TF1BatchNormalization`` in D) and of its
``PageGAN.train_step`` leave the same weights as the package's ``StackedGAN`` and ``GAN`` fed
the same ``step_inputs``. So the page and the package cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dcgan_lab import keras as lab_keras  # noqa: E402
from dcgan_lab import recipes  # noqa: E402
from dcgan_lab.keras.models import TF1BatchNormalization  # noqa: E402
from dcgan_lab.keras.step import GAN, StackedGAN, step_inputs  # noqa: E402
from dcgan_lab.run import config  # noqa: E402
from dcgan_lab.run.config import TrainOptions  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "03_keras_dcgans.ipynb"
STEPS = 3
TOL = 1e-5


def _tagged(tag: str) -> list[str]:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and tag in c.get("metadata", {}).get("tags", [])]


@pytest.fixture(scope="module")
def page() -> dict:
    """The namespace the chapter's page-model and page-loop cells define."""
    ns = {"keras": keras, "layers": keras.layers, "np": np, "tf": tf,
          "TF1BatchNormalization": TF1BatchNormalization}
    models, loops = _tagged("page-model"), _tagged("page-loop")
    assert len(models) >= 3 and len(loops) >= 2, "the chapter lost its tagged page cells"
    for source in models + loops:
        exec(compile(source, f"{NOTEBOOK.name}[page cell]", "exec"), ns)  # noqa: S102
    for name in ("gia_generator", "gia_discriminator", "bernico_generator",
                 "bernico_discriminator", "compile_stacked", "stacked_step", "PageGAN"):
        assert name in ns, f"the page no longer defines {name}"
    return ns


def _pairs(ns: dict) -> dict:
    return {"gia-dcgan-mnist": (ns["gia_generator"](), ns["gia_discriminator"]()),
            "bernico-mnist": (ns["bernico_generator"](), ns["bernico_discriminator"]()),
            "bernico-cifar10": (ns["bernico_generator"](image_shape=(32, 32, 3)),
                                ns["bernico_discriminator"](image_shape=(32, 32, 3)))}


def _count(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _max_diff(a_list, b_list) -> float:
    assert len(a_list) == len(b_list)
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
               for a, b in zip(a_list, b_list, strict=True))


def test_page_networks_are_the_package_networks(page):
    rng = np.random.default_rng(0)
    for name, (g_page, d_page) in _pairs(page).items():
        r = recipes.get(name)
        assert (_count(g_page), _count(d_page)) == (r.g_params, r.d_params), name
        g_pkg, d_pkg = lab_keras.build(name)
        g_pkg.set_weights(g_page.get_weights())  # raises if the layer order or shapes differ
        d_pkg.set_weights(d_page.get_weights())
        # moving statistics away from (0, 1), so that inference mode tests them too
        for model in (g_page, d_page):
            for w in model.non_trainable_weights:
                w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        g_pkg.set_weights(g_page.get_weights())
        d_pkg.set_weights(d_page.get_weights())
        z = rng.standard_normal((8, r.latent_dim)).astype("float32")
        images = g_page(z, training=False)
        assert _max_diff([g_page(z, training=False)], [g_pkg(z, training=False)]) <= 1e-6, name
        assert _max_diff([d_page(images, training=False)],
                         [d_pkg(images, training=False)]) <= 1e-6, name


def _images(n: int = 64) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def _adam(lr: float, cfg) -> keras.optimizers.Adam:
    return keras.optimizers.Adam(learning_rate=lr, beta_1=cfg.beta1, beta_2=cfg.beta2)


def test_page_stacked_loop_is_the_package_step(page):
    cfg = config.resolve("gia-dcgan-mnist", "keras", TrainOptions(batch_size=8, steps=STEPS),
                           "smoke")
    images = _images()
    g_page = page["gia_generator"]()
    d_page = page["gia_discriminator"](BatchNorm=TF1BatchNormalization)
    g_pkg, d_pkg = lab_keras.build("gia-dcgan-mnist", tf1_batchnorm=True)
    g_pkg.set_weights(g_page.get_weights())
    d_pkg.set_weights(d_page.get_weights())
    combined = page["compile_stacked"](g_page, d_page, _adam(cfg.lr_d, cfg), _adam(cfg.lr_g, cfg))
    trainer = StackedGAN.from_config_of(cfg, g_pkg, d_pkg)
    for step in range(1, STEPS + 1):
        b = step_inputs(step, images, cfg)
        page["stacked_step"](g_page, d_page, combined, b["real"][0], b["z_d"][0], b["z_g"][0])
        trainer.train_batch(b)
    d_page.trainable = d_pkg.trainable = True
    diff = _max_diff(g_page.get_weights() + d_page.get_weights(),
                     g_pkg.get_weights() + d_pkg.get_weights())
    assert diff <= TOL, f"page loop and StackedGAN differ by {diff:.2e} after {STEPS} steps"


def test_page_train_step_is_the_package_train_step(page):
    cfg = config.resolve("gia-dcgan-mnist", "keras",
                           TrainOptions(batch_size=8, steps=STEPS, keras_style="train_step"),
                           "smoke")
    images = _images()
    g_page, d_page = page["gia_generator"](), page["gia_discriminator"]()
    g_pkg, d_pkg = lab_keras.build("gia-dcgan-mnist")
    g_pkg.set_weights(g_page.get_weights())
    d_pkg.set_weights(d_page.get_weights())
    gan_page = page["PageGAN"](g_page, d_page)
    gan_page.compile(_adam(cfg.lr_d, cfg), _adam(cfg.lr_g, cfg))
    gan_pkg = GAN.from_config_of(cfg, g_pkg, d_pkg)
    for step in range(1, STEPS + 1):
        b = step_inputs(step, images, cfg)
        gan_page.train_on_batch({k: b[k][0] for k in ("real", "z_d", "z_g")})
        gan_pkg.train_batch(b)
    diff = _max_diff(g_page.get_weights() + d_page.get_weights(),
                     g_pkg.get_weights() + d_pkg.get_weights())
    assert diff <= TOL, f"PageGAN and GAN differ by {diff:.2e} after {STEPS} steps"
