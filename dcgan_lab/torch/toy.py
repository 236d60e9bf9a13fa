"""The toy 2-D GAN in PyTorch (twin of :mod:`dcgan_lab.keras.toy`, the same names).

G: z (``z_dim``) -> Dense ``hidden`` -> ReLU -> Dense ``hidden`` -> ReLU -> Dense 2 (a point).
D: a point -> Dense ``hidden`` -> LeakyReLU(0.2) (or ReLU) -> Dense ``hidden`` -> same -> Dense 1
(a logit; D's probability of "real" is its sigmoid). Losses are binary cross-entropy from logits.

The networks are *ensembles*: :class:`ToyMLP` holds ``n_models`` independent MLPs as stacked
weights (kernels ``(n_models, in, out)``, Keras' (in, out) layout per model) and maps
``(n_models, N, in)`` to ``(n_models, N, out)`` with one batched matrix product per layer. One
model is the ordinary network; ten are ten seeds trained at once for little more than the cost of
one, which is what lets a chapter train every setting with >= 10 seeds in seconds. Adam acts on
each weight separately and the loss is the sum of the models' losses, so every model trains
exactly as it would alone.

:func:`train_toys` trains one model per seed from :func:`dcgan_lab.toy.init_weights` on the inputs
of :func:`dcgan_lab.toy.step_stream`, so a seed means the same start and the same batches in both
frameworks; each step makes ``d_steps`` Adam updates of D (real and fake batch, separate BCE terms
summed) and one of G (non-saturating ``-log D(G(z))`` or minimax ``log(1 - D(G(z)))``).

Two critic objectives replace the BCE game (``loss``): ``"wgan-gp"`` (Gulrajani et al. 2017: D's
loss ``mean D(G(z)) - mean D(x)`` plus ``gp_weight`` times the mean of ``(||grad D(x_hat)|| - 1)^2``
at ``x_hat = eps x + (1 - eps) G(z)``; G's loss ``-mean D(G(z))``) and ``"hinge"`` (Miyato et al.
2018: D's loss ``mean relu(1 - D(x)) + mean relu(1 + D(G(z)))``, G's ``-mean D(G(z))``). The toy D
has no normalisation layer, as the WGAN-GP critic must not have BatchNorm. ``update`` picks the
step: ``"alternating"`` (the PyTorch DCGAN tutorial: D's update, then G's against the updated D)
or ``"simultaneous"`` (the TensorFlow DCGAN tutorial: one forward pass ``G(z)``, ``D(x)``,
``D(G(z))``; both losses and both gradients from it; then both updates; ``z`` is ``z_d``).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import toy as _toy

__all__ = ["ToyMLP", "build", "set_weights", "get_weights", "forward", "d_loss", "g_loss",
           "gradient_penalty", "train_toy", "train_toys"]


class ToyMLP(nn.Module):
    """``n_models`` independent MLPs with layer ``sizes``; ``activation`` between layers."""

    def __init__(self, sizes: list[int], n_models: int = 1, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        _toy._choice("activation", activation, ("relu", "leaky_relu"))
        self.activation, self.dropout = activation, dropout
        self.kernels = nn.ParameterList(
            nn.Parameter(torch.zeros(n_models, a, b)) for a, b in zip(sizes, sizes[1:], strict=False))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(n_models, 1, b)) for b in sizes[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.kernels) - 1
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=False)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = F.relu(x) if self.activation == "relu" else F.leaky_relu(x, 0.2)
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
        return x


def set_weights(net: ToyMLP, weights: list[list[np.ndarray]]) -> ToyMLP:
    """Load one list ``[kernel (in, out), bias, ...]`` per model (Keras layout) into ``net``."""
    with torch.no_grad():
        for i, (w, b) in enumerate(zip(net.kernels, net.biases, strict=True)):
            w.copy_(torch.from_numpy(np.stack([np.asarray(m[2 * i]) for m in weights])))
            b.copy_(torch.from_numpy(np.stack([np.asarray(m[2 * i + 1])[None] for m in weights])))
    return net


def get_weights(net: ToyMLP, model: int = 0) -> list[np.ndarray]:
    """Model ``model``'s weights as ``[kernel (in, out), bias, ...]`` (Keras' layout)."""
    out = []
    for w, b in zip(net.kernels, net.biases, strict=True):
        out += [w[model].detach().numpy().copy(), b[model, 0].detach().numpy().copy()]
    return out


def build(cfg: _toy.ToyConfig | None = None, seeds: list[int] | None = None,
          **options) -> tuple[ToyMLP, ToyMLP]:
    """``(G, D)``: one model per seed (default: ``cfg.seed``), weights from ``init_weights``."""
    cfg = cfg or _toy.make_config(**options)
    seeds = [cfg.seed] if seeds is None else list(seeds)
    ws = [_toy.init_weights(cfg.replace(seed=s)) for s in seeds]
    G = ToyMLP([cfg.z_dim, cfg.hidden, cfg.hidden, 2], len(seeds), "relu", cfg.g_dropout)
    D = ToyMLP([2, cfg.hidden, cfg.hidden, 1], len(seeds), cfg.d_activation)
    return set_weights(G, [w["G"] for w in ws]), set_weights(D, [w["D"] for w in ws])


def forward(net: ToyMLP, x: np.ndarray) -> np.ndarray:
    """``net(x)`` in inference mode, NumPy in and out; ``x`` (N, in) is fed to every model."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = np.broadcast_to(x, (len(net.kernels[0]), *x.shape))
    was = net.training
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(np.array(x, dtype=np.float32))).numpy()
    net.train(was)
    return out


