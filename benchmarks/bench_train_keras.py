"""Keras training speed: dcgan_lab's train step vs a plain keras.io-style reference loop.

Both run the same networks (``dcgan_lab.keras.build(recipe)``), batch size and Adam settings on
the same device. "ours" is :func:`dcgan_lab.keras.train.train_step` (the stateless NumPy streams
for rows, ``z`` and targets, then the traced ``GAN.train_step`` or the stacked
``train_on_batch`` calls); "reference" is the loop a reader would write from the keras.io DCGAN
example: a ``tf.function`` train step that draws ``z`` on the device, fed from a ``tf.data``
pipeline. The ratio ours/reference shows what exact resumability costs.

    python benchmarks/bench_train_keras.py --recipe torch-mnist --steps 50 --batch 64
    python benchmarks/bench_train_keras.py --recipe dense-mnist --style stacked

Not run by pytest. Keep --steps small on a shared CPU.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dcgan_lab import data, training  # noqa: E402
from dcgan_lab.keras.models import build  # noqa: E402

T = importlib.import_module("dcgan_lab.keras.train")


def reference_train_step(cfg: training.Config, G: keras.Model, D: keras.Model):
    """A plain keras.io-style step: z drawn in the graph, D on real + fake, then G."""
    from_logits = cfg.loss == "logits"
    bce = keras.losses.BinaryCrossentropy(from_logits=from_logits)
    opt_d = keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta1, beta_2=cfg.beta2)
    opt_g = keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta1, beta_2=cfg.beta2)
    latent = cfg.recipe_obj.latent_dim

    @tf.function
    def step(real):
        n = tf.shape(real)[0]
        z = tf.random.normal((n, latent))
        fake = G(z, training=True)
        with tf.GradientTape() as tape:
            out_real, out_fake = D(real, training=True), D(fake, training=True)
            loss_d = bce(tf.ones_like(out_real), out_real) + bce(tf.zeros_like(out_fake), out_fake)
        grads = tape.gradient(loss_d, D.trainable_weights)
        opt_d.apply_gradients(zip(grads, D.trainable_weights, strict=True))
        z = tf.random.normal((n, latent))
        with tf.GradientTape() as tape:
            out = D(G(z, training=True), training=True)
            loss_g = bce(tf.ones_like(out), out)
        grads = tape.gradient(loss_g, G.trainable_weights)
        opt_g.apply_gradients(zip(grads, G.trainable_weights, strict=True))
        return loss_d, loss_g

    return step


def reference_stacked(cfg: training.Config, G: keras.Model, D: keras.Model):
    """The GANs-in-Action loop: D.train_on_batch on real and fake, combined on z."""
    st = T.StackedGAN.from_config_of(cfg, G, D)
    latent = cfg.recipe_obj.latent_dim
    rng = np.random.default_rng(0)

    def step(real):
        n = len(real)
        fake = G.predict_on_batch(rng.standard_normal((n, latent), dtype=np.float32))
        st.train_d(real, fake, np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32))
        st.train_g(rng.standard_normal((n, latent), dtype=np.float32))

    return step


def timed(fn, steps: int, warmup: int) -> float:
    for i in range(warmup):
        fn(i)
    t0 = time.perf_counter()
    for i in range(steps):
        fn(warmup + i)
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="torch-mnist")
    p.add_argument("--style", choices=("stacked", "train_step"), default=None)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--images", type=int, default=2048, help="training images to load")
    args = p.parse_args(argv)

    cfg = training.resolve(args.recipe, "keras", training.TrainOptions(
        batch_size=args.batch, keras_style=args.style))
    x, _ = data.load(cfg.data, "train", verbose=False)
    images = T.load_training_images(cfg, np.ascontiguousarray(x[: args.images]))
    keras.utils.set_random_seed(0)

    G, D = build(cfg.recipe)
    trainer = T.make_trainer(cfg, G, D)
    ours = timed(lambda i: T.train_step(i + 1, trainer, images, cfg), args.steps, args.warmup)

    G, D = build(cfg.recipe)
    ds = iter(tf.data.Dataset.from_tensor_slices(images).repeat().shuffle(len(images))
              .batch(args.batch, drop_remainder=True)
              .map(lambda b: tf.cast(b, tf.float32) / 127.5 - 1).prefetch(2))
    if cfg.keras_style == "stacked":
        ref_step = reference_stacked(cfg, G, D)
        ref = timed(lambda i: ref_step(next(ds).numpy()), args.steps, args.warmup)
    else:
        ref_step = reference_train_step(cfg, G, D)
        ref = timed(lambda i: ref_step(next(ds)), args.steps, args.warmup)

    result = {"recipe": cfg.recipe, "style": cfg.keras_style, "batch": args.batch,
              "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
              "ours_steps_per_s": round(ours, 2), "reference_steps_per_s": round(ref, 2),
              "ratio": round(ours / ref, 3)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
