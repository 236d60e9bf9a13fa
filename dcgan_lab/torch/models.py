"""The eight recipes as PyTorch modules (NCHW).

``build(name)`` returns ``(generator, discriminator)``. Each is a :class:`Generator` /
:class:`Discriminator` wrapping an ``nn.Sequential`` called ``net`` whose layers are exactly the
recipe's (the layer settings are the Recipe's fields); ``model.recipe`` is the :class:`~dcgan_lab.recipes.Recipe`.

Torch-origin recipes (``torch-mnist``, ``dcgan64``, ``paper-lsun64``) are written the idiomatic
PyTorch way (``padding``/``output_padding``). Keras-origin recipes (``dense-mnist``,
``gia-dcgan-mnist``, ``bernico-*``, ``keras-faces64``) reproduce Keras' ``padding="same"`` exactly,
which for stride 2 is *asymmetric* (see :func:`dcgan_lab.arithmetic.same_padding`): an explicit
``nn.ZeroPad2d`` before a ``padding=0`` convolution, and a :class:`Crop2d` after a ``padding=0``
transposed convolution. That way the Keras and PyTorch twins compute the same function and weights
can be copied between them (:mod:`dcgan_lab.interop.port`).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import recipes as _recipes
from ..arithmetic import same_padding
from ..shapes import ShapeTable

__all__ = ["Generator", "Discriminator", "Crop2d", "build", "summary", "ACTIVATIONS"]

ACTIVATIONS = (None, "relu", "leaky_relu")


class Crop2d(nn.Module):
    """Remove ``top``/``bottom`` rows and ``left``/``right`` columns (the inverse of ZeroPad2d).

    After a ``padding=0`` transposed convolution this reproduces Keras' ``padding="same"``: the
    crop equals the SAME padding of the forward convolution that maps the output back to the input.
    """

    def __init__(self, top: int, bottom: int, left: int, right: int) -> None:
        super().__init__()
        self.top, self.bottom, self.left, self.right = top, bottom, left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        return x[..., self.top: h - self.bottom, self.left: w - self.right]

    def extra_repr(self) -> str:
        return f"top={self.top}, bottom={self.bottom}, left={self.left}, right={self.right}"


class _GanModule(nn.Module):
    kind = "model"

    def __init__(self, recipe: _recipes.Recipe, net: nn.Sequential, input_shape: tuple[int, ...]):
        super().__init__()
        self.recipe = recipe
        self.net = net
        self.input_shape = tuple(input_shape)  # without the batch dimension

    def _check(self, x: torch.Tensor, what: str) -> None:
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            expected = ", ".join(["N", *map(str, self.input_shape)])
            raise ValueError(
                f"{self.recipe.name} {self.kind} expects {what} of shape ({expected}), "
                f"got {tuple(x.shape)}"
                + (" (PyTorch images are NCHW)" if what == "images" else "")
            )


class Generator(_GanModule):
    """z of shape (N, latent_dim) -> images (N, C, H, W) in [-1, 1]."""

    kind = "generator"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check(z, "z")
        return self.net(z)


class Discriminator(_GanModule):
    """Images (N, C, H, W) -> (N, 1): probabilities (loss "bce") or logits (loss "logits")."""

    kind = "discriminator"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, "images")
        return self.net(x).reshape(x.shape[0], 1)


# --------------------------------------------------------------------------------------------
# building blocks


class _Ctx:
    """Options shared by the layer helpers while one network is built."""

    def __init__(self, recipe, *, bn_momentum: float, bn_eps: float, slope: float,
                 activation: str, dropout: float = 0.0, critic: bool = False) -> None:
        self.recipe = recipe
        self.critic = critic  # D as a critic: no BatchNorm, no sigmoid (WGAN-GP, hinge)
        self.bn_momentum = bn_momentum  # PyTorch convention (Keras momentum m -> 1 - m)
        self.bn_eps = bn_eps
        self.slope = slope
        self.activation = activation  # "relu" or "leaky_relu"
        self.dropout = dropout

    def bn2d(self, c: int) -> nn.Module:
        if self.critic:
            return nn.Identity()
        return nn.BatchNorm2d(c, momentum=self.bn_momentum, eps=self.bn_eps)

    def bn1d(self, c: int) -> nn.Module:
        if self.critic:
            return nn.Identity()
        return nn.BatchNorm1d(c, momentum=self.bn_momentum, eps=self.bn_eps)

    def sigmoid(self) -> nn.Module:
        """D's output activation: a sigmoid (P(real)), or none for a critic's score."""
        return nn.Identity() if self.critic else nn.Sigmoid()

    def act(self) -> list[nn.Module]:
        a = nn.ReLU() if self.activation == "relu" else nn.LeakyReLU(self.slope)
        return [a] + ([nn.Dropout(self.dropout)] if self.dropout > 0 else [])


def _same_conv(cin: int, cout: int, k: int, s: int, n: int, bias: bool = True) -> list[nn.Module]:
    """Conv2d reproducing Keras ``padding="same"`` on an n x n input.

    TF SAME pads ``total // 2`` before and the rest after; PyTorch's ``padding`` is symmetric, so
    for odd totals (k3 s2 on even n, k5 s2) the taps would be shifted by one pixel. An explicit
    asymmetric ZeroPad2d + ``padding=0`` gives the exact Keras function.
    """
    before, after = same_padding(n, k, s)
    layers: list[nn.Module] = []
    if before == after:
        return [nn.Conv2d(cin, cout, k, s, padding=before, bias=bias)]
    layers.append(nn.ZeroPad2d((before, after, before, after)))  # (left, right, top, bottom)
    layers.append(nn.Conv2d(cin, cout, k, s, padding=0, bias=bias))
    return layers


def _same_convt(cin: int, cout: int, k: int, s: int, n: int, bias: bool = True) -> list[nn.Module]:
    """ConvTranspose2d reproducing Keras ``padding="same"`` (n x n -> n*s x n*s).

    Keras/TF crops the full transposed output ((n-1)s + k) by the SAME padding of the forward conv
    that maps n*s back to n: ``before`` at the start, ``after`` at the end. PyTorch's
    padding/output_padding crop ``p`` at the start and ``p - output_padding`` at the end, i.e. the
    larger half first -- the opposite split. So: ``padding=0`` and an explicit Crop2d.
    """
    before, after = same_padding(n * s, k, s)
    if before == after:
        return [nn.ConvTranspose2d(cin, cout, k, s, padding=before, bias=bias)]
    return [nn.ConvTranspose2d(cin, cout, k, s, padding=0, bias=bias),
            Crop2d(before, after, before, after)]


# --------------------------------------------------------------------------------------------
# the recipes


def _dense_mnist(r, g: _Ctx, d: _Ctx):
    h, w, c = r.image_shape
    gen = [nn.Linear(r.latent_dim, 128), *g.act(),
           nn.Linear(128, h * w * c), nn.Tanh(), nn.Unflatten(1, (c, h, w))]
    dis = [nn.Flatten(), nn.Linear(h * w * c, 128), *d.act(), nn.Linear(128, 1), d.sigmoid()]
    return gen, dis


def _gia_dcgan_mnist(r, g: _Ctx, d: _Ctx):
    gen = [
        nn.Linear(r.latent_dim, 7 * 7 * 256), nn.Unflatten(1, (256, 7, 7)),
        *_same_convt(256, 128, 3, 2, 7), g.bn2d(128), *g.act(),     # 7 -> 14
        *_same_convt(128, 64, 3, 1, 14), g.bn2d(64), *g.act(),      # 14 -> 14
        *_same_convt(64, r.channels, 3, 2, 14), nn.Tanh(),           # 14 -> 28
    ]
    dis = [
        *_same_conv(r.channels, 32, 3, 2, 28), *d.act(),             # 28 -> 14
        *_same_conv(32, 64, 3, 2, 14), d.bn2d(64), *d.act(),         # 14 -> 7
        *_same_conv(64, 128, 3, 2, 7), d.bn2d(128), *d.act(),        # 7 -> 4
        nn.Flatten(), nn.Linear(4 * 4 * 128, 1), d.sigmoid(),
    ]
    return gen, dis


def _bernico(r, g: _Ctx, d: _Ctx):
    h, w, c = r.image_shape
    s0 = h // 4
    gen = [
        nn.Linear(r.latent_dim, 128 * s0 * s0), *g.act(), nn.Unflatten(1, (128, s0, s0)),
        g.bn2d(128),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *_same_conv(128, 128, 3, 1, 2 * s0), *g.act(), g.bn2d(128),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *_same_conv(128, 64, 3, 1, 4 * s0), *g.act(), g.bn2d(64),
        *_same_conv(64, c, 3, 1, 4 * s0), nn.Tanh(),
    ]
    drop = [nn.Dropout(0.25)]
    n2 = h // 2
    dis = [*_same_conv(c, 32, 3, 2, h), *d.act(), *drop,                       # h -> h/2
           *_same_conv(32, 64, 3, 2, n2)]                                      # -> h/4 (7 or 8)
    n4 = -(-n2 // 2)
    if n4 % 2:  # MNIST: 7x7 -> Keras ZeroPadding2D(((0, 1), (0, 1))) -> 8x8
        dis.append(nn.ZeroPad2d((0, 1, 0, 1)))
        n4 += 1
    dis += [*d.act(), *drop, d.bn2d(64),
            *_same_conv(64, 128, 3, 2, n4), *d.act(), *drop, d.bn2d(128),         # -> 4
            *_same_conv(128, 256, 3, 1, n4 // 2), *d.act(), *drop,
            nn.Flatten(), nn.Linear(256 * (n4 // 2) ** 2, 1), d.sigmoid()]
    return gen, dis


def _keras_faces64(r, g: _Ctx, d: _Ctx):
    gen: list[nn.Module] = [nn.Linear(r.latent_dim, 4 * 4 * 512, bias=False), g.bn1d(4 * 4 * 512),
                            *g.act(), nn.Unflatten(1, (512, 4, 4))]
    n, cin = 4, 512
    for cout in (256, 128, 64, 32):
        gen += [*_same_convt(cin, cout, 5, 2, n, bias=False), g.bn2d(cout), *g.act()]
        n, cin = 2 * n, cout
    gen += [*_same_conv(32, r.channels, 5, 1, 64), nn.Tanh()]
    dis: list[nn.Module] = []
    n, cin = 64, r.channels
    for cout in (64, 128, 256, 512):
        dis += [*_same_conv(cin, cout, 5, 2, n), *d.act(), nn.Dropout(0.3)]
        n, cin = n // 2, cout
    dis += [nn.Flatten(), nn.Linear(4 * 4 * 512, 1)]
    return gen, dis


def _torch_mnist(r, g: _Ctx, d: _Ctx):
    gen = [
        nn.Unflatten(1, (r.latent_dim, 1, 1)),
        nn.ConvTranspose2d(r.latent_dim, 128, 4, 1, 0, bias=False), g.bn2d(128), *g.act(),  # 4
        nn.ConvTranspose2d(128, 64, 3, 2, 1, bias=False), g.bn2d(64), *g.act(),             # 7
        nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), g.bn2d(32), *g.act(),              # 14
        nn.ConvTranspose2d(32, r.channels, 4, 2, 1, bias=False), nn.Tanh(),                 # 28
    ]
    dis = [
        nn.Conv2d(r.channels, 32, 4, 2, 1, bias=False), *d.act(),                           # 14
        nn.Conv2d(32, 64, 4, 2, 1, bias=False), d.bn2d(64), *d.act(),                       # 7
        nn.Conv2d(64, 128, 3, 2, 1, bias=False), d.bn2d(128), *d.act(),                     # 4
        nn.Conv2d(128, 1, 4, 1, 0, bias=False), d.sigmoid(),                               # 1
    ]
    return gen, dis


def _dcgan64(r, g: _Ctx, d: _Ctx):
    nz, ngf, ndf = r.latent_dim, 64, 64
    gen = [nn.Unflatten(1, (nz, 1, 1)),
           nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), g.bn2d(ngf * 8), *g.act()]
    for cin, cout in ((ngf * 8, ngf * 4), (ngf * 4, ngf * 2), (ngf * 2, ngf)):
        gen += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), g.bn2d(cout), *g.act()]
    gen += [nn.ConvTranspose2d(ngf, r.channels, 4, 2, 1, bias=False), nn.Tanh()]
    dis = [nn.Conv2d(r.channels, ndf, 4, 2, 1, bias=False), *d.act()]
    for cin, cout in ((ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8)):
        dis += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), d.bn2d(cout), *d.act()]
    dis += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), d.sigmoid()]
    return gen, dis


def _paper_lsun64(r, g: _Ctx, d: _Ctx):
    # Project and reshape: 100 -> 1024x4x4, then k5 s2 transposed convolutions. k5 s2 with
    # padding=2, output_padding=1 doubles the size (n-1)*2 - 4 + 5 + 1 = 2n.
    gen = [nn.Linear(r.latent_dim, 4 * 4 * 1024, bias=False), nn.Unflatten(1, (1024, 4, 4)),
           g.bn2d(1024), *g.act()]
    for cin, cout in ((1024, 512), (512, 256), (256, 128)):
        gen += [nn.ConvTranspose2d(cin, cout, 5, 2, padding=2, output_padding=1, bias=False),
                g.bn2d(cout), *g.act()]
    gen += [nn.ConvTranspose2d(128, r.channels, 5, 2, padding=2, output_padding=1, bias=False),
            nn.Tanh()]
    dis = [nn.Conv2d(r.channels, 64, 5, 2, padding=2, bias=False), *d.act()]
    for cin, cout in ((64, 128), (128, 256), (256, 512)):
        dis += [nn.Conv2d(cin, cout, 5, 2, padding=2, bias=False), d.bn2d(cout), *d.act()]
    dis += [nn.Flatten(), nn.Linear(4 * 4 * 512, 1)]
    return gen, dis


# name -> the function that lists its layers; the layer settings are the Recipe's
_BUILDERS = {
    "dense-mnist": _dense_mnist,
    "gia-dcgan-mnist": _gia_dcgan_mnist,
    "bernico-mnist": _bernico,
    "bernico-cifar10": _bernico,
    "keras-faces64": _keras_faces64,
    "torch-mnist": _torch_mnist,
    "dcgan64": _dcgan64,
    "paper-lsun64": _paper_lsun64,
}


def _check_options(g_dropout: float, g_activation, d_activation) -> None:
    if not 0.0 <= g_dropout < 1.0:
        raise ValueError(f"g_dropout must be in [0, 1), got {g_dropout!r}")
    for opt, val in (("g_activation", g_activation), ("d_activation", d_activation)):
        if val not in ACTIVATIONS:
            raise ValueError(f"{opt} must be one of {ACTIVATIONS} (None = the recipe's), got {val!r}")


def _dcgan_init(model: nn.Module) -> None:
    """DCGAN init: every conv/convT/linear weight N(0, 0.02), biases 0, BN gamma N(1, 0.02), beta 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _keras_default_init(model: nn.Module) -> None:
    """Keras' defaults (Glorot-uniform kernels, zero biases) for the twins of Keras recipes."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build(
    name: str | _recipes.Recipe,
    *,
    g_dropout: float = 0.0,
    g_activation: str | None = None,
    d_activation: str | None = None,
    channels: int | None = None,
    critic: bool = False,
) -> tuple[Generator, Discriminator]:
    """Build the PyTorch (generator, discriminator) pair of recipe ``name``.

    Options for the failure-modes experiments (defaults reproduce the recipe): ``g_dropout`` adds
    ``nn.Dropout(g_dropout)`` after every hidden activation of G; ``g_activation`` /
    ``d_activation`` replace the hidden activations ("relu" or "leaky_relu"; LeakyReLU keeps the
    recipe's slope). ``channels`` (default: the recipe's) changes the image channels of G's output
    and D's input, e.g. ``channels=3`` for Stacked MNIST; ``model.recipe`` then has that shape.
    ``critic=True`` makes D a critic for WGAN-GP or the hinge loss: no BatchNorm (Gulrajani et al.
    2017: the penalty is per image, which batch statistics break) and no sigmoid at its output.
    """
    recipe = _recipes.get(name).with_channels(channels)
    _check_options(g_dropout, g_activation, d_activation)
    try:
        fn = _BUILDERS[recipe.name]
    except KeyError:
        raise KeyError(f"no PyTorch model for recipe {recipe.name!r}: known are {', '.join(_BUILDERS)}") from None
    bn = {"bn_momentum": recipe.bn_momentum, "bn_eps": recipe.bn_eps, "slope": recipe.leaky_slope}
    g = _Ctx(recipe, activation=g_activation or recipe.g_activation, dropout=g_dropout, **bn)
    d = _Ctx(recipe, activation=d_activation or recipe.d_activation, critic=critic, **bn)
    gen_layers, dis_layers = fn(recipe, g, d)
    h, w, c = recipe.image_shape
    gen = Generator(recipe, nn.Sequential(*gen_layers), (recipe.latent_dim,))
    dis = Discriminator(recipe, nn.Sequential(*dis_layers), (c, h, w))
    for m in (gen, dis):
        if recipe.dcgan_init:
            _dcgan_init(m)
        elif recipe.origin == "keras":
            _keras_default_init(m)
    return gen, dis


# --------------------------------------------------------------------------------------------
# shape tables


def summary(model: nn.Module, input_shape: tuple[int, ...] | None = None, *,
            batch_size: int = 2) -> ShapeTable:
    """A :class:`~dcgan_lab.shapes.ShapeTable` of ``model``: every leaf module in the order it
    runs, its output shape (C, H, W) without the batch dimension, and its trainable parameters.

    Runs one forward pass in eval mode with a dummy batch of zeros of ``(batch_size,
    *input_shape)``; ``input_shape`` defaults to ``model.input_shape`` (set by :func:`build`).
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError("summary needs input_shape=(...) (without the batch dimension) for a "
                             f"{type(model).__name__} not made by dcgan_lab.torch.build")
    names = {m: n for n, m in model.named_modules()}
    rows: list[tuple[str, tuple[int, ...], int]] = [("input", tuple(input_shape), 0)]
    hooks = []

    def hook(m, _inp, out):
        if isinstance(out, torch.Tensor):
            params = sum(p.numel() for p in m.parameters() if p.requires_grad)
            rows.append((f"{names[m]} ({type(m).__name__})", tuple(out.shape[1:]), params))

    for m in model.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros((batch_size, *input_shape),
                        device=param.device if param is not None else None)
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if tuple(out.shape[1:]) != rows[-1][1]:
        rows.append(("output", tuple(out.shape[1:]), 0))
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    title = getattr(model, "recipe", None)
    title = f"{title.name} {model.kind} (PyTorch, C x H x W)" if title is not None else ""
    return ShapeTable.from_rows(rows, title=title, layout="CHW",
                                non_trainable_params=buffers + frozen)


def build_for(cfg, **kwargs):
    """:func:`build` of a run's :class:`~dcgan_lab.run.config.Config`: its recipe with its
    ``g_dropout``, ``g_activation`` and ``d_activation``, and D a critic for a critic objective
    (the one place a run's models are built from its config; ``kwargs`` go to :func:`build`)."""
    return build(cfg.recipe, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                 d_activation=cfg.d_activation, critic=cfg.critic, **kwargs)
