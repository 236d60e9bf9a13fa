"""Data-parallel training with PyTorch DistributedDataParallel, launched by ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m dcgan_lab.cli train torch-mnist --distributed \\
        --steps 200 --batch-size 64 --out runs/ddp
    torchrun --standalone --nproc_per_node 2 -m dcgan_lab.cli train torch-mnist --distributed \\
        --steps 400 --out runs/ddp --resume     # continue it to step 400

(``dcgan-lab train --distributed`` takes every option of ``dcgan-lab train``; the command line
chooses this module through :func:`dcgan_lab.frameworks.distributed`.)

(``--nproc_per_node`` = the number of GPUs; on CPUs it runs on the ``gloo`` backend, on GPUs on
``nccl``, one GPU per process.) ``--batch-size`` is the *global* batch: every process draws the
same inputs of the step from the stateless streams of :mod:`dcgan_lab.run`
(:func:`dcgan_lab.torch.step.step_inputs`) and keeps its slice of the batch dimension -- what a
``DistributedSampler`` does, without a sampler and without any process-to-process traffic for
the data. Three things make the run equal to one process on the whole batch:

1. DDP averages the gradients of the processes' mean losses over equal slices: the gradient of
   the global batch's mean loss;
2. BatchNorm normalises with the statistics of the *global* batch: ``nn.SyncBatchNorm`` on GPUs,
   :class:`GlobalBatchNorm` (the same maths over ``torch.distributed.nn.all_reduce``) on CPUs,
   where ``SyncBatchNorm`` refuses to run;
3. the reported losses and D's probabilities are averaged over the processes.

So the losses, the final weights and Adam's state equal those of ``dcgan_lab.torch.train`` with
the same batch size, to float rounding (tested with 2 gloo processes in
``tests/integration/test_distributed.py``) -- except with dropout, whose masks each process draws for its own
slice (from ``torch.manual_seed`` of (seed, step, rank), so that a resume draws them again).

The loop is the one of every trainer (:func:`dcgan_lab.run.loop.run`, with :class:`DistributedBackend`):
every process runs it in lockstep and process 0 alone writes the run folder (config, history,
samples, ``checkpoint.pt``, ``generator.pt``). The checkpoint holds the plain models' state dicts
(BatchNorm's keys, no ``module.`` prefix): ``--resume`` restores it in every process, and the
one-process trainer (``dcgan-lab train --resume``) continues a distributed run as readily as this
one continues a one-process run of the same settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import recipes
from ..run import config, loop
from ..run.config import TrainOptions
from ..run.history import History
from ..run.streams import shard
from .backend import Backend

__all__ = ["DistributedBackend", "GlobalBatchNorm", "convert_batchnorm", "shard", "train"]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the batch of *all* processes, for any backend (``gloo`` on CPUs).

    In training mode the sums behind the mean and the variance are all-reduced across the
    processes with the differentiable ``torch.distributed.nn.all_reduce`` (two passes, as
    ``F.batch_norm``: the mean, then the mean squared deviation), so that the forward pass and the
    gradients are those of one BatchNorm over the global batch. Running statistics are updated as
    ``nn.BatchNorm`` does (the unbiased variance). In eval mode it is a plain BatchNorm.
    """

    def __init__(self, *args, group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group = group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 3, 4, 5):
            raise ValueError(f"GlobalBatchNorm: expected 2D-5D input, got {input.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not (dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn import all_reduce

        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        n = torch.tensor([x.numel() / x.size(1)], dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), n]), group=self.group or dist.group.WORLD)
        count = total[-1]
        mean = total[:-1] / count
        centred = x - mean.reshape(shape)
        var = all_reduce(centred.square().sum(dims),
                         group=self.group or dist.group.WORLD) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * count / max(float(count) - 1, 1.0)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        y = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y


