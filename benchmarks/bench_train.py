"""Training speed and memory: our step function, plain and with each speed option, against a
plain reference loop, per recipe and framework.

    python benchmarks/bench_train.py --framework torch,keras --recipes all --steps 20 \\
        --batch-size 64 --out benchmarks/results.md

The speed targets (issues 14 and 22) in one run, each by alternating blocks in one process
(``alternate.py``; the Keras pair in a subprocess of its own), printed as a table:

    python benchmarks/bench_train.py --targets --blocks 6 --block-steps 2 [--record]

For every (framework, recipe) several measurements run, each in a fresh subprocess so that peak
memory is that run's alone (``--variants`` picks them):

* ``reference``: the same networks trained by a plain loop written inline in the style of the
  canonical example (PyTorch: pytorch/examples ``dcgan/main.py``: fp32, no compile, BCE, Adam,
  full real and fake batches, G's update reusing the fake batch of D's update; Keras: see
  ``bench_train_keras.py``);
* ``ours``: the package's step function (``dcgan_lab.torch.step.train_step``), exactly what the
  training loop calls, without the loop's I/O, with every speed option of
  :class:`dcgan_lab.speed.Speed` off;
* ``default``: the same with the measured defaults (:data:`dcgan_lab.speed.DEFAULTS`);
* one row per speed option (PyTorch: :data:`TORCH_VARIANTS`, Keras:
  ``bench_train_keras.KERAS_VARIANTS``), that option alone on.

All see the same uint8 images (random, of the recipe's shape). Speed is generator steps per
second after ``--warmup`` untimed steps (compilers compile there: their time is reported as
"warm-up s"); memory is the process' peak resident set (``ru_maxrss``; DataLoader worker
processes are not counted) and its growth from just before the models are built (plus the peak
CUDA allocation on a GPU). Each variant of ours also records G's loss per step, so the report
shows how far an option moves the losses from the plain run on the same inputs. The report is a
markdown table (``--out``) and the same rows as JSON (``--out`` with ``.json``).

A framework is a dict in :data:`FRAMEWORKS` of functions ``fn(recipe, steps, batch_size, warmup)
-> dict`` with at least ``seconds`` (of the timed steps) and optionally ``notes``,
``gpu_peak_mb``, ``warmup_seconds`` and ``loss_g``; the Keras ones come from
``bench_train_keras.py``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from dcgan_lab import recipes  # noqa: E402
from dcgan_lab.run import config, streams  # noqa: E402


def _images(recipe: recipes.Recipe, batch_size: int, seed: int = 0) -> np.ndarray:
    h, w, c = recipe.image_shape
    n = max(4 * batch_size, 256)
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _maxrss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)


# --------------------------------------------------------------------------------------------
# PyTorch


def _torch_setup(recipe_name: str, batch_size: int):
    import torch

    from dcgan_lab.torch.models import build

    cfg = config.resolve(recipe_name, "torch", config.TrainOptions(batch_size=batch_size),
                           profile="smoke")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    G, D = build(recipe_name)
    G, D = G.to(device), D.to(device)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    return torch, cfg, device, G, D, opt_g, opt_d


def _torch_sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _torch_result(torch, device, seconds: float, notes: str) -> dict:
    out = {"seconds": seconds, "notes": notes, "device": str(device)}
    if device.type == "cuda":
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


#: variant name -> the Speed options it turns on (on top of everything off)
TORCH_VARIANTS = {
    "ours": {},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "bf16": {"autocast": "bf16"},
    "workers": {"workers": 1},
}


def torch_ours(recipe_name: str, steps: int, batch_size: int, warmup: int,
               variant: str = "ours") -> dict:
    """``dcgan_lab.torch.step.train_step`` as ``train`` runs it, minus its I/O.

    ``variant``: ``"ours"`` (every speed option off), ``"default"`` (the measured defaults of
    :data:`dcgan_lab.speed.DEFAULTS` for this device) or one option of :data:`TORCH_VARIANTS`.
    """
    import importlib

    from dcgan_lab import speed as speed_mod

    torch, cfg, device, G, D, opt_g, opt_d = _torch_setup(recipe_name, batch_size)
    T = importlib.import_module("dcgan_lab.torch.backend")
    if variant == "default":
        fast = speed_mod.resolve(None, "torch", device.type)
    else:
        fast = speed_mod.PLAIN.replace(**TORCH_VARIANTS[variant])
    if fast.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_step, D_step = (torch.compile(G), torch.compile(D)) if fast.compile else (G, D)
    images = _images(cfg.recipe_obj, batch_size)
    cfg = cfg.__class__(**{**cfg.to_dict(), "steps": warmup + steps})
    batches = iter(T.step_loader(images, cfg, 0, fast, device))
    losses = []

    def run(first: int, last: int) -> None:
        for step in range(first, last + 1):
            m = T.train_step(step, G_step, D_step, opt_g, opt_d, images, cfg, device,
                             inputs=next(batches), speed=fast)
            losses.append(m["loss_g"])

    t_compile = time.perf_counter()
    run(1, warmup)
    _torch_sync(torch, device)
    t0 = time.perf_counter()
    run(warmup + 1, warmup + steps)
    _torch_sync(torch, device)
    seconds = time.perf_counter() - t0
    n_real, n_fake = streams.d_batch_sizes(cfg)
    notes = [fast.describe(), "G on D's fake batch" if streams.reuses_fake(cfg)
             else "fresh z for G (one extra no-grad G forward)"]
    if cfg.half_batch:
        notes.append(f"D sees {n_real} real + {n_fake} fake")
    if cfg.rounds_per_step > 1:
        notes.append(f"{cfg.rounds_per_step} rounds per step")
    out = _torch_result(torch, device, seconds, "; ".join(notes))
    out.update(warmup_seconds=t0 - t_compile, loss_g=losses)
    return out


def _canonical_step(torch, netG, netD, optimizerG, optimizerD, criterion, nz, device,
                    images: np.ndarray, batch_size: int, i: int) -> None:
    """One iteration of pytorch/examples ``dcgan/main.py``, line for line (the data loader's
    batch is made inline from the uint8 images; ``noise`` is (b, nz) because our generators take
    flat ``z``; the ``.item()`` calls are those of its progress print)."""
    real_label, fake_label = 1.0, 0.0
    rows = images[(i * batch_size) % (len(images) - batch_size):][:batch_size]
    data = (torch.from_numpy(rows).permute(0, 3, 1, 2).contiguous().float() / 127.5 - 1.0,)
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    # train with real
    netD.zero_grad()
    real_cpu = data[0].to(device)
    b_size = real_cpu.size(0)
    label = torch.full((b_size,), real_label, dtype=real_cpu.dtype, device=device)
    output = netD(real_cpu).view(-1)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()
    # train with fake
    noise = torch.randn(b_size, nz, device=device)
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach()).view(-1)
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()
    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake).view(-1)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()
    _ = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)  # the example prints these


def torch_reference(recipe_name: str, steps: int, batch_size: int, warmup: int) -> dict:
    """The canonical pytorch/examples DCGAN loop, inline, on the same networks."""
    torch, cfg, device, netG, netD, optimizerG, optimizerD = _torch_setup(recipe_name, batch_size)
    nn = torch.nn
    criterion = nn.BCELoss() if cfg.loss == "bce" else nn.BCEWithLogitsLoss()
    nz = cfg.recipe_obj.latent_dim
    images = _images(cfg.recipe_obj, batch_size)

    def one_step(i: int) -> None:
        _canonical_step(torch, netG, netD, optimizerG, optimizerD, criterion, nz, device, images,
                        batch_size, i)

    for i in range(warmup):
        one_step(i)
    _torch_sync(torch, device)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        one_step(i)
    _torch_sync(torch, device)
    return _torch_result(torch, device, time.perf_counter() - t0, "pytorch/examples dcgan loop")


def parse_speed(text: str | None):
    """``"channels_last,autocast=bf16"`` -> :class:`dcgan_lab.speed.Speed`
    (:func:`dcgan_lab.speed.parse`, for the CPU)."""
    from dcgan_lab import speed as speed_mod

    return speed_mod.parse(text, "torch", "cpu")


def torch_alternating(recipe_name: str, batch_size: int, blocks: int, block_steps: int,
                      warmup: int = 1, speed: str | None = None) -> dict:
    """Ours (``train_step``, with the speed options ``speed`` (:func:`parse_speed`), default all
    off) and the canonical loop in ONE process, in alternating blocks of ``block_steps`` steps
    (ours, reference, reference, ours, ...), so that both see the same machine load. Returns each
    block's seconds and the ratio of the summed times (reference / ours: > 1 means ours is
    faster), and G's loss at each of ours' steps (to see that an option keeps the losses sane)."""
    import importlib

    torch, cfg, device, G, D, opt_g, opt_d = _torch_setup(recipe_name, batch_size)
    _, _, _, netG, netD, optimizerG, optimizerD = _torch_setup(recipe_name, batch_size)
    T = importlib.import_module("dcgan_lab.torch.backend")
    fast = parse_speed(speed)
    if fast.workers:
        raise ValueError("--speed workers: the alternating mode prepares inputs in the process")
    if fast.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_step, D_step = (torch.compile(G), torch.compile(D)) if fast.compile else (G, D)
    images = _images(cfg.recipe_obj, batch_size)
    cfg = cfg.__class__(**{**cfg.to_dict(), "steps": 10**9})
    criterion = torch.nn.BCELoss() if cfg.loss == "bce" else torch.nn.BCEWithLogitsLoss()
    nz = cfg.recipe_obj.latent_dim
    from alternate import alternate

    losses: list[float] = []

    def ours(i: int) -> None:
        losses.append(T.train_step(i, G_step, D_step, opt_g, opt_d, images, cfg, device,
                                   speed=fast)["loss_g"])

    def reference(i: int) -> None:
        _canonical_step(torch, netG, netD, optimizerG, optimizerD, criterion, nz, device, images,
                        batch_size, i)

    r = alternate({"ours": ours, "reference": reference}, blocks, block_steps, warmup,
                  sync=lambda: _torch_sync(torch, device))
    return {"recipe": recipe_name, "batch_size": batch_size, "device": str(device),
            "threads": torch.get_num_threads(), "speed": fast.describe(),
            "loss_g": [round(v, 4) for v in losses], **r}


# --------------------------------------------------------------------------------------------
# the speed targets of issues 14 and 22, in one run (--targets)

#: Recipe and batch of the targets (the 64x64 DCGAN of the paper, batch 64).
TARGET_RECIPE, TARGET_BATCH = "dcgan64", 64

#: (name, kind, ours, reference, least ratio reference seconds / ours seconds); ``ours`` of a
#: torch target is its speed options (:func:`dcgan_lab.speed.parse` text).
TARGETS = [
    ("torch plain vs canonical", "torch", "plain", "pytorch/examples dcgan/main.py step", 1.05),
    ("torch fastest CPU options vs canonical", "torch", "fastest",
     "pytorch/examples dcgan/main.py step", 1.3),
    ("keras train_step vs keras.io train_step", "keras", "plain",
     "keras.io DCGAN GAN.train_step (sequential), TensorFlow defaults", 1.0),
    ("keras fastest CPU options vs keras.io train_step", "keras", "fastest",
     "keras.io DCGAN GAN.train_step (sequential), TensorFlow defaults", 1.5),
    ("context: TF tutorial step vs keras.io train_step", "keras", "tf-tutorial",
     "keras.io DCGAN GAN.train_step (sequential), TensorFlow defaults", None),
]


def result_json(stdout: str, command: str) -> dict:
    """The JSON object a benchmark subprocess printed on a line of its own (the first one).

    Raises ``RuntimeError`` naming ``command`` if there is none."""
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise RuntimeError(f"{command}: printed no JSON result line")


def keras_alternating_subprocess(blocks: int, block_steps: int, warmup: int,
                                 threads: int | None = None, timeout: int = 3600,
                                 ours: str = "plain") -> dict:
    """``bench_train_keras.py --alternate`` on the target recipe and batch, in a subprocess (so
    TensorFlow's thread pools never share the process with torch's); returns its result."""
    cmd = [sys.executable, str(HERE / "bench_train_keras.py"), "--recipe", TARGET_RECIPE,
           "--batch-size", str(TARGET_BATCH), "--alternate", str(blocks),
           "--steps", str(block_steps), "--warmup", str(warmup), "--ours", ours]
    env = dict(os.environ)
    if threads:
        cmd += ["--threads", str(threads)]
        env["OMP_NUM_THREADS"] = str(threads)
    shown = "python benchmarks/bench_train_keras.py " + " ".join(cmd[2:])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{shown} failed: {tail[0]}")
    return result_json(r.stdout, shown)


def run_targets(blocks: int, block_steps: int, warmup: int, fastest: str | None = None,
                threads: int | None = None) -> list[dict]:
    """Measure the :data:`TARGETS` with the alternating blocks of ``alternate.py``, each
    in turn: ours plain and ours with ``fastest`` (default :data:`dcgan_lab.speed.FASTEST_CPU`)
    against the canonical PyTorch step in this process, the Keras pair in a subprocess. Each
    result gets the target's ``comparison``, ``target`` and ``reference``."""
    from dcgan_lab import speed as speed_mod

    fastest = fastest or speed_mod.FASTEST_CPU.describe()
    results = []
    for name, kind, ours, reference, target in TARGETS:
        print(f"measuring {name}: {blocks} blocks of {block_steps} steps ...", flush=True)
        if kind == "torch":
            r = torch_alternating(TARGET_RECIPE, TARGET_BATCH, blocks, block_steps, warmup,
                                  speed=fastest if ours == "fastest" else None)
        else:
            r = keras_alternating_subprocess(blocks, block_steps, warmup, threads, ours=ours)
            r["speed"] = {"plain": "plain", "fastest": "mixed_bfloat16"}.get(ours, ours)
        results.append({"kind": kind, "comparison": name, "target": target,
                        "reference": reference, **r})
    return results


