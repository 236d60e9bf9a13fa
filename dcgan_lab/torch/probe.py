"""The DCGAN paper's discriminator features (section 5.1), PyTorch side: every conv layer's output
max-pooled to 4x4, flattened (channel-major, as ``(C, 4, 4)``) and concatenated.

A conv layer's output here is its block's output: what the next conv layer (or the ``Flatten``,
or the end of D) receives after BatchNorm, activation and dropout. Blocks smaller than 4x4 (D's
last 4x4 -> 1x1 convolution, the logit) are left out. :func:`probe_features` is the same function
as ``dcgan_lab.keras.probe_features`` (ported weights give the same features);
:func:`load_discriminator` reads a run folder's D, :func:`random_discriminator` an untrained one.
The classifier on top is framework-free: :mod:`dcgan_lab.scoring.probe`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..run import config
from ..run.atomic import CheckpointError
from ..run.rundir import RunDir

__all__ = ["GRID", "load_discriminator", "probe_features",
           "random_discriminator"]

GRID = 4


def _blocks(D: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of D's conv blocks for the input ``x``: what each conv layer but the first
    (before its padding layer, if any), the ``Flatten`` or the end of D receives."""
    layers = list(D.net) if hasattr(D, "net") else list(D)
    outs, seen_conv, unpadded = [], False, None

    def keep(t: torch.Tensor) -> None:
        if seen_conv and t.dim() == 4 and min(t.shape[2:]) >= GRID:
            outs.append(t)

    for layer in layers:
        if isinstance(layer, nn.ZeroPad2d):
            unpadded = x if unpadded is None else unpadded
        elif isinstance(layer, nn.Conv2d | nn.Flatten):
            keep(x if unpadded is None else unpadded)
            unpadded = None
        else:
            unpadded = None
        seen_conv = seen_conv or isinstance(layer, nn.Conv2d)
        x = layer(x)
    keep(x)
    return outs


def probe_features(D: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, sum of C * 4 * 4) float32 features of uint8 NHWC ``images`` from ``D`` (eval mode)."""
    was_training = D.training
    D.eval()
    device = next(D.parameters()).device
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))
                xb = xb.to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
                maps = _blocks(D, xb)
                if not maps:
                    raise ValueError(f"{type(D).__name__} has no conv layer with an output of at "
                                     f"least {GRID}x{GRID}: nothing for the probe")
                out.append(torch.cat([nn.functional.adaptive_max_pool2d(m, GRID).flatten(1)
                                      for m in maps], dim=1).cpu().numpy())
    finally:
        D.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def random_discriminator(recipe: str, seed: int = 0) -> nn.Module:
    """An untrained D of ``recipe`` (the recipe's initialisation, seed ``seed``), in eval mode."""
    from .models import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, D = build(recipe)
    return D.eval()


def load_discriminator(run_dir: str | Path) -> tuple[nn.Module, int]:
    """The discriminator of a run folder and its step: ``discriminator.pt`` (a snapshot's,
    float16 state dict) else the checkpoint's, in eval mode on the CPU."""
    from .backend import CHECKPOINT_NAME, DISCRIMINATOR_NAME, GENERATOR_NAME, load_checkpoint
    from .models import build_for

    run = RunDir(run_dir)
    cfg = run.read_config()
    if cfg.framework != "torch":
        raise config.RunDirError(f"{run.path} is a {cfg.framework} run: use "
                                 f"dcgan_lab.{cfg.framework}.load_discriminator")
    _, D = build_for(cfg)
    d_path, ckpt_path = run.path / DISCRIMINATOR_NAME, run.path / CHECKPOINT_NAME
    if d_path.exists():
        try:
            D.load_state_dict(torch.load(d_path, map_location="cpu", weights_only=True))
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{d_path} is corrupt or not a {cfg.recipe} discriminator "
                                  f"({type(e).__name__})") from None
        step = _snapshot_step(run)
    elif ckpt_path.exists():
        state = load_checkpoint(ckpt_path, cfg)
        try:
            D.load_state_dict(state["discriminator"])
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt_path} does not fit the {cfg.recipe} discriminator "
                                  f"({str(e).splitlines()[0][:200]})") from None
        step = int(state["step"])
    else:
        only = f" (only {GENERATOR_NAME})" if (run.path / GENERATOR_NAME).exists() else ""
        raise CheckpointError(f"{run.path} holds no discriminator: neither {DISCRIMINATOR_NAME} "
                              f"nor {CHECKPOINT_NAME}{only}; probe a run folder with its "
                              f"checkpoint")
    return D.eval(), step


def _snapshot_step(run: RunDir) -> int:
    """The last step of the run's ``history.csv`` (a snapshot's history ends at its step)."""
    from ..run.history import History

    try:
        return int(History.from_csv(run.history_path).last("step", 0))
    except Exception:  # noqa: BLE001 - the step is a label; a missing history reads as 0
        return 0
