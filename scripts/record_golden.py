"""Record the golden results of the training loops: ``tests/golden/train_hashes.json``.

For every recipe, in PyTorch and in both Keras styles, train a few steps at the smoke profile
(``GOLDEN_OPTIONS``) on the embedded sample's images (so that every machine trains on the same
batches) and keep, per step, the history's losses and the L2 norms of both networks' weights and
of each step's weight update; plus a sha256 of the final generator and discriminator state (for
bit-for-bit checks within one machine) and, for the CLI, which files a ``dcgan-lab train`` run
folder holds and its ``config.json``.

CPUs differ: the kernels PyTorch dispatches (``ATEN_CPU_CAPABILITY``), the oneDNN of either
framework and its instruction set (``ONEDNN_MAX_CPU_ISA``), TensorFlow's oneDNN switch and the
thread count change float sums in their last bits, and a GAN's steps carry those bits forward
(after three steps the 64x64 recipes' losses differ by up to a few per cent at batch 8).
``tests/integration/test_golden.py`` therefore compares against the recorded numbers within tolerances per
run, quantity and step, and ``--spread`` measures them: it reruns every golden run in child
processes under each setting of :data:`TORCH_SETTINGS` / :data:`KERAS_SETTINGS`; a tolerance is
:data:`SPREAD_FACTOR` times the largest relative difference seen (at least :data:`MIN_RTOL`). The
first step's update norms hardly move with rounding (Adam's first step is about lr per weight),
so a real change (lr x 1.01, another seed) fails by a wide margin (``tests/integration/test_golden.py``).

Re-record deliberately (e.g. after a recipe's hyperparameters change) with::

    PYTHONPATH=$PWD DCGAN_LAB_PROFILE=smoke python scripts/record_golden.py --spread
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("DCGAN_LAB_PROFILE", "smoke")

import numpy as np  # noqa: E402

GOLDEN_PATH = Path(__file__).resolve().parents[1] / "tests" / "golden" / "train_hashes.json"
RECORD_COMMAND = "PYTHONPATH=$PWD DCGAN_LAB_PROFILE=smoke python scripts/record_golden.py --spread"
GOLDEN_OPTIONS = {"steps": 3, "batch_size": 8, "n_fixed": 4, "sample_every": 2,
                  "checkpoint_every": 2}
LOSSES = ("loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake")
NORMS = ("g_norm", "d_norm", "g_update", "d_update")
CLI_ARGS = ["--steps", "2", "--batch-size", "8", "--n-fixed", "4", "--no-progress"]

#: Kernel settings whose results a golden run must accept: (name, environment, torch threads).
TORCH_SETTINGS = [(f"aten={isa},threads={n}", {"ATEN_CPU_CAPABILITY": isa}, n)
                  for isa in ("default", "avx2", "avx512") for n in (1, 2)]
# torch's convolutions run in its bundled oneDNN, which picks its instruction set on its own
TORCH_SETTINGS.append(("aten=avx2,onednn=avx2,threads=1",
                       {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, 1))
KERAS_SETTINGS = [("onednn=on", {"TF_ENABLE_ONEDNN_OPTS": "1"}, None),
                  ("onednn=off", {"TF_ENABLE_ONEDNN_OPTS": "0"}, None),
                  ("onednn=on,isa=avx2", {"TF_ENABLE_ONEDNN_OPTS": "1",
                                          "ONEDNN_MAX_CPU_ISA": "AVX2"}, None),
                  ("onednn=on,threads=1", {"TF_ENABLE_ONEDNN_OPTS": "1",
                                           "TF_NUM_INTRAOP_THREADS": "1",
                                           "TF_NUM_INTEROP_THREADS": "1"}, None)]
#: tolerance = SPREAD_FACTOR x the largest relative spread measured, and at least MIN_RTOL
SPREAD_FACTOR = 20.0
MIN_RTOL = 1e-5
#: Relative differences are taken against max(|recorded|, ABS_FLOOR): a loss near 0 (d_fake of
#: a confident D) has no meaningful relative error.
ABS_FLOOR = 1e-2


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


def _flat(model, framework: str) -> np.ndarray:
    """Every trainable weight of ``model`` as one float64 vector."""
    if framework == "torch":
        parts = [p.detach().cpu().double().numpy().ravel() for p in model.parameters()]
    else:
        parts = [np.asarray(w.numpy(), np.float64).ravel() for w in model.trainable_weights]
    return np.concatenate(parts)


class _Norms:
    """Per step, ||G||, ||D|| and the norms of the step's weight updates (a training callback;
    :meth:`start` takes the initial weights). The first update is the steadiest witness of the
    learning rate: Adam's first step moves each weight by lr * g / (|g| + eps), about lr, whatever
    the rounding of g."""

    def __init__(self, framework: str):
        self.framework = framework
        self.values: dict[str, list[float]] = {k: [] for k in NORMS}
        self.last: dict[str, np.ndarray] = {}

    def start(self, G, D) -> None:
        self.last = {"g": _flat(G, self.framework), "d": _flat(D, self.framework)}

    def __call__(self, step, G, D, history) -> None:
        for name, model in (("g", G), ("d", D)):
            w = _flat(model, self.framework)
            self.values[f"{name}_norm"].append(float(np.linalg.norm(w)))
            self.values[f"{name}_update"].append(float(np.linalg.norm(w - self.last[name])))
            self.last[name] = w


def _watched(backend_class: type, norms: _Norms) -> type:
    """``backend_class`` whose ``build`` also hands the initial models to ``norms``."""

    class Watched(backend_class):
        def build(self, cfg) -> None:
            super().build(cfg)
            norms.start(*self.models)

    return Watched


def train_one(recipe: str, framework: str, style: str | None, folder: Path,
              threads: int = 1, **changes) -> dict:
    """Train one golden run into ``folder``: its hashes, per-step losses and weight norms.

    ``threads``: PyTorch's CPU threads (CPU sums depend on it). ``changes`` override
    ``GOLDEN_OPTIONS`` (``lr_g=...``, ``seed=...``): what a real change of results looks like.
    The run is ``train()``'s own: ``loop.run`` over the framework's ``Backend``.
    """
    from dcgan_lab import data, recipes
    from dcgan_lab.run import config, loop

    options = config.TrainOptions(keras_style=style, **{**GOLDEN_OPTIONS, **changes})
    # Always the embedded sample's training images: the same batches on every machine, whatever
    # data folder or cache it has (a full data set draws other images at the same indices).
    images = data._read_sample(recipes.get(recipe).dataset, "train")[0]
    cfg = config.resolve_run(recipe, framework, options, "smoke", images)
    norms = _Norms(framework)
    if framework == "torch":
        import torch

        backend = _watched(importlib.import_module("dcgan_lab.torch.backend").Backend, norms)("cpu")
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            history = loop.run(cfg, backend, folder, data=images, progress=False,
                               callbacks=[norms])
        finally:
            torch.set_num_threads(before)
    else:
        backend = _watched(importlib.import_module("dcgan_lab.keras.backend").Backend, norms)()
        history = loop.run(cfg, backend, folder, data=images, progress=False, callbacks=[norms])
    return {**_state_hashes(folder, framework),
            "losses": {k: [float(v) for v in history[k]] for k in LOSSES},
            "norms": norms.values}


def _series(result: dict) -> dict[str, list[float]]:
    return {**result["losses"], **result["norms"]}


def rel_diffs(got: dict, want: dict) -> dict[str, list[float]]:
    """Per loss or norm and per step, the relative difference of ``got`` from ``want`` (against
    max(|want|, :data:`ABS_FLOOR`)); a missing, extra or non-finite value counts as inf."""
    out = {}
    mine = _series(got)
    for name, ref in _series(want).items():
        values = mine.get(name, [])
        if len(values) != len(ref):
            out[name] = [math.inf] * len(ref)
            continue
        out[name] = [abs(a - b) / max(abs(b), ABS_FLOOR)
                     if math.isfinite(a) and math.isfinite(b) else math.inf
                     for a, b in zip(values, ref, strict=True)]
    return out


def excess(got: dict, want: dict, rtol: dict[str, list[float]]) -> float:
    """The largest ratio of a relative difference to its tolerance: <= 1 means ``got`` passes."""
    return max(d / t for name, ds in rel_diffs(got, want).items()
               for d, t in zip(ds, rtol[name], strict=True))


def mismatches(got: dict, want: dict, rtol: dict[str, list[float]]) -> list[str]:
    """Each loss or norm of ``got`` outside its tolerance (per name and step) around ``want``'s,
    as ``"name[step]: got vs want (relative difference > rtol)"``; empty when they agree."""
    out = []
    mine = _series(got)
    for name, ds in rel_diffs(got, want).items():
        for i, (d, t) in enumerate(zip(ds, rtol[name], strict=True)):
            if not d <= t:
                a = mine.get(name, [math.nan] * len(ds))
                a = a[i] if i < len(a) else math.nan
                out.append(f"{name}[{i + 1}]: {a:.8g} vs {_series(want)[name][i]:.8g} "
                           f"({d:.2g} > {t:.2g})")
    return out


def cli_outputs(framework: str, folder: Path) -> dict:
    """The files a ``dcgan-lab train`` run folder holds and its config.json (keras: dense-mnist)."""
    from dcgan_lab import cli

    rc = cli.main(["train", "dense-mnist", "--framework", framework, "--profile", "smoke",
                   "--out", str(folder), *CLI_ARGS])
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return {"rc": rc, "files": files,
            "config": json.loads((folder / "config.json").read_text())}


def record(only: list[str] | None = None, framework: str | None = None,
           threads: int = 1, cli: bool = True) -> dict:
    """Train every golden run (or those in ``only`` / of ``framework``) and the CLI runs."""
    results: dict = {"options": GOLDEN_OPTIONS, "runs": {}, "cli": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe, fw, style in runs():
            k = key(recipe, fw, style)
            if (only and k not in only) or (framework and fw != framework):
                continue
            t0 = time.perf_counter()
            results["runs"][k] = train_one(recipe, fw, style, Path(tmp) / k, threads=threads)
            print(f"{k}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        if cli:
            for fw in ("torch", "keras"):
                results["cli"][fw] = cli_outputs(fw, Path(tmp) / "cli" / fw)
    return results


def _child(framework: str, env: dict[str, str], threads: int | None, out: Path) -> dict:
    """The golden runs of ``framework`` in a fresh process under ``env`` (kernel choices are read
    when a framework loads, so each setting needs its own process)."""
    cmd = [sys.executable, __file__, "--child", framework, "--out", str(out)]
    if threads:
        cmd += ["--threads", str(threads)]
    subprocess.run(cmd, env={**os.environ, **env}, check=True)
    return json.loads(out.read_text())


def spread(base: dict) -> dict:
    """Rerun every golden run under each kernel setting; per run, loss or norm and step, the
    largest relative difference from ``base`` and the tolerance that follows from it."""
    out: dict = {"factor": SPREAD_FACTOR, "min_rtol": MIN_RTOL, "abs_floor": ABS_FLOOR,
                 "settings": {}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for framework, settings in (("torch", TORCH_SETTINGS), ("keras", KERAS_SETTINGS)):
            for name, env, threads in settings:
                print(f"spread: {framework} {name}", file=sys.stderr, flush=True)
                out["settings"][f"{framework}:{name}"] = env
                got = _child(framework, env, threads, Path(tmp) / f"{framework}-{name}.json")
                for k, result in got["runs"].items():
                    cur = out["runs"].setdefault(k, {"spread": {}, "worst": {}})
                    for series, ds in rel_diffs(result, base["runs"][k]).items():
                        old = cur["spread"].setdefault(series, [0.0] * len(ds))
                        worst = cur["worst"].setdefault(series, [None] * len(ds))
                        for i, d in enumerate(ds):
                            if d >= old[i]:
                                old[i], worst[i] = d, name
    for cur in out["runs"].values():
        cur["rtol"] = {series: [max(MIN_RTOL, SPREAD_FACTOR * d) for d in ds]
                       for series, ds in cur["spread"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=GOLDEN_PATH)
    p.add_argument("--spread", action="store_true",
                   help="also measure the tolerances across kernel settings (child processes)")
    p.add_argument("--child", choices=("torch", "keras"), help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1)")
    args = p.parse_args(argv)
    if args.child:
        results = record(framework=args.child, threads=args.threads, cli=False)
        args.out.write_text(json.dumps(results))
        return 0
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    results = record()
    results["tolerances"] = spread(results) if args.spread else old.get("tolerances", {})
    results["recorded"] = {"command": RECORD_COMMAND, "date": time.strftime("%Y-%m-%d"),
                           "machine": _machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(results['runs'])} runs)")
    return 0


def _machine() -> str:
    import platform

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()} {model} ({os.cpu_count()} cores)".strip()


if __name__ == "__main__":
    sys.exit(main())
