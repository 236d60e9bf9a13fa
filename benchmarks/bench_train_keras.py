"""Keras training speed: dcgan_lab's train step vs a plain reference loop on the same networks.

* ``ours``: :func:`dcgan_lab.keras.step.train_step`, exactly what ``train`` runs per step minus
  its I/O: the stateless NumPy streams for rows, ``z`` and targets, then the traced
  ``GAN.train_step`` (train_step style) or the stacked ``train_on_batch`` calls (stacked style);
* ``reference``: the loop a reader would write from the sources, inline: for the train_step
  style keras.io's DCGAN ``GAN(keras.Model).train_step`` (:func:`_kerasio_gan`), for the stacked
  style the GANs-in-Action loop (``D.train_on_batch`` on real and on fake, then
  ``combined.train_on_batch``).

``keras_ours``/``keras_reference`` follow the contract of ``benchmarks/bench_train.py``
(``fn(recipe, steps, batch_size, warmup) -> dict`` with ``seconds``), which registers them as its
"keras" framework. TensorFlow is imported inside the functions only. Standalone:

    python benchmarks/bench_train_keras.py --recipe torch-mnist --steps 30 --batch-size 64
    python benchmarks/bench_train_keras.py --recipe dense-mnist --style stacked
    python benchmarks/bench_train_keras.py --recipe dcgan64 --batch-size 64 --op-profile --steps 2

``--op-profile`` lists the kernels each of the train_step pair runs per step (TensorFlow
profiler), ``--threads N`` sets TensorFlow's intra- and inter-op threads. Not run by pytest (its
table and profile readers are tested). Keep --steps small on a shared CPU.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from dcgan_lab import recipes  # noqa: E402
from dcgan_lab.run import config, streams


def _images(recipe: recipes.Recipe, batch_size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images of the recipe's shape (as bench_train.py uses)."""
    h, w, c = recipe.image_shape
    n = max(4 * batch_size, 256)
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _setup(recipe_name: str, batch_size: int, style: str | None = None):
    import keras

    from dcgan_lab.keras.models import build

    cfg = config.resolve(recipe_name, "keras", config.TrainOptions(
        batch_size=batch_size, keras_style=style), profile="smoke")
    keras.utils.set_random_seed(0)
    G, D = build(recipe_name)
    return cfg, G, D


