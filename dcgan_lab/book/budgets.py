"""Chapter 5's time budgets per profile (smoke, cpu, gpu): how long its ablation, its
single-run demonstrations and its Stacked MNIST runs train. Chapter settings, not library defaults:
the library's functions take these numbers as arguments.

How many samples score a run is not a budget: at every profile it is the course's one sample size
of the dataset, :func:`dcgan_lab.scoring.evaluation.sample_size` (``n_eval`` below reads it), so
chapter 5's tables compare with chapters 1, 3 and 4 and with ``dcgan-lab evaluate``. Stacked
MNIST's ``n_samples`` counts 1,000 modes, a different measure (PacGAN / VEEGAN count 26,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import profiles
from ..scoring import evaluation

__all__ = ["TORCH_MNIST_TARGETS", "AblationBudget", "DemoBudget", "StackedBudget",
           "ablation_budget", "demo_budget", "effect_budget", "stacked_budget"]

#: ``torch-mnist``'s quality targets (``benchmarks/quality_cpu.md``): at least 60 % of the samples
#: confident and a Fréchet distance of at most 100 on the course's scorer. The recipe's baseline
#: meets them at :func:`effect_budget` and not at a quarter of it; chapter 5's MNIST effects are
#: measured on generators that have learned only from that budget on.
TORCH_MNIST_TARGETS = {"confident": 0.60, "fid": 100.0}


def effect_budget() -> Any:
    """The budget where ``torch-mnist`` meets :data:`TORCH_MNIST_TARGETS`: the recipe's cpu budget
    (6,000 steps of 64, ``benchmarks/quality_cpu.md``), whatever the current profile."""
    from .. import recipes

    return recipes.get("torch-mnist").budget("cpu")


@dataclass(frozen=True)
class AblationBudget:
    """How long each run of an ablation trains and on how many seeds; ``n_eval``: the samples
    that score each run, the dataset's one sample size."""

    steps: int
    batch_size: int
    seeds: tuple[int, ...]
    dataset: str = "mnist"

    @property
    def n_eval(self) -> int:
        return evaluation.sample_size(self.dataset)


_ABLATION = {
    # smoke: every line runs; the numbers mean nothing.
    "smoke": AblationBudget(steps=3, batch_size=16, seeds=(0, 1)),
    # cpu: 160 steps at batch 32 per run, about 0.03 s a step on 2 idle cores plus ~1 s of
    # evaluation: a few of the minutes chapter 5 may take. Far below effect_budget(): 8 variants
    # x 3 seeds of 6,000 steps at about 0.04 s a step (benchmarks/quality_cpu.md) would train for
    # 1.6 hours on 2 idle cores, against the chapter's ~15 minutes. So the chapter says, in a
    # sentence glued from this budget and its measured baseline, that its MNIST numbers show the
    # start of training, not where the effects show.
    "cpu": AblationBudget(steps=160, batch_size=32, seeds=(0, 1, 2)),
    # gpu: effect_budget(), where torch-mnist's baseline meets its targets; five seeds.
    "gpu": AblationBudget(steps=6000, batch_size=64, seeds=(0, 1, 2, 3, 4)),
}


def ablation_budget(profile: str | None = None) -> AblationBudget:
    """The ablation budget of ``profile`` (default: the current profile)."""
    return _ABLATION[profiles.current(profile)]


@dataclass(frozen=True)
class DemoBudget:
    """The chapter's single-run demonstrations (D wins, mode collapse): steps, batch size, and
    every how many steps ``every`` the metrics are recorded on ``n_eval`` samples (the dataset's
    one sample size)."""

    steps: int
    batch_size: int
    every: int
    dataset: str = "mnist"

    @property
    def n_eval(self) -> int:
        return evaluation.sample_size(self.dataset)


_DEMO = {
    "smoke": DemoBudget(steps=4, batch_size=16, every=2),
    "cpu": DemoBudget(steps=200, batch_size=32, every=25),
    "gpu": DemoBudget(steps=3000, batch_size=64, every=250),
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