def _bce(logits, targets):   # per model: mean over its batch, shape (n_models,)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(1, 2))


def d_loss(real_logits, fake_logits, t_real, t_fake, loss: str = "non_saturating"):
    """Per model: BCE(D(x), t_real) + BCE(D(G(z)), t_fake), from logits; for the critic losses
    (the targets unused) ``"wgan-gp"``: mean D(G(z)) - mean D(x) (add :func:`gradient_penalty`),
    ``"hinge"``: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))."""
    if loss == "wgan-gp":
        return fake_logits.mean(dim=(1, 2)) - real_logits.mean(dim=(1, 2))
    if loss == "hinge":
        return F.relu(1 - real_logits).mean(dim=(1, 2)) + F.relu(1 + fake_logits).mean(dim=(1, 2))
    return _bce(real_logits, t_real) + _bce(fake_logits, t_fake)


def g_loss(fake_logits, loss: str = "non_saturating"):
    """Per model: non-saturating ``-log D(G(z))`` = softplus(-a), minimax ``log(1 - D)`` =
    -softplus(a); the critic losses (wgan-gp, hinge): ``-mean D(G(z))``."""
    if loss in _toy.CRITIC_LOSSES:
        return -fake_logits.mean(dim=(1, 2))
    if loss == "non_saturating":
        return F.softplus(-fake_logits).mean(dim=(1, 2))
    return -F.softplus(fake_logits).mean(dim=(1, 2))


def gradient_penalty(D, real, fake, eps, weight: float = 10.0):
    """Per model: ``weight * mean((||grad_x D(x_hat)||_2 - 1)^2)`` with ``x_hat = eps real + (1 -
    eps) fake`` (WGAN-GP, Gulrajani et al. 2017, Algorithm 1); the norm is ``sqrt(sum g^2 + 1e-12)``
    (finite gradient at g = 0). Built with ``create_graph``, so D's update differentiates it."""
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    norm = torch.sqrt((grad ** 2).sum(dim=-1) + 1e-12)
    return weight * ((norm - 1) ** 2).mean(dim=1)


def _d_total(cfg, D, real, fake, t_real, t_fake, eps):
    """D's loss per model (with WGAN-GP's penalty) and D's logits on ``fake``."""
    a_real, a_fake = D(real), D(fake)
    l_d = d_loss(a_real, a_fake, t_real, t_fake, cfg.loss)
    if cfg.loss == "wgan-gp":
        l_d = l_d + gradient_penalty(D, real, fake.detach(), eps, cfg.gp_weight)
    return l_d, a_fake


def _inputs(streams, n):
    """The next ``n`` steps of every seed's stream, seeds stacked after the step axis."""
    parts = [s.take(n) for s in streams]
    return {k: torch.from_numpy(np.stack([p[k] for p in parts], axis=-3 if k != "z_g" else 1))
            for k in parts[0]}


def _snapshot(G, D, z_eval, grid, size):
    G.eval()
    with torch.no_grad():
        pts = G(z_eval).numpy()
        surf = torch.sigmoid(D(grid)).numpy().reshape(len(pts), size, size)
    G.train()
    return pts, surf


def _simultaneous(cfg, G, D, opt_g, opt_d, x, i):
    """One simultaneous step (the TensorFlow tutorial's): one forward pass, both gradients from
    it (D's and G's taken before either network moves), then both updates."""
    fake = G(x["z_d"][i, 0])
    l_d, a = _d_total(cfg, D, x["real"][i, 0], fake, x["t_real"][i, 0], x["t_fake"][i, 0],
                      x["eps"][i, 0])
    l_g = g_loss(a, cfg.loss)
    d_params, g_params = list(D.parameters()), list(G.parameters())
    grads_d = torch.autograd.grad(l_d.sum(), d_params, retain_graph=True)
    grads_g = torch.autograd.grad(l_g.sum(), g_params)
    for p, g in zip(d_params + g_params, grads_d + grads_g, strict=True):
        p.grad = g
    opt_d.step()
    opt_g.step()
    return l_d, l_g, a


