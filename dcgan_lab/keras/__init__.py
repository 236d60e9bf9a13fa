"""Keras 3 twin of :mod:`dcgan_lab.torch`: the same names, NHWC tensors.

``from dcgan_lab import keras as lab_keras`` never imports torch.
"""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from ..tfquiet import import_tensorflow as _import_tensorflow  # noqa: E402

_import_tensorflow()  # before keras: TensorFlow's start-up notices stay out of outputs

# Each submodule adds its public names here (keep the list in step with dcgan_lab/torch/__init__.py).
from .data import make_dataset  # noqa: E402,F401
from .models import build, summary  # noqa: E402,F401
from .train import (  # noqa: E402,F401
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    DISCRIMINATOR_NAME,
    GAN,
    GENERATOR_NAME,
    Backend,
    GANCheckpoint,
    GANMonitor,
    HistoryLogger,
    StackedGAN,
    load_checkpoint,
    load_generator,
    make_trainer,
    sample,
    save_checkpoint,
    step_inputs,
    step_loader,
    train,
    train_step,
)
