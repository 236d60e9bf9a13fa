"""The PyTorch side of the shared run loop: :class:`Backend` (build, step, save, restore and
sample for :func:`dcgan_lab.run.loop.run`), the checkpoint format, :func:`train`,
:func:`sample` and :func:`load_generator`. The step itself is :mod:`dcgan_lab.torch.step`.

:func:`train` is a short wrapper over the loop both frameworks share, which keeps a long run
safe -- a run folder, history rows, sample grids of a fixed ``z``, checkpoints (atomic, resumable
bit for bit), Ctrl-C and NaN handling. So N steps, a resume, and N more steps give the same
weights as 2N steps.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import recipes
from ..run import config, loop, rundir, streams
from ..run.atomic import CheckpointError, atomic_path, why_unreadable
from ..run.config import TrainOptions
from ..run.history import STEP_METRICS, History
from ..run.loop import TrainingDiverged
from ..run.rundir import RunDir
from ..speed import Speed
from .step import _to_uint8, pick_device, step_inputs, train_step

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "DISCRIMINATOR_NAME",
    "GENERATOR_NAME",
    "Backend",
    "load_checkpoint",
    "load_generator",
    "sample",
    "save_checkpoint",
    "step_loader",
    "train",
]

CHECKPOINT_NAME = "checkpoint.pt"
GENERATOR_NAME = "generator.pt"
# a snapshot's D (float16 state dict) beside generator.pt; a run keeps D in its checkpoint
DISCRIMINATOR_NAME = "discriminator.pt"
CHECKPOINT_FORMAT = "dcgan_lab.torch.checkpoint/1"

Callback = Callable[[int, nn.Module, nn.Module, History], None]


# --------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str | Path, *, G: nn.Module, D: nn.Module, opt_g, opt_d, step: int,
                    cfg: config.Config, fixed_noise: torch.Tensor, device: torch.device) -> None:
    """Write everything needed to resume ``step`` to ``path``, atomically (temp file + rename)."""
    for name, model in (("generator", G), ("discriminator", D)):
        for pname, p in model.state_dict().items():
            if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                raise TrainingDiverged(f"step {step}: {name} weight {pname} is not finite; the "
                                       f"checkpoint was not written (the last good one is kept)")
    state = {
        "format": CHECKPOINT_FORMAT,
        "framework": "torch",
        "recipe": cfg.recipe,
        "step": int(step),
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "generator": G.state_dict(),
        "discriminator": D.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "fixed_noise": fixed_noise.detach().cpu(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


_CHECKPOINT_KEYS = ("format", "recipe", "step", "config", "generator", "discriminator", "opt_g",
                    "opt_d", "rng_cpu", "fixed_noise")


def load_checkpoint(path: str | Path, cfg: config.Config | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``) and check it.

    Raises :class:`~dcgan_lab.run.atomic.CheckpointError` naming the file if it is unreadable,
    not one of ours, of another format, or (when ``cfg`` is given) of another run.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint there") from None
    except Exception as e:  # noqa: BLE001 - anything unreadable is a corrupt checkpoint
        raise CheckpointError(f"{path} is corrupt or not a PyTorch checkpoint "
                              f"({why_unreadable(e)}); delete it or pass --force to start "
                              f"afresh") from None
    if not isinstance(state, dict) or any(k not in state for k in _CHECKPOINT_KEYS):
        raise CheckpointError(f"{path} is not a dcgan_lab PyTorch checkpoint (expected a dict with "
                              f"keys {', '.join(_CHECKPOINT_KEYS)})")
    if state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has format {state['format']!r}; this version of dcgan_lab "
                              f"reads {CHECKPOINT_FORMAT!r}")
    if cfg is not None:
        rundir.check_checkpoint_run(path, state["recipe"], state["config"], cfg)
    return state


def _restore(path: Path, state: dict, G, D, opt_g, opt_d, device: torch.device) -> int:
    try:
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda"):
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} does not fit the {state['recipe']} models "
                              f"({str(e).splitlines()[0][:200]})") from None
    return int(state["step"])


# --------------------------------------------------------------------------------------------
# the loop


class _StepData(torch.utils.data.Dataset):
    """Item ``i`` is :func:`step_inputs` of step ``first + i``: a DataLoader over it prepares the
    batches of the coming steps in worker processes, from the same stateless streams."""

    def __init__(self, images: np.ndarray, cfg: config.Config, first: int, last: int):
        self.images, self.cfg, self.first, self.last = images, cfg, first, last

    def __len__(self) -> int:
        return max(self.last - self.first + 1, 0)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return step_inputs(self.first + i, self.images, self.cfg)


def step_loader(images: np.ndarray, cfg: config.Config, start: int, speed: Speed | None = None,
                device: str | torch.device | None = None) -> torch.utils.data.DataLoader:
    """The :func:`step_inputs` of steps ``start + 1 .. cfg.steps`` in order, ``speed.workers``
    processes ahead (the Keras twin's ``step_loader``; not :func:`dcgan_lab.torch.make_dataloader`,
    which batches a plain image array).

    ``batch_size=None``: each item already is a whole step. The loader gets its own
    ``generator`` so that it never draws from torch's global RNG (whose state dropout uses and
    the checkpoint keeps): with or without workers, the run is the same.
    """
    workers = (speed.workers if speed is not None else 0) or 0
    pin = speed is not None and bool(speed.pin_memory) and pick_device(device).type == "cuda"
    return torch.utils.data.DataLoader(
        _StepData(images, cfg, start + 1, cfg.steps), batch_size=None, shuffle=False,
        num_workers=workers, pin_memory=pin, prefetch_factor=2 if workers else None,
        persistent_workers=False, generator=torch.Generator().manual_seed(0))


def _finite(*models: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for m in models for p in m.parameters())


class Backend(loop.Backend):
    """The PyTorch side of :func:`dcgan_lab.run.loop.run`: models, Adam, :func:`train_step`,
    ``checkpoint.pt`` and ``generator.pt`` (and TensorBoard scalars when it is installed)."""

    framework, checkpoint_name, final_names = "torch", CHECKPOINT_NAME, (GENERATOR_NAME,)

    def __init__(self, device: str | torch.device | None = None, speed: Speed | None = None):
        self.device, self.speed, self.tensorboard = pick_device(device), speed, None

    def read_checkpoint(self, path: Path, cfg: config.Config | None) -> dict:
        return load_checkpoint(path, cfg, map_location="cpu")

    def checkpoint_step(self, state: dict) -> int:
        return int(state["step"])

    def build(self, cfg: config.Config) -> None:
        from .. import speed as speed_mod
        from .models import build_for

        torch.manual_seed(cfg.seed)  # as in the PyTorch example: the seed fixes the initial weights
        G, D = build_for(cfg)
        G, D = G.to(self.device), D.to(self.device)
        self.speed = speed_mod.resolve(self.speed, "torch", self.device.type)
        if self.speed.channels_last:  # conv weights in NHWC memory order (indexing stays NCHW)
            G = G.to(memory_format=torch.channels_last)
            D = D.to(memory_format=torch.channels_last)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        G.train()
        D.train()
        self.models = (G, D)
        # what runs each step: the models, or their torch.compile'd graphs (sharing parameters)
        self.compiled = (torch.compile(G), torch.compile(D)) if self.speed.compile else (G, D)

    def restore(self, path: Path, state: dict) -> int:
        return _restore(path, state, *self.models, self.opt_g, self.opt_d, self.device)

    def batches(self, images: np.ndarray, cfg: config.Config, start: int):
        return step_loader(images, cfg, start, self.speed, self.device)

    def step(self, step: int, images: np.ndarray, cfg: config.Config, inputs) -> dict[str, float]:
        try:
            return train_step(step, *self.compiled, self.opt_g, self.opt_d, images, cfg,
                              self.device, inputs=inputs, speed=self.speed)
        except RuntimeError:  # BCELoss refuses NaN probabilities before any loss is NaN
            if _finite(*self.models):
                raise
            return dict.fromkeys(STEP_METRICS, math.nan)

    def sample(self, z: np.ndarray) -> np.ndarray:
        G = self.models[0]
        G.eval()  # BatchNorm uses its running statistics; dropout is off
        with torch.no_grad():
            grid = _to_uint8(G(torch.from_numpy(z).to(self.device)))
        G.train()
        return grid

    def save(self, path: Path, step: int, cfg: config.Config, fixed_z: np.ndarray) -> None:
        save_checkpoint(path, G=self.models[0], D=self.models[1], opt_g=self.opt_g,
                        opt_d=self.opt_d, step=step, cfg=cfg, fixed_noise=torch.from_numpy(fixed_z),
                        device=self.device)

    def save_final(self, run: RunDir) -> None:
        with atomic_path(run.path / GENERATOR_NAME) as tmp:
            torch.save(self.models[0].state_dict(), tmp)

    def open(self, run: RunDir) -> None:
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run.path / "tensorboard"))

    def log(self, step: int, row: dict[str, float]) -> None:
        if self.tensorboard is not None:
            for k, v in row.items():
                if k != "step":
                    self.tensorboard.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def train(
    recipe: str | recipes.Recipe,
    out_dir: str | Path,
    *,
    options: TrainOptions | None = None,
    profile: str | None = None,
    data: str | np.ndarray | None = None,
    resume: bool = False,
    force: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    callbacks: Iterable[Callback] = (),
    speed: Speed | None = None,
    resolved: config.Config | None = None,
    checked: bool = False,
) -> History:
    """Train ``recipe`` into the run folder ``out_dir`` and return the :class:`History`.

    ``options`` override the recipe and the profile budget (see :class:`TrainOptions`); ``data``
    is a data set name, a folder of photos or a uint8 NHWC array (default: the recipe's data set).
    ``resume`` continues the run saved in ``out_dir`` from its checkpoint; ``force`` starts afresh
    in a folder that already holds a run. ``callbacks`` are called as ``cb(step, G, D, history)``
    after every step (``history.rows[-1]`` is that step's row: add columns to it).

    The folder gets ``config.json``, ``history.csv``, ``samples/step_NNNNNN.png`` (grids of the
    fixed ``z``), ``checkpoint.pt``, and at the end ``training.gif`` and ``generator.pt``.

    ``speed`` (:class:`~dcgan_lab.speed.Speed`) picks how the steps compute -- channels-last
    layout, ``torch.compile``, autocast, DataLoader workers, pinned memory -- without changing
    what they compute; ``None`` fields take the measured defaults of the device
    (:data:`dcgan_lab.speed.DEFAULTS`). It is not part of the run's config: a run may resume
    with other speed options.

    The loop itself is :func:`dcgan_lab.run.loop.run` (shared with Keras): Ctrl-C finishes the current
    step, saves a checkpoint, prints how to resume and re-raises ``KeyboardInterrupt``; a NaN or
    infinite metric raises :class:`TrainingDiverged` before that step is saved anywhere.

    ``resolved``: the run's :class:`~dcgan_lab.run.config.Config` as a caller already resolved
    it from the same arguments (the command line), and ``checked`` that it checked the folder
    against it: each check is then made once.
    """
    cfg = resolved or config.resolve_run(recipe, "torch", options, profile, data)
    return loop.run(cfg, Backend(device, speed), out_dir, data=data, resume=resume,
                    force=force, progress=progress, callbacks=callbacks, checked=checked)


# --------------------------------------------------------------------------------------------
# using a trained generator


def sample(generator: nn.Module, n: int, seed: int = 0,
           device: str | torch.device | None = None) -> np.ndarray:
    """``n`` images from ``generator`` as uint8 NHWC, in eval mode, without gradients.

    ``z`` is :func:`dcgan_lab.run.streams.sample_noise` (a seeded NumPy generator), the same draws as
    the Keras twin's ``sample``: ported weights give the same pictures.
    """
    latent = generator.recipe.latent_dim if hasattr(generator, "recipe") else generator.input_shape[0]
    dev = torch.device(device) if device is not None else next(generator.parameters()).device
    z = torch.from_numpy(streams.sample_noise(n, latent, seed)).to(dev)
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            images = generator.to(dev)(z)
    finally:
        generator.train(was_training)
    return _to_uint8(images)


def load_generator(run_dir: str | Path, device: str | torch.device | None = "cpu") -> nn.Module:
    """The trained generator of a run folder (``generator.pt``, else the checkpoint's), in eval mode."""
    from .models import build_for

    run = RunDir(run_dir)
    cfg = run.read_config()
    if cfg.framework != "torch":
        raise config.RunDirError(f"{run.path} is a {cfg.framework} run: use "
                                   f"dcgan_lab.{cfg.framework}.load_generator")
    G, _ = build_for(cfg)
    gen_path, ckpt_path = run.path / GENERATOR_NAME, run.path / CHECKPOINT_NAME
    if gen_path.exists():
        try:
            weights = torch.load(gen_path, map_location="cpu", weights_only=True)
            G.load_state_dict(weights)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{gen_path} is corrupt or not a {cfg.recipe} generator "
                                  f"({why_unreadable(e)})") from None
    elif ckpt_path.exists():
        state = load_checkpoint(ckpt_path, cfg)
        _restore_g(ckpt_path, state, G)
    else:
        raise CheckpointError(f"{run.path} holds neither {GENERATOR_NAME} nor {CHECKPOINT_NAME}: "
                              f"train it first (dcgan-lab train {cfg.recipe} --out {run.path})")
    return G.to(pick_device(device)).eval()


def _restore_g(path: Path, state: dict, G: nn.Module) -> None:
    try:
        G.load_state_dict(state["generator"])
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not fit the {state['recipe']} generator "
                              f"({str(e).splitlines()[0][:200]})") from None