def _result(seconds: float, notes: str) -> dict:
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    out = {"seconds": seconds, "notes": notes, "device": "GPU" if gpu else "CPU"}
    if gpu:
        out["gpu_peak_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return out


def _timed(one_step, steps: int, warmup: int) -> float:
    for i in range(warmup):
        one_step(i)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        one_step(i)
    return time.perf_counter() - t0


#: variant name -> the Speed options it turns on (on top of everything off)
KERAS_VARIANTS = {
    "ours": {},
    "jit_compile": {"jit_compile": True},
    "mixed_bf16": {"mixed_precision": "mixed_bfloat16"},
    "prefetch": {"prefetch": 2},
}


def keras_ours(recipe_name: str, steps: int, batch_size: int, warmup: int,
               style: str | None = None, variant: str = "ours") -> dict:
    """``dcgan_lab.keras.step.train_step`` as ``train`` runs it, minus its I/O.

    ``variant``: ``"ours"`` (every speed option off), ``"default"`` (the measured defaults) or
    one option of :data:`KERAS_VARIANTS`.
    """

    from dcgan_lab import speed as speed_mod
    from dcgan_lab.keras.models import build

    T = importlib.import_module("dcgan_lab.keras.backend")
    if variant == "default":
        fast = speed_mod.resolve(None, "keras", T._device_type())
    else:
        fast = speed_mod.PLAIN.replace(**KERAS_VARIANTS[variant])
    cfg = config.resolve(recipe_name, "keras", config.TrainOptions(
        batch_size=batch_size, keras_style=style, steps=warmup + steps), profile="smoke")
    T._seed(0)  # as train() does (op determinism on)
    with T._dtype_policy(fast.mixed_precision):
        G, D = build(recipe_name)
    trainer = T.make_trainer(cfg, G, D, jit_compile=bool(fast.jit_compile))
    images = _images(cfg.recipe_obj, batch_size)
    batches = iter(T.step_loader(images, cfg, 0, fast))
    losses = []

    def one(i: int) -> None:
        losses.append(T.train_step(i + 1, trainer, images, cfg, inputs=next(batches))["loss_g"])

    t0 = time.perf_counter()
    for i in range(warmup):
        one(i)
    t1 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        one(i)
    seconds = time.perf_counter() - t1
    notes = [fast.describe(), f"{cfg.keras_style} style", "z and rows from NumPy streams"]
    if cfg.half_batch:
        n_real, n_fake = streams.d_batch_sizes(cfg)
        notes.append(f"D sees {n_real} real + {n_fake} fake")
    if cfg.rounds_per_step > 1:
        notes.append(f"{cfg.rounds_per_step} rounds per step")
    out = _result(seconds, "; ".join(notes))
    out.update(warmup_seconds=t1 - t0, loss_g=losses)
    return out


def _reference_batch(images: np.ndarray, batch_size: int, i: int) -> np.ndarray:
    """The data pipeline's batch ``i``, in [-1, 1]."""
    rows = images[(i * batch_size) % (len(images) - batch_size):][:batch_size]
    return rows.astype(np.float32) / 127.5 - 1.0


def keras_reference(recipe_name: str, steps: int, batch_size: int, warmup: int,
                    style: str | None = None) -> dict:
    """The sources' loop, inline, on the same networks (see the module docstring)."""
    import keras
    import tensorflow as tf

    cfg, G, D = _setup(recipe_name, batch_size, style)
    logits = cfg.loss == "logits"
    latent = cfg.recipe_obj.latent_dim
    images = _images(cfg.recipe_obj, batch_size)

    def batch(i: int) -> np.ndarray:  # the data pipeline's batch, in [-1, 1]
        return _reference_batch(images, batch_size, i)

    if cfg.keras_style == "stacked":  # GANs in Action, chapter 3/4
        D.compile(optimizer=keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta1),
                  loss=keras.losses.BinaryCrossentropy(from_logits=logits))
        D.trainable = False
        z_in = keras.Input((latent,))
        combined = keras.Model(z_in, D(G(z_in)))
        combined.compile(optimizer=keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta1),
                         loss=keras.losses.BinaryCrossentropy(from_logits=logits))
        rng = np.random.default_rng(0)
        ones = np.ones((batch_size, 1), np.float32)
        zeros = np.zeros((batch_size, 1), np.float32)

        def one_step(i: int) -> None:
            z = rng.standard_normal((batch_size, latent), dtype=np.float32)
            fake = G.predict_on_batch(z)
            D.trainable = True  # Keras 3 reads the flag when a train function is first traced
            D.train_on_batch(batch(i), ones)
            D.train_on_batch(fake, zeros)
            D.trainable = False
            combined.train_on_batch(rng.standard_normal((batch_size, latent), dtype=np.float32),
                                    ones)

        return _result(_timed(one_step, steps, warmup), "GANs in Action loop (train_on_batch)")

    train_step = _kerasio_gan(cfg, G, D)

    def one_step(i: int) -> None:
        for _ in range(cfg.rounds_per_step):
            train_step(tf.convert_to_tensor(batch(i)))

    return _result(_timed(one_step, steps, warmup), "keras.io DCGAN GAN.train_step")


def _kerasio_gan(cfg, G, D):
    """keras.io's "DCGAN to generate face images" (fchollet, Keras 3 version of 2023-12-21) as it
    writes its ``GAN(keras.Model)``: ``train_step`` draws ``z`` with ``keras.random.normal`` and a
    ``SeedGenerator``, trains D on real and fake images concatenated into one batch with labels
    1/0 plus 0.05 x uniform noise ("important trick"), then G on fresh ``z`` against labels 0
    ("misleading labels") -- sequential updates, driven by ``fit`` (here ``train_on_batch``, the
    same traced train function), at TensorFlow's defaults. keras.io labels real as 0 and fake as
    1; this port keeps that. One change: the sub-models are called with ``training=True``.
    keras.io's networks have no BatchNorm, and inside a custom ``train_step`` Keras 3 runs a
    layer in inference mode unless told otherwise (measured: BatchNormalization's moving mean
    stays 0 after ``train_on_batch``), so these networks' BatchNorm would neither normalise by
    the batch nor train. Returns ``step(real_batch)``."""
    import keras
    from keras import ops

    latent = cfg.recipe_obj.latent_dim

    class GAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator, self.generator = discriminator, generator
            self.latent_dim = latent_dim
            self.seed_generator = keras.random.SeedGenerator(1337)

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

        def train_step(self, real_images):
            import tensorflow as tf

            if isinstance(real_images, tuple):  # train_on_batch passes (x, y, sample_weight)
                real_images = real_images[0]
            batch_size = ops.shape(real_images)[0]
            z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
            generated = self.generator(z, training=True)
            combined = ops.concatenate([generated, real_images], axis=0)
            labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))],
                                     axis=0)
            labels += 0.05 * tf.random.uniform(tf.shape(labels))
            with tf.GradientTape() as tape:
                d_loss = self.loss_fn(labels, self.discriminator(combined, training=True))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights, strict=True))
            z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
            misleading = ops.zeros((batch_size, 1))
            with tf.GradientTape() as tape:
                g_loss = self.loss_fn(misleading, self.discriminator(
                    self.generator(z, training=True), training=True))
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))
            return {"d_loss": d_loss, "g_loss": g_loss}

    gan = GAN(D, G, latent)
    gan.compile(d_optimizer=keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta1),
                g_optimizer=keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta1),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=cfg.loss == "logits"))
    return gan.train_on_batch