def train_toys(mixture: str, steps: int, seeds, loss: str = "non_saturating",
               **options) -> list[_toy.ToyRun]:
    """Train one toy GAN per seed, all at once (an ensemble); returns one ``ToyRun`` per seed.

    Options as :class:`~dcgan_lab.toy.ToyConfig`. Each run holds G's points and D's surface at
    every step of ``snapshot_steps`` (the last step always) and its per-step losses; ``seconds``
    is the ensemble's wall time divided by the number of seeds. Deterministic given the seeds on
    one machine (PyTorch's RNG serves only G's dropout, seeded from the first seed). Runs on one
    CPU thread: these matrices are tiny, and on a busy machine a second OpenMP thread waiting for
    a core slows every step several-fold (measured: 1,000 steps of one seed took about a minute
    with two threads on a loaded two-core machine).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_toys(mixture, steps, seeds, loss, **options)
    finally:
        torch.set_num_threads(threads)


def _train_toys(mixture: str, steps: int, seeds, loss: str = "non_saturating",
                **options) -> list[_toy.ToyRun]:
    seeds = [int(s) for s in seeds]
    cfgs = [_toy.make_config(mixture, steps, s, loss, **options) for s in seeds]
    cfg, S = cfgs[0], len(seeds)
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    G, D = build(cfg, seeds)
    adam = dict(betas=(cfg.beta1, cfg.beta2), eps=1e-7)   # Keras' Adam epsilon
    opt_g = (torch.optim.Adam(G.parameters(), cfg.lr_g, **adam) if cfg.g_optimizer == "adam"
             else torch.optim.SGD(G.parameters(), cfg.lr_g))
    opt_d = (torch.optim.Adam(D.parameters(), cfg.lr_d, **adam) if cfg.d_optimizer == "adam"
             else torch.optim.SGD(D.parameters(), cfg.lr_d))
    streams = [_toy.step_stream(c) for c in cfgs]
    z_eval = torch.from_numpy(np.stack([_toy.eval_noise(c) for c in cfgs]))
    grid = torch.from_numpy(np.broadcast_to(_toy.surface_points(cfg),
                                            (S, cfg.surface_size ** 2, 2)).copy())
    losses = np.zeros((cfg.steps, S, 3), np.float32)
    pts, surfs, done = [], [], 0
    for target in cfg.snapshot_steps:
        if target > done:
            x = _inputs(streams, target - done)
            for i in range(target - done):
                if cfg.update == "simultaneous":
                    l_d, l_g, a = _simultaneous(cfg, G, D, opt_g, opt_d, x, i)
                    ld = l_d.detach()
                else:
                    ld = 0.0
                    for k in range(cfg.d_steps):
                        with torch.no_grad():
                            fake = G(x["z_d"][i, k])
                        opt_d.zero_grad(set_to_none=True)
                        l_d, _ = _d_total(cfg, D, x["real"][i, k], fake, x["t_real"][i, k],
                                          x["t_fake"][i, k], x["eps"][i, k])
                        l_d.sum().backward()
                        opt_d.step()
                        ld = ld + l_d.detach()
                    opt_g.zero_grad(set_to_none=True)
                    a = D(G(x["z_g"][i]))
                    l_g = g_loss(a, cfg.loss)
                    l_g.sum().backward()
                    opt_g.step()
                losses[done + i, :, 0] = (ld / cfg.d_steps).numpy()
                losses[done + i, :, 1] = l_g.detach().numpy()
                losses[done + i, :, 2] = torch.sigmoid(a.detach()).mean(dim=(1, 2)).numpy()
            done = target
        p, s = _snapshot(G, D, z_eval, grid, cfg.surface_size)
        pts.append(p)
        surfs.append(s)
    seconds = (time.perf_counter() - t0) / S
    return _toy.ensemble_runs(cfgs, "torch", pts, surfs, losses, seconds, {"G": G, "D": D})


def train_toy(mixture: str, steps: int, seed: int, loss: str = "non_saturating",
              **options) -> _toy.ToyRun:
    """Train one toy GAN (see :func:`train_toys`); returns its :class:`~dcgan_lab.toy.ToyRun`."""
    return train_toys(mixture, steps, [seed], loss, **options)[0]
