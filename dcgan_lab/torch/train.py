"""The PyTorch training loop, in the style of the canonical ``pytorch/examples`` DCGAN.

Read :func:`train_step` first: it is one generator step, top to bottom --

1. update D: maximise ``log D(x) + log(1 - D(G(z)))`` (BCE with target 1 on a real batch and
   target 0 on a fake batch; the targets may be soft, one-sided or noisy, see ganhacks);
2. update G: maximise ``log D(G(z))`` (the non-saturating loss, BCE with target 1) or, for the
   experiment, minimise ``log(1 - D(G(z)))`` (the saturating minimax loss). The PyTorch-origin
   recipes (``Recipe.reuse_fake``) do it on the very fake batch D was just trained on, as
   pytorch/examples does (``fake = netG(noise)`` once; D on ``fake.detach()``; G on
   ``netD(fake)``); the Keras-origin ones on a fresh ``z``, as their sources do.

:func:`train` wraps it with everything that keeps a long run safe: a run folder, history rows,
sample grids of a fixed ``z``, checkpoints (atomic, resumable bit for bit), Ctrl-C and NaN handling.

Every random draw outside the layers (data order, ``z``, label noise) comes from the stateless
streams of :mod:`dcgan_lab.training`, keyed by (seed, step); dropout uses torch's RNG, whose state
the checkpoint keeps. So N steps, a resume, and N more steps give the same weights as 2N steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import recipes, training
from ..checkpoint import CheckpointError, atomic_path
from ..history import History
from ..speed import Speed
from ..training import RunDir, TrainingDiverged, TrainOptions, load_training_images

__all__ = [
    "train", "train_step", "step_inputs", "make_dataloader", "StepData", "sample", "load_generator", "pick_device", "save_checkpoint",
    "load_checkpoint", "load_training_images", "to_tensor", "CHECKPOINT_NAME", "GENERATOR_NAME",
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


def to_tensor(images_uint8: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW tensor in [-1, 1] on ``device``."""
    from .. import data

    x = torch.from_numpy(data.to_float(images_uint8))
    return x.permute(0, 3, 1, 2).contiguous().to(device)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW tensor in [-1, 1] -> uint8 NHWC array."""
    from .. import data

    return data.to_uint8(images.detach().float().permute(0, 2, 3, 1).cpu().numpy())


# --------------------------------------------------------------------------------------------
# one training step


def step_inputs(step: int, images: np.ndarray, cfg: training.Config) -> dict[str, torch.Tensor]:
    """The real batches, ``z`` and D targets of ``step`` as CPU tensors (the Keras twin's
    ``step_inputs``, in NCHW).

    Keys: ``real`` (U, n_real, C, H, W) float32 in [-1, 1], ``z_d`` (U, n_fake, latent),
    ``t_real`` (U, n_real, 1), ``t_fake`` (U, n_fake, 1), ``z_g`` (rounds, batch, latent), where
    U = rounds_per_step * d_steps and D update ``j`` of round ``r`` takes row ``r * d_steps + j``.
    Recipes whose G update reuses D's fake batch (:func:`dcgan_lab.training.reuses_fake`) get no
    ``z_g``: their G update of round ``r`` trains on ``G(z_d[r * d_steps + d_steps - 1])``.
    """
    from .. import data

    latent = cfg.recipe_obj.latent_dim
    n_real, n_fake = training.d_batch_sizes(cfg)  # half and half for Keras-GAN recipes
    per_step = training.d_updates_per_step(cfg)
    out: dict[str, list[np.ndarray]] = {"real": [], "z_d": [], "t_real": [], "t_fake": [],
                                        "z_g": []}
    for rnd in range(cfg.rounds_per_step):
        for j in range(cfg.d_steps):
            sub = training.d_sub(cfg, rnd, j)
            rows = training.batch_indices(step, len(images), n_real, cfg.seed, sub=sub,
                                          per_step=per_step)
            out["real"].append(data.to_float(images[rows]).transpose(0, 3, 1, 2))
            out["z_d"].append(training.noise(step, n_fake, latent, cfg.seed, sub=sub))
            t_real, t_fake = training.d_targets(cfg, step, n_real, n_fake, sub=sub)
            out["t_real"].append(t_real)
            out["t_fake"].append(t_fake)
        if not training.reuses_fake(cfg):
            out["z_g"].append(training.noise(step, cfg.batch_size, latent, cfg.seed,
                                             sub=training.g_sub(cfg, rnd)))
    return {k: torch.from_numpy(np.ascontiguousarray(np.stack(v))) for k, v in out.items() if v}


def _autocast(device: torch.device, speed: Speed | None):
    """The forward passes' precision: ``torch.autocast`` for ``speed.autocast``, else nothing."""
    if speed is None or speed.autocast in (None, "off"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if speed.autocast == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


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
        G.zero_grad()
        d_params = [p for p in D_fixed.parameters() if p.requires_grad]
        for p in d_params:
            p.requires_grad_(False)
        try:
            with amp():
                out = D_fixed(fake_g if reuse else G(x["z_g"][rnd])).float()
            if cfg.g_loss == "non_saturating":
                loss_g = criterion(out, torch.ones_like(out))  # -log D(G(z))
            else:
                loss_g = -criterion(out, torch.zeros_like(out))  # log(1 - D(G(z))): saturates
            loss_g.backward()
        finally:
            for p in d_params:
                p.requires_grad_(True)
        opt_g.step()

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
                    cfg: training.Config, fixed_z: torch.Tensor, device: torch.device) -> None:
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
        "fixed_noise": fixed_z.detach().cpu(),
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
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); delete it "
                              f"or pass --force to start afresh") from None
    if not isinstance(state, dict) or any(k not in state for k in _CHECKPOINT_KEYS):
        raise CheckpointError(f"{path} is not a dcgan_lab PyTorch checkpoint (expected a dict with "
                              f"keys {', '.join(_CHECKPOINT_KEYS)})")
    if state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has format {state['format']!r}; this version of dcgan_lab "
                              f"reads {CHECKPOINT_FORMAT!r}")
    if cfg is not None:
        if state["recipe"] != cfg.recipe:
            raise CheckpointError(f"{path} belongs to recipe {state['recipe']!r}, not "
                                  f"{cfg.recipe!r}: choose another --out or pass --force")
        try:
            old = training.Config.from_dict(json.loads(state["config"]))
        except (ValueError, TypeError, training.RunDirError) as e:
            raise CheckpointError(f"{path}: its config is unreadable ({e})") from None
        if old.comparable() != cfg.comparable():
            diff = sorted(k for k, v in cfg.comparable().items() if old.comparable().get(k) != v)
            raise CheckpointError(f"{path} belongs to a different run (differs in {', '.join(diff)})"
                                  f": choose another --out or pass --force")
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


