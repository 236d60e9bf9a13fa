"""The eight recipes as Keras 3 functional models (NHWC).

``build(name)`` returns ``(generator, discriminator)``, two ``keras.Model`` named
``f"{name}_generator"`` / ``f"{name}_discriminator"`` whose layers are exactly the recipe's (the layer settings are the Recipe's fields).

Keras-origin recipes (``dense-mnist``, ``gia-dcgan-mnist``, ``bernico-*``, ``keras-faces64``) use
``padding="same"`` as their sources do. Torch-origin recipes (``torch-mnist``, ``dcgan64``,
``paper-lsun64``) reproduce PyTorch's symmetric ``padding``/``output_padding`` exactly: an explicit
``ZeroPadding2D`` before a ``"valid"`` Conv2D, and a ``Cropping2D`` after a ``"valid"``
Conv2DTranspose. (Keras' ``"same"`` pads asymmetrically with stride 2 -- the extra pixel goes
after -- so for k5 s2 or k3 s2 it would shift the taps by one pixel relative to PyTorch; for
k4 s2 p1 the two coincide and ``"same"`` is used.)
"""

from __future__ import annotations

import collections
import contextlib
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import ops  # noqa: E402

from .. import recipes as _recipes  # noqa: E402
from ..shapes import ShapeTable  # noqa: E402

__all__ = ["build", "summary", "ACTIVATIONS", "TF1BatchNormalization"]

ACTIVATIONS = (None, "relu", "leaky_relu")


@keras.saving.register_keras_serializable(package="dcgan_lab")
class TF1BatchNormalization(L.BatchNormalization):
    """``BatchNormalization`` whose *frozen* copy still normalises with batch statistics.

    Keras 3 (like TensorFlow >= 2.0) runs a ``BatchNormalization`` layer with
    ``trainable=False`` in inference mode even when it is called with ``training=True``: it
    normalises with its moving mean and variance. TensorFlow 1.x Keras -- and PyTorch, where
    ``requires_grad=False`` does not touch ``train()``/``eval()`` -- kept the two apart: only
    ``training`` picked the statistics. The stacked GAN recipes (GANs in Action, Keras-GAN) rely on
    that: inside ``combined = D(G(z))`` D is frozen, and G must be trained against the same
    function ``D.train_on_batch`` trains, batch statistics included.

    This layer restores that rule and nothing else. ``training=True`` and ``trainable=False``:
    normalise with the batch's mean and variance, leave ``moving_mean``/``moving_variance``
    untouched (the layer is frozen) -- gradients still flow through the batch statistics to the
    layer's input. Every other case is the stock layer's: trainable layers in training mode
    update the moving statistics, ``training=False`` uses them. The variables, their count and
    the saved config are those of ``BatchNormalization``, so :mod:`dcgan_lab.interop.port` pairs it with
    ``torch.nn.BatchNorm2d`` as usual. (Masks and batch renormalisation are left to the stock
    code path.)
    """

    def call(self, inputs, training=None, mask=None):
        if not training or self.trainable or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))  # as the parent
        axis = self.axis % len(x.shape)
        mean, variance = ops.moments(x, axes=[i for i in range(len(x.shape)) if i != axis],
                                     synchronized=self.synchronized)
        gamma = ops.cast(self.gamma, x.dtype) if self.scale else None
        beta = ops.cast(self.beta, x.dtype) if self.center else None
        out = ops.batch_normalization(x, mean, variance, axis=self.axis, offset=beta,
                                      scale=gamma, epsilon=self.epsilon)
        return ops.cast(out, self.compute_dtype)


class _Ctx:
    """Options shared by the layer helpers while one network is built."""

    def __init__(self, recipe, *, bn_momentum: float, bn_eps: float, slope: float,
                 activation: str, dropout: float = 0.0, dcgan_init: bool = False,
                 tf1_batchnorm: bool = False, critic: bool = False) -> None:
        self.recipe = recipe
        self.critic = critic  # D as a critic: no BatchNorm, no sigmoid (WGAN-GP, hinge)
        self.out = "linear" if critic else "sigmoid"  # D's output activation
        self.tf1_batchnorm = tf1_batchnorm
        self.bn_momentum = bn_momentum  # Keras convention (PyTorch momentum p -> 1 - p)
        self.bn_eps = bn_eps
        self.slope = slope
        self.activation = activation
        self.dropout = dropout
        self.dcgan_init = dcgan_init

    def _w(self) -> dict:
        if not self.dcgan_init:
            return {}
        return {"kernel_initializer": keras.initializers.RandomNormal(0.0, 0.02)}

    def dense(self, units: int, **kw) -> L.Dense:
        return L.Dense(units, **self._w(), **kw)

    def conv(self, filters: int, k: int, s: int = 1, padding: str = "valid", **kw) -> L.Conv2D:
        return L.Conv2D(filters, k, strides=s, padding=padding, **self._w(), **kw)

    def convt(self, filters: int, k: int, s: int = 1, padding: str = "valid", **kw):
        return L.Conv2DTranspose(filters, k, strides=s, padding=padding, **self._w(), **kw)

    def bn(self) -> L.Layer:
        if self.critic:
            return L.Identity()
        kw = {}
        if self.dcgan_init:
            kw["gamma_initializer"] = keras.initializers.RandomNormal(1.0, 0.02)
        layer = TF1BatchNormalization if self.tf1_batchnorm else L.BatchNormalization
        return layer(momentum=self.bn_momentum, epsilon=self.bn_eps, **kw)

    def act(self, x):
        # Keras 3's LeakyReLU defaults to negative_slope=0.3: always pass the recipe's slope.
        x = L.ReLU()(x) if self.activation == "relu" else L.LeakyReLU(negative_slope=self.slope)(x)
        if self.dropout > 0:
            x = L.Dropout(self.dropout)(x)
        return x


