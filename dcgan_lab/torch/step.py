"""One PyTorch training step, in the style of the canonical ``pytorch/examples`` DCGAN.

Read :func:`train_step` first: it is one generator step, top to bottom --

1. update D: maximise ``log D(x) + log(1 - D(G(z)))`` (BCE with target 1 on a real batch and
   target 0 on a fake batch; the targets may be soft, one-sided or noisy, see ganhacks);
2. update G: maximise ``log D(G(z))`` (the non-saturating loss, BCE with target 1) or, for the
   experiment, minimise ``log(1 - D(G(z)))`` (the saturating minimax loss). The PyTorch-origin
   recipes (``Recipe.reuse_fake``) do it on the very fake batch D was just trained on, as
   pytorch/examples does (``fake = netG(noise)`` once; D on ``fake.detach()``; G on
   ``netD(fake)``); the Keras-origin ones on a fresh ``z``, as their sources do.

Two options of the same trainer go beyond the tutorials (:func:`train_step` hands them to
:func:`train_step_variant`): ``cfg.objective`` ``"wgan-gp"`` (Gulrajani et al. 2017: D a critic
without BatchNorm or sigmoid, loss ``mean D(G(z)) - mean D(x) + 10 mean (||grad D(x_hat)|| - 1)^2``,
G's loss ``-mean D(G(z))``) or ``"hinge"`` (Miyato et al. 2018: ``mean relu(1 - D(x)) + mean
relu(1 + D(G(z)))``), and ``cfg.update == "simultaneous"`` (the TensorFlow DCGAN tutorial: one
forward pass ``G(z)``, ``D(x)``, ``D(G(z))``, both gradients from it, then both updates).

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
from ..run.config import GP_WEIGHT, Config
from ..speed import Speed

__all__ = ["pick_device", "step_inputs", "train_step", "gradient_penalty", "critic_losses"]


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
    if cfg.objective != "gan" or cfg.update != "alternating":
        return train_step_variant(step, G, D, opt_g, opt_d, images, cfg, device, inputs=inputs,
                                  speed=speed)
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


# --------------------------------------------------------------------------------------------
# beyond the tutorials: a critic objective, and simultaneous updates


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                     weight: float = GP_WEIGHT) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, Algorithm 1): ``weight`` times the mean over
    images of ``(||grad_x D(x_hat)||_2 - 1)^2`` at ``x_hat = eps x + (1 - eps) G(z)`` (``eps``
    (n, 1, 1, 1) per image; the first ``min(len(real), len(fake))`` pairs). The norm is ``sqrt(sum
    g^2 + 1e-12)``, finite at ``g = 0``; the graph is kept, so D's update differentiates it."""
    k = min(len(real), len(fake))
    x_hat = (eps[:k] * real[:k].float() + (1 - eps[:k]) * fake[:k].detach().float())
    x_hat.requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).float().sum(), x_hat, create_graph=True)
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(dim=1) + 1e-12)
    return weight * ((norm - 1) ** 2).mean()


