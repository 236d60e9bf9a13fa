"""Build ``dcgan_lab/assets/sample.npz``, the small real-data sample shipped inside the package.

The sample lets the book and the tests run with no network and no data folder. It is cut from
the verified files in the shared data folder (see its PROVENANCE.md), class-stratified with
``numpy.random.default_rng(0)``, rows kept in their original order::

    python scripts/make_sample.py [DATA_DIR] [--out dcgan_lab/assets/sample.npz]

Keys: ``<name>_x_<split>`` (uint8 images, grayscale stored as N,H,W), ``<name>_y_<split>``
(uint8 labels) and ``<name>_index_<split>`` (int32 rows in the source file's split), for
mnist / fashion_mnist (train, test), cifar10 (train, test, taken from the full CIFAR-10 rows via
``cifar10_small.npz``'s ``*_index``) and clothing64 (train, validation, test), plus
``clothing64_class_names``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

# name -> (file, {split: images per split}); counts are totals, spread evenly over the classes.
# Sized for the cpu profile offline (at most 15 MB in all): the chapters compare 1,000 generated
# with 1,000 real test digits and draw 1,000 of one class from train; clothing64 keeps enough
# photos for a 64x64 glimpse and a Frechet distance on 200 test photos.
PLAN: dict[str, tuple[str, dict[str, int]]] = {
    "mnist": ("mnist.npz", {"train": 12000, "test": 2500}),
    "fashion_mnist": ("fashion_mnist.npz", {"train": 3500, "test": 2000}),
    "cifar10": ("cifar10_small.npz", {"train": 800, "test": 200}),
    "clothing64": ("clothing64.npz", {"train": 360, "validation": 40, "test": 200}),
}
CLOTHING_SPLITS = ("train", "validation", "test")


def stratified(labels: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Return sorted row indices: ``total`` rows spread as evenly as possible over the classes."""
    classes = np.unique(labels)
    base, extra = divmod(total, len(classes))
    picked = []
    for i, c in enumerate(classes):
        rows = np.flatnonzero(labels == c)
        want = min(len(rows), base + (1 if i < extra else 0))
        picked.append(rng.choice(rows, size=want, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int32)


def build(data_dir: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    for name, (fname, splits) in PLAN.items():
        with np.load(data_dir / fname, allow_pickle=False) as f:
            if name == "clothing64":
                x, y, split = f["x"], f["y"], f["split"]
                out["clothing64_class_names"] = f["class_names"]
                for code, s in enumerate(CLOTHING_SPLITS):
                    rows = np.flatnonzero(split == code)
                    idx = rows[stratified(y[rows], splits[s], rng)]
                    out[f"{name}_x_{s}"], out[f"{name}_y_{s}"] = x[idx], y[idx]
                    out[f"{name}_index_{s}"] = idx.astype(np.int32)
                continue
            for s, n in splits.items():
                x, y = f[f"x_{s}"], f[f"y_{s}"]
                idx = stratified(y, n, rng)
                out[f"{name}_x_{s}"], out[f"{name}_y_{s}"] = x[idx], y[idx]
                # cifar10_small rows map back to the full CIFAR-10 rows through *_index.
                full = f[f"{s}_index"][idx] if f"{s}_index" in f.files else idx
                out[f"{name}_index_{s}"] = full.astype(np.int32)
    return out


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("DCGAN_LAB_DATA", here.parent / "shared" / "data"))
    ap.add_argument("--out", default=here / "dcgan_lab" / "assets" / "sample.npz")
    args = ap.parse_args(argv)
    arrays = build(Path(args.data_dir))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    for k, v in arrays.items():
        if "_x_" in k:
            print(f"{k:28s} {v.shape}")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
