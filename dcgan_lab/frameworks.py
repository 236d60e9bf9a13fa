"""The one place a framework is chosen by its name: :func:`get` (framework-free at import time).

``get("torch")`` is the package ``dcgan_lab.torch``, ``get("keras")`` the package
``dcgan_lab.keras``, imported on the first call; both hold the same names (``train``, ``sample``,
``load_generator``, ``build``, ``Backend``, ...); :func:`distributed` is the data-parallel
trainer of either (``dcgan-lab train --distributed``). An unknown name is a ``ValueError`` naming the
choices; a framework that is not installed is a :class:`FrameworkMissing` naming the pip extra
that installs it. The command line, the ablation runner, :mod:`dcgan_lab.scoring.evaluation` and the
ONNX export all go through here, at call time, so no framework-free module imports a trainer at
import time.
"""

from __future__ import annotations

from types import ModuleType

from .run.config import FRAMEWORKS as NAMES  # ("torch", "keras"): the command line's choices

#: name -> the pip extra that installs it (``pip install 'dcgan-lab[torch]'``)
EXTRAS = {"torch": "torch", "keras": "keras"}


class FrameworkMissing(ImportError):
    """The framework asked for is not installed (or fails to import); the message names the
    pip extra that installs it."""


def check(name: str) -> str:
    """``name`` if it is one of :data:`NAMES`, else a ``ValueError`` naming the choices."""
    if name not in NAMES:
        raise ValueError(f"framework={name!r}: choose one of {', '.join(NAMES)}")
    return name


def get(name: str) -> ModuleType:
    """The framework package ``dcgan_lab.<name>`` (``torch`` or ``keras``), imported now."""
    check(name)
    try:
        if name == "torch":
            from . import torch as package
        else:
            from . import keras as package
    except ImportError as e:
        raise FrameworkMissing(f"the {name} side is not available ({e}); install it with "
                               f"pip install 'dcgan-lab[{EXTRAS[name]}]'") from None
    return package


def distributed(name: str) -> ModuleType:
    """The data-parallel trainer of framework ``name``: ``dcgan_lab.<name>.distributed``
    (``torchrun`` + DDP for torch, ``MirroredStrategy`` for Keras), imported now."""
    import importlib

    return importlib.import_module(f"{get(name).__name__}.distributed")
