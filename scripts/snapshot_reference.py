"""Make a reference-run snapshot for the book from a run folder of either framework.

::

    python scripts/snapshot_reference.py RUN_DIR OUT_DIR [-n 372] [--command "..."]
        [--started "2026-12-03 08:23:56 UTC"] [--commit f6006e8] [--note "..."]
        [--discriminator]

RUN_DIR is a ``dcgan-lab train`` folder (PyTorch ``checkpoint.pt`` or Keras
``checkpoint.keras.npz``); it is only read, so a run that is still training can be snapshotted
(its checkpoint is written atomically). OUT_DIR (replaced) becomes a run folder that
``load_generator``, ``dcgan-lab sample`` and ``dcgan-lab evaluate`` accept, holding:

- the generator of the latest checkpoint only, stored float16 (loading casts it back to float32):
  ``generator.pt`` (a state dict, read with ``weights_only=True``) for PyTorch, a generator-only
  ``checkpoint.keras.npz`` (compressed, read with ``allow_pickle=False``) for Keras;
- with ``--discriminator`` (PyTorch runs), the checkpoint's discriminator as well, float16:
  ``discriminator.pt``, which ``dcgan_lab.torch.load_discriminator`` and ``dcgan-lab probe`` read;
- ``config.json``; ``history.csv`` up to the checkpoint's step;
- ``samples/``: the first, two middle and the last fixed-noise grid, plus the grid of the
  snapshot's generator at its step (the run's fixed noise) when the run has not drawn that one;
- ``training.gif``: the fixed-noise grids over training (at most 12 frames, half size);
- ``evaluate.json``: ``dcgan-lab evaluate OUT_DIR -n N --json`` plus ``real_floor``, the Frechet
  distance of N random training photos against the same N test photos (the measure's floor);
- ``PROVENANCE.md``: command, steps, wall time, machine, commit and the score.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MAX_GENERATOR_BYTES = 10 * 2**20
GIF_FRAMES = 12
GIF_SCALE = 0.5  # half-size frames keep the GIF well under 1 MB

TEMPLATE = """\
# Reference run: {recipe} ({framework_name}) on {data} — a snapshot at step {step:,} of {steps:,}

A run folder that `dcgan-lab sample`, `dcgan-lab evaluate` and
`dcgan_lab.{framework}.load_generator` accept. `{generator_file}` is the generator of the
checkpoint at step {step:,}, stored as float16 ({how_read}; loading casts it back to float32);
`history.csv` has one row per step up to {step:,}; `samples/` holds the fixed-noise grids of
steps {grid_steps}; `training.gif` shows {gif_frames} fixed-noise grids over training.

- Command: `{command}`{commit_text}
- Steps: {step:,} of the {steps:,} asked for (batch {batch_size}, seed {seed}; config.json's
  profile: {profile}).
- Wall time: started {started}, checkpoint of step {step:,} written {ended}; {step_seconds:,.0f} s
  of step time (the history's `seconds` column summed, {step_hours:.2f} h).
- Machine: {machine}.
- Snapshot: `python scripts/snapshot_reference.py {run_dir} {out_dir} -n {n}{flags}` on {snapped}.
- Score: `dcgan-lab evaluate {out_dir} -n {n} --json` -> Fréchet distance {fid:.1f} on the
  {data} classifier's features against {n} test photos ({modes:.0f}/10 classes, precision
  {precision:.2f}, recall {recall:.2f}). The floor of the measure, {n} random training photos
  against the same test photos, is {floor:.1f} (`evaluate.json`, key `real_floor`).
{note}"""


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _read_history(path: Path, last_step: int) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "step" not in rows[0]:
        raise SystemExit(f"{path}: not a history.csv with a 'step' column")
    i = rows[0].index("step")
    return rows[0], [r for r in rows[1:] if r and int(float(r[i])) <= last_step]


def _torch_generator(run: Path, out: Path, cfg,
                     discriminator: bool = False) -> tuple[int, np.ndarray]:
    """Write ``generator.pt`` (and with ``discriminator``, ``discriminator.pt``; float16);
    return the checkpoint's step and fixed noise."""
    import torch

    T = importlib.import_module("dcgan_lab.torch.backend")  # the package exports a train()

    state = T.load_checkpoint(run / T.CHECKPOINT_NAME, cfg)
    weights = {k: (v.half() if v.is_floating_point() else v) for k, v in state["generator"].items()}
    torch.save(weights, out / T.GENERATOR_NAME)
    if discriminator:
        d = {k: (v.half() if v.is_floating_point() else v)
             for k, v in state["discriminator"].items()}
        torch.save(d, out / "discriminator.pt")
    return int(state["step"]), state["fixed_noise"].numpy()


