"""Helpers for the course's chapters only; the library a project reuses is the rest of
:mod:`dcgan_lab`, and nothing there imports this package.

- :mod:`~dcgan_lab.book.gan_math`: chapter 1's formulas (the value function, D*, JSD, the losses).
- :mod:`~dcgan_lab.book.keras_notes`: chapters 3 and 4's sample reports, the frozen-BatchNorm
  check, run-grid strips and source excerpts.
- :mod:`~dcgan_lab.book.budgets`: chapter 5's time budgets per profile (ablation, demonstrations,
  Stacked MNIST).
- :mod:`~dcgan_lab.book.timing`: each chapter's wall time, for the appendix.
"""