def _seq(x, *layers):
    for layer in layers:
        x = layer(x)
    return x


# --------------------------------------------------------------------------------------------
# the recipes: each returns (generator_output, discriminator_output) given the two Inputs


def _dense_mnist(r, g: _Ctx, d: _Ctx, z, img):
    h, w, c = r.image_shape
    x = g.act(g.dense(128)(z))
    x = _seq(x, g.dense(h * w * c, activation="tanh"), L.Reshape((h, w, c)))
    y = d.act(_seq(img, L.Flatten(), d.dense(128)))
    y = d.dense(1, activation=d.out)(y)
    return x, y


def _gia_dcgan_mnist(r, g: _Ctx, d: _Ctx, z, img):
    x = _seq(z, g.dense(7 * 7 * 256), L.Reshape((7, 7, 256)))
    x = g.act(_seq(x, g.convt(128, 3, 2, "same"), g.bn()))             # 7 -> 14
    x = g.act(_seq(x, g.convt(64, 3, 1, "same"), g.bn()))              # 14 -> 14
    x = _seq(x, g.convt(r.channels, 3, 2, "same"), L.Activation("tanh"))  # 14 -> 28
    y = d.act(d.conv(32, 3, 2, "same")(img))                           # 28 -> 14
    y = d.act(_seq(y, d.conv(64, 3, 2, "same"), d.bn()))               # 14 -> 7
    y = d.act(_seq(y, d.conv(128, 3, 2, "same"), d.bn()))              # 7 -> 4
    y = _seq(y, L.Flatten(), d.dense(1, activation=d.out))
    return x, y


def _bernico(r, g: _Ctx, d: _Ctx, z, img):
    h, w, c = r.image_shape
    s0 = h // 4
    x = g.act(g.dense(128 * s0 * s0)(z))
    x = _seq(x, L.Reshape((s0, s0, 128)), g.bn(), L.UpSampling2D())
    x = g.bn()(g.act(g.conv(128, 3, 1, "same")(x)))
    x = L.UpSampling2D()(x)
    x = g.bn()(g.act(g.conv(64, 3, 1, "same")(x)))
    x = _seq(x, g.conv(c, 3, 1, "same"), L.Activation("tanh"))

    y = L.Dropout(0.25)(d.act(d.conv(32, 3, 2, "same")(img)))
    y = d.conv(64, 3, 2, "same")(y)
    if y.shape[1] % 2:  # MNIST: 7x7 -> 8x8
        y = L.ZeroPadding2D(((0, 1), (0, 1)))(y)
    y = d.bn()(L.Dropout(0.25)(d.act(y)))
    y = d.bn()(L.Dropout(0.25)(d.act(d.conv(128, 3, 2, "same")(y))))
    y = L.Dropout(0.25)(d.act(d.conv(256, 3, 1, "same")(y)))
    y = _seq(y, L.Flatten(), d.dense(1, activation=d.out))
    return x, y


def _keras_faces64(r, g: _Ctx, d: _Ctx, z, img):
    x = g.act(_seq(z, g.dense(4 * 4 * 512, use_bias=False), g.bn()))
    x = L.Reshape((4, 4, 512))(x)
    for f in (256, 128, 64, 32):
        x = g.act(_seq(x, g.convt(f, 5, 2, "same", use_bias=False), g.bn()))
    x = _seq(x, g.conv(r.channels, 5, 1, "same"), L.Activation("tanh"))
    y = img
    for f in (64, 128, 256, 512):
        y = L.Dropout(0.3)(d.act(d.conv(f, 5, 2, "same")(y)))
    y = _seq(y, L.Flatten(), d.dense(1))  # logits
    return x, y