class StepData(torch.utils.data.Dataset):
    """Item ``i`` is :func:`step_inputs` of step ``first + i``: a DataLoader over it prepares the
    batches of the coming steps in worker processes, from the same stateless streams."""

    def __init__(self, images: np.ndarray, cfg: training.Config, first: int, last: int):
        self.images, self.cfg, self.first, self.last = images, cfg, first, last

    def __len__(self) -> int:
        return max(self.last - self.first + 1, 0)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return step_inputs(self.first + i, self.images, self.cfg)


def make_dataloader(images: np.ndarray, cfg: training.Config, start: int, speed: Speed,
                    device: torch.device) -> torch.utils.data.DataLoader:
    """The inputs of steps ``start + 1 .. cfg.steps`` in order, ``speed.workers`` processes ahead.

    ``batch_size=None``: each item already is a whole step. The loader gets its own
    ``generator`` so that it never draws from torch's global RNG (whose state dropout uses and
    the checkpoint keeps): with or without workers, the run is the same.
    """
    workers = speed.workers or 0
    return torch.utils.data.DataLoader(
        StepData(images, cfg, start + 1, cfg.steps), batch_size=None, shuffle=False,
        num_workers=workers, pin_memory=bool(speed.pin_memory) and device.type == "cuda",
        prefetch_factor=2 if workers else None, persistent_workers=False,
        generator=torch.Generator().manual_seed(0))



