"""One Keras training step, in both styles of the Keras sources; read it top to bottom.

**train_step** (keras.io DCGAN example): :class:`GAN`, a ``keras.Model`` whose ``train_step``
runs D's and G's updates under ``tf.GradientTape``, compiled with two optimisers; it trains with
plain ``gan.fit(dataset, callbacks=[GANMonitor(...), ...])`` too.

**Stacked** (GANs in Action, Keras-GAN, Bernico): :class:`StackedGAN`: D is compiled on its own;
a ``combined`` model ``z -> G -> D`` with D frozen is compiled with its own Adam; each step calls
``D.train_on_batch`` on a real and a fake batch (or one half-and-half batch) and then
``combined.train_on_batch(z, ones)``.

:func:`make_trainer` picks one by ``cfg.keras_style``; :func:`train_step` runs one generator step
of either on the stateless inputs of :mod:`dcgan_lab.run.streams` (the same real batches, ``z``
and targets as the PyTorch twin's ``train_step``). The loop around it is
:mod:`dcgan_lab.keras.backend`.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from ..run import config, streams  # noqa: E402

__all__ = ["GAN", "StackedGAN", "make_trainer", "step_inputs", "train_step", "gradient_penalty",
           "critic_losses"]

# --------------------------------------------------------------------------------------------
# losses


def _bce(target, output, from_logits: bool):
    """Mean binary cross-entropy; ``output`` is a probability or (``from_logits``) a logit.

    Always in float32 (a no-op unless the models compute in mixed precision)."""
    output = ops.cast(output, "float32")
    return ops.mean(keras.losses.binary_crossentropy(target, output, from_logits=from_logits))


def _prob(output, from_logits: bool):
    """D's output as P(real), in float32."""
    output = ops.cast(output, "float32")
    return ops.sigmoid(output) if from_logits else output


def _g_loss(output, from_logits: bool, g_loss: str):
    if g_loss == "non_saturating":
        return _bce(ops.ones_like(output), output, from_logits)  # -log D(G(z))
    return -_bce(ops.zeros_like(output), output, from_logits)  # log(1 - D(G(z))): saturates


def critic_losses(objective: str, out_real, out_fake):
    """D's two loss terms on its scores: ``"wgan-gp"``: ``-mean D(x)``, ``mean D(G(z))``;
    ``"hinge"``: ``mean relu(1 - D(x))``, ``mean relu(1 + D(G(z)))`` (float32)."""
    out_real, out_fake = ops.cast(out_real, "float32"), ops.cast(out_fake, "float32")
    if objective == "wgan-gp":
        return -ops.mean(out_real), ops.mean(out_fake)
    return ops.mean(ops.relu(1 - out_real)), ops.mean(ops.relu(1 + out_fake))


def gradient_penalty(D, real, fake, eps, weight: float = config.GP_WEIGHT):
    """WGAN-GP's penalty (Gulrajani et al. 2017, Algorithm 1): ``weight`` times the mean over
    images of ``(||grad_x D(x_hat)||_2 - 1)^2`` at ``x_hat = eps x + (1 - eps) G(z)`` (``eps``
    (n, 1, 1, 1); the first ``min(len(real), len(fake))`` pairs); the norm is ``sqrt(sum g^2 +
    1e-12)``. An inner tape: call it under the tape of D's update, which differentiates it."""
    k = ops.minimum(ops.shape(real)[0], ops.shape(fake)[0])
    real = ops.cast(real[:k], "float32")
    fake = tf.stop_gradient(ops.cast(fake[:k], "float32"))
    x_hat = eps[:k] * real + (1 - eps[:k]) * fake
    with tf.GradientTape() as inner:
        inner.watch(x_hat)
        score = ops.sum(ops.cast(D(x_hat, training=True), "float32"))
    grad = inner.gradient(score, x_hat)
    norm = ops.sqrt(ops.sum(ops.reshape(grad, (ops.shape(grad)[0], -1)) ** 2, axis=1) + 1e-12)
    return weight * ops.mean((norm - 1) ** 2)