def _keras_generator(run: Path, out: Path, cfg) -> tuple[int, np.ndarray]:
    """Write a generator-only, float16, compressed ``checkpoint.keras.npz``; return its step and
    fixed noise. ``dcgan_lab.keras.load_generator`` builds the model and assigns these arrays."""
    K = importlib.import_module("dcgan_lab.keras.backend")  # the package exports a train()

    state = K.load_checkpoint(run / K.CHECKPOINT_NAME, cfg)
    header = dict(state["header"])
    header["groups"] = {"generator": header["groups"]["generator"]}
    arrays = {k: (a.astype(np.float16) if a.dtype == np.float32 else a)
              for k, a in state["arrays"].items() if k.startswith("generator/")}
    arrays["fixed_noise"] = state["arrays"]["fixed_noise"]
    arrays["header"] = np.array(json.dumps(header))
    with open(out / K.CHECKPOINT_NAME, "wb") as f:
        np.savez_compressed(f, **arrays)
    return int(header["step"]), state["arrays"]["fixed_noise"]


def _pick_grids(paths: list[Path], k: int = 4) -> list[Path]:
    """The first, ``k - 2`` evenly spaced middle ones and the last."""
    if len(paths) <= k:
        return paths
    idx = np.unique(np.round(np.linspace(0, len(paths) - 1, k)).astype(int))
    return [paths[i] for i in idx]