def _torch_mnist(r, g: _Ctx, d: _Ctx, z, img):
    x = L.Reshape((1, 1, r.latent_dim))(z)
    x = g.act(_seq(x, g.convt(128, 4, 1, "valid", use_bias=False), g.bn()))       # 1 -> 4
    # PyTorch ConvTranspose2d(k3, s2, padding=1): the full output (4-1)*2 + 3 = 9 cropped by 1
    # on each side -> 7. Keras "same" would give 8, so "valid" + Cropping2D.
    x = g.act(_seq(x, g.convt(64, 3, 2, "valid", use_bias=False),
                   L.Cropping2D(((1, 1), (1, 1))), g.bn()))                        # 4 -> 7
    # k4 s2 p1 crops 1 and 1, which is exactly Keras "same" (7 -> 14 -> 28).
    x = g.act(_seq(x, g.convt(32, 4, 2, "same", use_bias=False), g.bn()))         # 7 -> 14
    x = _seq(x, g.convt(r.channels, 4, 2, "same", use_bias=False),
             L.Activation("tanh"))                                                # 14 -> 28
    y = d.act(d.conv(32, 4, 2, "same", use_bias=False)(img))                      # 28 -> 14
    y = d.act(_seq(y, d.conv(64, 4, 2, "same", use_bias=False), d.bn()))          # 14 -> 7
    # PyTorch Conv2d(k3, s2, padding=1) pads 1 on every side: explicit ZeroPadding2D + "valid".
    y = d.act(_seq(y, L.ZeroPadding2D(1), d.conv(128, 3, 2, "valid", use_bias=False),
                   d.bn()))                                                       # 7 -> 4
    y = _seq(y, d.conv(1, 4, 1, "valid", use_bias=False), L.Flatten(),
             L.Activation(d.out))                                             # 4 -> 1
    return x, y


def _dcgan64(r, g: _Ctx, d: _Ctx, z, img):
    ngf = ndf = 64
    x = L.Reshape((1, 1, r.latent_dim))(z)
    x = g.act(_seq(x, g.convt(ngf * 8, 4, 1, "valid", use_bias=False), g.bn()))   # 1 -> 4
    # k4 s2 p1 (PyTorch) == k4 s2 "same" (Keras): both pad/crop 1 on each side.
    for f in (ngf * 4, ngf * 2, ngf):
        x = g.act(_seq(x, g.convt(f, 4, 2, "same", use_bias=False), g.bn()))
    x = _seq(x, g.convt(r.channels, 4, 2, "same", use_bias=False), L.Activation("tanh"))
    y = d.act(d.conv(ndf, 4, 2, "same", use_bias=False)(img))
    for f in (ndf * 2, ndf * 4, ndf * 8):
        y = d.act(_seq(y, d.conv(f, 4, 2, "same", use_bias=False), d.bn()))
    y = _seq(y, d.conv(1, 4, 1, "valid", use_bias=False), L.Flatten(), L.Activation(d.out))
    return x, y


def _paper_lsun64(r, g: _Ctx, d: _Ctx, z, img):
    x = _seq(z, g.dense(4 * 4 * 1024, use_bias=False), L.Reshape((4, 4, 1024)), g.bn())
    x = g.act(x)
    # PyTorch ConvTranspose2d(k5, s2, padding=2, output_padding=1): full output (n-1)*2 + 5,
    # cropped by 2 at the start and 2 - 1 = 1 at the end -> 2n. Keras "same" crops 1 at the start
    # and 2 at the end (the opposite split), so "valid" + Cropping2D(((2, 1), (2, 1))).
    for f in (512, 256, 128):
        x = g.act(_seq(x, g.convt(f, 5, 2, "valid", use_bias=False),
                       L.Cropping2D(((2, 1), (2, 1))), g.bn()))
    x = _seq(x, g.convt(r.channels, 5, 2, "valid", use_bias=False), L.Cropping2D(((2, 1), (2, 1))),
             L.Activation("tanh"))
    # PyTorch Conv2d(k5, s2, padding=2) pads 2 on every side; Keras "same" would pad 1 before
    # and 2 after. So ZeroPadding2D(2) + "valid".
    y = d.act(_seq(img, L.ZeroPadding2D(2), d.conv(64, 5, 2, "valid", use_bias=False)))
    for f in (128, 256, 512):
        y = d.act(_seq(y, L.ZeroPadding2D(2), d.conv(f, 5, 2, "valid", use_bias=False), d.bn()))
    y = _seq(y, L.Flatten(), d.dense(1))  # logits
    return x, y


# name -> the function that wires its layers; the layer settings are the Recipe's
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


