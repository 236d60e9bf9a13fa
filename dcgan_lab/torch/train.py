"""The PyTorch training loop, in the style of the canonical ``pytorch/examples`` DCGAN.

Read :func:`train_step` first: it is one generator step, top to bottom --

1. update D: maximise ``log D(x) + log(1 - D(G(z)))`` (BCE with target 1 on a real batch and
   target 0 on a fake batch; the targets may be soft, one-sided or noisy, see ganhacks);
2. update G: maximise ``log D(G(z))`` (the non-saturating loss, BCE with target 1) or, for the
   experiment, minimise ``log(1 - D(G(z)))`` (the saturating minimax loss). The PyTorch-origin
   recipes (``Recipe.reuse_fake``) do it on the very fake batch D was just trained on, as
   pytorch/examples does (``fake = netG(noise)`` once; D on ``fake.detach()``; G on
   ``netD(fake)``); the Keras-origin ones on a fresh ``z``, as their sources do.

:func:`train` is a short wrapper over the loop both frameworks share (:func:`dcgan_lab.loop.run`),
which keeps a long run safe -- a run folder, history rows, sample grids of a fixed ``z``,
checkpoints (atomic, resumable bit for bit), Ctrl-C and NaN handling -- and calls this module's
:class:`Backend` to build, step, save, restore and sample.

Every random draw outside the layers (data order, ``z``, label noise) comes from the stateless
streams of :mod:`dcgan_lab.training`, keyed by (seed, step); dropout uses torch's RNG, whose state
the checkpoint keeps. So N steps, a resume, and N more steps give the same weights as 2N steps.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import loop, recipes, training
from ..checkpoint import CheckpointError, atomic_path, why_unreadable
from ..history import METRICS, History
from ..speed import Speed
from ..training import RunDir, TrainingDiverged, TrainOptions, load_training_images

__all__ = [
    "train", "train_step", "step_inputs", "step_loader", "Backend", "sample", "load_generator", "pick_device", "save_checkpoint",
    "load_checkpoint", "load_training_images", "CHECKPOINT_NAME", "GENERATOR_NAME",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_NAME = "checkpoint.pt"
GENERATOR_NAME = "generator.pt"
CHECKPOINT_FORMAT = "dcgan_lab.torch.checkpoint/1"

Callback = Callable[[int, nn.Module, nn.Module, History], None]


# --------------------------------------------------------------------------------------------
# small helpers


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW tensor in [-1, 1] -> uint8 NHWC array."""
    from .. import data

    return data.to_uint8(images.detach().float().permute(0, 2, 3, 1).cpu().numpy())


# --------------------------------------------------------------------------------------------
# one training step


def step_inputs(step: int, images: np.ndarray, cfg: training.Config) -> dict[str, torch.Tensor]:
    """:func:`dcgan_lab.training.step_inputs` of ``step`` as CPU tensors, ``real`` in NCHW.

    Recipes whose G update reuses D's fake batch (:func:`dcgan_lab.training.reuses_fake`) get no
    ``z_g``: their G update of round ``r`` trains on ``G(z_d[r * d_steps + d_steps - 1])``.
    """
    x = training.step_inputs(step, images, cfg)
    x["real"] = x["real"].transpose(0, 1, 4, 2, 3).copy()  # a copy has the canonical strides
    if training.reuses_fake(cfg):
        del x["z_g"]
    return {k: torch.from_numpy(v) for k, v in x.items()}


