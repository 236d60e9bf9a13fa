"""Small shipped CNN classifiers, used as feature extractors for GAN metrics.

One network per dataset (``mnist``, ``fashion_mnist``, ``cifar10``, ``clothing64``), trained with PyTorch by
``scripts/train_classifiers.py`` and shipped as ``dcgan_lab/assets/classifier_{dataset}.npz``
(weights, BatchNorm folded into the convolutions) with ``classifier_{dataset}.json`` (the
measured test accuracy, epochs, seconds, date). Inference here is pure numpy (im2col + matmul),
so the metrics work on images from either framework without importing one.

Architecture: ``n`` blocks of [conv 3x3 "same" -> ReLU -> max-pool 2x2] (channels in the file:
32, 64, 128 for the 28x28 and 32x32 sets; four blocks of 16, 32, 64, 128 for the 64x64 photos of
``clothing64``, so every net flattens a 3x3 or 4x4 map), then flatten (in PyTorch's C, H, W order) -> dense 128 -> ReLU (the
*features*) -> dense 10 (the *logits*). Inputs are scaled to [-1, 1], like GAN outputs.

>>> clf = Classifier.load("mnist")
>>> clf.features(images).shape   # images: uint8 NHWC, or float [-1, 1] NHWC / NCHW
(N, 128)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DATASETS = ("mnist", "fashion_mnist", "cifar10", "clothing64")
IMAGE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3),
                "clothing64": (64, 64, 3)}
N_CLASSES = 10  # every shipped dataset has 10 classes
VALIDATION_SPLITS = ("clothing64",)  # datasets with a validation split besides train and test
FEATURE_DIM = 128


def weights_path(dataset: str) -> Path:
    """Path of the shipped weights for ``dataset``."""
    return ASSETS / f"classifier_{dataset}.npz"


def info_path(dataset: str) -> Path:
    """Path of the JSON record (test accuracy, epochs, ...) for ``dataset``."""
    return ASSETS / f"classifier_{dataset}.json"


def _check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"no shipped classifier for dataset {dataset!r}: choose one of "
                         f"{', '.join(DATASETS)}")
    return dataset


def load_info(dataset: str) -> dict[str, Any]:
    """The JSON record written when the classifier for ``dataset`` was trained."""
    path = info_path(_check_dataset(dataset))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python scripts/train_classifiers.py "
                                f"{dataset}` to train and write it")
    return json.loads(path.read_text())


def _conv3x3_same(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 stride-1 'same' convolution (cross-correlation, like PyTorch) on NHWC ``x``.

    ``w`` has PyTorch's layout (out, in, 3, 3). Computed as im2col + one matmul: the nine
    shifted copies of the zero-padded input are laid side by side on the channel axis, giving
    an (N*H*W, 9*C) patch matrix whose column order (kh, kw, c) matches ``w`` transposed to
    (out, kh, kw, in).
    """
    n, h, wd, c = x.shape
    out = w.shape[0]
    xp = np.zeros((n, h + 2, wd + 2, c), x.dtype)
    xp[:, 1:-1, 1:-1] = x
    cols = np.empty((n, h, wd, 9, c), x.dtype)
    for kh in range(3):
        for kw in range(3):
            cols[:, :, :, 3 * kh + kw] = xp[:, kh : kh + h, kw : kw + wd]
    y = cols.reshape(n * h * wd, 9 * c) @ w.transpose(2, 3, 1, 0).reshape(9 * c, out)
    y += b
    return y.reshape(n, h, wd, out)


def _maxpool2(x: np.ndarray) -> np.ndarray:
    """2x2 stride-2 max-pooling of NHWC ``x`` (odd edges dropped, like PyTorch)."""
    h2, w2 = x.shape[1] // 2, x.shape[2] // 2
    a = np.maximum(x[:, 0 : 2 * h2 : 2, 0 : 2 * w2 : 2], x[:, 0 : 2 * h2 : 2, 1 : 2 * w2 : 2])
    b = np.maximum(x[:, 1 : 2 * h2 : 2, 0 : 2 * w2 : 2], x[:, 1 : 2 * h2 : 2, 1 : 2 * w2 : 2])
    return np.maximum(a, b, out=a)