def met(result: dict) -> bool | None:
    """Whether a target's wall-clock ratio reaches its target (``None`` for a context row)."""
    if result.get("target") is None:
        return None
    return result["ratio"] >= result["target"]


def latest_targets(entries: list[dict], fastest: str | None = None) -> list[dict]:
    """For each of :data:`TARGETS`, the last of ``entries`` (the ``"alternating"`` list of
    ``results.json``) that measured it on the target recipe and batch, with the target's
    ``comparison`` and ``target`` set; targets never measured are left out. An entry of
    ``--targets`` names its comparison; an older ``--alternate`` entry is matched by its kind and
    ours' speed options (``fastest``, default :data:`dcgan_lab.speed.FASTEST_CPU`, for the
    second target)."""
    from dcgan_lab import speed as speed_mod

    fastest = fastest or speed_mod.FASTEST_CPU.describe()
    found = []
    for name, kind, ours, _, target in TARGETS:
        options = {"plain": "plain", "tf-tutorial": "tf-tutorial",
                   "fastest": fastest if kind == "torch" else "mixed_bfloat16"}[ours]
        runs = [e for e in entries
                if e.get("recipe") == TARGET_RECIPE and e.get("batch_size") == TARGET_BATCH
                and (e.get("comparison") == name if "comparison" in e else
                     e.get("kind") == kind and e.get("speed", "plain") == options)]
        if runs:
            found.append({**runs[-1], "comparison": name, "target": target})
    return found


