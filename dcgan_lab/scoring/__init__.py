"""Scoring generators, framework-free at import time: above the twins, below interop.

- :mod:`~dcgan_lab.scoring.classifier`: the small shipped classifiers (numpy inference);
- :mod:`~dcgan_lab.scoring.metrics`: Fréchet distance, mode coverage, precision/recall;
- :mod:`~dcgan_lab.scoring.evaluation`: the one :func:`evaluate` (with the real-vs-real floor),
  the training callbacks built on it, image degradations for calibration;
- :mod:`~dcgan_lab.scoring.tables`: score tables (text and HTML) and history summaries.

Import the modules (``from dcgan_lab.scoring import evaluation``); this file imports nothing.
"""