@dataclass(frozen=True)
class Classifier:
    """A shipped CNN with numpy inference. Build with :meth:`Classifier.load`."""

    dataset: str
    image_shape: tuple[int, int, int]
    params: dict[str, np.ndarray] = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    batch_size: int = 256

    @classmethod
    def load(cls, dataset: str, path: str | Path | None = None) -> Classifier:
        """Load the shipped classifier for ``dataset`` (or the weights file at ``path``)."""
        _check_dataset(dataset)
        path = Path(path) if path is not None else weights_path(dataset)
        if not path.is_file():
            raise FileNotFoundError(f"classifier weights {path} are missing: run `python "
                                    f"scripts/train_classifiers.py {dataset}` to create them")
        with np.load(path, allow_pickle=False) as f:
            params = {k: f[k].astype(np.float32) for k in f.files if k != "image_shape"}
            image_shape = tuple(int(v) for v in f["image_shape"])
        info = json.loads(info_path(dataset).read_text()) if info_path(dataset).is_file() else {}
        return cls(dataset, image_shape, params, info)  # type: ignore[arg-type]

    @property
    def n_conv(self) -> int:
        return sum(1 for k in self.params if k.startswith("conv") and k.endswith(".weight"))

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    # -- input handling ----------------------------------------------------------------------
    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Convert images to float32 NHWC in [-1, 1].

        Accepts uint8 (0..255) or float ([-1, 1]) arrays, NHWC or NCHW (the layout is read
        from where the channel axis of size C sits), or (N, H, W) for grayscale.
        """
        x = np.asarray(images)
        h, w, c = self.image_shape
        if x.ndim == 3 and c == 1:
            x = x[..., None]
        if x.ndim != 4:
            raise ValueError(f"images must be (N, H, W, C) or (N, C, H, W), got shape {x.shape}"
                             f" (the {self.dataset} classifier expects {h}x{w}x{c})")
        if x.shape[1:] == (h, w, c):
            pass
        elif x.shape[1:] == (c, h, w):
            x = x.transpose(0, 2, 3, 1)
        else:
            raise ValueError(f"images of shape {x.shape} do not fit the {self.dataset} classifier,"
                             f" which expects NHWC (N, {h}, {w}, {c}) or NCHW (N, {c}, {h}, {w});"
                             " resize or convert the images first")
        if x.dtype == np.uint8:
            return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"images must be uint8 (0..255) or float in [-1, 1], got dtype "
                             f"{x.dtype}")
        return x.astype(np.float32, copy=False)

    # -- forward -----------------------------------------------------------------------------
    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        for i in range(self.n_conv):
            x = _conv3x3_same(x, p[f"conv{i}.weight"], p[f"conv{i}.bias"])
            np.maximum(x, 0, out=x)
            x = _maxpool2(x)
        x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # PyTorch flatten order (C, H, W)
        feats = np.maximum(x @ p["fc1.weight"].T + p["fc1.bias"], 0)
        logits = feats @ p["fc2.weight"].T + p["fc2.bias"]
        return feats, logits

    def _batched(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.prepare(images)
        feats, logits = [], []
        for start in range(0, len(x), self.batch_size):
            f, lg = self._forward(x[start : start + self.batch_size])
            feats.append(f)
            logits.append(lg)
        if not feats:
            return (np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, 10), np.float32))
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate-layer features, shape (N, 128), float32."""
        return self._batched(images)[0]

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Class logits, shape (N, 10), float32."""
        return self._batched(images)[1]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted class labels, shape (N,), int64."""
        return self.logits(images).argmax(axis=1)

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of ``images`` classified as ``labels``."""
        return float(np.mean(self.predict(images) == np.asarray(labels).astype(np.int64)))

    def to_torch(self) -> Any:
        """The same network as a ``torch.nn.Sequential`` (imports torch; NCHW input)."""
        import torch
        from torch import nn

        layers: list[nn.Module] = []
        c_in = self.image_shape[2]
        for i in range(self.n_conv):
            w = self.params[f"conv{i}.weight"]
            conv = nn.Conv2d(c_in, w.shape[0], 3, padding=1)
            conv.weight.data = torch.from_numpy(w.copy())
            conv.bias.data = torch.from_numpy(self.params[f"conv{i}.bias"].copy())
            layers += [conv, nn.ReLU(), nn.MaxPool2d(2)]
            c_in = w.shape[0]
        layers.append(nn.Flatten())
        for name, act in (("fc1", True), ("fc2", False)):
            w = self.params[f"{name}.weight"]
            lin = nn.Linear(w.shape[1], w.shape[0])
            lin.weight.data = torch.from_numpy(w.copy())
            lin.bias.data = torch.from_numpy(self.params[f"{name}.bias"].copy())
            layers += [lin, nn.ReLU()] if act else [lin]
        return nn.Sequential(*layers).eval()


_CACHE: dict[str, Classifier] = {}


def get(dataset: str) -> Classifier:
    """The shipped classifier for ``dataset``, loaded once and cached."""
    if dataset not in _CACHE:
        _CACHE[dataset] = Classifier.load(dataset)
    return _CACHE[dataset]


def load_real(dataset: str, split: str = "train", download: bool = True,
              allow_sample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The real images (uint8 NHWC) and labels of ``split``, through :func:`dcgan_lab.data.load`.

    With no data folder, cache or download, this is the package's embedded sample: real images,
    fewer of them (``dcgan_lab.data.last_source(dataset)`` says which). Pass
    ``allow_sample=False`` where only the full split will do (recording a classifier's accuracy).
    """
    import warnings

    from dcgan_lab import data

    _check_dataset(dataset)
    with warnings.catch_warnings():
        # the sample notice belongs to the caller's own data.load; metrics on it are just smaller
        warnings.filterwarnings("ignore", message=r"dcgan_lab: .*embedded SAMPLE")
        x, y = data.load(dataset, split, allow_sample=allow_sample, download=download,
                         verbose=False)
    if x.ndim == 3:
        x = x[..., None]
    return x, y