class _DeferInterrupt:
    """Turn the first Ctrl-C into a flag checked between steps, so a checkpoint is never written
    half-way through a step; a second Ctrl-C interrupts at once (the last checkpoint is kept)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> _DeferInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _tensorboard(folder: Path):
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder / "tensorboard"))


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

    Ctrl-C finishes the current step, saves a checkpoint, prints how to resume and re-raises
    ``KeyboardInterrupt``. A NaN or infinite loss raises :class:`TrainingDiverged` before that
    step is saved anywhere, so the last good checkpoint is kept.
    """
    from .. import speed as speed_mod
    from .. import viz
    from .models import build

    cfg = training.resolve(recipe, "torch", options, profile,
                           data=None if data is None or isinstance(data, np.ndarray) else str(data))
    if isinstance(data, np.ndarray):
        cfg = dataclasses.replace(cfg, data=f"<array {'x'.join(map(str, data.shape))}>")
    run = RunDir(out_dir)
    ckpt_path = run.path / CHECKPOINT_NAME

    # Check the folder and an existing checkpoint before any slow work or any write: a corrupt or
    # foreign checkpoint raises CheckpointError and stays untouched; a folder holding a run is
    # refused unless resume (or force).
    state = None
    if ckpt_path.exists() and not force:
        state = load_checkpoint(ckpt_path, cfg if resume else None, map_location="cpu")
        if not resume and not run.config_path.exists():
            raise training.RunDirError(f"{run.path} holds {CHECKPOINT_NAME} but no config.json: "
                                       f"pass --force to start afresh there")
    resuming = run.check(cfg, resume=resume, force=force) and resume and not force

    dev = pick_device(device)
    images = load_training_images(cfg, data)
    training.batch_indices(0, len(images), max(training.d_batch_sizes(cfg)), cfg.seed)  # size check

    # Models and optimisers, as in the PyTorch example: the seed fixes the initial weights.
    torch.manual_seed(cfg.seed)
    G, D = build(cfg.recipe, g_dropout=cfg.g_dropout, g_activation=cfg.g_activation,
                 d_activation=cfg.d_activation)
    G, D = G.to(dev), D.to(dev)
    fast = speed_mod.resolve(speed, "torch", dev.type)
    if fast.channels_last:  # conv weights in NHWC memory order (the indexing stays NCHW)
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    fixed_z = torch.from_numpy(training.fixed_noise(cfg.n_fixed, cfg.recipe_obj.latent_dim,
                                                    cfg.seed)).to(dev)

    start = 0
    history = History()
    if resuming and state is not None:  # weights, optimisers and torch's RNG, as saved
        start = _restore(ckpt_path, state, G, D, opt_g, opt_d, dev)
        history = History.from_csv(run.history_path)
        history.truncate(start)
        print(f"resuming {cfg.recipe} from step {start} of {cfg.steps} ({ckpt_path})")
    elif resuming:
        print(f"{run.path} has no {CHECKPOINT_NAME} yet: starting {cfg.recipe} from step 0")
    run.prepare(cfg, resume=resume, force=force)  # writes config.json
    for old in run.sample_paths():  # grids of steps this run will (re)draw
        if not resuming or int(old.stem.split("_")[1]) > start:
            old.unlink()
    if not resuming:  # force: nothing of the old run may survive
        for old in (ckpt_path, run.gif_path, run.path / GENERATOR_NAME):
            old.unlink(missing_ok=True)
    history.to_csv(run.history_path)

    writer = _tensorboard(run.path)
    G.train()
    D.train()

    def save_samples(step: int) -> None:
        G.eval()  # BatchNorm uses its running statistics; dropout is off
        with torch.no_grad():
            grid = _to_uint8(G(fixed_z))
        G.train()
        viz.save_png(grid, run.sample_path(step), nrow=int(math.ceil(math.sqrt(len(grid)))))

    def save_all(step: int) -> None:
        history.to_csv(run.history_path)  # first the rows (trimmed to the checkpoint on resume)
        save_checkpoint(ckpt_path, G=G, D=D, opt_g=opt_g, opt_d=opt_d, step=step, cfg=cfg,
                        fixed_z=fixed_z, device=dev)

    from tqdm import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

    # What runs each step: the models themselves, or their torch.compile'd graphs (which share
    # the parameters, so checkpoints and samples keep using G and D).
    G_step, D_step = (torch.compile(G), torch.compile(D)) if fast.compile else (G, D)
    batches = iter(make_dataloader(images, cfg, start, fast, dev))

    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=cfg.recipe,
               unit="step", dynamic_ncols=True)
    step = start
    try:
        with _DeferInterrupt() as interrupt:
            for step in range(start + 1, cfg.steps + 1):
                t0 = time.perf_counter()
                inputs = next(batches)
                try:
                    m = train_step(step, G_step, D_step, opt_g, opt_d, images, cfg, dev,
                                   inputs=inputs, speed=fast)
                except RuntimeError as e:  # BCELoss refuses NaN probabilities before any NaN loss
                    if "between 0 and 1" not in str(e):
                        raise
                    m = {"loss_d": math.nan, "loss_g": math.nan}
                training.check_finite(step, **{k: m[k] for k in ("loss_d", "loss_g")})
                row = history.log(step=step, **m, seconds=time.perf_counter() - t0)
                for cb in callbacks:
                    cb(step, G, D, history)
                if writer is not None:
                    for k, v in row.items():
                        if k != "step":
                            writer.add_scalar(k, v, step)
                bar.set_postfix({k: f"{m[k]:.3f}" for k in
                                 ("loss_d", "loss_g", "d_real", "d_fake")}, refresh=False)
                bar.update(1)

                if step % cfg.sample_every == 0 or step == cfg.steps:
                    save_samples(step)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    save_all(step)
                if interrupt.requested:
                    raise KeyboardInterrupt
        bar.close()
    except TrainingDiverged:
        bar.close()
        history.to_csv(run.history_path)  # the rows up to the last good step, for plotting
        raise
    except KeyboardInterrupt:
        bar.close()
        done = int(history.last("step", default=start))
        if done == step and done > start:  # stopped between steps: the state is that of `step`
            save_all(done)
        else:  # stopped inside a step: its state is half-updated; keep the last checkpoint
            done = start if not ckpt_path.exists() else int(
                load_checkpoint(ckpt_path, map_location="cpu")["step"])
        print(f"interrupted at step {done}; resume with: dcgan-lab train {cfg.recipe} "
              f"--framework torch --out {run.path} --resume")
        raise
    finally:
        if writer is not None:
            writer.close()

    if not run.sample_path(cfg.steps).exists():
        save_samples(cfg.steps)
    viz.save_gif(run.sample_paths(), run.gif_path)
    with atomic_path(run.path / GENERATOR_NAME) as tmp:
        torch.save(G.state_dict(), tmp)
    history.to_csv(run.history_path)
    return history


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
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
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
