"""One PyTorch training step, in the style of the canonical ``pytorch/examples`` DCGAN.

Read :func:`train_step` first: it is one generator step, top to bottom --

1. update D: maximise ``log D(x) + log(1 - D(G(z)))`` (BCE with target 1 on a real batch and
   target 0 on a fake batch; the targets may be soft, one-sided or noisy, see ganhacks);
2. update G: maximise ``log D(G(z))`` (the non-saturating loss, BCE with target 1) or, for the
   experiment, minimise ``log(1 - D(G(z)))`` (the saturating minimax loss). The PyTorch-origin
   recipes (``Recipe.reuse_fake``) do it on the very fake batch D was just trained on, as
   pytorch/examples does (``fake = netG(noise)`` once; D on ``fake.detach()``; G on
   ``netD(fake)``); the Keras-origin ones on a fresh ``z``, as their sources do.

Every random draw outside the layers (data order, ``z``, label noise) comes from the stateless
streams of :mod:`dcgan_lab.run.streams`, keyed by (seed, step); dropout uses torch's RNG, whose
state the checkpoint keeps. The loop around this step is :mod:`dcgan_lab.torch.backend`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..run import streams
from ..run.config import Config
from ..speed import Speed

__all__ = ["pick_device", "step_inputs", "train_step"]


# --------------------------------------------------------------------------------------------
# small helpers


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW tensor in [-1, 1] -> uint8 NHWC array."""
    from .. import data

    return data.to_uint8(images.detach().float().permute(0, 2, 3, 1).cpu().numpy())


# --------------------------------------------------------------------------------------------
# one training step


def step_inputs(step: int, images: np.ndarray, cfg: Config) -> dict[str, torch.Tensor]:
    """:func:`dcgan_lab.streams.step_inputs` of ``step`` as CPU tensors, ``real`` in NCHW.

    Recipes whose G update reuses D's fake batch (:func:`dcgan_lab.streams.reuses_fake`) get no
    ``z_g``: their G update of round ``r`` trains on ``G(z_d[r * d_steps + d_steps - 1])``.
    """
    x = streams.step_inputs(step, images, cfg)
    x["real"] = x["real"].transpose(0, 1, 4, 2, 3).copy()  # a copy has the canonical strides
    if streams.reuses_fake(cfg):
        del x["z_g"]
    return {k: torch.from_numpy(v) for k, v in x.items()}


