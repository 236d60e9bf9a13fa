"""Data-parallel Keras training with ``tf.distribute.MirroredStrategy`` (one process, N devices).

    dcgan-lab train torch-mnist --framework keras --distributed --steps 200 --batch-size 64 \\
        --out runs/mirrored
    dcgan-lab train torch-mnist --distributed --steps 400 --out runs/mirrored --resume

uses every visible GPU (``--devices 2`` takes the first two); ``--cpu-replicas 2`` splits the
CPU into two logical devices instead (how it is tested: no GPU needed). ``--batch-size`` is the
*global* batch. Each step draws the same inputs as the one-device trainer from the stateless
streams (:func:`dcgan_lab.keras.step.step_inputs`) and hands replica ``i`` its contiguous slice
of every batch. Three things make the run equal to one device on the whole batch:

1. each replica divides its mean loss by the number of replicas (``GAN.replicas``) and the
   optimiser sums the replicas' gradients (what Keras does under a ``tf.distribute`` strategy):
   the gradient of the global batch's mean loss;
2. every ``BatchNormalization`` layer is switched to ``synchronized=True``: it normalises with the
   statistics of the global batch;
3. the reported metrics are the mean of the replicas' means over equal slices.

The strategy trains the :class:`~dcgan_lab.keras.step.GAN` (``Model.train_step``) style, for
every recipe: so the losses, the final weights and Adam's state equal those of
``dcgan_lab.keras.train`` with ``keras_style="train_step"`` and the same batch size, to float
rounding (tested on 2 logical CPUs in ``tests/integration/test_distributed.py``) -- except with dropout,
drawn per replica.

The loop is the one of every trainer (:func:`dcgan_lab.run.loop.run`, with
:class:`DistributedBackend`): the run folder gets ``config.json``, ``history.csv``, samples,
``checkpoint.keras.npz``, ``generator.keras`` and ``discriminator.keras``, and ``--resume``
continues it. The checkpoint holds the plain variables, as the one-device trainer's does: either
trainer resumes the other's run of the same settings (``train_step`` style).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .. import recipes  # noqa: E402
from ..run import config, loop  # noqa: E402
from ..run.config import TrainOptions  # noqa: E402
from ..run.history import History  # noqa: E402
from ..run.streams import shard  # noqa: E402
from .backend import Backend, _seed  # noqa: E402
from .step import GAN  # noqa: E402

__all__ = ["DistributedBackend", "make_strategy", "shard", "synchronize_batchnorm", "train"]


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
    """The Keras backend of :func:`dcgan_lab.run.loop.run` under a ``tf.distribute`` strategy: the
    :class:`~dcgan_lab.keras.step.GAN` built in the strategy's scope with synchronised
    BatchNorm, each replica's slice of the step's inputs, the metrics averaged over replicas."""

    def __init__(self, strategy: tf.distribute.Strategy):
        super().__init__(speed=None)  # the plain step (no XLA, mixed precision or prefetch)
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync

    def label(self, cfg: config.Config) -> str:
        return f"{cfg.recipe} (keras, {self.replicas} replicas)"

    def resume_command(self, cfg: config.Config, out_dir: Path) -> str:
        return (f"dcgan-lab train {cfg.recipe} --distributed --out {out_dir} --resume (and the "
                f"same --devices or --cpu-replicas)")

    def build(self, cfg: config.Config) -> None:
        from .models import build_for

        _seed(cfg.seed)  # the same initial weights as the one-device trainer
        with self.strategy.scope():  # variables mirrored on every replica, optimisers aware of it
            G, D = build_for(cfg)
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

    def step(self, step: int, images: np.ndarray, cfg: config.Config,
             inputs: dict[str, np.ndarray]) -> dict[str, float]:
        per_replica = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: {k: tf.constant(v) for k, v in
                         shard(inputs, ctx.replica_id_in_sync_group, self.replicas).items()})
        return {k: float(v) for k, v in self.distributed_step(per_replica).items()}


def train(recipe: str | recipes.Recipe, out_dir: str | Path, *,
          strategy: tf.distribute.Strategy, options: TrainOptions | None = None,
          profile: str | None = None, data: str | np.ndarray | None = None,
          resume: bool = False, force: bool = False, progress: bool = True,
          resolved: config.Config | None = None, checked: bool = False) -> History:
    """Train ``recipe`` (``Model.train_step`` style) data-parallel under ``strategy``.

    ``options.batch_size`` is the global batch, split evenly over the replicas; ``resume``
    continues the run saved in ``out_dir``, ``force`` starts afresh there.

    ``resolved``: the run's :class:`~dcgan_lab.run.config.Config` as a caller already resolved
    it from the same arguments (the command line), and ``checked`` that it checked the folder
    against it: each check is then made once.
    """
    options = (options or TrainOptions()).replace(keras_style="train_step")
    cfg = resolved or config.resolve_run(recipe, "keras", options, profile, data)
    return loop.run(cfg, DistributedBackend(strategy), out_dir, data=data, resume=resume,
                    force=force, progress=progress, checked=checked)
