"""Images as arrays: the uint8 <-> [-1, 1] float ranges every chapter and trainer uses, and the
square crop and resize applied to photos (``clothing64`` and ``data.load_folder``). No framework
is imported: torch and TensorFlow tensors are read through their ``numpy()``."""

from __future__ import annotations

import numpy as np


def square(img, size: int):
    """``img`` (PIL) with its EXIF orientation, centre-cropped to a square and resized to
    ``size`` x ``size`` RGB with LANCZOS."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    img = img.crop((left, top, left + s, top + s))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def as_numpy(x) -> np.ndarray:
    """numpy view of a numpy array, torch tensor or TF tensor (framework imported by nobody)."""
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # tf / keras
        x = x.numpy()
    return np.asarray(x)


def to_float(images) -> np.ndarray:
    """uint8 images (0..255) -> float32 in [-1, 1] (x / 127.5 - 1)."""
    x = as_numpy(images)
    if x.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images (0..255), got {x.dtype}; float images "
                        "are probably already scaled (use them as they are, or to_uint8 first)")
    return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(images) -> np.ndarray:
    """Float images in [-1, 1] -> uint8 (clipped, rounded). Inverse of :func:`to_float`."""
    x = as_numpy(images)
    if x.dtype == np.uint8:
        return x
    x = np.clip((x.astype(np.float32) + 1.0) * 127.5, 0, 255)
    return np.rint(x).astype(np.uint8)