def markdown_table(cols: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of ``cols`` and ``rows``; a ``|`` inside a cell is escaped (an unescaped
    one splits the cell, and a header with more cells than the separator is no table at all)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(cols), "|" + "---|" * len(cols), *map(line, rows)]) + "\n"


def targets_table(results: list[dict], recorded: bool = False) -> str:
    """The markdown table of the targets' results (:func:`run_targets` or, with ``recorded``,
    :func:`latest_targets`, adding when, under what load and with what command each ran)."""
    cols = ["comparison", "ours steps/s", "reference steps/s", "ratio (wall)", "ratio (CPU time)",
            "target", "met"]
    if recorded:
        cols += ["run (UTC), load avg", "command"]
    rows = []
    for r in results:
        row = [f"{r['comparison']} ({r.get('speed', 'plain')})", f"{r['ours_steps_per_s']:.3f}",
               f"{r['reference_steps_per_s']:.3f}", f"{r['ratio']:.2f}", f"{r['cpu_ratio']:.2f}",
               "context" if r.get("target") is None else f">= {r['target']:g}",
               {True: "yes", False: "no", None: "-"}[met(r)]]
        if recorded:
            row += [f"{r['date_utc']}, {r['load_before'][0]:.1f}", f"`{r['command']}`"]
        rows.append(row)
    return markdown_table(cols, rows)


