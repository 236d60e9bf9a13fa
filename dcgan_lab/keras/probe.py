"""The DCGAN paper's discriminator features (section 5.1), Keras side: the twin of
:mod:`dcgan_lab.torch.probe` (every conv block's output max-pooled to 4x4, flattened
channel-major as ``(C, 4, 4)`` like the PyTorch twin, and concatenated).

A block's output is what the next ``Conv2D`` (or its ``ZeroPadding2D``, or the ``Flatten``, or
the end of D) receives; blocks smaller than 4x4 are left out.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ..run import config
from ..run.atomic import CheckpointError
from ..run.rundir import RunDir

__all__ = ["GRID", "load_discriminator", "probe_features", "random_discriminator"]

GRID = 4


def _pool(x) -> np.ndarray:
    """Max-pool NHWC maps to GRID x GRID with PyTorch's ``adaptive_max_pool2d`` bins (cell i
    spans rows floor(i H / 4) to ceil((i + 1) H / 4)), flattened as (C, 4, 4)."""
    x = np.asarray(x)
    n, h, w, c = x.shape
    out = np.empty((n, c, GRID, GRID), x.dtype)
    for i in range(GRID):
        r0, r1 = (i * h) // GRID, -((-(i + 1) * h) // GRID)
        for j in range(GRID):
            c0, c1 = (j * w) // GRID, -((-(j + 1) * w) // GRID)
            out[:, :, i, j] = x[:, r0:r1, c0:c1, :].max(axis=(1, 2))
    return out.reshape(n, -1)


def _blocks(D: keras.Model, x) -> list:
    """The twin of ``dcgan_lab.torch.probe._blocks`` (NHWC maps)."""
    outs, seen_conv, unpadded = [], False, None

    def keep(t) -> None:
        if seen_conv and len(t.shape) == 4 and min(t.shape[1:3]) >= GRID:
            outs.append(t)

    for layer in D.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.ZeroPadding2D):
            unpadded = x if unpadded is None else unpadded
        elif isinstance(layer, keras.layers.Conv2D | keras.layers.Flatten):
            keep(x if unpadded is None else unpadded)
            unpadded = None
        else:
            unpadded = None
        seen_conv = seen_conv or isinstance(layer, keras.layers.Conv2D)
        x = layer(x, training=False)
    keep(x)
    return outs


def probe_features(D: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, sum of C * 4 * 4) float32 features of uint8 NHWC ``images`` from ``D`` (inference)."""
    out = []
    for i in range(0, len(images), batch_size):
        xb = np.asarray(images[i:i + batch_size], np.float32) / 127.5 - 1.0
        maps = _blocks(D, keras.ops.convert_to_tensor(xb))
        if not maps:
            raise ValueError(f"{D.name} has no conv layer with an output of at least "
                             f"{GRID}x{GRID}: nothing for the probe")
        out.append(np.concatenate([_pool(m) for m in maps], axis=1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def random_discriminator(recipe: str, seed: int = 0) -> keras.Model:
    """An untrained D of ``recipe`` (the recipe's initialisation, seed ``seed``)."""
    from .models import build

    keras.utils.set_random_seed(seed)
    return build(recipe)[1]


def load_discriminator(run_dir: str | Path) -> tuple[keras.Model, int]:
    """The discriminator of a run folder and its step: ``discriminator.keras`` (a finished run's)
    else the checkpoint's weights in a freshly built model."""
    from .backend import CHECKPOINT_NAME, DISCRIMINATOR_NAME, _assign, load_checkpoint
    from .models import build_for

    run = RunDir(run_dir)
    cfg = run.read_config()
    if cfg.framework != "keras":
        raise config.RunDirError(f"{run.path} is a {cfg.framework} run: use "
                                 f"dcgan_lab.{cfg.framework}.load_discriminator")
    d_path, ckpt_path = run.path / DISCRIMINATOR_NAME, run.path / CHECKPOINT_NAME
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, cfg)
        if "discriminator" not in state["header"]["groups"]:
            raise CheckpointError(f"{ckpt_path} holds no discriminator (a generator-only "
                                  f"snapshot); probe a run folder with its full checkpoint")
        _, D = build_for(cfg)
        _assign(ckpt_path, "discriminator", D.variables, state)
        return D, int(state["header"]["step"])
    if d_path.exists():
        try:
            D = keras.models.load_model(d_path, safe_mode=True, compile=False)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{d_path} is corrupt or not a Keras model "
                                  f"({type(e).__name__})") from None
        return D, int(cfg.steps)
    raise CheckpointError(f"{run.path} holds no discriminator: neither {DISCRIMINATOR_NAME} nor "
                          f"{CHECKPOINT_NAME}; probe a run folder with its checkpoint")