def _autocast(device: torch.device, speed: Speed | None):
    """The forward passes' precision: ``torch.autocast`` for ``speed.autocast``, else nothing."""
    if speed is None or speed.autocast in (None, "off"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if speed.autocast == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _update_g(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
              fake: torch.Tensor, criterion: nn.Module, g_loss: str,
              amp: Callable) -> torch.Tensor:
    """G's update of :func:`train_step` on ``D(fake)`` with D's weights frozen (D's
    weight-gradient kernels are skipped; only G moves); returns G's loss."""
    G.zero_grad()
    d_params = [p for p in D.parameters() if p.requires_grad]
    for p in d_params:
        p.requires_grad_(False)
    try:
        with amp():
            out = D(fake).float()
        if g_loss == "non_saturating":
            loss_g = criterion(out, torch.ones_like(out))  # -log D(G(z))
        else:
            loss_g = -criterion(out, torch.zeros_like(out))  # log(1 - D(G(z))): saturates
        loss_g.backward()
    finally:
        for p in d_params:
            p.requires_grad_(True)
    opt_g.step()
    return loss_g


def train_step(step: int, G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, images: np.ndarray, cfg: training.Config,
               device: torch.device, *, inputs: dict[str, torch.Tensor] | None = None,
               speed: Speed | None = None) -> dict[str, float]:
    """One generator step (``cfg.d_steps`` D updates, then one G update); returns the metrics.

    ``images`` is the whole uint8 NHWC training set; the rows, ``z`` and D's targets of ``step``
    come from the stateless streams (:func:`step_inputs`; pass ``inputs`` to use a batch prepared
    ahead, e.g. by a DataLoader worker). The losses are BCE on probabilities (``cfg.loss ==
    "bce"``, D ends in a sigmoid) or BCE from logits (``"logits"``). ``loss_d`` is ``loss_d_real +
    loss_d_fake`` as in the PyTorch example; ``d_real``/``d_fake`` are the mean probabilities
    D gave the real and the fake batch of the last D update.

    ``speed`` (a resolved :class:`~dcgan_lab.speed.Speed`) may ask for channels-last inputs and
    autocast forward passes; the losses are always computed in float32.
    """
    criterion = nn.BCELoss() if cfg.loss == "bce" else nn.BCEWithLogitsLoss()
    prob = torch.sigmoid if cfg.loss == "logits" else torch.nn.Identity()  # D's output -> P(real)
    n_real = training.d_batch_sizes(cfg)[0]
    if inputs is None:
        inputs = step_inputs(step, images, cfg)
    x = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    layout = (torch.channels_last if speed is not None and speed.channels_last
              else torch.contiguous_format)  # NHWC in memory, still indexed as NCHW
    amp = functools.partial(_autocast, device, speed)

    reuse = training.reuses_fake(cfg)
    # D's weights need no gradient in G's update (only G moves): they are frozen for it, which
    # skips their weight-gradient kernels (about a third of that backward pass). Under DDP, G's
    # update runs the wrapped module itself, so no all-reduce of D's unused gradients is waited for.
    D_fixed = D.module if isinstance(D, nn.parallel.DistributedDataParallel) else D
    for rnd in range(cfg.rounds_per_step):
        # (1) Update D: maximise log(D(x)) + log(1 - D(G(z)))
        for j in range(cfg.d_steps):
            u = rnd * cfg.d_steps + j
            real, z, t_real, t_fake = x["real"][u], x["z_d"][u], x["t_real"][u], x["t_fake"][u]
            real = real.contiguous(memory_format=layout)
            if reuse and j == cfg.d_steps - 1:
                with amp():  # kept with its graph: G's update below reuses this batch
                    fake_g = G(z)
                fake = fake_g.detach()
            else:
                with torch.no_grad(), amp():  # D's update needs no gradient through G
                    fake = G(z)

            D.zero_grad()
            if cfg.d_batches == "separate":
                # two passes: BatchNorm sees an all-real and an all-fake batch (ganhacks 4)
                with amp():
                    out_real = D(real).float()
                loss_d_real = criterion(out_real, t_real)
                loss_d_real.backward()
                with amp():
                    out_fake = D(fake).float()
                loss_d_fake = criterion(out_fake, t_fake)
                loss_d_fake.backward()
            else:
                # one pass on the mixed batch: BatchNorm statistics mix real and fake images
                with amp():
                    out = D(torch.cat([real, fake.to(real.dtype)])).float()
                out_real, out_fake = out[:n_real], out[n_real:]
                loss_d_real = criterion(out_real, t_real)
                loss_d_fake = criterion(out_fake, t_fake)
                (loss_d_real + loss_d_fake).backward()
            opt_d.step()

        # (2) Update G: maximise log(D(G(z))) -- on D's fake batch (reuse_fake, the PyTorch
        # sources) or on fresh z (the Keras sources' stacked G -> D model); D is held fixed
        with amp():
            fake = fake_g if reuse else G(x["z_g"][rnd])
        loss_g = _update_g(G, D_fixed, opt_g, fake, criterion, cfg.g_loss, amp)

    return {
        "loss_d": (loss_d_real + loss_d_fake).item(),
        "loss_d_real": loss_d_real.item(),
        "loss_d_fake": loss_d_fake.item(),
        "loss_g": loss_g.item(),
        "d_real": prob(out_real).mean().item(),
        "d_fake": prob(out_fake).mean().item(),
    }


# --------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str | Path, *, G: nn.Module, D: nn.Module, opt_g, opt_d, step: int,
                    cfg: training.Config, fixed_noise: torch.Tensor, device: torch.device) -> None:
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