def _tf_tutorial_step(cfg, G, D):
    """The TensorFlow DCGAN tutorial's ``train_step`` as it writes it: a free ``tf.function``
    with two tapes over ONE forward pass (G(z), D(real), D(fake)), both gradients taken from it
    and both optimisers applied after: a simultaneous update (it does less work per step than
    the sequential ones: one G forward and no second D pass on fresh z)."""
    import keras
    import tensorflow as tf

    latent = cfg.recipe_obj.latent_dim
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=cfg.loss == "logits")
    generator_optimizer = keras.optimizers.Adam(cfg.lr_g, beta_1=cfg.beta1)
    discriminator_optimizer = keras.optimizers.Adam(cfg.lr_d, beta_1=cfg.beta1)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([tf.shape(images)[0], latent])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = G(noise, training=True)
            real_output = D(images, training=True)
            fake_output = D(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        gradients_of_generator = gen_tape.gradient(gen_loss, G.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, D.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, G.trainable_variables, strict=True))
        discriminator_optimizer.apply_gradients(
            zip(gradients_of_discriminator, D.trainable_variables, strict=True))

    return train_step


#: What ``--ours`` times against the keras.io reference: the package's step with every speed
#: option off, with the fastest CPU options measured, or the TF tutorial's step (context).
OURS = ("plain", "fastest", "tf-tutorial")


def _step_pair(recipe_name: str, batch_size: int, ours: str = "plain") -> dict:
    """``{"ours": fn, "reference": fn}``, ``fn(step)`` one step, on twin networks (same initial
    weights) and the same images. reference = keras.io's ``GAN.train_step`` at TensorFlow's
    defaults; ours = dcgan_lab's ``train_step`` style as ``train`` runs it (``"plain"``: speed
    options off; ``"fastest"``: :data:`dcgan_lab.speed.FASTEST_KERAS_CPU`) or the TF tutorial's
    step."""
    import tensorflow as tf

    from dcgan_lab import speed as speed_mod
    from dcgan_lab.keras.models import build

    if ours not in OURS:
        raise ValueError(f"--ours {ours!r}: choose one of {', '.join(OURS)}")
    T = importlib.import_module("dcgan_lab.keras.backend")
    cfg = config.resolve(recipe_name, "keras", config.TrainOptions(
        batch_size=batch_size, keras_style="train_step", steps=10**9), profile="smoke")
    images = _images(cfg.recipe_obj, batch_size)

    def real(i: int):
        return tf.convert_to_tensor(_reference_batch(images, batch_size, i))

    T._seed(0)
    if ours == "tf-tutorial":
        step = _tf_tutorial_step(cfg, *build(recipe_name))

        def ours_fn(i: int) -> None:
            for _ in range(cfg.rounds_per_step):
                step(real(i))
    else:
        fast = speed_mod.FASTEST_KERAS_CPU if ours == "fastest" else speed_mod.PLAIN
        with T._dtype_policy(fast.mixed_precision):
            G, D = build(recipe_name)
        trainer = T.make_trainer(cfg, G, D, jit_compile=bool(fast.jit_compile))

        def ours_fn(i: int) -> None:
            T.train_step(i, trainer, images, cfg)

    import keras

    keras.utils.set_random_seed(0)
    kerasio = _kerasio_gan(cfg, *build(recipe_name))

    def reference(i: int) -> None:
        for _ in range(cfg.rounds_per_step):
            kerasio(real(i))

    return {"ours": ours_fn, "reference": reference}


def keras_alternating(recipe_name: str, batch_size: int, blocks: int, block_steps: int,
                      warmup: int = 2, ours: str = "plain") -> dict:
    """``ours`` (see :func:`_step_pair`) and keras.io's ``train_step`` in ONE process on twin
    networks, in alternating blocks of ``block_steps`` steps, so both see the same machine
    load. ratio = reference seconds / ours (> 1: ours is faster)."""
    from alternate import alternate

    r = alternate(_step_pair(recipe_name, batch_size, ours), blocks, block_steps, warmup)
    return {"recipe": recipe_name, "batch_size": batch_size, "ours": ours, **r}


