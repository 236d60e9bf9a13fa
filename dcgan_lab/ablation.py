"""The cached ablation runner: train every variant of a set of options for several seeds, score
each run, tabulate mean ± std.

- :func:`ganhack_variants`: chapter 5's ablation, the baseline and one ganhack per variant.
- :func:`run_ablation` trains every variant of a dict of :class:`~dcgan_lab.run.config.TrainOptions`
  for several seeds with either framework's trainer (:func:`dcgan_lab.frameworks.get`), scores each run with
  :func:`dcgan_lab.scoring.evaluation.evaluate` and returns a :class:`~dcgan_lab.scoring.tables.AblationTable`.
  Results are cached as JSON in the output folder (``ablation.json``), keyed by every setting
  that defines a run, so re-running with the same settings does not retrain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import frameworks, recipes
from .run.atomic import write_json
from .run.config import TrainOptions
from .scoring.evaluation import Callback, evaluate, fid_callback, sample_size
from .scoring.tables import AblationTable

__all__ = ["CACHE_FILE", "ganhack_variants", "run_ablation"]

CACHE_FILE = "ablation.json"
CACHE_VERSION = 2


def ganhack_variants(lr: float = 2e-4) -> dict[str, TrainOptions]:
    """The chapter's ablation: the baseline and one ganhack per variant (Adam ``lr``, beta1 0.5).

    Every variant changes exactly one thing relative to ``baseline`` (non-saturating G loss,
    separate real/fake batches for D, LeakyReLU(0.2) in both networks, no dropout, hard labels).
    """
    base = TrainOptions(lr_g=lr, lr_d=lr, beta1=0.5)
    return {
        "baseline": base,
        "one-sided smoothing 0.1": base.replace(label_smoothing=0.1),
        "soft labels": base.replace(real_label_range=(0.7, 1.0), fake_label_range=(0.0, 0.3)),
        "noisy labels 5%": base.replace(flip_prob=0.05),
        "concat real+fake batch": base.replace(d_batches="concat"),
        "dropout 0.3 in G": base.replace(g_dropout=0.3),
        "ReLU in D": base.replace(d_activation="relu"),
        "lr_d = lr_g / 4": base.replace(lr_d=lr / 4),
    }


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower()
    return s or "variant"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _data_key(data: str | np.ndarray | None) -> Any:
    if isinstance(data, np.ndarray):
        digest = hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]
        return {"array": list(data.shape), "sha1": digest}
    return data


def _cache_key(settings: Mapping[str, Any]) -> str:
    text = json.dumps(_jsonable(settings), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _read_cache(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"note: {path} is unreadable; ignoring the ablation cache there")
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    return dict(data.get("runs", {}))


def _training_data(data: str | np.ndarray | None, r: recipes.Recipe,
                   verbose: bool) -> tuple[Any, Any]:
    """The training images (loaded once, not once per run) and what identifies them in a key."""
    if data is None or (isinstance(data, str) and not Path(data).expanduser().is_dir()):
        from . import data as data_mod

        data_id: Any = data or r.dataset
        images, _ = data_mod.load(data_id, "train", verbose=verbose)
        return images, data_id
    return data, _data_key(data)


def _train_and_score(train: Callable, load_generator: Callable, r: recipes.Recipe, run_dir: Path,
                     opts: TrainOptions, data: Any, callbacks: list[Callback], dataset: str,
                     n_eval: int) -> tuple[dict[str, float], float]:
    """Train one run, score it; return its scores (with D's mean outputs over the last tenth of
    the steps, ``d_real`` and ``d_fake``) and the training time in seconds."""
    t0 = time.perf_counter()
    history = train(r, run_dir, options=opts, data=data, force=True, progress=False,
                    callbacks=callbacks)
    seconds = time.perf_counter() - t0
    scores = evaluate(load_generator(run_dir), dataset, n=n_eval, seed=0)
    tail = max(1, len(history) // 10)
    return {**scores, "d_real": float(np.mean(history["d_real"][-tail:])),
            "d_fake": float(np.mean(history["d_fake"][-tail:]))}, seconds


def run_ablation(
    variants: Mapping[str, TrainOptions],
    recipe: str | recipes.Recipe = "torch-mnist",
    seeds: Iterable[int] = (0, 1, 2),
    steps: int | None = None,
    batch_size: int | None = None,
    out_dir: str | Path = "runs/ablation",
    framework: str = "torch",
    *,
    n_eval: int | None = None,
    dataset: str | None = None,
    data: str | np.ndarray | None = None,
    profile: str | None = None,
    callbacks: Sequence[Callback] = (),
    use_cache: bool = True,
    verbose: bool = True,
    log_runs: bool = False,
) -> AblationTable:
    """Train every variant for every seed, evaluate each run, and tabulate mean ± std.

    ``variants`` maps a name to :class:`~dcgan_lab.run.config.TrainOptions`; their ``seed``,
    ``steps`` and ``batch_size`` are replaced by each seed and the shared budget (``None``: the
    recipe's budget for ``profile``). Runs go to ``out_dir/<variant>/seed<k>`` (trained with
    ``force=True``, ``progress=False``) and are scored by :func:`evaluate` on ``n_eval`` samples
    (``None``: the dataset's one sample size, :func:`~dcgan_lab.scoring.evaluation.sample_size`).
    A variant with ``metric_every`` gets a :func:`fid_callback` on as many samples (its history
    gains ``fid``), so the curve and the final row compare.

    Each finished run is recorded in ``out_dir/ablation.json`` under a key made of every setting
    that defines it (recipe, framework, options, seed, budget, data, evaluation); a later call
    with the same settings reuses the row instead of retraining (``use_cache=False`` retrains).
    ``verbose`` prints the data file and a closing summary; ``log_runs`` one line per run.
    """
    lab = frameworks.get(framework)  # a bad name or a missing framework fails first
    train, load_generator = lab.train, lab.load_generator
    if not variants:
        raise ValueError("variants is empty: pass a dict of name -> TrainOptions")
    slugs = [_slug(v) for v in variants]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"variant names {list(variants)} give clashing folder names {slugs}")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds is empty: pass at least one seed")
    r = recipes.get(recipe)
    steps = r.budget(profile).steps if steps is None else int(steps)
    batch_size = r.budget(profile).batch_size if batch_size is None else int(batch_size)
    dataset = dataset or r.dataset
    n_eval = sample_size(dataset) if n_eval is None else int(n_eval)
    data, data_id = _training_data(data, r, verbose)
    out = Path(out_dir)
    cache_path = out / CACHE_FILE
    cache = _read_cache(cache_path) if use_cache else {}
    settings = {"recipe": r.name, "framework": framework, "steps": steps, "batch_size": batch_size,
                "seeds": list(seeds), "n_eval": n_eval, "dataset": dataset}

    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for (name, options), slug in zip(variants.items(), slugs, strict=True):
        if not isinstance(options, TrainOptions):
            raise TypeError(f"variant {name!r}: expected TrainOptions, got {type(options).__name__}")
        for seed in seeds:
            opts = options.replace(seed=seed, steps=steps, batch_size=batch_size,
                                   sample_every=steps, checkpoint_every=steps)
            key = _cache_key({"version": CACHE_VERSION, "recipe": r.name, "framework": framework,
                              "options": opts, "data": data_id, "dataset": dataset,
                              "n_eval": n_eval})
            run_dir = out / slug / f"seed{seed}"
            if key in cache:
                rows.append({**cache[key], "variant": name, "cached": True})
                continue
            cbs = list(callbacks)
            if opts.metric_every:
                cbs.append(fid_callback(opts.metric_every, dataset, n=n_eval))
            scores, seconds = _train_and_score(train, load_generator, r, run_dir, opts, data, cbs,
                                               dataset, n_eval)
            row = {"variant": name, "seed": seed, **scores, "seconds": seconds,
                   "run_dir": str(run_dir), "key": key}
            cache[key] = row
            write_json(cache_path, {"version": CACHE_VERSION, "runs": cache})
            rows.append({**row, "cached": False})
            if log_runs:
                print(f"{name} seed {seed}: FD {scores['fid']:.2f}, modes {scores['modes_covered']:.0f}"
                      f"/10, confident {scores['confident']:.2f} ({seconds:.1f} s)")
    table = AblationTable(rows, list(variants), settings)
    if verbose:
        print(f"{len(rows)} runs ({table.n_cached} from {cache_path}) in "
              f"{time.perf_counter() - t_all:.0f} s")
    return table
