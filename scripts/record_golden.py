"""Record the golden results of the training loops: ``tests/golden/train_hashes.json``.

For every recipe, in PyTorch and in both Keras styles, train a few steps at the smoke profile
(``GOLDEN_OPTIONS``) on the embedded sample's images (so that every machine trains on the same
batches) and keep a sha256 of the final generator and discriminator state (weights
and BatchNorm statistics, read back from the run's checkpoint) and the history's losses; and
for the CLI, which files a ``dcgan-lab train`` run folder holds and its ``config.json``.
``tests/test_golden.py`` retrains and compares, bit for bit.

Re-record deliberately (e.g. after a recipe's hyperparameters change) with::

    PYTHONPATH=$PWD DCGAN_LAB_PROFILE=smoke python scripts/record_golden.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("DCGAN_LAB_PROFILE", "smoke")

import numpy as np  # noqa: E402

GOLDEN_PATH = Path(__file__).resolve().parents[1] / "tests" / "golden" / "train_hashes.json"
RECORD_COMMAND = "PYTHONPATH=$PWD DCGAN_LAB_PROFILE=smoke python scripts/record_golden.py"
GOLDEN_OPTIONS = {"steps": 3, "batch_size": 8, "n_fixed": 4, "sample_every": 2,
                  "checkpoint_every": 2}
LOSSES = ("loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake")
CLI_ARGS = ["--steps", "2", "--batch-size", "8", "--n-fixed", "4", "--no-progress"]


def runs() -> list[tuple[str, str, str | None]]:
    """(recipe, framework, keras_style) of every golden run: 8 torch and 16 Keras runs."""
    from dcgan_lab import recipes

    out: list[tuple[str, str, str | None]] = []
    for name in recipes.names():
        out.append((name, "torch", None))
        out.extend((name, "keras", style) for style in ("stacked", "train_step"))
    return out


def key(recipe: str, framework: str, style: str | None) -> str:
    return f"{recipe}/{framework}" + (f"/{style}" if style else "")


def _digest(arrays: list[tuple[str, np.ndarray]]) -> str:
    h = hashlib.sha256()
    for _, a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _state_hashes(run: Path, framework: str) -> dict[str, str]:
    """sha256 of the generator's and the discriminator's saved state, in saved order."""
    if framework == "torch":
        import torch

        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        return {part: _digest([(k, v.numpy()) for k, v in state[part].items()])
                for part in ("generator", "discriminator")}
    with np.load(run / "checkpoint.keras.npz", allow_pickle=False) as z:
        return {part: _digest([(k, z[k]) for k in sorted(z.files) if k.startswith(part + "/")])
                for part in ("generator", "discriminator")}


def train_one(recipe: str, framework: str, style: str | None, folder: Path) -> dict:
    """Train one golden run into ``folder``; its hashes and losses."""
    from dcgan_lab import data, recipes, training

    options = training.TrainOptions(keras_style=style, **GOLDEN_OPTIONS)
    # Always the embedded sample's training images: the same batches on every machine, whatever
    # data folder or cache it has (a full data set draws other images at the same indices).
    images = data._read_sample(recipes.get(recipe).dataset, "train")[0]
    if framework == "torch":
        import torch

        from dcgan_lab.torch import train

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # CPU sums depend on the thread count: one, on every machine
        try:
            history = train(recipe, folder, options=options, profile="smoke", data=images,
                            progress=False)
        finally:
            torch.set_num_threads(threads)
    else:
        from dcgan_lab.keras import train

        history = train(recipe, folder, options=options, profile="smoke", data=images,
                            progress=False)
    return {**_state_hashes(folder, framework),
            "losses": {k: [float(v) for v in history[k]] for k in LOSSES}}


def cli_outputs(framework: str, folder: Path) -> dict:
    """The files a ``dcgan-lab train`` run folder holds and its config.json (keras: dense-mnist)."""
    from dcgan_lab import cli

    rc = cli.main(["train", "dense-mnist", "--framework", framework, "--profile", "smoke",
                   "--out", str(folder), *CLI_ARGS])
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return {"rc": rc, "files": files,
            "config": json.loads((folder / "config.json").read_text())}


def record(only: list[str] | None = None) -> dict:
    results: dict = {"options": GOLDEN_OPTIONS, "runs": {}, "cli": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe, framework, style in runs():
            k = key(recipe, framework, style)
            if only and k not in only:
                continue
            print(k, flush=True)
            results["runs"][k] = train_one(recipe, framework, style, Path(tmp) / k)
        for framework in ("torch", "keras"):
            results["cli"][framework] = cli_outputs(framework, Path(tmp) / "cli" / framework)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=GOLDEN_PATH)
    args = p.parse_args(argv)
    results = record()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(results['runs'])} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
