"""The one run loop of both frameworks: :func:`run` (framework-free).

It owns everything around the training steps that keeps a long run safe, the same way for PyTorch
and Keras: the run folder (``config.json``, ``samples/``, ``training.gif``), resume from the
checkpoint, the history (a row appended to ``history.csv`` every step, the whole file rewritten
at every checkpoint with a copy, ``checkpoint.history.csv``, that a resume restores the rows from
when ``history.csv`` is missing, cut or does not match the checkpoint), grids of the fixed ``z``
every ``cfg.sample_every`` steps (written by :mod:`dcgan_lab.grids`: the loop never imports the
figures, tables or scoring code), a checkpoint every ``cfg.checkpoint_every`` steps and at the
end, Ctrl-C (:class:`DeferInterrupt`), one finiteness check of the step's metrics (a NaN or
infinite one raises :class:`TrainingDiverged`, :func:`check_finite`, before the step is saved), and
the progress bar.

Each framework supplies a small :class:`Backend` (``dcgan_lab.torch.backend.Backend``,
``dcgan_lab.keras.backend.Backend``): build the models, run one step, save and restore a
checkpoint, draw a grid, write the final models. :func:`dcgan_lab.torch.train` and
:func:`dcgan_lab.keras.train` are short wrappers that make one and call :func:`run`; so are the
data-parallel trainers (``dcgan_lab.torch.distributed``, ``dcgan_lab.keras.distributed``), whose
backends shard each step over the processes or replicas. In a run of several processes every one
calls :func:`run` and steps in lockstep; only the one whose backend has ``writer`` set writes
files (the run folder, history, samples, checkpoints, GIF, final models).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import grids
from . import streams
from .config import Config, RunDirError
from .history import STEP_METRICS, CsvAppender, History
from .rundir import RunDir

__all__ = ["Backend", "DeferInterrupt", "TrainingDiverged", "check_finite", "run"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def check_finite(step: int, **losses: float) -> None:
    """Raise :class:`TrainingDiverged` naming the loss and step if any loss is NaN or infinite."""
    bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
    if bad:
        names = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingDiverged(f"step {step}: {names}. Training stopped; the last good checkpoint "
                               f"is kept. Try a lower learning rate (--lr-d/--lr-g) or label "
                               f"smoothing, then --resume.")


class Backend:
    """What a framework supplies to :func:`run`. Subclasses set the class attributes and
    implement the methods; ``models`` is (G, D) once built (passed to callbacks)."""

    framework: str = ""
    checkpoint_name: str = ""
    final_names: tuple[str, ...] = ()  # files written at the end (removed when starting afresh)
    models: tuple[Any, Any] = (None, None)
    writer: bool = True  # False: a process of a distributed run that writes no file

    def label(self, cfg: Config) -> str:
        """How the progress bar and the messages name the run."""
        return cfg.recipe

    def resume_command(self, cfg: Config, out_dir: Path) -> str:
        """The command that resumes this run (printed after Ctrl-C)."""
        return (f"dcgan-lab train {cfg.recipe} --framework {self.framework} --out {out_dir} "
                f"--resume  (or train(..., resume=True))")

    def read_checkpoint(self, path: Path, cfg: Config | None) -> Any:
        """Read and check the checkpoint at ``path`` (against ``cfg`` if given)."""
        raise NotImplementedError

    def checkpoint_step(self, state: Any) -> int:
        raise NotImplementedError

    def build(self, cfg: Config) -> None:
        """Seed, build the models and their optimisers (sets ``models``)."""
        raise NotImplementedError

    def restore(self, path: Path, state: Any) -> int:
        """Load a checkpoint read by :meth:`read_checkpoint`; returns its step."""
        raise NotImplementedError

    def batches(self, images: np.ndarray, cfg: Config, start: int) -> Iterator[Any]:
        """The inputs of steps ``start + 1 .. cfg.steps``, in order."""
        raise NotImplementedError

    def step(self, step: int, images: np.ndarray, cfg: Config, inputs: Any) -> dict[str, float]:
        """One generator step; returns the metrics of :data:`dcgan_lab.run.history.STEP_METRICS`."""
        raise NotImplementedError

    def sample(self, z: np.ndarray) -> np.ndarray:
        """G(z) in inference mode as uint8 NHWC."""
        raise NotImplementedError

    def save(self, path: Path, step: int, cfg: Config, fixed_z: np.ndarray) -> None:
        """Write the checkpoint of ``step`` atomically."""
        raise NotImplementedError

    def save_final(self, run: RunDir) -> None:
        """Write the trained models (``final_names``) into the run folder."""
        raise NotImplementedError

    def open(self, run: RunDir) -> None:
        """Called once the run folder is ready (e.g. to start a TensorBoard writer)."""

    def log(self, step: int, row: dict[str, float]) -> None:
        """Called with each step's history row."""

    def close(self) -> None:
        """Called when the loop ends, however it ends."""


