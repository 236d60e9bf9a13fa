"""Image grids to files: :func:`make_grid`, :func:`save_png`, :func:`save_gif` (numpy + Pillow).

The part of the figures that the run loop needs (a grid of the fixed ``z`` every
``sample_every`` steps, the GIF at the end), apart from :mod:`dcgan_lab.figures` so that the loop
never imports the figures, tables or scoring code. ``dcgan_lab.figures`` re-exports all three.

Every function accepts images as numpy arrays, torch tensors or TF tensors, uint8 (0..255) or
float in [-1, 1], channels-last (NHWC, Keras) or channels-first (NCHW, PyTorch), grayscale or RGB.
No framework is imported.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .images import as_numpy as _as_numpy
from .images import to_uint8

__all__ = ["make_grid", "save_gif", "save_png"]


def _to_nhwc_uint8(images, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Normalise a batch (or one image) to uint8 (N, H, W, C) with C in (1, 3)."""
    x = _as_numpy(images)
    if x.ndim == 2:  # one grayscale image
        x = x[None, :, :, None]
    elif x.ndim == 3:
        # (H, W, C) single image when the last axis looks like channels, else an (N, H, W) batch.
        x = x[None] if x.shape[-1] in (1, 3) else x[..., None]
    elif x.ndim == 4:
        if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
            x = x.transpose(0, 2, 3, 1)
    else:
        raise ValueError(f"expected images of shape (N, H, W, C), (N, C, H, W), (N, H, W) or "
                         f"(H, W[, C]); got {x.shape}")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"expected 1 (grayscale) or 3 (RGB) channels, got shape {x.shape}")
    if x.dtype != np.uint8:
        if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
            raise TypeError(f"integer images must be uint8 (0..255), got {x.dtype}")
        lo, hi = value_range
        x = to_uint8((x.astype(np.float32) - lo) / (hi - lo) * 2.0 - 1.0)
    return x


def make_grid(
    images,
    nrow: int = 8,
    padding: int = 2,
    pad_value: int = 255,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> np.ndarray:
    """Tile a batch into one uint8 image ``(H, W, C)`` with ``nrow`` images per row.

    Like ``torchvision.utils.make_grid``: ``padding`` pixels of grey level ``pad_value``
    (0 black .. 255 white) around and between the tiles. Float images are mapped from
    ``value_range`` (default [-1, 1]) to 0..255. Grayscale grids have C = 1.
    """
    x = _to_nhwc_uint8(images, value_range)
    n, h, w, c = x.shape
    if n == 0:
        raise ValueError("make_grid: got an empty batch")
    cols = max(1, min(int(nrow), n))
    rows = math.ceil(n / cols)
    p = int(padding)
    grid = np.full((rows * (h + p) + p, cols * (w + p) + p, c), int(pad_value), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = p + r * (h + p), p + k * (w + p)
        grid[top: top + h, left: left + w] = x[i]
    return grid


def _pil(grid: np.ndarray):
    from PIL import Image

    return Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)


def _as_grid(images_or_grid, nrow: int) -> np.ndarray:
    x = _as_numpy(images_or_grid)
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3)):
        return _to_nhwc_uint8(x)[0]  # already one image / a finished grid
    return make_grid(x, nrow=nrow)


def save_png(images_or_grid, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Save a batch (tiled with :func:`make_grid`) or one finished image/grid as a PNG."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _pil(_as_grid(images_or_grid, nrow)).save(out, format="PNG")
    return out


def save_gif(
    frames_or_png_paths: Sequence[Any],
    path: str | os.PathLike,
    duration: int = 300,
    loop: int = 0,
    nrow: int = 8,
) -> Path:
    """Write an animated GIF from frames (grids or batches) or from PNG files (e.g. one per epoch).

    ``duration`` is milliseconds per frame; ``loop=0`` loops forever. Pillow merges consecutive
    identical frames into one longer frame.
    """
    from PIL import Image

    frames = []
    for f in frames_or_png_paths:
        if isinstance(f, (str, os.PathLike)):
            with Image.open(f) as im:
                frames.append(im.convert("RGB"))
        else:
            frames.append(_pil(_as_grid(f, nrow)).convert("RGB"))
    if not frames:
        raise ValueError("save_gif: no frames given")
    size = frames[0].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(duration), loop=int(loop))
    return out