def _shrunk(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        size = (round(im.width * GIF_SCALE), round(im.height * GIF_SCALE))
        return np.asarray(im.resize(size, Image.LANCZOS))


def _real_floor(dataset: str, n: int, seed: int = 0) -> float:
    """FD of ``n`` random training photos against the ``n`` test photos evaluate compares with."""
    from dcgan_lab.scoring import classifier, evaluation, metrics

    test, _ = classifier.load_real(dataset, "test")
    train, _ = classifier.load_real(dataset, "train")
    ref = test[np.sort(np.random.default_rng([seed, 7]).permutation(len(test))[:n])]
    other = train[np.random.default_rng(seed).choice(len(train), n, replace=False)]  # as ch. 3, 4
    return float(metrics.frechet_distance(evaluation.classify(ref, dataset)[0],
                                          evaluation.classify(other, dataset)[0]))


def _evaluate(out: Path, n: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "dcgan_lab.cli", "evaluate", str(out), "-n",
                           str(n), "--json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"dcgan-lab evaluate {out} failed:\n{proc.stdout}{proc.stderr}")
    print(proc.stdout, end="")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def snapshot(run: Path, out: Path, *, n: int = 372, command: str | None = None,
             started: str | None = None, commit: str | None = None, note: str = "",
             evaluate: bool = True, discriminator: bool = False) -> dict:
    """Build the snapshot folder ``out`` from the run folder ``run``; return its evaluate.json."""
    from dcgan_lab import figures
    from dcgan_lab.run import rundir

    if out.resolve() == run.resolve():
        raise SystemExit(f"OUT_DIR {out} is the run folder itself: choose another folder")
    rd = rundir.RunDir(run)
    cfg = rd.read_config()
    if out.exists():
        shutil.rmtree(out)
    (out / "samples").mkdir(parents=True)
    shutil.copyfile(rd.config_path, out / "config.json")

    if cfg.framework == "torch":
        step, fixed = _torch_generator(run, out, cfg, discriminator)
        gen_file, how = "generator.pt", "a state dict, `torch.load(..., weights_only=True)`"
        ckpt = run / "checkpoint.pt"
    else:
        if discriminator:
            raise SystemExit("--discriminator: only PyTorch runs keep their D in a snapshot")
        step, fixed = _keras_generator(run, out, cfg)
        gen_file = "checkpoint.keras.npz"
        how = ("the generator group of a Keras checkpoint, compressed, read with "
               "`allow_pickle=False`")
        ckpt = run / "checkpoint.keras.npz"
    size = (out / gen_file).stat().st_size
    if size > MAX_GENERATOR_BYTES:
        raise SystemExit(f"{out / gen_file}: {size / 2**20:.1f} MiB, over the 10 MiB limit")

    header, rows = _read_history(rd.history_path, step)
    with open(out / "history.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    seconds = sum(float(r[header.index("seconds")]) for r in rows) if "seconds" in header else 0.0

    grids = [p for p in rd.sample_paths() if int(p.stem.split("_")[1]) <= step]
    for p in _pick_grids(grids):
        shutil.copyfile(p, out / "samples" / p.name)
    frames = list(grids)
    if not grids or int(grids[-1].stem.split("_")[1]) != step:  # draw the snapshot's own grid
        if cfg.framework == "torch":
            import torch

            T = importlib.import_module("dcgan_lab.torch.backend")  # the package exports a train()
            G = T.load_generator(out)
            with torch.no_grad():
                images = T._to_uint8(G(torch.from_numpy(np.asarray(fixed, np.float32))))
        else:
            from dcgan_lab import data
            K = importlib.import_module("dcgan_lab.keras.backend")  # the package exports a train()
            images = data.to_uint8(K._generate(K.load_generator(out), np.asarray(fixed, np.float32)))
        last = rd.sample_path(step).name
        figures.save_png(images, out / "samples" / last, nrow=int(np.ceil(np.sqrt(len(images)))))
        frames.append(out / "samples" / last)
    gif_frames = [frames[i] for i in np.unique(np.round(
        np.linspace(0, len(frames) - 1, min(GIF_FRAMES, len(frames)))).astype(int))]
    figures.save_gif([_shrunk(p) for p in gif_frames], out / "training.gif", duration=400)

    scores: dict = {}
    if evaluate:
        scores = _evaluate(out, n)
        scores["real_floor"] = _real_floor(cfg.data, int(scores["n"]))
        scores["step"] = step
        (out / "evaluate.json").write_text(json.dumps(scores, indent=2) + "\n")

    if command is None:
        command = (f"python -m dcgan_lab.cli train {cfg.recipe} --framework {cfg.framework} "
                   f"--steps {cfg.steps} --batch-size {cfg.batch_size} --sample-every "
                   f"{cfg.sample_every} --checkpoint-every {cfg.checkpoint_every} --out {run} "
                   f"--no-progress")
    grid_steps = [int(p.stem.split("_")[1]) for p in sorted((out / "samples").glob("step_*.png"))]
    text = TEMPLATE.format(
        recipe=cfg.recipe, framework=cfg.framework, data=cfg.data,
        framework_name={"torch": "PyTorch", "keras": "Keras"}[cfg.framework],
        step=step, steps=cfg.steps, generator_file=gen_file, how_read=how,
        grid_steps=", ".join(f"{s:,}" for s in grid_steps), gif_frames=len(gif_frames),
        command=command, commit_text=f" (from a checkout of commit {commit})" if commit else "",
        batch_size=cfg.batch_size, seed=cfg.seed, profile=cfg.profile,
        started=started or _stamp(rd.config_path.stat().st_mtime) + " (config.json written)",
        ended=_stamp(ckpt.stat().st_mtime), step_seconds=seconds, step_hours=seconds / 3600,
        machine=(f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                 f"{platform.processor() or 'cpu'}, Python {platform.python_version()}"),
        run_dir=run, out_dir=out, n=scores.get("n", n),
        flags=" --discriminator" if discriminator else "",
        snapped=f"{_stamp(datetime.now(timezone.utc).timestamp())} (commit {_git_commit()})",
        fid=scores.get("fid", float("nan")), modes=scores.get("modes_covered", float("nan")),
        precision=scores.get("precision", float("nan")), recall=scores.get("recall", float("nan")),
        floor=scores.get("real_floor", float("nan")), note=f"\n{note}\n" if note else "")
    (out / "PROVENANCE.md").write_text(text)
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("-n", type=int, default=372, help="samples and test photos to score (372)")
    p.add_argument("--command", help="the training command (default: rebuilt from config.json)")
    p.add_argument("--started", help="when the run started (default: config.json's time)")
    p.add_argument("--commit", help="the commit the run was trained from")
    p.add_argument("--note", default="", help="a paragraph appended to PROVENANCE.md")
    p.add_argument("--no-evaluate", action="store_true", help="skip dcgan-lab evaluate")
    p.add_argument("--discriminator", action="store_true",
                   help="also keep the discriminator (discriminator.pt, float16; PyTorch runs)")
    args = p.parse_args(argv)
    if not args.run_dir.is_dir():
        raise SystemExit(f"RUN_DIR {args.run_dir}: no such folder")
    snapshot(args.run_dir, args.out_dir, n=args.n, command=args.command, started=args.started,
             commit=args.commit, note=args.note, evaluate=not args.no_evaluate,
             discriminator=args.discriminator)
    print(f"wrote {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