def build(
    name: str | _recipes.Recipe,
    *,
    g_dropout: float = 0.0,
    g_activation: str | None = None,
    d_activation: str | None = None,
    tf1_batchnorm: bool = False,
    channels: int | None = None,
    critic: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """Build the Keras (generator, discriminator) pair of recipe ``name`` (functional, NHWC).

    Options for the failure-modes experiments (defaults reproduce the recipe): ``g_dropout`` adds
    ``Dropout(g_dropout)`` after every hidden activation of G; ``g_activation`` / ``d_activation``
    replace the hidden activations ("relu" or "leaky_relu"; LeakyReLU keeps the recipe's slope).

    ``tf1_batchnorm=True`` gives the discriminator :class:`TF1BatchNormalization` layers instead
    of ``BatchNormalization`` (same weights and parameter count): frozen inside a stacked
    ``combined`` model, D then still normalises with batch statistics, as under TF 1.x Keras.
    The stacked trainer builds D this way; the generator is never frozen and keeps the stock layer.
    ``channels`` (default: the recipe's) changes the image channels, e.g. 3 for Stacked MNIST.
    ``critic=True`` makes D a critic for WGAN-GP or the hinge loss: no BatchNorm, no sigmoid.
    """
    recipe = _recipes.get(name).with_channels(channels)
    if not 0.0 <= g_dropout < 1.0:
        raise ValueError(f"g_dropout must be in [0, 1), got {g_dropout!r}")
    for opt, val in (("g_activation", g_activation), ("d_activation", d_activation)):
        if val not in ACTIVATIONS:
            raise ValueError(f"{opt} must be one of {ACTIVATIONS} (None = the recipe's), got {val!r}")
    try:
        fn = _BUILDERS[recipe.name]
    except KeyError:
        raise KeyError(f"no Keras model for recipe {recipe.name!r}: known are {', '.join(_BUILDERS)}") from None
    # Keras' BatchNormalization momentum is the weight of the running average: 1 - PyTorch's.
    common = {"bn_momentum": 1 - recipe.bn_momentum, "bn_eps": recipe.bn_eps,
              "slope": recipe.leaky_slope, "dcgan_init": recipe.dcgan_init}
    g = _Ctx(recipe, activation=g_activation or recipe.g_activation, dropout=g_dropout, **common)
    d = _Ctx(recipe, activation=d_activation or recipe.d_activation, tf1_batchnorm=tf1_batchnorm,
             critic=critic, **common)
    with _fresh_layer_names():
        z = keras.Input((recipe.latent_dim,), name="z")
        img = keras.Input(recipe.image_shape, name="images")
        x, y = fn(recipe, g, d, z, img)
    gen = keras.Model(z, x, name=f"{recipe.name}_generator")
    dis = keras.Model(img, y, name=f"{recipe.name}_discriminator")
    gen.recipe = dis.recipe = recipe
    return gen, dis


@contextlib.contextmanager
def _fresh_layer_names():
    """Number auto-named layers from scratch ("dense", "dense_1", ...) while one pair is built, so
    summaries look the same however many models the session built before. Uses Keras' private
    name counter; if that ever moves, layers simply keep Keras' session-wide numbering."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # pragma: no cover
        yield
        return
    key = "object_name_uids"
    old = global_state.get_global_attribute(key)
    global_state.set_global_attribute(key, collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute(key, old)


# --------------------------------------------------------------------------------------------
# shape tables


def summary(model: keras.Model) -> ShapeTable:
    """A :class:`~dcgan_lab.shapes.ShapeTable` of ``model``: every layer in order, its output
    shape (H, W, C) without the batch dimension, and its trainable parameters."""
    import numpy as np

    def count(ws) -> int:
        return int(sum(int(np.prod(w.shape)) for w in ws))

    rows: list[tuple[str, tuple, int]] = []
    seen_inputs = False
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            seen_inputs = True
        out = layer.output
        shape = tuple(out.shape[1:]) if hasattr(out, "shape") else ()
        rows.append((f"{layer.name} ({type(layer).__name__})", shape, count(layer.trainable_weights)))
    if not seen_inputs:
        rows[:0] = [(f"{t.name} (Input)", tuple(t.shape[1:]), 0) for t in model.inputs]
    kind = model.name.rsplit("_", 1)[-1] if "_" in model.name else model.name
    base = model.name[: -len(kind) - 1] if "_" in model.name else model.name
    title = f"{base} {kind} (Keras, H x W x C)"
    return ShapeTable.from_rows(rows, title=title, layout="HWC",
                                non_trainable_params=count(model.non_trainable_weights))


def build_for(cfg, **kwargs):
    """:func:`build` of a run's :class:`~dcgan_lab.run.config.Config`: its recipe with its
    ``g_dropout``, ``g_activation`` and ``d_activation``, and D a critic for a critic objective
    (the one place a run's models are built from its config; ``kwargs`` go to :func:`build`)."""
    return build(cfg.recipe, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                 d_activation=cfg.d_activation, critic=cfg.critic, **kwargs)
