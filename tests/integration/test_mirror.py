"""dcgan_lab.torch and dcgan_lab.keras mirror each other name for name: the same public names
with the same parameters, apart from the framework-only ones listed (and explained) here."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path

import pytest

# Names only one framework has, and why. A new public name in one package must get its twin in
# the other, or be added here with its reason.
TORCH_ONLY = {
    "Generator", "Discriminator", "Crop2d",  # nn.Module classes; Keras builds functional models
    "ImageDataset", "make_dataloader",  # a torch Dataset/DataLoader over an image array
    "pick_device",  # torch places tensors itself (CUDA, MPS, CPU); Keras/TF picks the device
}
KERAS_ONLY = {
    "GAN", "StackedGAN", "make_trainer",  # the two Keras styles: a keras.Model subclass, stacked
    "GANMonitor", "GANCheckpoint", "HistoryLogger",  # callbacks for the idiomatic gan.fit route
}
# Parameters only one framework's version takes: torch's device placement, Keras's BatchNorm
# variant of the stacked style and its tf.data options, torch's DataLoader options.
EXTRA_PARAMS = {
    ("torch", "train"): {"device"}, ("torch", "sample"): {"device"},
    ("torch", "load_generator"): {"device"}, ("torch", "step_loader"): {"device"},
    ("torch", "load_checkpoint"): {"map_location"},
    ("keras", "build"): {"tf1_batchnorm"},
    ("torch", "summary"): {"input_shape", "batch_size"},
    ("torch", "make_dataset"): {"drop_last", "num_workers", "pin_memory"},
    ("keras", "make_dataset"): {"drop_remainder", "cache"},
}
# Functions that take each framework's training state (torch: the two models and optimisers;
# Keras: one trainer object holding them): their state parameters differ, the rest must match.
STATE_PARAMS = {
    ("torch", "train_step"): {"G", "D", "opt_g", "opt_d", "device", "speed"},
    ("keras", "train_step"): {"trainer"},
    ("torch", "save_checkpoint"): {"G", "D", "opt_g", "opt_d", "device"},
    ("keras", "save_checkpoint"): {"trainer"},
}


def _public(module) -> set[str]:
    return {n for n in dir(module) if not n.startswith("_")
            and not inspect.ismodule(getattr(module, n))}


@pytest.fixture(scope="module")
def twins():
    return {fw: importlib.import_module(f"dcgan_lab.{fw}") for fw in ("torch", "keras")}


def test_packages_expose_the_same_names(twins):
    torch_names, keras_names = _public(twins["torch"]), _public(twins["keras"])
    assert torch_names - keras_names == TORCH_ONLY, "a torch-only name: add its Keras twin"
    assert keras_names - torch_names == KERAS_ONLY, "a Keras-only name: add its torch twin"


@pytest.mark.parametrize("module", ["models", "step", "backend", "data", "distributed", "probe",
                                    "toy"])
def test_the_twins_have_the_same_modules(module):
    """Module for module (``models``, ``step``, ``backend``, ``data``, ``distributed``), the
    same names in ``__all__`` but for the framework-only ones."""
    paths = {fw: Path(importlib.util.find_spec(f"dcgan_lab.{fw}").origin).parent / f"{module}.py"
             for fw in ("torch", "keras")}
    assert all(p.exists() for p in paths.values()), paths
    if module not in ("step", "backend"):
        return
    exported = {fw: set(importlib.import_module(f"dcgan_lab.{fw}.{module}").__all__)
                for fw in ("torch", "keras")}
    assert exported["torch"] - exported["keras"] == exported["torch"] & TORCH_ONLY
    assert exported["keras"] - exported["torch"] == exported["keras"] & KERAS_ONLY


def test_no_module_of_a_twin_shares_a_name_with_a_function_it_exports():
    for fw in ("torch", "keras"):
        package = importlib.import_module(f"dcgan_lab.{fw}")
        for path in Path(package.__file__).parent.glob("[!_]*.py"):
            module = importlib.import_module(f"dcgan_lab.{fw}.{path.stem}")
            assert not callable(getattr(module, path.stem, None)), f"{module.__name__}.{path.stem}"


def _params(fw: str, name: str, fn) -> list[str]:
    skip = EXTRA_PARAMS.get((fw, name), set()) | STATE_PARAMS.get((fw, name), set())
    return [p for p in inspect.signature(fn).parameters if p not in skip]


def test_shared_names_take_the_same_parameters(twins):
    shared = sorted(_public(twins["torch"]) & _public(twins["keras"]))
    differ = {}
    for name in shared:
        a, b = getattr(twins["torch"], name), getattr(twins["keras"], name)
        if not callable(a) or inspect.isclass(a):
            continue
        pa, pb = _params("torch", name, a), _params("keras", name, b)
        if pa != pb:
            differ[name] = (pa, pb)
    assert not differ, f"parameters differ between the twins (torch, keras): {differ}"


def test_backends_implement_the_loop_interface(twins):
    from dcgan_lab.run import loop

    for fw, pkg in twins.items():
        backend = pkg.Backend
        assert issubclass(backend, loop.Backend) and backend.framework == fw
        for method in ("read_checkpoint", "checkpoint_step", "build", "restore", "batches",
                       "step", "sample", "save", "save_final"):
            assert getattr(backend, method) is not getattr(loop.Backend, method), (fw, method)
