"""PyTorch input pipeline: uint8 NHWC arrays from :mod:`dcgan_lab.data` -> float NCHW in [-1, 1].

Mirror of :mod:`dcgan_lab.keras.data` (``make_dataset`` in both; ``make_dataloader`` is the
PyTorch-flavoured alias). Never imports TensorFlow.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["ImageDataset", "make_dataloader", "make_dataset"]


def _check_images(images) -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ValueError(f"expected uint8 images of shape (N, H, W, C) as returned by "
                         f"dcgan_lab.data.load, got dtype {x.dtype} and shape {x.shape}")
    return x


class ImageDataset(Dataset):
    """A map-style dataset over uint8 NHWC images; items are float32 CHW tensors in [-1, 1].

    With ``labels``, items are ``(image, label)`` pairs (label an int64 tensor).
    The uint8 array is kept as is (no float copy); conversion happens per item or per batch.
    """

    def __init__(self, images_uint8, labels=None) -> None:
        x = _check_images(images_uint8)
        self.images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)  # uint8 NCHW
        self.labels = None
        if labels is not None:
            y = np.asarray(labels)
            if y.shape != (len(x),):
                raise ValueError(f"labels must have shape ({len(x)},), got {y.shape}")
            self.labels = torch.from_numpy(y.astype(np.int64))

    def __len__(self) -> int:
        return self.images.shape[0]

    @staticmethod
    def _scale(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32).div_(127.5).sub_(1.0)

    def __getitem__(self, i):
        x = self._scale(self.images[i])
        return x if self.labels is None else (x, self.labels[i])

    def __getitems__(self, indices: list[int]):
        # Batched fetch (used by DataLoader): one conversion per batch instead of one per item.
        idx = torch.as_tensor(indices, dtype=torch.long)
        xs = self._scale(self.images[idx]).unbind(0)
        if self.labels is None:
            return list(xs)
        return list(zip(xs, self.labels[idx].unbind(0), strict=True))


def make_dataloader(
    images_uint8,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = True,
    num_workers: int = 0,
    pin_memory: bool = False,
    *,
    labels=None,
) -> DataLoader:
    """A ``DataLoader`` of float32 NCHW batches in [-1, 1] (``(x, y)`` pairs with ``labels``).

    The order is fixed by ``seed`` (a ``torch.Generator``): two loaders built with the same seed
    yield the same batches, epoch after epoch.
    """
    ds = ImageDataset(images_uint8, labels)
    if drop_last and len(ds) < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the {len(ds)} images and "
                         "drop_last=True would yield no batch; lower batch_size or set drop_last=False")
    g = torch.Generator()
    g.manual_seed(int(seed))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, pin_memory=pin_memory, generator=g,
                      persistent_workers=num_workers > 0)


make_dataset = make_dataloader
