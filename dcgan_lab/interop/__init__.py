"""Weights in and out of this package's run folders: the interop floor, above scoring.

- :mod:`~dcgan_lab.interop.torch_canonical`: the canonical ``pytorch/examples`` DCGAN's state
  dicts, imported as a ``dcgan64`` run (:func:`import_torch`);
- :mod:`~dcgan_lab.interop.keras_files`: Keras ``.keras`` / ``.weights.h5`` files, imported as
  a run of any recipe (:func:`import_keras`);
- :mod:`~dcgan_lab.interop.port`: the twin port, weights copied between a PyTorch model and its
  Keras twin (``port.torch_to_keras``, ``port.keras_to_torch``);
- :mod:`~dcgan_lab.interop.onnx_export`: a run's generator as ONNX, checked with onnxruntime;
- :mod:`~dcgan_lab.interop.report`: :class:`ImportReport` and :class:`WeightsMismatch`.

Imports write their run folder through the framework's own ``Backend`` (its ``build``,
``save_final`` and ``save``: the atomic writes of ``train()``). :func:`import_weights` picks the
importer of a framework (through :func:`dcgan_lab.frameworks.get`); this module imports neither
framework itself.
"""

from __future__ import annotations

from pathlib import Path

from .report import ImportReport, WeightsMismatch

__all__ = ["ImportReport", "WeightsMismatch", "import_weights"]


def import_weights(framework: str, generator: str | Path, recipe: str, out: str | Path,
                   discriminator: str | Path | None = None, force: bool = False) -> ImportReport:
    """Import ``generator`` (and ``discriminator``) as a ``framework`` run of ``recipe`` at
    ``out``: :func:`~dcgan_lab.interop.torch_canonical.import_torch` or
    :func:`~dcgan_lab.interop.keras_files.import_keras`."""
    from .. import frameworks

    frameworks.get(framework)  # a missing framework: FrameworkMissing, naming its pip extra
    if framework == "torch":
        from .torch_canonical import import_torch as do_import
    else:
        from .keras_files import import_keras as do_import
    return do_import(generator, recipe, out, discriminator=discriminator, force=force)