class DeferInterrupt:
    """The first Ctrl-C becomes a flag checked between steps (a checkpoint is never written
    half-way through a step); a second one interrupts at once (the last checkpoint is kept)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> DeferInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: finishing this step and saving a checkpoint (again to stop at once)",
              file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _open_run(cfg: Config, run: RunDir, backend: Backend, resume: bool, force: bool,
              checked: bool = False):
    """Check the folder and an existing checkpoint before any slow work or any write: a corrupt or
    foreign checkpoint raises CheckpointError and stays untouched; a folder holding a run is
    refused unless resume (or force). Returns (checkpoint state or None, resuming)."""
    ckpt_path = run.path / backend.checkpoint_name
    state = None
    if ckpt_path.exists() and not force:
        state = backend.read_checkpoint(ckpt_path, cfg if resume else None)
        if not resume and not run.config_path.exists():
            raise RunDirError(f"{run.path} holds {backend.checkpoint_name} but no "
                                       f"config.json: pass --force to start afresh there")
    exists = run.config_path.exists() if checked else run.check(cfg, resume=resume, force=force)
    return state, exists and resume and not force


def _resume_history(run: RunDir, backend: Backend, start: int) -> History:
    """The history of a run resumed at ``start``: the rows of ``history.csv`` up to ``start``,
    or, where that file is missing, unreadable or does not hold exactly steps 1..``start``, those
    of the copy written with the checkpoint (a note says so). Raises RunDirError naming
    ``history.csv`` if neither holds them: nothing is written before."""
    path = run.history_path
    try:
        problem = f"{path} is missing" if not path.exists() else None
        history = History.from_csv(path)
        if problem is None and (gap := history.mismatch(start)) is not None:
            problem = f"{path} does not match {backend.checkpoint_name} (step {start}): {gap}"
    except ValueError as e:
        problem = str(e)
    if problem is None:
        history.truncate(start)
        return history
    if start == 0:  # no row to restore: the file is rewritten empty
        return History()
    history = _history_copy(run, start)
    if history is None:
        raise RunDirError(
            f"{problem}, and {run.history_copy_path.name} does not hold steps 1-{start} either; "
            f"put back a history.csv with those rows, or pass --force to start afresh")
    if backend.writer:
        print(f"note: {problem}; restored steps 1-{start} from {run.history_copy_path}")
    return history


def _history_copy(run: RunDir, start: int) -> History | None:
    """Steps 1..``start`` from the history copy written with the checkpoint, or None."""
    try:
        history = History.from_csv(run.history_copy_path)
    except ValueError:
        return None
    if history.mismatch(start) is not None:
        return None
    history.truncate(start)
    return history


def _restore(cfg: Config, run: RunDir, backend: Backend, state, resuming: bool) -> int:
    """Restore the checkpoint (when resuming); returns its step (0 when starting afresh)."""
    ckpt_path = run.path / backend.checkpoint_name
    start = 0
    if resuming and state is not None:  # weights, optimisers and RNG states, as saved
        start = backend.restore(ckpt_path, state)
        if backend.writer:
            print(f"resuming {backend.label(cfg)} from step {start} of {cfg.steps} ({ckpt_path})")
    elif resuming and backend.writer:
        print(f"{run.path} has no {backend.checkpoint_name} yet: starting {cfg.recipe} from step 0")
    return start


def _prepare(cfg: Config, run: RunDir, backend: Backend, start: int, resuming: bool,
             resume: bool, force: bool) -> None:
    """Write config.json and clear what will be redrawn (by the writing process only)."""
    run.write(cfg)  # config.json (the folder was checked once, by _open_run or the caller)
    for old in run.sample_paths():  # grids of steps this run will (re)draw
        if not resuming or int(old.stem.split("_")[1]) > start:
            old.unlink()
    if not resuming:  # force: nothing of the old run may survive
        for name in (backend.checkpoint_name, run.history_copy_path.name, run.gif_path.name,
                     *backend.final_names):
            (run.path / name).unlink(missing_ok=True)


def _finish(cfg: Config, run: RunDir, backend: Backend, history: History, save_samples) -> None:
    """The last grid (if not drawn yet), the GIF, the final models and the whole history."""
    if not run.sample_path(cfg.steps).exists():
        save_samples(cfg.steps)
    grids.save_gif(run.sample_paths(), run.gif_path)
    backend.save_final(run)
    history.to_csv(run.history_path)


def run(cfg: Config, backend: Backend, out_dir: str | Path, *,
        data: str | np.ndarray | None = None, resume: bool = False, force: bool = False,
        progress: bool = True, callbacks: Iterable[Callable] = (), checked: bool = False
        ) -> History:
    """Train ``cfg`` with ``backend`` into the run folder ``out_dir``; return the history.

    ``data``: a data set name, a folder of photos or a uint8 NHWC array (default ``cfg.data``).
    ``resume`` continues from the checkpoint; ``force`` starts afresh in a folder holding a run.
    ``callbacks`` are called as ``cb(step, G, D, history)`` after every step. ``checked``: the
    caller has made :meth:`RunDir.check` for ``cfg``, ``resume`` and ``force`` (the command line
    does, before it imports a framework), so it is not made again.
    """
    run_dir = RunDir(out_dir)
    state, resuming = _open_run(cfg, run_dir, backend, resume, force, checked)
    history = History()
    if resuming and state is not None:  # read before restore(), which may wait for every process
        history = _resume_history(run_dir, backend, backend.checkpoint_step(state))
    images = streams.load_training_images(cfg, data)
    streams.check_batch_size(cfg, len(images))
    backend.build(cfg)
    start = _restore(cfg, run_dir, backend, state, resuming)
    if backend.writer:
        _prepare(cfg, run_dir, backend, start, resuming, resume, force)
    fixed_z = streams.fixed_noise(cfg.n_fixed, cfg.recipe_obj.latent_dim, cfg.seed)
    csv = CsvAppender(run_dir.history_path, history) if backend.writer else None

    def save_samples(step: int) -> None:
        grid = backend.sample(fixed_z)
        grids.save_png(grid, run_dir.sample_path(step), nrow=int(np.ceil(np.sqrt(len(grid)))))

    def save_all(step: int) -> None:
        csv.rewrite(history)  # first the rows (trimmed to the checkpoint on resume) and their
        history.to_csv(run_dir.history_copy_path)  # copy, which a resume may restore them from
        backend.save(run_dir.path / backend.checkpoint_name, step, cfg, fixed_z)

    if backend.writer:
        backend.open(run_dir)
    try:
        _steps(cfg, backend, run_dir, images, start, history, csv, save_samples, save_all,
               progress, callbacks)
    finally:
        backend.close()
    if backend.writer:
        _finish(cfg, run_dir, backend, history, save_samples)
    return history


def _steps(cfg: Config, backend: Backend, run_dir: RunDir, images: np.ndarray, start: int,
           history: History, csv: CsvAppender | None, save_samples, save_all, progress: bool,
           callbacks: Iterable[Callable]) -> None:
    """Steps ``start + 1 .. cfg.steps`` with their samples, checkpoints, Ctrl-C and NaN checks
    (the history row, samples and checkpoints written by the writing process only)."""
    from tqdm import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

    batches = iter(backend.batches(images, cfg, start))
    G, D = backend.models
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and backend.writer),
               desc=backend.label(cfg),
               unit="step", dynamic_ncols=True)
    step = start
    try:
        with DeferInterrupt() as interrupt:
            for step in range(start + 1, cfg.steps + 1):
                t0 = time.perf_counter()
                m = backend.step(step, images, cfg, next(batches))
                check_finite(step, **{k: m[k] for k in STEP_METRICS})  # the one check
                row = history.log(step=step, **m, seconds=time.perf_counter() - t0)
                for cb in callbacks:
                    cb(step, G, D, history)
                bar.set_postfix({k: f"{m[k]:.3f}" for k in
                                 ("loss_d", "loss_g", "d_real", "d_fake")}, refresh=False)
                bar.update(1)
                if backend.writer:
                    csv.append(row)
                    backend.log(step, row)
                    if step % cfg.sample_every == 0 or step == cfg.steps:
                        save_samples(step)
                    if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                        save_all(step)
                if interrupt.requested:
                    raise KeyboardInterrupt
        bar.close()
    except TrainingDiverged:
        bar.close()
        if backend.writer:  # the rows up to the last good step, for plotting
            history.to_csv(run_dir.history_path)
        raise
    except KeyboardInterrupt:
        bar.close()
        ckpt_path = run_dir.path / backend.checkpoint_name
        done = int(history.last("step", default=start))
        if done == step and done > start and backend.writer:  # stopped between steps: `step`'s state
            save_all(done)
        else:  # stopped inside a step: its state is half-updated; keep the last checkpoint
            done = start if not ckpt_path.exists() else backend.checkpoint_step(
                backend.read_checkpoint(ckpt_path, None))
        print(f"interrupted at step {done}; resume with: "
              f"{backend.resume_command(cfg, run_dir.path)}", file=sys.stderr)
        raise
