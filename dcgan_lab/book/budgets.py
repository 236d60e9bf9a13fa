"""Chapter 5's time budgets per profile (smoke, cpu, gpu): how long its ablation, its
single-run demonstrations and its Stacked MNIST runs train. Chapter settings, not library defaults:
the library's functions take these numbers as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import profiles

__all__ = ["AblationBudget", "DemoBudget", "StackedBudget", "ablation_budget", "demo_budget",
           "stacked_budget"]


@dataclass(frozen=True)
class AblationBudget:
    """How long each run of an ablation trains, on how many seeds, and how many samples score it."""

    steps: int
    batch_size: int
    seeds: tuple[int, ...]
    n_eval: int


_ABLATION = {
    # smoke: every line runs; the numbers mean nothing.
    "smoke": AblationBudget(steps=3, batch_size=16, seeds=(0, 1), n_eval=200),
    # cpu: 24 runs of 160 steps at batch 32, about 0.03 s a step on 2 idle cores plus ~1 s of
    # evaluation per run: about 2.5 of the 5 minutes chapter 5 may take.
    "cpu": AblationBudget(steps=160, batch_size=32, seeds=(0, 1, 2), n_eval=1000),
    # gpu: long enough for the hacks to matter; five seeds.
    "gpu": AblationBudget(steps=5000, batch_size=64, seeds=(0, 1, 2, 3, 4), n_eval=10000),
}


def ablation_budget(profile: str | None = None) -> AblationBudget:
    """The ablation budget of ``profile`` (default: the current profile)."""
    return _ABLATION[profiles.current(profile)]


@dataclass(frozen=True)
class DemoBudget:
    """The chapter's single-run demonstrations (D wins, mode collapse): steps, batch size, and
    every how many steps ``every`` the metrics are recorded on ``n_eval`` samples."""

    steps: int
    batch_size: int
    every: int
    n_eval: int


_DEMO = {
    "smoke": DemoBudget(steps=4, batch_size=16, every=2, n_eval=100),
    "cpu": DemoBudget(steps=200, batch_size=32, every=25, n_eval=300),
    "gpu": DemoBudget(steps=3000, batch_size=64, every=250, n_eval=2000),
}


def demo_budget(profile: str | None = None) -> DemoBudget:
    """The budget of the chapter's single-run demonstrations for ``profile``."""
    return _DEMO[profiles.current(profile)]


@dataclass(frozen=True)
class StackedBudget:
    """Stacked MNIST: training images, steps, batch size, and generated samples counted."""

    n_train: int
    steps: int
    batch_size: int
    n_samples: int


_STACKED = {
    "smoke": StackedBudget(n_train=512, steps=3, batch_size=16, n_samples=300),
    "cpu": StackedBudget(n_train=20000, steps=400, batch_size=32, n_samples=2000),
    # PacGAN / VEEGAN count modes in 26,000 samples.
    "gpu": StackedBudget(n_train=128000, steps=20000, batch_size=64, n_samples=26000),
}


def stacked_budget(profile: str | None = None) -> StackedBudget:
    """The Stacked MNIST budget of ``profile`` (default: the current profile)."""
    return _STACKED[profiles.current(profile)]