#: framework -> {"ours": fn, "reference": fn}; fn(recipe, steps, batch_size, warmup) -> dict
FRAMEWORKS: dict[str, dict[str, Callable[[str, int, int, int], dict]]] = {
    "torch": {"reference": torch_reference,
              **{v: functools.partial(torch_ours, variant=v) for v in ("default", *TORCH_VARIANTS)}},
}

try:  # the Keras pair lives beside this file (it imports TensorFlow inside its functions only)
    sys.path.insert(0, str(HERE))
    from bench_train_keras import KERAS_VARIANTS, keras_ours, keras_reference  # noqa: E402

    FRAMEWORKS["keras"] = {"reference": keras_reference,
                           **{v: functools.partial(keras_ours, variant=v)
                              for v in ("default", *KERAS_VARIANTS)}}
except ImportError:
    pass


# --------------------------------------------------------------------------------------------
# one measurement per subprocess


def worker(framework: str, which: str, recipe: str, steps: int, batch_size: int,
           warmup: int) -> dict:
    import importlib

    importlib.import_module(f"dcgan_lab.{framework}")  # the framework's import is not the run's
    before = _maxrss_mb()
    result = FRAMEWORKS[framework][which](recipe, steps, batch_size, warmup)
    peak = _maxrss_mb()
    result.update(steps=steps, batch_size=batch_size, steps_per_s=steps / result["seconds"],
                  peak_rss_mb=peak, rss_growth_mb=peak - before)
    return result


