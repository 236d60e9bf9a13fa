"""PyTorch twin of :mod:`dcgan_lab.keras`: the same names, NCHW tensors.

``from dcgan_lab import torch as lab_torch`` never imports TensorFlow.
"""

# Each submodule adds its public names here (keep the list in step with dcgan_lab/keras/__init__.py).
from .data import ImageDataset, make_dataloader, make_dataset  # noqa: E402,F401
from .models import Crop2d, Discriminator, Generator, build, summary  # noqa: E402,F401
from .train import (  # noqa: E402,F401
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    GENERATOR_NAME,
    Backend,
    load_checkpoint,
    load_generator,
    pick_device,
    sample,
    save_checkpoint,
    step_inputs,
    step_loader,
    train,
    train_step,
)
