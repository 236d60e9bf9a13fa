"""Train the small CNN classifiers that ``dcgan_lab.scoring.metrics`` uses as feature extractors.

    python scripts/train_classifiers.py                 # all four datasets
    python scripts/train_classifiers.py mnist --epochs 3 --threads 1

For each dataset it trains [conv3x3-BN-ReLU-maxpool] x 3 (x 4 for the 64x64 ``clothing64``) ->
dense 128 -> dense 10 with PyTorch on the real training split (inputs scaled to [-1, 1], like GAN
outputs; ``clothing64`` also reports its validation split after every epoch), folds BatchNorm into the
convolutions, writes ``dcgan_lab/assets/classifier_{dataset}.npz`` (float16) and measures the
test accuracy of the *shipped* weights with the numpy inference of ``dcgan_lab.scoring.classifier``,
recording it in ``classifier_{dataset}.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcgan_lab.scoring import classifier as C

CHANNELS = (32, 64, 128)
# epochs, augmentation: shift = random crop after padding by this many pixels (pad: "constant"
# pads with -1 = black, "replicate" repeats the edge pixels, for photos on light backgrounds),
# flip = h-flip; channels = the conv blocks (one 2x2 max-pool each)
SETTINGS = {
    "mnist": {"epochs": 2, "shift": 2, "flip": False, "lr": 2e-3},
    "fashion_mnist": {"epochs": 4, "shift": 0, "flip": True, "lr": 2e-3},
    "cifar10": {"epochs": 15, "shift": 4, "flip": True, "lr": 2e-3},
    # 64x64 photos: a 4th block keeps the flatten at 4x4x128 (the asset stays < 1 MB float16)
    "clothing64": {"epochs": 20, "shift": 6, "flip": True, "lr": 2e-3, "pad": "replicate",
                   "channels": (16, 32, 64, 128)},
}


class Net(nn.Module):
    def __init__(self, in_ch: int, size: int, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c = in_ch
        for out in channels:
            blocks += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(), nn.MaxPool2d(2)]
            c = out
            size //= 2
        self.features = nn.Sequential(*blocks)
        self.fc1 = nn.Linear(c * size * size, C.FEATURE_DIM)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(C.FEATURE_DIM, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1]."""
    return torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()


def augment(x: torch.Tensor, shift: int, flip: bool, g: torch.Generator,
            pad: str = "constant") -> torch.Tensor:
    n, _, h, w = x.shape
    if flip:
        m = torch.rand(n, generator=g) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    if shift:
        xp = (F.pad(x, (shift,) * 4, value=-1.0) if pad == "constant"
              else F.pad(x, (shift,) * 4, mode=pad))
        i = torch.randint(0, 2 * shift + 1, (n,), generator=g)
        j = torch.randint(0, 2 * shift + 1, (n,), generator=g)
        rows = (i[:, None] + torch.arange(h))[:, None, :, None]
        cols = (j[:, None] + torch.arange(w))[:, None, None, :]
        x = xp[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
               rows, cols]
    return x


def torch_accuracy(model: Net, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``model`` (eval mode, float32) on uint8 NHWC ``x``; leaves it in eval mode."""
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(to_tensor(x[i : i + 500])).argmax(1).numpy() == y[i : i + 500]).sum())
                   for i in range(0, len(x), 500))
    return hits / len(x)


def export(model: Net, image_shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Fold each BatchNorm into its convolution; return float16 arrays in PyTorch layout."""
    out: dict[str, np.ndarray] = {"image_shape": np.array(image_shape, np.int32)}
    mods = list(model.features)
    k = 0
    for a, b in zip(mods, mods[1:], strict=False):
        if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
            scale = b.weight / torch.sqrt(b.running_var + b.eps)
            out[f"conv{k}.weight"] = (a.weight * scale[:, None, None, None]).detach().numpy()
            out[f"conv{k}.bias"] = (b.bias - b.running_mean * scale).detach().numpy()
            k += 1
    for name in ("fc1", "fc2"):
        lin = getattr(model, name)
        out[f"{name}.weight"] = lin.weight.detach().numpy()
        out[f"{name}.bias"] = lin.bias.detach().numpy()
    return {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in out.items()}


def train(dataset: str, epochs: int | None, batch: int, seed: int) -> dict:
    s = SETTINGS[dataset]
    epochs = epochs or s["epochs"]
    x_train, y_train = C.load_real(dataset, "train", allow_sample=False)
    x_test, y_test = C.load_real(dataset, "test", allow_sample=False)
    # a validation split (clothing64 has one) is scored after every epoch, to choose the epochs
    x_val, y_val = (C.load_real(dataset, "validation", allow_sample=False)
                    if dataset in C.VALIDATION_SPLITS else (None, None))
    channels = tuple(s.get("channels", CHANNELS))
    pad = s.get("pad", "constant")
    h, w, c = x_train.shape[1:]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xt, yt = to_tensor(x_train), torch.from_numpy(y_train.astype(np.int64))
    model = Net(c, h, channels)
    opt = torch.optim.Adam(model.parameters(), lr=s["lr"], weight_decay=1e-4)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s["lr"], total_steps=steps,
                                                pct_start=0.2)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(xt), batch):
            idx = perm[start : start + batch]
            xb = augment(xt[idx], s["shift"], s["flip"], g, pad)
            logits = model(xb)
            loss = F.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
            total += len(idx)
        val = ""
        if x_val is not None:
            val_acc = torch_accuracy(model, x_val, y_val)
            val = f" val acc {val_acc:.4f}"
        print(f"{dataset} epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.4f} "
              f"train acc {correct / total:.4f}{val} ({time.time() - t0:.0f} s)", flush=True)
    seconds = time.time() - t0
    torch_acc = torch_accuracy(model, x_test, y_test)
    arrays = export(model, (h, w, c))
    path = C.weights_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    clf = C.Classifier.load(dataset)
    acc = clf.accuracy(x_test, y_test)
    info = {
        "dataset": dataset,
        "test_accuracy": round(acc, 5),
        "test_accuracy_torch_float32": round(torch_acc, 5),
        "n_test": int(len(x_test)),
        "n_train": int(len(x_train)),
        "epochs": epochs,
        "batch_size": batch,
        "augmentation": {"shift": s["shift"], "flip": s["flip"], **({"pad": pad} if "pad" in s
                                                                    else {})},
        "architecture": f"{' -> '.join(f'conv3x3({ch})-BN-ReLU-maxpool2' for ch in channels)}"
                        f" -> dense({C.FEATURE_DIM})-ReLU [features] -> dense(10)",
        "parameters": clf.n_params,
        "dtype": "float16",
        "file_bytes": path.stat().st_size,
        "seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "seed": seed,
        "date": dt.date.today().isoformat(),
        "command": "python scripts/train_classifiers.py " + " ".join(sys.argv[1:] or [dataset]),
    }
    if x_val is not None:
        info["validation_accuracy"] = round(clf.accuracy(x_val, y_val), 5)
        info["n_validation"] = int(len(x_val))
    C.info_path(dataset).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info), flush=True)
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="*", metavar="DATASET",
                   help=f"any of {', '.join(C.DATASETS)} (default: all)")
    p.add_argument("--epochs", type=int, default=None, help="override the per-dataset default")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    bad = [d for d in a.datasets if d not in C.DATASETS]
    if bad:
        p.error(f"unknown dataset(s) {bad}: choose from {', '.join(C.DATASETS)}")
    torch.set_num_threads(a.threads)
    for d in a.datasets or C.DATASETS:
        train(d, a.epochs, a.batch, a.seed)


if __name__ == "__main__":
    main()