def measure(framework: str, which: str, recipe: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, which, recipe,
           "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--warmup", str(args.warmup)]
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return {"error": tail[0]}
    return json.loads(lines[-1][len("RESULT "):])


def _fmt(v, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def _mem(m: dict) -> str:
    s = f"{m['peak_rss_mb']:.0f} (+{m['rss_growth_mb']:.0f})"
    if "gpu_peak_mb" in m:
        s += f", GPU {m['gpu_peak_mb']:.0f}"
    return s


def _drift(m: dict, plain: dict | None) -> float | None:
    """Largest |loss_g - loss_g of the plain run| over the steps both ran (same inputs)."""
    a, b = m.get("loss_g"), (plain or {}).get("loss_g")
    if not a or not b or len(a) != len(b):
        return None
    return float(max(abs(x - y) for x, y in zip(a, b, strict=True)))


def report(rows: list[dict], args: argparse.Namespace) -> str:
    """The markdown table: one line per (recipe, framework, variant), ratios against reference."""
    import platform

    device = next((m.get("device") for r in rows for m in r["variants"].values()
                   if m.get("device")), "?")
    head = (f"Training steps per second and memory, {args.steps} timed steps (after {args.warmup} "
            f"warm-up) of batch {args.batch_size}, each in a fresh process. reference = the "
            f"canonical loop inline; ours = the package's `train_step` with every speed option "
            f"off; default = with the measured defaults of `dcgan_lab.speed`; other rows = ours "
            f"with one option on. ratio = steps/s over the reference's. max Δloss_g = the largest "
            f"difference of G's loss from ours over the same steps. Machine: "
            f"{platform.machine()}, {os.cpu_count()} CPUs"
            f"{', OMP_NUM_THREADS=' + str(args.threads) if args.threads else ''}; device: "
            f"{device}.\n\n")
    cols = ["recipe", "framework", "variant", "steps/s", "ratio vs reference", "warm-up s",
            "peak RSS MB (+growth)", "max Δloss_g vs ours", "notes"]
    table_rows = []
    for r in rows:
        ref = r["variants"].get("reference", {})
        for name, m in r["variants"].items():
            if "error" in m:
                table_rows.append([r["recipe"], r["framework"], name, "-", "-", "-",
                                   f"error: {m['error'][:80]}", "-", ""])
                continue
            ratio = (m["steps_per_s"] / ref["steps_per_s"] if "steps_per_s" in ref else None)
            table_rows.append([
                r["recipe"], r["framework"], name, _fmt(m.get("steps_per_s"), ".2f"),
                _fmt(ratio, ".2f"), _fmt(m.get("warmup_seconds"), ".1f"), _mem(m),
                _fmt(_drift(m, r["variants"].get("ours")), ".1e"),
                m.get("notes", ""),
            ])
    return head + markdown_table(cols, table_rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--framework", default="torch",
                   help=f"comma-separated, or all: {', '.join(FRAMEWORKS)}")
    p.add_argument("--recipes", default="all", help="comma-separated recipe names, or all")
    p.add_argument("--variants", default="all",
                   help="comma-separated: reference, ours, default and the options of each "
                        "framework (torch: " + ", ".join(TORCH_VARIANTS) + "), or all")
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS of the workers; with --alternate and --targets torch's "
                        "threads (and TensorFlow's in the Keras subprocess)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per measurement")
    p.add_argument("--out", type=Path, default=None, help="markdown report (and .json beside it)")
    p.add_argument("--record", action="store_true",
                   help="with --alternate or --targets: append each result, the command, date, "
                        "machine and load to benchmarks/results.json (key \"alternating\")")
    p.add_argument("--targets", action="store_true",
                   help=f"the speed targets on {TARGET_RECIPE} at batch {TARGET_BATCH}, in "
                        "one run, by alternating blocks: torch plain and with the fastest CPU "
                        "options (dcgan_lab.speed.FASTEST_CPU, or --speed) vs the canonical "
                        "PyTorch step; Keras train_step plain and with mixed_bfloat16 vs "
                        "keras.io's GAN.train_step, and the TF tutorial's simultaneous step "
                        "beside it as context; prints a table (--blocks, --block-steps, "
                        "--warmup)")
    p.add_argument("--blocks", type=int, default=6, help="with --targets: blocks per comparison")
    p.add_argument("--block-steps", type=int, default=2,
                   help="with --targets: steps per block")
    p.add_argument("--alternate", type=int, default=None, metavar="BLOCKS",
                   help="torch only: ours and the canonical loop in one process, BLOCKS "
                        "alternating blocks of --steps steps each, for --recipes (one recipe); "
                        "prints the ratio")
    p.add_argument("--speed", default=None,
                   help="with --alternate: speed options of ours, e.g. channels_last,autocast=bf16 "
                        "(default: all off); with --targets: the options of the second target "
                        "(default: dcgan_lab.speed.FASTEST_CPU)")
    p.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "WHICH", "RECIPE"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        fw, which, recipe = args.worker
        print("RESULT " + json.dumps(worker(fw, which, recipe, args.steps, args.batch_size,
                                            args.warmup)), flush=True)
        return 0

    if args.targets:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        try:
            results = run_targets(args.blocks, args.block_steps, args.warmup, args.speed,
                                  args.threads)
        except ValueError as e:
            p.error(str(e))
        if args.record:
            from alternate import record

            results = [record(r, r["kind"], sys.argv) for r in results]
        print(json.dumps(results))
        print(f"\n{TARGET_RECIPE}, batch {TARGET_BATCH}, {args.blocks} alternating blocks of "
              f"{args.block_steps} steps after {args.warmup} warm-up steps, threads: "
              f"{args.threads or 'each framework default'}; ratio = reference seconds / ours "
              f"(> 1: ours is faster); met = the wall ratio reaches the target\n")
        print(targets_table(results))
        return 0

    if args.alternate:
        name = args.recipes.split(",")[0]
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        try:
            r = torch_alternating(name, args.batch_size, args.alternate, args.steps, args.warmup,
                                  speed=args.speed)
        except ValueError as e:
            p.error(str(e))
        if args.record:
            from alternate import record

            r = record(r, "torch", sys.argv)
        print(json.dumps(r))
        print(f"{name} batch {args.batch_size} ({r['speed']}): "
              f"ours {r['ours_steps_per_s']:.3f} steps/s, "
              f"canonical {r['reference_steps_per_s']:.3f} steps/s, ratio {r['ratio']:.3f} (wall), "
              f"{r['cpu_ratio']:.3f} (CPU time)")
        return 0

    fws = list(FRAMEWORKS) if args.framework == "all" else args.framework.split(",")
    names = recipes.names() if args.recipes == "all" else args.recipes.split(",")
    for fw in fws:
        if fw not in FRAMEWORKS:
            p.error(f"--framework {fw!r}: choose from {', '.join(FRAMEWORKS)} or all")
    for name in names:
        if name not in recipes.names():
            p.error(f"--recipes: unknown recipe {name!r}: choose from {', '.join(recipes.names())}")
    rows = []
    for fw in fws:
        variants = list(FRAMEWORKS[fw]) if args.variants == "all" else [
            v for v in args.variants.split(",") if v in FRAMEWORKS[fw]]
        for name in names:
            row = {"recipe": name, "framework": fw, "variants": {}}
            for which in variants:
                row["variants"][which] = m = measure(fw, which, name, args)
                print(f"{fw:6s} {name:16s} {which:14s} "
                      + (f"{m['steps_per_s']:7.2f} steps/s  peak {m['peak_rss_mb']:.0f} MB"
                         if "error" not in m else f"error: {m['error']}"), flush=True)
            rows.append(row)
    text = report(rows, args)
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(
            {"settings": {k: v for k, v in vars(args).items() if k not in ("out", "worker")},
             "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