def op_totals(xspace: bytes) -> dict[str, list]:
    """``{op type: [count, seconds]}`` of the ops TensorFlow's executor ran (its ``tf_Compute``
    threads), from a profile's serialised ``XSpace`` (``*.xplane.pb``); events are named
    ``scope/name:OpType``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xspace)
    totals: dict[str, list] = {}
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for ev in line.events:
                name = plane.event_metadata[ev.metadata_id].name
                if ":" not in name or "::" in name:
                    continue  # the executor's own regions (ExecutorState::Process), not ops
                t = totals.setdefault(name.rsplit(":", 1)[1], [0, 0.0])
                t[0] += 1
                t[1] += ev.duration_ps / 1e12
    return totals


def op_profile(recipe_name: str, batch_size: int, steps: int, warmup: int = 1) -> dict:
    """Profile ``steps`` steps of ours and of the reference (after ``warmup`` each) with the
    TensorFlow profiler: ``{"ours": op_totals, "reference": op_totals}``. Which kernels each
    step runs, and how often, is what tells where one loses time against the other; the
    seconds are as noisy as the machine."""
    import tempfile

    import tensorflow as tf

    pair = _step_pair(recipe_name, batch_size)  # ours plain vs keras.io
    out = {}
    for which, fn in pair.items():
        for i in range(warmup):
            fn(i + 1)
        with tempfile.TemporaryDirectory() as d:
            tf.profiler.experimental.start(d)
            for i in range(steps):
                fn(warmup + i + 1)
            tf.profiler.experimental.stop()
            out[which] = op_totals(next(Path(d).rglob("*.xplane.pb")).read_bytes())
    return out


def op_table(profile: dict, steps: int) -> str:
    """The markdown table of :func:`op_profile`: per op type, runs per step and seconds per step
    of ours and the reference, the busiest first."""
    ours, ref = profile["ours"], profile["reference"]
    kinds = sorted(set(ours) | set(ref), key=lambda k: -(ours.get(k, [0, 0.0])[1]
                                                         + ref.get(k, [0, 0.0])[1]))
    lines = ["| op type | ours runs/step | ours s/step | reference runs/step | reference s/step |",
             "|---|---|---|---|---|"]
    for k in kinds:
        (n_o, s_o), (n_r, s_r) = ours.get(k, [0, 0.0]), ref.get(k, [0, 0.0])
        lines.append(f"| {k} | {n_o / steps:g} | {s_o / steps:.3f} | {n_r / steps:g} "
                     f"| {s_r / steps:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="torch-mnist")
    p.add_argument("--style", choices=("stacked", "train_step"), default=None,
                   help="Keras style (default: the recipe's)")
    p.add_argument("--variant", default="ours", choices=("ours", "default", *KERAS_VARIANTS))
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--record", action="store_true",
                   help="with --alternate: append the result, command, date, machine and load "
                        "to benchmarks/results.json (key \"alternating\")")
    p.add_argument("--op-profile", action="store_true",
                   help="profile --steps steps of ours and of the reference (train_step style) "
                        "with the TensorFlow profiler; print the kernels each ran, per op type")
    p.add_argument("--threads", type=int, default=None,
                   help="TensorFlow's intra- and inter-op threads (default: TensorFlow's choice)")
    p.add_argument("--alternate", type=int, default=None, metavar="BLOCKS",
                   help="ours and the reference in one process, BLOCKS alternating blocks of "
                        "--steps steps (train_step style); prints the ratio")
    p.add_argument("--ours", choices=OURS, default="plain",
                   help="with --alternate: what is timed against keras.io's train_step")
    args = p.parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.op_profile:
        profile = op_profile(args.recipe, args.batch_size, args.steps, args.warmup)
        print(f"{args.recipe} batch {args.batch_size}, {args.steps} profiled steps of each "
              f"(after {args.warmup} warm-up); seconds summed over TensorFlow's threads\n")
        print(op_table(profile, args.steps))
        return profile
    if args.alternate:
        r = keras_alternating(args.recipe, args.batch_size, args.alternate, args.steps,
                              args.warmup, args.ours)
        r["threads"] = args.threads
        if args.record:
            from alternate import record

            r = record(r, "keras", sys.argv)
        print(json.dumps(r))
        print(f"{args.recipe} batch {args.batch_size}: ours {r['ours_steps_per_s']:.3f} "
              f"steps/s, reference {r['reference_steps_per_s']:.3f} steps/s, "
              f"ratio {r['ratio']:.3f} (wall), {r['cpu_ratio']:.3f} (CPU time)")
        return r
    ours = keras_ours(args.recipe, args.steps, args.batch_size, args.warmup, args.style,
                      args.variant)
    ref = keras_reference(args.recipe, args.steps, args.batch_size, args.warmup, args.style)
    result = {"recipe": args.recipe, "style": args.style or recipes.get(args.recipe).keras_style,
              "batch_size": args.batch_size, "device": ours["device"],
              "ours_steps_per_s": round(args.steps / ours["seconds"], 2),
              "reference_steps_per_s": round(args.steps / ref["seconds"], 2),
              "ratio": round(ref["seconds"] / ours["seconds"], 3)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
