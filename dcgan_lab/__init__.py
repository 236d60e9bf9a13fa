"""dcgan_lab: the companion package of the dcgan-lab course, a house of floors.

From the ground up (a module imports only from its own floor or below; tests/unit/test_layout.py
checks it):

- basics, framework-free: ``recipes``, ``profiles``, ``shapes``, ``arithmetic``, ``data`` (with
  ``archives`` and ``images``), ``grids`` (PNG and GIF writing), ``speed``, ``tfquiet``;
- ``run``: a run without a framework -- options and their one check (``run.config``), the
  training images and random streams (``run.streams``), the run folder, atomic writes, the
  history, and the loop every trainer shares (``run.loop``);
- the twins ``dcgan_lab.torch`` and ``dcgan_lab.keras``, mirrored module for module (``models``,
  ``step``, ``backend``, ``data``, ``distributed``); importing one never imports the other
  framework, and ``frameworks.get(name)`` is the one place either is chosen by name;
- ``scoring``: the classifiers, metrics, ``evaluate`` and tables;
- above it ``interop`` (weights in and out: canonical PyTorch, Keras files, the twin port,
  ONNX), ``ablation``, ``figures`` and ``stacked_mnist``; then ``cli``, the ``dcgan-lab`` command;
- ``dcgan_lab.book``: the chapters' own helpers, which the rest never imports.

README.md's "Layout" lists every module.
"""

__version__ = "0.1.0"
