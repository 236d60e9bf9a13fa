"""PyTorch twin of :mod:`dcgan_lab.keras`: the same modules and names, NCHW tensors.

``models`` (the recipes' networks, :func:`build_for`), ``step`` (:func:`train_step`, one
generator step, read it first), ``backend`` (the run loop's :class:`Backend`, checkpoints,
:func:`train`, :func:`sample`, :func:`load_generator`), ``data`` and ``distributed``
(``torchrun`` + DDP). The package holds every public name, d2l style::

    from dcgan_lab import torch as d
    d.train("torch-mnist", "runs/x")

``from dcgan_lab import torch as lab_torch`` never imports TensorFlow.
"""

# Each submodule adds its public names here (keep the list in step with dcgan_lab/keras/__init__.py).
from .backend import (  # noqa: F401
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    DISCRIMINATOR_NAME,
    GENERATOR_NAME,
    Backend,
    load_checkpoint,
    load_generator,
    sample,
    save_checkpoint,
    step_loader,
    train,
)
from .data import ImageDataset, make_dataloader, make_dataset  # noqa: F401
from .models import Crop2d, Discriminator, Generator, build, build_for, summary  # noqa: F401
from .probe import load_discriminator, probe_features, random_discriminator  # noqa: F401
from .step import pick_device, step_inputs, train_step  # noqa: F401
