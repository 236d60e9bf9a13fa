"""Data-parallel Keras training with ``tf.distribute.MirroredStrategy`` (one process, N devices).

    python -m dcgan_lab.keras.distributed torch-mnist --steps 200 --batch-size 64 --out runs/mirrored
    python -m dcgan_lab.keras.distributed torch-mnist --steps 400 --batch-size 64 \\
        --out runs/mirrored --resume      # continue it to step 400

uses every visible GPU (``--devices 2`` takes the first two); ``--cpu-replicas 2`` splits the
CPU into two logical devices instead (how it is tested: no GPU needed). ``--batch-size`` is the
*global* batch. Each step draws the same inputs as the one-device trainer from the stateless
streams (:func:`dcgan_lab.keras.train.step_inputs`) and hands replica ``i`` its contiguous slice
of every batch. Three things make the run equal to one device on the whole batch:

1. each replica divides its mean loss by the number of replicas (``GAN.replicas``) and the
   optimiser sums the replicas' gradients (what Keras does under a ``tf.distribute`` strategy):
   the gradient of the global batch's mean loss;
2. every ``BatchNormalization`` layer is switched to ``synchronized=True``: it normalises with the
   statistics of the global batch;
3. the reported metrics are the mean of the replicas' means over equal slices.

The strategy trains the :class:`~dcgan_lab.keras.train.GAN` (``Model.train_step``) style, for
every recipe: so the losses, the final weights and Adam's state equal those of
``dcgan_lab.keras.train`` with ``keras_style="train_step"`` and the same batch size, to float
rounding (tested on 2 logical CPUs in ``tests/test_distributed.py``) -- except with dropout,
drawn per replica.

The loop is the one of every trainer (:func:`dcgan_lab.loop.run`, with
:class:`DistributedBackend`): the run folder gets ``config.json``, ``history.csv``, samples,
``checkpoint.keras.npz``, ``generator.keras`` and ``discriminator.keras``, and ``--resume``
continues it. The checkpoint holds the plain variables, as the one-device trainer's does: either
trainer resumes the other's run of the same settings (``train_step`` style).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .. import loop, recipes, training  # noqa: E402
from ..history import History  # noqa: E402
from ..training import TrainOptions, shard  # noqa: E402
from .train import GAN, Backend, _seed  # noqa: E402

__all__ = ["DistributedBackend", "make_strategy", "shard", "synchronize_batchnorm", "train", "main"]


def make_strategy(cpu_replicas: int | None = None,
                  devices: int | None = None) -> tf.distribute.MirroredStrategy:
    """A ``MirroredStrategy`` over the GPUs (the first ``devices`` of them, default all), or with
    ``cpu_replicas`` over that many logical devices carved out of the CPU.

    The CPU split must happen before TensorFlow first uses a device: call this first thing.
    """
    if cpu_replicas:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_replicas)])
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_replicas)])
    gpus = [f"/gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]
    if not gpus:
        raise RuntimeError("no GPU visible: pass cpu_replicas (--cpu-replicas 2) to split the CPU")
    return tf.distribute.MirroredStrategy(gpus[:devices] if devices else gpus)


def synchronize_batchnorm(model: keras.Model) -> int:
    """Set ``synchronized=True`` on every ``BatchNormalization`` layer; returns how many."""
    n = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            n += 1
    return n


class DistributedBackend(Backend):
    """The Keras backend of :func:`dcgan_lab.loop.run` under a ``tf.distribute`` strategy: the
    :class:`~dcgan_lab.keras.train.GAN` built in the strategy's scope with synchronised
    BatchNorm, each replica's slice of the step's inputs, the metrics averaged over replicas."""

    def __init__(self, strategy: tf.distribute.Strategy):
        super().__init__(speed=None)  # the plain step (no XLA, mixed precision or prefetch)
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync

    def label(self, cfg: training.Config) -> str:
        return f"{cfg.recipe} (keras, {self.replicas} replicas)"

    def resume_command(self, cfg: training.Config, out_dir: Path) -> str:
        return (f"python -m dcgan_lab.keras.distributed {cfg.recipe} "
                f"{training.run_arguments(cfg)} --out {out_dir} --resume (and the same "
                f"--devices or --cpu-replicas)")

    def build(self, cfg: training.Config) -> None:
        from .models import build

        _seed(cfg.seed)  # the same initial weights as the one-device trainer
        with self.strategy.scope():  # variables mirrored on every replica, optimisers aware of it
            G, D = build(cfg.recipe, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                         d_activation=cfg.d_activation)
            synchronize_batchnorm(G)
            synchronize_batchnorm(D)
            self.trainer = GAN.from_config_of(cfg, G, D)
            self.trainer.replicas = self.replicas
        self.models = (G, D)

        @tf.function(autograph=False)
        def distributed_step(inputs):
            out = self.strategy.run(self.trainer.train_step, args=(inputs,))
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in out.items()}

        self.distributed_step = distributed_step

    def step(self, step: int, images: np.ndarray, cfg: training.Config,
             inputs: dict[str, np.ndarray]) -> dict[str, float]:
        per_replica = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: {k: tf.constant(v) for k, v in
                         shard(inputs, ctx.replica_id_in_sync_group, self.replicas).items()})
        return {k: float(v) for k, v in self.distributed_step(per_replica).items()}


def train(recipe: str | recipes.Recipe, out_dir: str | Path, *,
          strategy: tf.distribute.Strategy, options: TrainOptions | None = None,
          profile: str | None = None, data: str | np.ndarray | None = None,
          resume: bool = False, force: bool = False, progress: bool = True) -> History:
    """Train ``recipe`` (``Model.train_step`` style) data-parallel under ``strategy``.

    ``options.batch_size`` is the global batch, split evenly over the replicas; ``resume``
    continues the run saved in ``out_dir``, ``force`` starts afresh there.
    """
    options = (options or TrainOptions()).replace(keras_style="train_step")
    cfg = training.resolve_run(recipe, "keras", options, profile, data)
    return loop.run(cfg, DistributedBackend(strategy), out_dir, data=data, resume=resume,
                    force=force, progress=progress)


def main(argv: list[str] | None = None) -> int:
    """``python -m dcgan_lab.keras.distributed RECIPE --batch-size B --out DIR [--cpu-replicas N]``."""
    p = argparse.ArgumentParser(prog="python -m dcgan_lab.keras.distributed",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("recipe", choices=recipes.names())
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="the global batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default=None, help="smoke, cpu or gpu (budget of the recipe)")
    p.add_argument("--data", default=None, help="data set name or folder of photos")
    p.add_argument("--devices", type=int, default=None, help="use the first N GPUs (default all)")
    p.add_argument("--cpu-replicas", type=int, default=None,
                   help="no GPU: split the CPU into N logical devices")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out to --steps (with the run's --batch-size, "
                        "--seed and --data)")
    p.add_argument("--force", action="store_true", help="start afresh in a folder holding a run")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    strategy = make_strategy(args.cpu_replicas, args.devices)
    print(f"MirroredStrategy over {strategy.num_replicas_in_sync} replicas: "
          f"{', '.join(strategy.extended.worker_devices)}", flush=True)
    train(args.recipe, args.out, strategy=strategy,
          options=TrainOptions(steps=args.steps, batch_size=args.batch_size, seed=args.seed),
          profile=args.profile, data=args.data, resume=args.resume, force=args.force,
          progress=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