def load_checkpoint(path: str | Path, cfg: training.Config | None = None,
                    map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``) and check it.

    Raises :class:`~dcgan_lab.checkpoint.CheckpointError` naming the file if it is unreadable,
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
        training.check_checkpoint_run(path, state["recipe"], state["config"], cfg)
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

    def __init__(self, images: np.ndarray, cfg: training.Config, first: int, last: int):
        self.images, self.cfg, self.first, self.last = images, cfg, first, last

    def __len__(self) -> int:
        return max(self.last - self.first + 1, 0)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return step_inputs(self.first + i, self.images, self.cfg)


def step_loader(images: np.ndarray, cfg: training.Config, start: int, speed: Speed | None = None,
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
    """The PyTorch side of :func:`dcgan_lab.loop.run`: models, Adam, :func:`train_step`,
    ``checkpoint.pt`` and ``generator.pt`` (and TensorBoard scalars when it is installed)."""

    framework, checkpoint_name, final_names = "torch", CHECKPOINT_NAME, (GENERATOR_NAME,)

    def __init__(self, device: str | torch.device | None = None, speed: Speed | None = None):
        self.device, self.speed, self.tensorboard = pick_device(device), speed, None

    def read_checkpoint(self, path: Path, cfg: training.Config | None) -> dict:
        return load_checkpoint(path, cfg, map_location="cpu")

    def checkpoint_step(self, state: dict) -> int:
        return int(state["step"])

    def build(self, cfg: training.Config) -> None:
        from .. import speed as speed_mod
        from .models import build

        torch.manual_seed(cfg.seed)  # as in the PyTorch example: the seed fixes the initial weights
        G, D = build(cfg.recipe, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                     d_activation=cfg.d_activation)
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

    def batches(self, images: np.ndarray, cfg: training.Config, start: int):
        return step_loader(images, cfg, start, self.speed, self.device)

    def step(self, step: int, images: np.ndarray, cfg: training.Config, inputs) -> dict[str, float]:
        try:
            return train_step(step, *self.compiled, self.opt_g, self.opt_d, images, cfg,
                              self.device, inputs=inputs, speed=self.speed)
        except RuntimeError:  # BCELoss refuses NaN probabilities before any loss is NaN
            if _finite(*self.models):
                raise
            return dict.fromkeys(METRICS, math.nan)

    def sample(self, z: np.ndarray) -> np.ndarray:
        G = self.models[0]
        G.eval()  # BatchNorm uses its running statistics; dropout is off
        with torch.no_grad():
            grid = _to_uint8(G(torch.from_numpy(z).to(self.device)))
        G.train()
        return grid

    def save(self, path: Path, step: int, cfg: training.Config, fixed_z: np.ndarray) -> None:
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

    The loop itself is :func:`dcgan_lab.loop.run` (shared with Keras): Ctrl-C finishes the current
    step, saves a checkpoint, prints how to resume and re-raises ``KeyboardInterrupt``; a NaN or
    infinite metric raises :class:`TrainingDiverged` before that step is saved anywhere.
    """
    cfg = training.resolve_run(recipe, "torch", options, profile, data)
    return loop.run(cfg, Backend(device, speed), out_dir, data=data, resume=resume,
                    force=force, progress=progress, callbacks=callbacks)


# --------------------------------------------------------------------------------------------
# using a trained generator


def sample(generator: nn.Module, n: int, seed: int = 0,
           device: str | torch.device | None = None) -> np.ndarray:
    """``n`` images from ``generator`` as uint8 NHWC, in eval mode, without gradients.

    ``z`` is :func:`dcgan_lab.training.sample_noise` (a seeded NumPy generator), the same draws as
    the Keras twin's ``sample``: ported weights give the same pictures.
    """
    latent = generator.recipe.latent_dim if hasattr(generator, "recipe") else generator.input_shape[0]
    dev = torch.device(device) if device is not None else next(generator.parameters()).device
    z = torch.from_numpy(training.sample_noise(n, latent, seed)).to(dev)
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
    from .models import build

    run = RunDir(run_dir)
    cfg = run.read_config()
    if cfg.framework != "torch":
        raise training.RunDirError(f"{run.path} is a {cfg.framework} run: use "
                                   f"dcgan_lab.{cfg.framework}.load_generator")
    G, _ = build(cfg.recipe, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                 d_activation=cfg.d_activation)
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
