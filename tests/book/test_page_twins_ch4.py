"""Chapter 4's page code equals the package's: networks and training step.

The cells of ``book/04_pytorch_dcgans.ipynb`` tagged ``page-model`` (the 28x28 and the 64x64
DCGAN as ``nn.Module`` classes, ``weights_init``) and ``page-loop`` (the PyTorch tutorial's
training step) are executed as they stand in the notebook; then, for ``torch-mnist`` and
``dcgan64``:

* the parameter counts equal the package's and the recipe's;
* the page model's tensors copied by position into ``dcgan_lab.torch.build(name)`` give the same
  outputs (train and eval mode) to 1e-6;
* k steps of the page loop and k steps of ``dcgan_lab.torch.step.train_step`` from the same
  weights, on the same real batches and z (the package's ``step_inputs``), give the same weights
  and BatchNorm averages to 1e-5.

So neither the page nor the package can change without the other.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn, optim

from dcgan_lab import recipes
from dcgan_lab import torch as lab_torch
from dcgan_lab.run import config
from dcgan_lab.torch.step import step_inputs, train_step

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "04_pytorch_dcgans.ipynb"
TAGS = ("page-model", "page-loop")
# recipe -> names of the page's generator and discriminator classes
PAGE_CLASSES = {"torch-mnist": ("Generator28", "Discriminator28"),
                "dcgan64": ("Generator", "Discriminator")}
STEPS = 3


@pytest.fixture(scope="module")
def page() -> dict:
    """The namespace left by the tagged cells, executed in notebook order."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"
             and set(c.get("metadata", {}).get("tags", ())) & set(TAGS)]
    found = {t for c in cells for t in c["metadata"]["tags"]}
    assert found >= set(TAGS), f"{NOTEBOOK.name} has no cell tagged {sorted(set(TAGS) - found)}"
    ns: dict = {"__name__": "chapter4_page", "torch": torch, "nn": nn, "optim": optim}
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        exec(compile(source, f"{NOTEBOOK.name}:tagged cell {i}", "exec"), ns)  # noqa: S102
    return ns


def _models(page: dict, name: str, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    gen_cls, dis_cls = (page[n] for n in PAGE_CLASSES[name])
    torch.manual_seed(seed)
    return gen_cls().apply(page["weights_init"]), dis_cls().apply(page["weights_init"])


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _copy_by_position(src: nn.Module, dst: nn.Module) -> nn.Module:
    src_t = list(src.state_dict().values())
    dst_items = list(dst.state_dict().items())
    assert len(src_t) == len(dst_items), (len(src_t), [k for k, _ in dst_items])
    for a, (key, b) in zip(src_t, dst_items, strict=True):
        assert a.shape == b.shape, f"{key}: page {tuple(a.shape)}, package {tuple(b.shape)}"
    dst.load_state_dict({key: a.clone() for a, (key, _) in zip(src_t, dst_items, strict=True)})
    return dst


def _max_state_diff(a: nn.Module, b: nn.Module) -> float:
    return max((x.double() - y.double()).abs().max().item()
               for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("name", list(PAGE_CLASSES))
def test_page_models_have_the_recipes_parameter_counts(page, name):
    page_g, page_d = _models(page, name)
    pkg_g, pkg_d = lab_torch.build(name)
    r = recipes.get(name)
    assert _n_params(page_g) == _n_params(pkg_g) == r.g_params
    assert _n_params(page_d) == _n_params(pkg_d) == r.d_params


def test_page_weights_init_is_the_dcgan_init(page):
    page_g, page_d = _models(page, "dcgan64")
    convs = torch.cat([m.weight.flatten() for m in (*page_g.modules(), *page_d.modules())
                       if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    bns = [m for m in (*page_g.modules(), *page_d.modules()) if isinstance(m, nn.BatchNorm2d)]
    gamma = torch.cat([m.weight for m in bns])
    assert abs(convs.mean().item()) < 1e-3 and abs(convs.std().item() - 0.02) < 1e-3
    assert abs(gamma.mean().item() - 1.0) < 5e-3 and abs(gamma.std().item() - 0.02) < 5e-3
    assert all(bool((m.bias == 0).all()) for m in bns)


@pytest.mark.parametrize("name", list(PAGE_CLASSES))
def test_page_models_compute_the_packages_function(page, name):
    page_g, page_d = _models(page, name)
    pkg_g, pkg_d = (_copy_by_position(p, q) for p, q in zip((page_g, page_d),
                                                              lab_torch.build(name), strict=True))
    n = 8
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(n, recipes.get(name).latent_dim, generator=gen)
    x = torch.rand(n, *pkg_d.input_shape, generator=gen) * 2 - 1
    with torch.no_grad():
        for training_mode in (True, False):  # batch statistics, then running averages
            for m in (page_g, page_d, pkg_g, pkg_d):
                m.train(training_mode)
            assert (page_g(z.view(n, -1, 1, 1)) - pkg_g(z)).abs().max().item() <= 1e-6
            assert (page_d(x).view(n) - pkg_d(x).view(n)).abs().max().item() <= 1e-6


@pytest.mark.parametrize("name,batch_size", [("torch-mnist", 16), ("dcgan64", 2)])
def test_page_loop_equals_the_packages_train_step(page, name, batch_size):
    h, w, c = recipes.get(name).image_shape
    images = np.random.default_rng(0).integers(0, 256, (4 * batch_size, h, w, c), dtype=np.uint8)
    cfg = config.resolve(name, "torch", config.TrainOptions(batch_size=batch_size))
    page_g, page_d = _models(page, name)
    pkg_g, pkg_d = (_copy_by_position(p, q) for p, q in zip((page_g, page_d),
                                                              lab_torch.build(name), strict=True))
    start_g = copy.deepcopy(pkg_g)
    opt_page = page["make_optimizers"](page_g, page_d)  # (optimizerG, optimizerD)
    opt_g = optim.Adam(pkg_g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = optim.Adam(pkg_d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    for step in range(1, STEPS + 1):
        inputs = step_inputs(step, images, cfg)
        real, z = inputs["real"][0], inputs["z_d"][0]
        page["training_step"](page_g, page_d, *opt_page, real, z.view(len(z), -1, 1, 1))
        train_step(step, pkg_g, pkg_d, opt_g, opt_d, images, cfg, torch.device("cpu"),
                   inputs=inputs)
    assert _max_state_diff(start_g, pkg_g) > 1e-4  # the steps did move the weights
    assert _max_state_diff(page_g, pkg_g) <= 1e-5
    assert _max_state_diff(page_d, pkg_d) <= 1e-5
