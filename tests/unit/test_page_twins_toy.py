"""Chapter 1's toy-GAN cells against dcgan_lab.torch.toy and dcgan_lab.keras.toy.

Section 7 of ``book/01_dense_gan.ipynb`` writes the toy G, D and training step in cells tagged
``page-toy-torch`` and ``page-toy-keras``. These tests execute exactly those cells and check that
the package's twins are the same: with ``toy.init_weights`` loaded, the page's networks and the
package's compute the same outputs, and k steps of the page's step on ``toy.step_stream``'s
batches give the same generator as ``train_toy`` (both G losses).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcgan_lab import toy

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "01_dense_gan.ipynb"
TAGS = ("page-toy-torch", "page-toy-keras")
K = 4


@pytest.fixture(scope="module")
def page() -> dict:
    from dcgan_lab.tfquiet import import_tensorflow

    import_tensorflow()
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    ns: dict = {"__name__": "page_toy"}
    found = set()
    for cell in cells:
        tags = set(cell.get("metadata", {}).get("tags", [])) & set(TAGS)
        if tags:
            assert cell["cell_type"] == "code"
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}{sorted(tags)}", "exec"), ns)  # noqa: S102
            found |= tags
    assert found == set(TAGS), f"{NOTEBOOK.name} lacks cells tagged {set(TAGS) - found}"
    return ns


def _load_torch(net, weights):
    import torch

    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for m, w, b in zip(linears, weights[::2], weights[1::2], strict=True):
            m.weight.copy_(torch.from_numpy(w.T.copy()))
            m.bias.copy_(torch.from_numpy(b))
    return net


@pytest.mark.parametrize("loss", toy.LOSSES)
def test_page_toy_loops_equal_the_package(page, loss):
    import keras
    import torch

    from dcgan_lab.keras import toy as keras_toy
    from dcgan_lab.torch import toy as torch_toy

    cfg = toy.make_config("ring", K, 3, loss)
    w = toy.init_weights(cfg)
    Gt = _load_torch(page["toy_generator_torch"](), w["G"])
    Dt = _load_torch(page["toy_discriminator_torch"](), w["D"])
    Gk, Dk = page["toy_generator_keras"](), page["toy_discriminator_keras"]()
    Gk.set_weights(w["G"])
    Dk.set_weights(w["D"])
    z = toy.eval_noise(cfg)
    with torch.no_grad():
        before = Gt(torch.from_numpy(z)).numpy()
    assert np.abs(before - torch_toy.forward(torch_toy.build(cfg)[0], z)[0]).max() < 1e-6
    assert np.abs(np.asarray(Gk(z)) - keras_toy.forward(keras_toy.build(cfg)[0], z)[0]).max() < 1e-6

    adam = dict(betas=(0.5, 0.999), eps=1e-7)
    opts_t = (torch.optim.Adam(Gt.parameters(), 1e-3, **adam),
              torch.optim.Adam(Dt.parameters(), 1e-3, **adam))
    opts_k = (keras.optimizers.Adam(1e-3, beta_1=0.5), keras.optimizers.Adam(1e-3, beta_1=0.5))
    opts_k[0].build(Gk.trainable_variables)     # as the chapter does: variables made outside
    opts_k[1].build(Dk.trainable_variables)     # the tf.function, which may be traced again
    x = toy.step_stream(cfg).take(K)
    mm = loss == "minimax"
    for i in range(K):
        args = x["real"][i, 0], x["z_d"][i, 0], x["z_g"][i]
        page["toy_step_torch"](Gt, Dt, *opts_t, *map(torch.from_numpy, args), minimax=mm)
        page["toy_step_keras"](Gk, Dk, *opts_k, *args, minimax=mm)
    with torch.no_grad():
        after_t = Gt(torch.from_numpy(z)).numpy()
    assert np.abs(after_t - before).max() > 1e-3                    # training moved G
    pkg_t = torch_toy.train_toy("ring", K, 3, loss).final_points
    pkg_k = keras_toy.train_toy("ring", K, 3, loss).final_points
    assert np.abs(after_t - pkg_t).max() < 1e-5
    assert np.abs(np.asarray(Gk(z)) - pkg_k).max() < 1e-5