def _adam(lr: float, beta1: float, beta2: float) -> keras.optimizers.Adam:
    return keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)


# --------------------------------------------------------------------------------------------
# style (b): Model.train_step


class GAN(keras.Model):
    """A GAN as one ``keras.Model`` whose ``train_step`` updates D, then G (keras.io DCGAN style).

    ``gan.compile(d_optimizer=..., g_optimizer=...)`` then either ``gan.fit(dataset)`` on batches
    of real images in [-1, 1] (``z`` and the targets are then drawn inside ``train_step`` from
    ``self.seed_generator``), or -- as :func:`train` does -- call ``train_step`` with a dict of
    the step's inputs (see :func:`step_inputs`) so that every random draw comes from outside.

    Each call runs ``rounds_per_step`` rounds of (``d_steps`` D updates, one G update); D's loss is
    the sum of its BCE on the real and on the fake batch (``d_batches="separate"``: two forward
    passes, so BatchNorm sees all-real and all-fake batches) or is computed on one concatenated
    batch (``"concat"``). ``loss="logits"`` means D returns logits.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *,
                 loss: str = "bce", g_loss: str = "non_saturating", d_batches: str = "separate",
                 d_steps: int = 1, rounds_per_step: int = 1, label_smoothing: float = 0.0,
                 real_label_range: tuple[float, float] | None = None,
                 fake_label_range: tuple[float, float] | None = None, flip_prob: float = 0.0,
                 seed: int | None = None, objective: str = "gan", update: str = "alternating",
                 **kwargs):
        super().__init__(**kwargs)
        config.check_choice("objective", objective, config.OBJECTIVES)
        config.check_choice("update", update, config.UPDATES)
        self.objective, self.update = objective, update
        self.critic = objective != "gan"
        if loss not in ("bce", "logits"):
            raise ValueError(f"loss={loss!r}: choose bce (D ends in a sigmoid) or logits")
        config.check_choice("g_loss", g_loss, config.G_LOSSES)  # built without resolve()
        config.check_choice("d_batches", d_batches, config.D_BATCHES)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.input_shape[-1])
        self.from_logits = loss == "logits"
        self.g_loss_name = g_loss
        self.d_batches = d_batches
        self.d_steps = int(d_steps)
        self.rounds_per_step = int(rounds_per_step)
        self.label_smoothing = float(label_smoothing)
        self.real_label_range = real_label_range
        self.fake_label_range = fake_label_range
        self.flip_prob = float(flip_prob)
        # Draws z and label noise when fit() feeds only real images.
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._step_fn = None
        self.jit_compile = False  # XLA for train_batch's traced step (Speed.jit_compile)
        # Replicas the gradients are summed over (tf.distribute sums them): each replica's loss
        # is divided by it so that the sum is the mean over the global batch.
        self.replicas = 1

    @classmethod
    def from_config_of(cls, cfg: config.Config, generator, discriminator) -> GAN:
        """A compiled :class:`GAN` with the losses, label options and Adams of ``cfg``."""
        gan = cls(generator, discriminator, loss=cfg.loss, g_loss=cfg.g_loss,
                  d_batches=cfg.d_batches, d_steps=cfg.d_steps,
                  rounds_per_step=cfg.rounds_per_step, label_smoothing=cfg.label_smoothing,
                  real_label_range=cfg.real_label_range, fake_label_range=cfg.fake_label_range,
                  flip_prob=cfg.flip_prob, seed=cfg.seed, objective=cfg.objective,
                  update=cfg.update)
        gan.compile(d_optimizer=_adam(cfg.lr_d, cfg.beta1, cfg.beta2),
                    g_optimizer=_adam(cfg.lr_g, cfg.beta1, cfg.beta2))
        return gan

    def call(self, z, training=False):
        """``gan(z)`` is the generator's output."""
        return self.generator(z, training=training)

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        # Create the optimiser slots now (not at the first step) so a checkpoint can be restored
        # into them before training starts.
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)

    # -- the update, shared by both input kinds -------------------------------------------------
    def _d_update(self, real, z, t_real, t_fake, eps=None):
        G, D = self.generator, self.discriminator
        fake = G(z, training=True)  # outside the tape: D's update needs no gradient through G
        if self.critic or self.update == "simultaneous":
            return self._variant_update(real, fake, t_real, t_fake, eps)
        with tf.GradientTape() as tape:
            out_real, out_fake = self._d_outputs(real, fake)
            loss_real = _bce(t_real, out_real, self.from_logits)
            loss_fake = _bce(t_fake, out_fake, self.from_logits)
            if self.d_batches == "separate":
                loss = loss_real + loss_fake
            else:  # the mean over the mixed batch, as one Keras loss on it would be
                loss = _bce(ops.concatenate([t_real, t_fake], axis=0),
                            ops.concatenate([out_real, out_fake], axis=0), self.from_logits)
            per_replica = loss / self.replicas if self.replicas > 1 else loss
        grads = tape.gradient(per_replica, D.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, D.trainable_weights, strict=True))
        return {"loss_d": loss_real + loss_fake, "loss_d_real": loss_real,
                "loss_d_fake": loss_fake,
                "d_real": ops.mean(_prob(out_real, self.from_logits)),
                "d_fake": ops.mean(_prob(out_fake, self.from_logits))}

    def _d_outputs(self, real, fake):
        """D's outputs on the real and the fake batch: two passes (separate batches, as ganhacks
        #4 asks) or one pass over both concatenated; call under a tape."""
        D = self.discriminator
        if self.d_batches == "separate":
            return D(real, training=True), D(fake, training=True)
        n_real = ops.shape(real)[0]
        out = D(ops.concatenate([real, fake], axis=0), training=True)
        return out[:n_real], out[n_real:]

    def _g_update(self, z):
        G, D = self.generator, self.discriminator
        with tf.GradientTape() as tape:
            out = D(G(z, training=True), training=True)
            loss = self._g_term(out)
            per_replica = loss / self.replicas if self.replicas > 1 else loss
        grads = tape.gradient(per_replica, G.trainable_weights)  # only G's weights move
        self.g_optimizer.apply_gradients(zip(grads, G.trainable_weights, strict=True))
        return loss

    # -- beyond the tutorials: a critic objective, and simultaneous updates -----------------------
    def _g_term(self, out):
        if self.critic:
            return -ops.mean(ops.cast(out, "float32"))  # -mean D(G(z))
        return _g_loss(out, self.from_logits, self.g_loss_name)

    def _d_terms(self, real, fake, t_real, t_fake, eps):
        """D's loss (with WGAN-GP's penalty), its two terms and its outputs; call under a tape."""
        D = self.discriminator
        out_real, out_fake = self._d_outputs(real, fake)
        if self.critic:
            l_real, l_fake = critic_losses(self.objective, out_real, out_fake)
        else:
            l_real = _bce(t_real, out_real, self.from_logits)
            l_fake = _bce(t_fake, out_fake, self.from_logits)
        loss = l_real + l_fake
        if self.objective == "wgan-gp":
            loss = loss + gradient_penalty(D, real, fake, eps)
        return loss, l_real, l_fake, out_real, out_fake

    def _step_metrics(self, loss, l_real, l_fake, out_real, out_fake):
        if self.critic:  # a critic's mean scores
            d_real = ops.mean(ops.cast(out_real, "float32"))
            d_fake = ops.mean(ops.cast(out_fake, "float32"))
        else:
            d_real = ops.mean(_prob(out_real, self.from_logits))
            d_fake = ops.mean(_prob(out_fake, self.from_logits))
        return {"loss_d": loss, "loss_d_real": l_real, "loss_d_fake": l_fake,
                "d_real": d_real, "d_fake": d_fake}

    def _variant_update(self, real, fake, t_real, t_fake, eps):
        """D's update for a critic objective (alternating; ``fake`` computed outside the tape)."""
        D = self.discriminator
        with tf.GradientTape() as tape:
            terms = self._d_terms(real, fake, t_real, t_fake, eps)
            per_replica = terms[0] / self.replicas if self.replicas > 1 else terms[0]
        grads = tape.gradient(per_replica, D.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, D.trainable_weights, strict=True))
        return self._step_metrics(*terms)

    def _simultaneous_update(self, real, z, t_real, t_fake, eps=None):
        """The TensorFlow DCGAN tutorial's step: two tapes over one forward pass (``G(z)``,
        ``D(x)``, ``D(G(z))``), both gradients from it, then both optimisers."""
        G, D = self.generator, self.discriminator
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = G(z, training=True)
            terms = self._d_terms(real, fake, t_real, t_fake, eps)
            loss_g = self._g_term(terms[4])
            scale = 1.0 / self.replicas if self.replicas > 1 else 1.0
            loss_d_rep, loss_g_rep = terms[0] * scale, loss_g * scale
        grads_g = g_tape.gradient(loss_g_rep, G.trainable_weights)
        grads_d = d_tape.gradient(loss_d_rep, D.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads_d, D.trainable_weights, strict=True))
        self.g_optimizer.apply_gradients(zip(grads_g, G.trainable_weights, strict=True))
        m = self._step_metrics(*terms)
        m["loss_g"] = loss_g
        return m

    def _targets(self, n: int):
        """D's targets for ``fit()``: one-sided smoothing, soft ranges, flips (as d_targets)."""
        def draw(rng_range, default):
            if rng_range is None:
                return ops.full((n, 1), default, dtype="float32")
            return keras.random.uniform((n, 1), rng_range[0], rng_range[1],
                                        seed=self.seed_generator)

        t_real = draw(self.real_label_range, 1.0 - self.label_smoothing)
        t_fake = draw(self.fake_label_range, 0.0)
        if self.flip_prob > 0:
            flip = keras.random.uniform((n, 1), seed=self.seed_generator) < self.flip_prob
            t_real = ops.where(flip, 1.0 - t_real, t_real)
            flip = keras.random.uniform((n, 1), seed=self.seed_generator) < self.flip_prob
            t_fake = ops.where(flip, 1.0 - t_fake, t_fake)
        return t_real, t_fake

    def _eps(self, n):
        """WGAN-GP's interpolation weights for ``fit()`` (None unless the objective needs them)."""
        if self.objective != "wgan-gp":
            return None
        return keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator)

    def train_step(self, data):
        """One generator step: ``rounds_per_step`` x (``d_steps`` D updates, one G update).

        ``data`` is a batch of real images (``fit``) or the dict of :func:`step_inputs`:
        ``real`` (U, n_real, H, W, C), ``z_d`` (U, n_fake, latent), ``t_real``/``t_fake``
        (U, n, 1) and ``z_g`` (rounds, batch, latent) with U = rounds * d_steps.
        """
        if isinstance(data, tuple):  # fit() may hand over (x,) or (x, y)
            data = data[0]
        explicit = isinstance(data, dict)
        if not explicit:
            n = ops.shape(data)[0]
        for r in range(self.rounds_per_step):
            if self.update == "simultaneous":
                u = r * self.d_steps
                if explicit:
                    m = self._simultaneous_update(data["real"][u], data["z_d"][u],
                                                  data["t_real"][u], data["t_fake"][u],
                                                  data["eps"][u] if "eps" in data else None)
                else:
                    z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
                    m = self._simultaneous_update(data, z, *self._targets(n), self._eps(n))
                continue
            for j in range(self.d_steps):
                u = r * self.d_steps + j
                if explicit:
                    m = self._d_update(data["real"][u], data["z_d"][u], data["t_real"][u],
                                       data["t_fake"][u], data["eps"][u] if "eps" in data else None)
                else:
                    z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
                    m = self._d_update(data, z, *self._targets(n), self._eps(n))
            if explicit:
                z_g = data["z_g"][r]
            else:
                z_g = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
            m["loss_g"] = self._g_update(z_g)
        return m  # the last D update's and G update's values, as in the PyTorch twin

    # -- driven by the stateless streams --------------------------------------------------------
    def train_batch(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        """Run :meth:`train_step` on the numpy arrays of :func:`step_inputs` (graph mode)."""
        if self._step_fn is None:
            # autograph=False: train_step's loops are plain Python, unrolled when traced.
            self._step_fn = tf.function(self.train_step, autograph=False,
                                        jit_compile=self.jit_compile)
        out = self._step_fn({k: tf.convert_to_tensor(v) for k, v in inputs.items()})
        return {k: float(v) for k, v in out.items()}

    def state_groups(self) -> dict[str, list]:
        """Every variable a resume needs, by group (see :func:`save_checkpoint`)."""
        return {"generator": self.generator.variables,
                "discriminator": self.discriminator.variables,
                "opt_g": self.g_optimizer.variables, "opt_d": self.d_optimizer.variables,
                "rng": [self.seed_generator.state]}


# --------------------------------------------------------------------------------------------
# style (a): stacked models and train_on_batch


def _named(name: str, fn):
    fn.__name__ = name
    return fn


class StackedGAN:
    """The GANs-in-Action / Keras-GAN way: a compiled D and a compiled ``combined = D(G(z))``.

    The trainable-freeze subtlety, measured with Keras 3.x on TensorFlow: the sources compile D,
    set ``D.trainable = False``, build and compile ``combined``, and rely on Keras 2's rule that a
    model's trainable weights are frozen into it *at compile time*, so that D keeps training
    through ``D.train_on_batch``. Keras 3 documents the same rule ("trainable variables are
    determined at compile() time"), but its TensorFlow trainer reads ``model.trainable_weights``
    when the train function is first *traced* -- the first ``train_on_batch``. Run the source's
    code verbatim and D's first ``train_on_batch`` is traced while D is frozen: Keras warns "The
    model does not have any trainable weights" and D never learns. So we set ``D.trainable``
    explicitly before each call (True for D's update, False for the combined model's), and each
    traced function keeps the variable list it was traced with. A second effect of the flag:
    Keras 3 runs a frozen ``BatchNormalization`` in inference mode, so inside ``combined`` D's
    stock BatchNorm layers use their moving statistics. This is NOT what the sources got: under
    TF 1.x Keras a frozen BatchNorm still normalised with the batch's statistics. With stock
    BatchNorm in D (gia-dcgan-mnist, bernico-*), G is therefore trained against a different
    function from the D that ``D.train_on_batch`` trains, and D wins outright (chapter 3 measures
    the gap). :func:`train` therefore builds D with
    :class:`~dcgan_lab.keras.models.TF1BatchNormalization` (``build(..., tf1_batchnorm=True)``):
    frozen inside ``combined`` it normalises with batch statistics and leaves its weights and
    moving statistics alone, so G's update sees exactly the D of ``D.train_on_batch``. A D built
    with stock BatchNorm (``build(name)``) reproduces the Keras 3 trap.

    Fakes for D come from G in training mode (``fakes="training"``, the default): BatchNorm in G
    normalises them with batch statistics, as it does the images ``combined`` trains G on, and as
    the PyTorch twin and the ``train_step`` style make them. The sources call ``G.predict``
    (``fakes="predict"``: inference mode, G's moving statistics). Measured on gia-dcgan-mnist
    (lr 1e-3, TF1BatchNormalization in D): while Adam moves G's weights faster than G's moving averages (momentum 0.99)
    follow, G's inference-mode images differ from its training-mode ones (mean |difference|
    about 0.4 in [-1, 1] after 100 steps); D learns to reject the first while G learns to pass
    with the second, and both losses fall to 0 (D(G(z)) 0.001 at the cpu budget).

    ``g_loss="minimax"`` cannot be expressed: ``combined.train_on_batch(z, targets)`` minimises
    BCE against targets, and log(1 - D(G(z))) is minus a BCE -- use the train_step style.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, *, loss: str = "bce",
                 lr_d: float = 2e-4, lr_g: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999,
                 d_batches: str = "separate", n_real: int | None = None, d_steps: int = 1,
                 rounds_per_step: int = 1, g_loss: str = "non_saturating",
                 jit_compile: bool = False, fakes: str = "training"):
        if fakes not in ("training", "predict"):
            raise ValueError(f"fakes={fakes!r}: choose training (G in training mode) or predict "
                             f"(G.predict_on_batch, inference mode)")
        if g_loss != "non_saturating":
            raise ValueError(f"g_loss={g_loss!r} is not available with keras_style='stacked': "
                             "combined.train_on_batch(z, ones) can only minimise BCE against "
                             "targets, and the minimax loss log(1 - D(G(z))) is minus one. Use "
                             "TrainOptions(keras_style='train_step', g_loss='minimax') or "
                             "g_loss='non_saturating'")
        if d_batches == "concat" and n_real is None:
            raise ValueError("d_batches='concat' needs n_real (real images per D batch)")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = int(generator.input_shape[-1])
        self.from_logits = loss == "logits"
        self.d_batches = d_batches
        self.d_steps, self.rounds_per_step = int(d_steps), int(rounds_per_step)
        G, D, logits = generator, discriminator, self.from_logits
        self.fakes = fakes
        # G(z) in training mode as one traced function (it updates G's moving statistics, as
        # combined's G update does); "predict" uses G.predict_on_batch instead.
        self._fake_fn = tf.function(lambda z: G(z, training=True), autograph=False,
                                    jit_compile=jit_compile)

        # D reports, besides its loss, P(real) averaged over the batch (and, on a concatenated
        # batch, the loss and P(real) of its real and fake halves).
        if d_batches == "separate":
            metrics = [_named("prob", lambda y, p: ops.mean(_prob(p, logits)))]
        else:
            n = int(n_real)
            metrics = [
                _named("loss_real", lambda y, p: _bce(y[:n], p[:n], logits)),
                _named("loss_fake", lambda y, p: _bce(y[n:], p[n:], logits)),
                _named("prob_real", lambda y, p: ops.mean(_prob(p[:n], logits))),
                _named("prob_fake", lambda y, p: ops.mean(_prob(p[n:], logits))),
            ]
        D.trainable = True
        D.compile(optimizer=_adam(lr_d, beta1, beta2),
                  loss=keras.losses.BinaryCrossentropy(from_logits=logits), metrics=metrics,
                  jit_compile=jit_compile)
        D.optimizer.build(D.trainable_variables)  # slots exist before a checkpoint is restored

        D.trainable = False  # freeze D inside the combined model (see the class docstring)
        z = keras.Input((self.latent_dim,), name="z")
        self.combined = keras.Model(z, D(G(z)), name="combined")
        self.combined.compile(optimizer=_adam(lr_g, beta1, beta2),
                              loss=keras.losses.BinaryCrossentropy(from_logits=logits),
                              jit_compile=jit_compile)
        self.combined.optimizer.build(self.combined.trainable_variables)  # = G's weights
        D.trainable = True

    @classmethod
    def from_config_of(cls, cfg: config.Config, generator, discriminator,
                       jit_compile: bool = False) -> StackedGAN:
        return cls(generator, discriminator, loss=cfg.loss, lr_d=cfg.lr_d, lr_g=cfg.lr_g,
                   beta1=cfg.beta1, beta2=cfg.beta2, d_batches=cfg.d_batches,
                   n_real=streams.d_batch_sizes(cfg)[0], d_steps=cfg.d_steps,
                   rounds_per_step=cfg.rounds_per_step, g_loss=cfg.g_loss,
                   jit_compile=jit_compile)

    def make_fakes(self, z) -> np.ndarray:
        """D's fake batch: ``G(z)`` in training mode, or ``G.predict_on_batch(z)`` (``fakes``)."""
        if self.fakes == "predict":
            return self.generator.predict_on_batch(z)
        return self._fake_fn(tf.convert_to_tensor(z, tf.float32)).numpy()

    def train_d(self, real, fake, t_real, t_fake) -> dict[str, float]:
        """D's update(s): two ``train_on_batch`` calls (real, then fake), or one on both."""
        D = self.discriminator
        D.trainable = True
        if self.d_batches == "separate":
            r = D.train_on_batch(real, t_real, return_dict=True)
            f = D.train_on_batch(fake, t_fake, return_dict=True)
            m = {"loss_d_real": r["loss"], "loss_d_fake": f["loss"],
                 "d_real": r["prob"], "d_fake": f["prob"]}
        else:
            b = D.train_on_batch(np.concatenate([real, fake]), np.concatenate([t_real, t_fake]),
                                 return_dict=True)
            m = {"loss_d_real": b["loss_real"], "loss_d_fake": b["loss_fake"],
                 "d_real": b["prob_real"], "d_fake": b["prob_fake"]}
        m["loss_d"] = m["loss_d_real"] + m["loss_d_fake"]
        return m

    def train_g(self, z) -> float:
        """G's update: the combined model with D frozen, trained to call G's images real."""
        self.discriminator.trainable = False
        loss = self.combined.train_on_batch(z, np.ones((len(z), 1), np.float32))
        self.discriminator.trainable = True
        return float(loss)

    def train_batch(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        """One generator step from the arrays of :func:`step_inputs`."""
        for r in range(self.rounds_per_step):
            for j in range(self.d_steps):
                u = r * self.d_steps + j
                fake = np.asarray(self.make_fakes(inputs["z_d"][u]), np.float32)
                m = self.train_d(inputs["real"][u], fake, inputs["t_real"][u],
                                 inputs["t_fake"][u])
            m["loss_g"] = self.train_g(inputs["z_g"][r])
        return {k: float(v) for k, v in m.items()}

    def state_groups(self) -> dict[str, list]:
        D = self.discriminator
        trainable = D.trainable
        D.trainable = True  # D.variables lists everything either way; keep the order stable
        groups = {"generator": self.generator.variables, "discriminator": D.variables,
                  "opt_g": self.combined.optimizer.variables,
                  "opt_d": D.optimizer.variables, "rng": []}
        D.trainable = trainable
        return groups


def make_trainer(cfg: config.Config, generator, discriminator, *,
                 jit_compile: bool = False) -> GAN | StackedGAN:
    """The compiled trainer of ``cfg.keras_style``: :class:`StackedGAN` or :class:`GAN`.

    ``jit_compile``: compile the train step(s) with XLA (:attr:`dcgan_lab.speed.Speed.jit_compile`).
    """
    if cfg.keras_style == "stacked":
        trainer = StackedGAN.from_config_of(cfg, generator, discriminator, jit_compile)
    else:
        trainer = GAN.from_config_of(cfg, generator, discriminator)
        trainer.jit_compile = bool(jit_compile)
    return trainer


# --------------------------------------------------------------------------------------------
# one training step from the stateless streams


def step_inputs(step: int, images: np.ndarray, cfg: config.Config) -> dict[str, np.ndarray]:
    """:func:`dcgan_lab.run.streams.step_inputs` of ``step``: NHWC NumPy arrays, as Keras takes them
    (the PyTorch twin makes NCHW tensors of the same draws)."""
    return streams.step_inputs(step, images, cfg)


def train_step(step: int, trainer: GAN | StackedGAN, images: np.ndarray,
               cfg: config.Config, inputs: dict[str, np.ndarray] | None = None
               ) -> dict[str, float]:
    """One generator step of ``trainer`` on the stateless inputs of ``step``; returns the metrics.

    ``inputs``: :func:`step_inputs` of ``step`` if already drawn (by :func:`step_loader`).
    ``loss_d`` is ``loss_d_real + loss_d_fake``; ``d_real``/``d_fake`` are the mean P(real) D
    gave the real and the fake batch of the last D update (as in the PyTorch twin).
    """
    return trainer.train_batch(step_inputs(step, images, cfg) if inputs is None else inputs)