def _autocast(device: torch.device, speed: Speed | None):
    """The forward passes' precision: ``torch.autocast`` for ``speed.autocast``, else nothing."""
    if speed is None or speed.autocast in (None, "off"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if speed.autocast == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _update_g(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
              fake: torch.Tensor, criterion: nn.Module, g_loss: str,
              amp: Callable) -> torch.Tensor:
    """G's update of :func:`train_step` on ``D(fake)`` with D's weights frozen (D's
    weight-gradient kernels are skipped; only G moves); returns G's loss."""
    G.zero_grad()
    d_params = [p for p in D.parameters() if p.requires_grad]
    for p in d_params:
        p.requires_grad_(False)
    try:
        with amp():
            out = D(fake).float()
        if g_loss == "non_saturating":
            loss_g = criterion(out, torch.ones_like(out))  # -log D(G(z))
        else:
            loss_g = -criterion(out, torch.zeros_like(out))  # log(1 - D(G(z))): saturates
        loss_g.backward()
    finally:
        for p in d_params:
            p.requires_grad_(True)
    opt_g.step()
    return loss_g


def train_step(step: int, G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, images: np.ndarray, cfg: Config,
               device: torch.device, *, inputs: dict[str, torch.Tensor] | None = None,
               speed: Speed | None = None) -> dict[str, float]:
    """One generator step (``cfg.d_steps`` D updates, then one G update); returns the metrics.

    ``images`` is the whole uint8 NHWC training set; the rows, ``z`` and D's targets of ``step``
    come from the stateless streams (:func:`step_inputs`; pass ``inputs`` to use a batch prepared
    ahead, e.g. by a DataLoader worker). The losses are BCE on probabilities (``cfg.loss ==
    "bce"``, D ends in a sigmoid) or BCE from logits (``"logits"``). ``loss_d`` is ``loss_d_real +
    loss_d_fake`` as in the PyTorch example; ``d_real``/``d_fake`` are the mean probabilities
    D gave the real and the fake batch of the last D update.

    ``speed`` (a resolved :class:`~dcgan_lab.speed.Speed`) may ask for channels-last inputs and
    autocast forward passes; the losses are always computed in float32.
    """
    criterion = nn.BCELoss() if cfg.loss == "bce" else nn.BCEWithLogitsLoss()
    prob = torch.sigmoid if cfg.loss == "logits" else torch.nn.Identity()  # D's output -> P(real)
    n_real = streams.d_batch_sizes(cfg)[0]
    if inputs is None:
        inputs = step_inputs(step, images, cfg)
    x = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    layout = (torch.channels_last if speed is not None and speed.channels_last
              else torch.contiguous_format)  # NHWC in memory, still indexed as NCHW
    amp = functools.partial(_autocast, device, speed)

    reuse = streams.reuses_fake(cfg)
    # D's weights need no gradient in G's update (only G moves): they are frozen for it, which
    # skips their weight-gradient kernels (about a third of that backward pass). Under DDP, G's
    # update runs the wrapped module itself, so no all-reduce of D's unused gradients is waited for.
    D_fixed = D.module if isinstance(D, nn.parallel.DistributedDataParallel) else D
    for rnd in range(cfg.rounds_per_step):
        # (1) Update D: maximise log(D(x)) + log(1 - D(G(z)))
        for j in range(cfg.d_steps):
            u = rnd * cfg.d_steps + j
            real, z, t_real, t_fake = x["real"][u], x["z_d"][u], x["t_real"][u], x["t_fake"][u]
            real = real.contiguous(memory_format=layout)
            if reuse and j == cfg.d_steps - 1:
                with amp():  # kept with its graph: G's update below reuses this batch
                    fake_g = G(z)
                fake = fake_g.detach()
            else:
                with torch.no_grad(), amp():  # D's update needs no gradient through G
                    fake = G(z)

            D.zero_grad()
            if cfg.d_batches == "separate":
                # two passes: BatchNorm sees an all-real and an all-fake batch (ganhacks 4)
                with amp():
                    out_real = D(real).float()
                loss_d_real = criterion(out_real, t_real)
                loss_d_real.backward()
                with amp():
                    out_fake = D(fake).float()
                loss_d_fake = criterion(out_fake, t_fake)
                loss_d_fake.backward()
            else:
                # one pass on the mixed batch: BatchNorm statistics mix real and fake images
                with amp():
                    out = D(torch.cat([real, fake.to(real.dtype)])).float()
                out_real, out_fake = out[:n_real], out[n_real:]
                loss_d_real = criterion(out_real, t_real)
                loss_d_fake = criterion(out_fake, t_fake)
                (loss_d_real + loss_d_fake).backward()
            opt_d.step()

        # (2) Update G: maximise log(D(G(z))) -- on D's fake batch (reuse_fake, the PyTorch
        # sources) or on fresh z (the Keras sources' stacked G -> D model); D is held fixed
        with amp():
            fake = fake_g if reuse else G(x["z_g"][rnd])
        loss_g = _update_g(G, D_fixed, opt_g, fake, criterion, cfg.g_loss, amp)

    return {
        "loss_d": (loss_d_real + loss_d_fake).item(),
        "loss_d_real": loss_d_real.item(),
        "loss_d_fake": loss_d_fake.item(),
        "loss_g": loss_g.item(),
        "d_real": prob(out_real).mean().item(),
        "d_fake": prob(out_fake).mean().item(),
    }
