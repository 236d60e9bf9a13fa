"""The toy 2-D GAN in Keras 3 (twin of :mod:`dcgan_lab.torch.toy`, the same names).

G: z (``z_dim``) -> Dense ``hidden`` -> ReLU -> Dense ``hidden`` -> ReLU -> Dense 2 (a point).
D: a point -> Dense ``hidden`` -> LeakyReLU(0.2) (or ReLU) -> Dense ``hidden`` -> same -> Dense 1
(a logit; D's probability of "real" is its sigmoid). Losses are binary cross-entropy from logits.

As in PyTorch, each network is an ensemble, :class:`ToyMLP`: ``n_models`` independent MLPs with
kernels ``(n_models, in, out)``, mapping ``(n_models, N, in)`` to ``(n_models, N, out)`` with one
batched matrix product per layer, so ten seeds train at once. The training steps between two
snapshots run inside one ``tf.function`` loop (a ``tf.while_loop``), which keeps Python out of the
per-step cost. Inputs, starting weights and the update rule are those of the PyTorch twin:
:func:`dcgan_lab.toy.init_weights`, :func:`dcgan_lab.toy.step_stream`, Adam with epsilon 1e-7;
so are the critic objectives (``"wgan-gp"`` with its gradient penalty, ``"hinge"``) and the two
update schemes (``"alternating"``, ``"simultaneous"``) -- see :mod:`dcgan_lab.torch.toy`.
"""

from __future__ import annotations

import os as _os
import time

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from .. import toy as _toy  # noqa: E402

__all__ = ["ToyMLP", "build", "set_weights", "get_weights", "forward", "d_loss", "g_loss",
           "gradient_penalty", "train_toy", "train_toys"]


class ToyMLP(keras.Model):
    """``n_models`` independent MLPs with layer ``sizes``; ``activation`` between layers."""

    def __init__(self, sizes: list[int], n_models: int = 1, activation: str = "relu",
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        _toy._choice("activation", activation, ("relu", "leaky_relu"))
        self.activation, self.dropout = activation, dropout
        self.kernels = [self.add_weight(shape=(n_models, a, b), initializer="zeros",
                                        name=f"kernel_{i}")
                        for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))]
        self.biases = [self.add_weight(shape=(n_models, 1, b), initializer="zeros",
                                       name=f"bias_{i}") for i, b in enumerate(sizes[1:])]
        self.drop = keras.layers.Dropout(dropout) if dropout > 0 else None

    def call(self, x, training=False):
        last = len(self.kernels) - 1
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=False)):
            x = ops.matmul(x, w) + b
            if i < last:
                x = ops.relu(x) if self.activation == "relu" else ops.leaky_relu(x, 0.2)
                if self.drop is not None:
                    x = self.drop(x, training=training)
        return x


def set_weights(net: ToyMLP, weights: list[list[np.ndarray]]) -> ToyMLP:
    """Load one list ``[kernel (in, out), bias, ...]`` per model (Keras layout) into ``net``."""
    for i, (w, b) in enumerate(zip(net.kernels, net.biases, strict=True)):
        w.assign(np.stack([np.asarray(m[2 * i]) for m in weights]))
        b.assign(np.stack([np.asarray(m[2 * i + 1])[None] for m in weights]))
    return net


def get_weights(net: ToyMLP, model: int = 0) -> list[np.ndarray]:
    """Model ``model``'s weights as ``[kernel (in, out), bias, ...]``."""
    out = []
    for w, b in zip(net.kernels, net.biases, strict=True):
        out += [np.asarray(w)[model].copy(), np.asarray(b)[model, 0].copy()]
    return out


def build(cfg: _toy.ToyConfig | None = None, seeds: list[int] | None = None,
          **options) -> tuple[ToyMLP, ToyMLP]:
    """``(G, D)``: one model per seed (default: ``cfg.seed``), weights from ``init_weights``."""
    cfg = cfg or _toy.make_config(**options)
    seeds = [cfg.seed] if seeds is None else list(seeds)
    ws = [_toy.init_weights(cfg.replace(seed=s)) for s in seeds]
    G = ToyMLP([cfg.z_dim, cfg.hidden, cfg.hidden, 2], len(seeds), "relu", cfg.g_dropout,
               name="toy_generator")
    D = ToyMLP([2, cfg.hidden, cfg.hidden, 1], len(seeds), cfg.d_activation,
               name="toy_discriminator")
    return set_weights(G, [w["G"] for w in ws]), set_weights(D, [w["D"] for w in ws])