def critic_losses(objective: str, out_real: torch.Tensor, out_fake: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """D's two loss terms on its scores: ``"wgan-gp"``: ``-mean D(x)``, ``mean D(G(z))``;
    ``"hinge"``: ``mean relu(1 - D(x))``, ``mean relu(1 + D(G(z)))``."""
    if objective == "wgan-gp":
        return -out_real.mean(), out_fake.mean()
    return torch.relu(1 - out_real).mean(), torch.relu(1 + out_fake).mean()


class _VariantStep:
    """One generator step of :func:`train_step_variant`: the pieces its rounds share."""

    def __init__(self, cfg, G, D, opt_g, opt_d, x, amp, layout):
        self.cfg, self.G, self.D, self.opt_g, self.opt_d = cfg, G, D, opt_g, opt_d
        self.x, self.amp, self.layout = x, amp, layout
        self.criterion = nn.BCELoss() if cfg.loss == "bce" else nn.BCEWithLogitsLoss()
        self.n_real = streams.d_batch_sizes(cfg)[0]
        self.D_fixed = D.module if isinstance(D, nn.parallel.DistributedDataParallel) else D
        self.d_params = [p for p in D.parameters() if p.requires_grad]
        self.g_params = [p for p in G.parameters() if p.requires_grad]

    def d_terms(self, real, fake, u):
        """D's loss (with WGAN-GP's penalty), its two terms and D's outputs on both batches."""
        cfg, D, amp = self.cfg, self.D, self.amp
        if cfg.d_batches == "separate":
            with amp():
                out_real, out_fake = D(real).float(), D(fake).float()
        else:
            with amp():
                out = D(torch.cat([real, fake.to(real.dtype)])).float()
            out_real, out_fake = out[:self.n_real], out[self.n_real:]
        if cfg.critic:
            l_real, l_fake = critic_losses(cfg.objective, out_real, out_fake)
        else:
            l_real = self.criterion(out_real, self.x["t_real"][u])
            l_fake = self.criterion(out_fake, self.x["t_fake"][u])
        loss = l_real + l_fake
        if cfg.objective == "wgan-gp":
            loss = loss + gradient_penalty(D, real, fake, self.x["eps"][u])
        return loss, l_real, l_fake, out_real, out_fake

    def g_term(self, out):
        if self.cfg.critic:
            return -out.mean()
        if self.cfg.g_loss == "non_saturating":
            return self.criterion(out, torch.ones_like(out))
        return -self.criterion(out, torch.zeros_like(out))

    def simultaneous(self, rnd):
        """The TensorFlow tutorial: one forward pass, both gradients from it, then both steps."""
        u = rnd * self.cfg.d_steps
        real = self.x["real"][u].contiguous(memory_format=self.layout)
        with self.amp():
            fake = self.G(self.x["z_d"][u])
        self.D.zero_grad()
        self.G.zero_grad()
        terms = self.d_terms(real, fake, u)
        loss_g = self.g_term(terms[4])
        terms[0].backward(inputs=self.d_params, retain_graph=True)   # D's gradient only
        loss_g.backward(inputs=self.g_params)                        # G's, through the same D
        self.opt_d.step()
        self.opt_g.step()
        return terms, loss_g

    def alternating(self, rnd):
        """``d_steps`` D updates, then G's against the updated D (the PyTorch tutorial)."""
        cfg, x, amp = self.cfg, self.x, self.amp
        reuse = streams.reuses_fake(cfg)
        for j in range(cfg.d_steps):
            u = rnd * cfg.d_steps + j
            real = x["real"][u].contiguous(memory_format=self.layout)
            if reuse and j == cfg.d_steps - 1:
                with amp():
                    fake_g = self.G(x["z_d"][u])
                fake = fake_g.detach()
            else:
                with torch.no_grad(), amp():
                    fake = self.G(x["z_d"][u])
            self.D.zero_grad()
            terms = self.d_terms(real, fake, u)
            terms[0].backward()
            self.opt_d.step()
        with amp():
            fake = fake_g if reuse else self.G(x["z_g"][rnd])
        self.G.zero_grad()
        for p in self.d_params:
            p.requires_grad_(False)
        try:
            with amp():
                out = self.D_fixed(fake).float()
            loss_g = self.g_term(out)
            loss_g.backward()
        finally:
            for p in self.d_params:
                p.requires_grad_(True)
        self.opt_g.step()
        return terms, loss_g


def train_step_variant(step: int, G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
                       opt_d: torch.optim.Optimizer, images: np.ndarray, cfg: Config,
                       device: torch.device, *, inputs: dict[str, torch.Tensor] | None = None,
                       speed: Speed | None = None) -> dict[str, float]:
    """:func:`train_step` for ``cfg.objective`` in ("wgan-gp", "hinge") or ``cfg.update ==
    "simultaneous"``; the same inputs and metrics. For a critic, ``d_real``/``d_fake`` are D's
    mean *scores* and ``loss_d`` includes the penalty (``loss_d - loss_d_real - loss_d_fake``)."""
    if cfg.critic:
        prob = torch.nn.Identity()
    else:
        prob = torch.sigmoid if cfg.loss == "logits" else torch.nn.Identity()
    if inputs is None:
        inputs = step_inputs(step, images, cfg)
    x = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    layout = (torch.channels_last if speed is not None and speed.channels_last
              else torch.contiguous_format)
    run = _VariantStep(cfg, G, D, opt_g, opt_d, x, functools.partial(_autocast, device, speed),
                       layout)
    for rnd in range(cfg.rounds_per_step):
        if cfg.update == "simultaneous":
            terms, loss_g = run.simultaneous(rnd)
        else:
            terms, loss_g = run.alternating(rnd)
    loss_d, loss_d_real, loss_d_fake, out_real, out_fake = terms
    return {
        "loss_d": loss_d.item(),
        "loss_d_real": loss_d_real.item(),
        "loss_d_fake": loss_d_fake.item(),
        "loss_g": loss_g.item(),
        "d_real": prob(out_real).mean().item(),
        "d_fake": prob(out_fake).mean().item(),
    }
