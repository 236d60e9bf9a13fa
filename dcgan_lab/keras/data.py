"""Keras / tf.data input pipeline: uint8 NHWC arrays -> float32 NHWC batches in [-1, 1].

Mirror of :mod:`dcgan_lab.torch.data` (``make_dataset`` in both). Never imports torch.
"""

from __future__ import annotations

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["make_dataset"]


def _scale(x):
    return tf.cast(x, tf.float32) / 127.5 - 1.0


def make_dataset(
    images_uint8,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = True,
    cache: bool = True,
    *,
    labels=None,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of float32 NHWC batches in [-1, 1] (``(x, y)`` pairs with ``labels``).

    Pipeline: ``from_tensor_slices`` -> shuffle (full buffer, ``seed``, reshuffled each epoch)
    -> batch -> map to [-1, 1] -> prefetch. With ``cache=True`` the float32 images are made once
    and cached (faster epochs, 4x the memory of the uint8 array); with ``cache=False`` each batch
    is converted on the fly. Both give the same batches for the same seed.
    """
    x = np.asarray(images_uint8)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError(f"expected uint8 images of shape (N, H, W, C) as returned by "
                         f"dcgan_lab.data.load, got dtype {x.dtype} and shape {x.shape}")
    n = len(x)
    if drop_remainder and n < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} images and "
                         "drop_remainder=True would yield no batch; lower batch_size or set "
                         "drop_remainder=False")
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {y.shape}")
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))
        scale = lambda a, b: (_scale(a), b)  # noqa: E731
    else:
        ds = tf.data.Dataset.from_tensor_slices(x)
        scale = _scale
    if cache:
        ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        ds = ds.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if not cache:
        ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