def forward(net: ToyMLP, x: np.ndarray) -> np.ndarray:
    """``net(x)`` in inference mode, NumPy in and out; ``x`` (N, in) is fed to every model."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = np.broadcast_to(x, (int(net.kernels[0].shape[0]), *x.shape))
    return np.asarray(net(np.ascontiguousarray(x), training=False))


def _bce(logits, targets):   # per model: mean over its batch, shape (n_models,)
    per = ops.relu(logits) - logits * targets + ops.softplus(-ops.abs(logits))
    return ops.mean(per, axis=(1, 2))


def d_loss(real_logits, fake_logits, t_real, t_fake, loss: str = "non_saturating"):
    """Per model: BCE(D(x), t_real) + BCE(D(G(z)), t_fake), from logits; for the critic losses
    (the targets unused) ``"wgan-gp"``: mean D(G(z)) - mean D(x) (add :func:`gradient_penalty`),
    ``"hinge"``: mean relu(1 - D(x)) + mean relu(1 + D(G(z)))."""
    if loss == "wgan-gp":
        return ops.mean(fake_logits, axis=(1, 2)) - ops.mean(real_logits, axis=(1, 2))
    if loss == "hinge":
        return (ops.mean(ops.relu(1 - real_logits), axis=(1, 2))
                + ops.mean(ops.relu(1 + fake_logits), axis=(1, 2)))
    return _bce(real_logits, t_real) + _bce(fake_logits, t_fake)


def g_loss(fake_logits, loss: str = "non_saturating"):
    """Per model: non-saturating ``-log D(G(z))`` = softplus(-a), minimax ``log(1 - D)`` =
    -softplus(a); the critic losses (wgan-gp, hinge): ``-mean D(G(z))``."""
    if loss in _toy.CRITIC_LOSSES:
        return -ops.mean(fake_logits, axis=(1, 2))
    if loss == "non_saturating":
        return ops.mean(ops.softplus(-fake_logits), axis=(1, 2))
    return -ops.mean(ops.softplus(fake_logits), axis=(1, 2))


def gradient_penalty(D, real, fake, eps, weight: float = 10.0):
    """Per model: ``weight * mean((||grad_x D(x_hat)||_2 - 1)^2)`` with ``x_hat = eps real + (1 -
    eps) fake`` (WGAN-GP, Gulrajani et al. 2017, Algorithm 1); the norm is ``sqrt(sum g^2 +
    1e-12)``. An inner tape: call it under the tape of D's update, which differentiates it."""
    x_hat = eps * real + (1 - eps) * tf.stop_gradient(fake)
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        out = ops.sum(D(x_hat))
    grad = inner.gradient(out, x_hat)
    norm = ops.sqrt(ops.sum(grad ** 2, axis=-1) + 1e-12)
    return weight * ops.mean((norm - 1) ** 2, axis=1)


def _d_total(cfg, D, real, fake, t_real, t_fake, eps):
    """D's loss per model (with WGAN-GP's penalty) and D's logits on ``fake``."""
    a_real, a_fake = D(real), D(fake)
    l_d = d_loss(a_real, a_fake, t_real, t_fake, cfg.loss)
    if cfg.loss == "wgan-gp":
        l_d = l_d + gradient_penalty(D, real, fake, eps, cfg.gp_weight)
    return l_d, a_fake


