"""Train the three failed runs of the book's "Diagnose this run" page and ship their small traces.

    python scripts/make_diagnose_runs.py [--out book/_static/diagnose] [--only NAME ...]

Each run is short (a few hundred steps at most, on the CPU) and fails in one textbook way; what it
leaves in ``OUT/NAME/`` is what a reader gets to look at: ``history.csv`` (one row per step) and
``grid.png`` (64 samples of the fixed noise at the last step). ``OUT/runs.json`` records the
command or settings of each run, its wall time and the machine, so that the page can say how
each trace was made.

The folders are named ``run-a``, ``run-b`` and ``run-c`` so that the page does not give the answer
away; the failure each one shows:

* ``run-a`` (D wins): ``torch-mnist`` through the package's CLI with D given every advantage (ten times
  G's learning rate is not enough at this length, so: D's learning rate 1e-3, G's 2e-5, three D
  steps per G step) and the saturating minimax G loss, so that G's gradient vanishes once D wins.
* ``run-b`` (mode collapse): ``torch-mnist`` through the CLI with the balance the other way round (G's
  learning rate 3e-3, D's 2e-5): G outruns D and keeps drawing whatever D currently accepts.
* ``run-c`` (the frozen-BatchNorm trap): ``gia-dcgan-mnist`` in Keras 3 with the stacked recipe of GANs in Action and the
  stock ``BatchNormalization`` in D (chapter 3's trap): inside ``combined`` the frozen D runs its
  BatchNorm layers in inference mode, so G is trained against a different function from the one
  ``D.train_on_batch`` trains. The package's stacked trainer always fixes that trap
  (``TF1BatchNormalization``), so this run is written out here as the Keras sources write it,
  with the package's layer stack (``dcgan_lab.keras.models.build``, stock BatchNorm).

The PNGs stay far below 200 KB (8x8 grids of 28x28 digits); the CSVs are a few kilobytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (CLI arguments, what the run is meant to show)
CLI_RUNS = {
    "run-a": (["torch-mnist", "--framework", "torch", "--steps", "150", "--batch-size", "64",
                "--sample-every", "50", "--lr-d", "1e-3", "--lr-g", "2e-5", "--d-steps", "3",
                "--g-loss", "minimax"],
               "D overpowers G; with the minimax G loss G's gradient vanishes"),
    "run-b": (["torch-mnist", "--framework", "torch", "--steps", "160", "--batch-size", "32",
                  "--sample-every", "40", "--lr-g", "3e-3", "--lr-d", "2e-5"],
                 "G outruns D and collapses onto what D accepts"),
}
FROZEN_BN = {"recipe": "gia-dcgan-mnist", "steps": 150, "batch_size": 32, "seed": 0,
             "optimizer": "Adam() for D and for combined (Keras defaults, as GANs in Action)"}


def run_cli(name: str, out: Path) -> dict:
    args, what = CLI_RUNS[name]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / name
        cmd = [sys.executable, "-m", "dcgan_lab.cli", "train", *args, "--profile", "cpu",
               "--seed", "0", "--no-progress", "--out", str(run_dir)]
        t0 = time.time()
        subprocess.run(cmd, check=True, cwd=ROOT)
        seconds = time.time() - t0
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        last = sorted((run_dir / "samples").glob("step_*.png"))[-1]
        for src, dst in ((run_dir / "history.csv", "history.csv"), (last, "grid.png")):
            shutil.copyfile(src, target / dst)       # contents only: the temporary folder's modes stay behind
    shown = ["dcgan-lab", "train", *args, "--profile", "cpu", "--seed", "0"]
    return {"command": " ".join(shown), "what": what, "grid": last.name, "seconds": round(seconds)}


def run_frozen_bn(out: Path) -> dict:
    from dcgan_lab.tfquiet import import_tensorflow

    import_tensorflow()
    import keras
    import numpy as np

    from dcgan_lab import data, grids
    from dcgan_lab.keras.models import build

    cfg = FROZEN_BN
    keras.utils.set_random_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    images, _ = data.load("mnist", "train")
    images = images.astype("float32") / 127.5 - 1.0
    G, D = build(cfg["recipe"])                      # stock BatchNormalization in D: the trap
    latent = G.input_shape[-1]
    D.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    D.trainable = False
    z_in = keras.Input((latent,))
    combined = keras.Model(z_in, D(G(z_in)))
    combined.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    b = cfg["batch_size"]
    ones, zeros = np.ones((b, 1), "float32"), np.zeros((b, 1), "float32")
    fixed = rng.standard_normal((64, latent)).astype("float32")
    rows, t0 = [], time.time()
    for step in range(1, cfg["steps"] + 1):
        real = images[rng.integers(0, len(images), b)]
        z_d = rng.standard_normal((b, latent)).astype("float32")
        z_g = rng.standard_normal((b, latent)).astype("float32")
        D.trainable = True                           # Keras 3 reads the flag when it traces
        fake = G(z_d, training=True)
        d_real = float(np.mean(D(real, training=True)))
        d_fake = float(np.mean(D(fake, training=True)))
        loss_real = float(D.train_on_batch(real, ones))
        loss_fake = float(D.train_on_batch(fake, zeros))
        D.trainable = False
        d_fake_g = float(np.mean(combined(z_g, training=True)))   # what G's update sees
        loss_g = float(combined.train_on_batch(z_g, ones))
        rows.append({"step": step, "loss_d": loss_real + loss_fake, "loss_d_real": loss_real,
                     "loss_d_fake": loss_fake, "loss_g": loss_g, "d_real": d_real,
                     "d_fake": d_fake, "d_fake_g": d_fake_g,
                     "seconds": round(time.time() - t0, 3)})
    target = out / "run-c"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    grids.save_png(np.asarray(G(fixed, training=False)), target / "grid.png", nrow=8)
    return {"settings": cfg, "what": "stacked Keras GAN with stock BatchNormalization in the "
            "frozen D (the Keras 3 trap)", "grid": f"step {cfg['steps']}",
            "seconds": round(time.time() - t0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "book" / "_static" / "diagnose")
    parser.add_argument("--only", nargs="*", choices=[*CLI_RUNS, "run-c"])
    args = parser.parse_args()
    names = args.only or [*CLI_RUNS, "run-c"]
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "runs.json"
    for name in names:
        print(f"diagnose: training {name}", flush=True)
        record = run_frozen_bn(args.out) if name == "run-c" else run_cli(name, args.out)
        record["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}"
        # read just before writing: another run of this script may have recorded its runs meanwhile
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        manifest[name] = record
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        for f in sorted((args.out / name).iterdir()):
            print(f"  {f.relative_to(args.out)}: {f.stat().st_size / 1024:.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