def convert_batchnorm(module: nn.Module, device: torch.device, group=None) -> nn.Module:
    """Every BatchNorm of ``module`` normalising over the global batch: ``nn.SyncBatchNorm`` on
    CUDA, :class:`GlobalBatchNorm` elsewhere (weights and running statistics kept)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group=group)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            new = GlobalBatchNorm(child.num_features, eps=child.eps, momentum=child.momentum,
                                  affine=child.affine,
                                  track_running_stats=child.track_running_stats, group=group)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new.to(next(child.buffers(), torch.empty(0)).device))
        else:
            convert_batchnorm(child, device, group)
    return module


def _setup() -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, ...); (rank, world, device)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("dcgan-lab train --distributed (PyTorch) runs under torchrun: torchrun "
                           "--standalone --nproc_per_node 2 -m dcgan_lab.cli train RECIPE "
                           "--distributed ...")
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), device


class DistributedBackend(Backend):
    """The backend of one process of a ``torchrun`` run for :func:`dcgan_lab.run.loop.run`: the models
    with global-batch BatchNorm under DDP, this process's slice of every step's inputs, the
    metrics averaged over the processes; process 0 (``writer``) writes the files."""

    def __init__(self, rank: int, world: int, device: torch.device):
        super().__init__(device, speed=None)  # the plain step (no channels-last, compile, amp)
        self.rank, self.world, self.writer = rank, world, rank == 0

    def label(self, cfg: config.Config) -> str:
        return f"{cfg.recipe} (torch, {self.world} processes)"

    def resume_command(self, cfg: config.Config, out_dir: Path) -> str:
        return (f"torchrun --standalone --nproc_per_node {self.world} -m dcgan_lab.cli train "
                f"{cfg.recipe} --distributed --out {out_dir} --resume")

    def build(self, cfg: config.Config) -> None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        from .models import build_for

        dist.barrier()  # every process has checked the folder (and read a checkpoint) before
        #                 process 0 writes anything in it
        torch.manual_seed(cfg.seed)  # the same initial weights in every process (DDP checks)
        G, D = build_for(cfg)
        group = dist.new_group(backend="gloo") if self.device.type == "cpu" else None
        G = convert_batchnorm(G, self.device, group).to(self.device)
        D = convert_batchnorm(D, self.device, group).to(self.device)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.models = (G, D)  # saved, restored and sampled: plain state dicts
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.compiled = (DDP(G, device_ids=ids), DDP(D, device_ids=ids))  # what steps run

    def restore(self, path: Path, state: dict) -> int:
        step = super().restore(path, state)
        dist.barrier()  # every process has read the checkpoint and the history
        return step

    def step(self, step: int, images: np.ndarray, cfg: config.Config,
             inputs: dict[str, torch.Tensor]) -> dict[str, float]:
        seed = np.random.SeedSequence([cfg.seed, step, self.rank]).generate_state(1)[0]
        torch.manual_seed(int(seed))  # this slice's dropout masks, the same after a resume
        m = super().step(step, images, cfg, shard(inputs, self.rank, self.world))  # DDP models
        # the global batch's metrics: the mean of the processes' means over equal slices
        keys = list(m)
        values = torch.tensor([m[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return dict(zip(keys, (values / self.world).tolist(), strict=True))


def train(recipe: str | recipes.Recipe, out_dir: str | Path, *,
          options: TrainOptions | None = None, profile: str | None = None,
          data: str | np.ndarray | None = None, resume: bool = False, force: bool = False,
          progress: bool = True,
          resolved: config.Config | None = None, checked: bool = False) -> History:
    """Train ``recipe`` data-parallel over the processes of ``torchrun``; returns the history.

    ``options.batch_size`` is the global batch (split evenly over the processes). ``resume``
    continues the run saved in ``out_dir`` (every process restores its checkpoint); ``force``
    starts afresh there. Every process returns the same :class:`History`; process 0 writes the
    run folder ``out_dir``, and every process returns once it is complete.

    ``resolved``: the run's :class:`~dcgan_lab.run.config.Config` as a caller already resolved
    it from the same arguments (the command line), and ``checked`` that it checked the folder
    against it: each check is then made once.
    """
    rank, world, device = _setup()
    cfg = resolved or config.resolve_run(recipe, "torch", options, profile, data)
    history = loop.run(cfg, DistributedBackend(rank, world, device), out_dir, data=data,
                       resume=resume, force=force, progress=progress, checked=checked)
    dist.barrier()
    return history