def _chunk_fn(cfg, G, D, opt_g, opt_d):
    """A ``tf.function`` that runs the steps of one chunk of inputs and returns their losses."""

    def simultaneous(real, z, t_real, t_fake, eps):
        # the TensorFlow tutorial's step: two tapes over one forward pass, then both updates
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = G(z, training=True)
            l_d, a = _d_total(cfg, D, real, fake, t_real, t_fake, eps)
            l_g = g_loss(a, cfg.loss)
            total_d, total_g = tf.reduce_sum(l_d), tf.reduce_sum(l_g)
        grads_g = g_tape.gradient(total_g, G.trainable_variables)
        grads_d = d_tape.gradient(total_d, D.trainable_variables)
        opt_d.apply_gradients(zip(grads_d, D.trainable_variables, strict=False))
        opt_g.apply_gradients(zip(grads_g, G.trainable_variables, strict=False))
        return l_d, l_g, a

    @tf.function(reduce_retracing=True)
    def run(real, z_d, t_real, t_fake, z_g, eps):
        n = tf.shape(z_g)[0]
        ta_d = tf.TensorArray(tf.float32, size=n)
        ta_g = tf.TensorArray(tf.float32, size=n)
        ta_f = tf.TensorArray(tf.float32, size=n)
        for i in tf.range(n):
            if cfg.update == "simultaneous":
                ld, l_g, a = simultaneous(real[i, 0], z_d[i, 0], t_real[i, 0], t_fake[i, 0],
                                          eps[i, 0])
            else:
                ld = tf.zeros(tf.shape(z_g)[1])
                for k in range(cfg.d_steps):
                    fake = G(z_d[i, k], training=True)
                    with tf.GradientTape() as tape:
                        l_d, _ = _d_total(cfg, D, real[i, k], fake, t_real[i, k], t_fake[i, k],
                                          eps[i, k])
                        total = tf.reduce_sum(l_d)
                    grads = tape.gradient(total, D.trainable_variables)
                    opt_d.apply_gradients(zip(grads, D.trainable_variables, strict=False))
                    ld += l_d
                with tf.GradientTape() as tape:
                    a = D(G(z_g[i], training=True))
                    l_g = g_loss(a, cfg.loss)
                    total = tf.reduce_sum(l_g)
                grads = tape.gradient(total, G.trainable_variables)
                opt_g.apply_gradients(zip(grads, G.trainable_variables, strict=False))
            ta_d = ta_d.write(i, ld / cfg.d_steps)
            ta_g = ta_g.write(i, l_g)
            ta_f = ta_f.write(i, ops.mean(ops.sigmoid(a), axis=(1, 2)))
        return ta_d.stack(), ta_g.stack(), ta_f.stack()

    return run


def _inputs(streams, n):
    """The next ``n`` steps of every seed's stream, seeds stacked after the step axis."""
    parts = [s.take(n) for s in streams]
    return {k: tf.constant(np.stack([p[k] for p in parts], axis=-3 if k != "z_g" else 1))
            for k in parts[0]}


def train_toys(mixture: str, steps: int, seeds, loss: str = "non_saturating",
               **options) -> list[_toy.ToyRun]:
    """Train one toy GAN per seed, all at once (an ensemble); returns one ``ToyRun`` per seed.

    Options as :class:`~dcgan_lab.toy.ToyConfig`. Each run holds G's points and D's surface at
    every step of ``snapshot_steps`` (the last step always) and its per-step losses; ``seconds``
    is the ensemble's wall time (tracing included) divided by the number of seeds. Deterministic
    given the seeds on one machine (Keras' RNG serves only G's dropout, seeded from the first).
    """
    seeds = [int(s) for s in seeds]
    cfgs = [_toy.make_config(mixture, steps, s, loss, **options) for s in seeds]
    cfg, S = cfgs[0], len(seeds)
    t0 = time.perf_counter()
    keras.utils.set_random_seed(cfg.seed)
    G, D = build(cfg, seeds)
    opt_g = (keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=1e-7)
             if cfg.g_optimizer == "adam" else keras.optimizers.SGD(cfg.lr_g))
    opt_d = (keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=1e-7)
             if cfg.d_optimizer == "adam" else keras.optimizers.SGD(cfg.lr_d))
    opt_g.build(G.trainable_variables)
    opt_d.build(D.trainable_variables)
    run = _chunk_fn(cfg, G, D, opt_g, opt_d)
    streams = [_toy.step_stream(c) for c in cfgs]
    z_eval = np.stack([_toy.eval_noise(c) for c in cfgs])
    grid = np.broadcast_to(_toy.surface_points(cfg), (S, cfg.surface_size ** 2, 2)).copy()
    losses = np.zeros((cfg.steps, S, 3), np.float32)
    pts, surfs, done = [], [], 0
    for target in cfg.snapshot_steps:
        if target > done:
            x = _inputs(streams, target - done)
            out = run(x["real"], x["z_d"], x["t_real"], x["t_fake"], x["z_g"], x["eps"])
            losses[done:target] = np.stack([np.asarray(o) for o in out], axis=-1)
            done = target
        pts.append(np.asarray(G(z_eval, training=False)))
        logits = np.asarray(D(grid, training=False))
        surfs.append((1 / (1 + np.exp(-logits))).reshape(S, cfg.surface_size, cfg.surface_size))
    seconds = (time.perf_counter() - t0) / S
    return _toy.ensemble_runs(cfgs, "keras", pts, surfs, losses, seconds, {"G": G, "D": D})


def train_toy(mixture: str, steps: int, seed: int, loss: str = "non_saturating",
              **options) -> _toy.ToyRun:
    """Train one toy GAN (see :func:`train_toys`); returns its :class:`~dcgan_lab.toy.ToyRun`."""
    return train_toys(mixture, steps, [seed], loss, **options)[0]
