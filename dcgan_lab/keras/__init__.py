"""Keras 3 twin of :mod:`dcgan_lab.torch`: the same modules and names, NHWC tensors.

``models`` (the recipes' networks, :func:`build_for`), ``step`` (:class:`GAN` with its
``train_step``, the stacked trainer and :func:`train_step`: read it first), ``backend`` (the run
loop's :class:`Backend`, checkpoints, :func:`train`, :func:`sample`, :func:`load_generator`,
the ``fit()`` callbacks), ``data`` and ``distributed`` (``MirroredStrategy``). The package holds
every public name, d2l style::

    from dcgan_lab import keras as d
    d.train("dense-mnist", "runs/x")

``from dcgan_lab import keras as lab_keras`` never imports torch.
"""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from ..tfquiet import import_tensorflow as _import_tensorflow  # noqa: E402

_import_tensorflow()  # before keras: TensorFlow's start-up notices stay out of outputs

# Each submodule adds its public names here (keep the list in step with dcgan_lab/torch/__init__.py).
from .backend import (  # noqa: E402,F401
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    DISCRIMINATOR_NAME,
    GENERATOR_NAME,
    Backend,
    GANCheckpoint,
    GANMonitor,
    HistoryLogger,
    load_checkpoint,
    load_generator,
    sample,
    save_checkpoint,
    step_loader,
    train,
)
from .data import make_dataset  # noqa: E402,F401
from .models import build, build_for, summary  # noqa: E402,F401
from .probe import load_discriminator, probe_features, random_discriminator  # noqa: E402,F401
from .step import GAN, StackedGAN, make_trainer, step_inputs, train_step  # noqa: E402,F401
