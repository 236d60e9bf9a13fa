"""The Keras side of the shared run loop (TensorFlow backend): :class:`Backend` (build, step,
save, restore and sample for :func:`dcgan_lab.run.loop.run`), the pickle-free checkpoint
(``checkpoint.keras.npz``), :func:`train`, :func:`sample`, :func:`load_generator` and the
``fit()`` callbacks (:class:`GANMonitor`, :class:`GANCheckpoint`, :class:`HistoryLogger`).

The step itself (:class:`GAN`, :class:`StackedGAN`, :func:`train_step`) is
:mod:`dcgan_lab.keras.step`. :func:`train` drives either trainer with the stateless random
streams of :mod:`dcgan_lab.run.streams` (the same real batches, ``z`` and label noise as
:func:`dcgan_lab.torch.train`), keeps the same run folder as the PyTorch twin (``config.json``,
``history.csv``, ``samples/``, ``training.gif``), writes ``generator.keras``/
``discriminator.keras`` and resumes bit for bit on the CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .. import recipes  # noqa: E402
from ..run import config, loop, rundir, streams  # noqa: E402
from ..run.atomic import CheckpointError, atomic_path, why_unreadable  # noqa: E402
from ..run.config import TrainOptions  # noqa: E402
from ..run.history import STEP_METRICS, History  # noqa: E402
from ..run.loop import TrainingDiverged  # noqa: E402
from ..run.rundir import RunDir  # noqa: E402
from ..speed import Speed  # noqa: E402

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "DISCRIMINATOR_NAME",
    "GENERATOR_NAME",
    "Backend",
    "GANCheckpoint",
    "GANMonitor",
    "HistoryLogger",
    "load_checkpoint",
    "load_generator",
    "sample",
    "save_checkpoint",
    "step_loader",
    "train",
]

CHECKPOINT_NAME = "checkpoint.keras.npz"
GENERATOR_NAME = "generator.keras"
DISCRIMINATOR_NAME = "discriminator.keras"
CHECKPOINT_FORMAT = "dcgan_lab.keras.checkpoint/1"

#: ``cb(step, G, D, history)`` after every step, as in the PyTorch twin.
Callback = Callable[[int, keras.Model, keras.Model, History], None]



from .step import GAN, StackedGAN, make_trainer, step_inputs, train_step  # noqa: E402

# --------------------------------------------------------------------------------------------
# data


# --------------------------------------------------------------------------------------------
# checkpoints: one .npz of named arrays plus a JSON header; read with allow_pickle=False


def save_checkpoint(path: str | Path, trainer: GAN | StackedGAN, *, step: int,
                    cfg: config.Config | None, fixed_noise: np.ndarray) -> None:
    """Write every variable a resume needs to ``path``, atomically (temp file + rename).

    Groups: ``generator``/``discriminator`` (``model.variables``: weights, BatchNorm moving
    statistics and the dropout layers' ``SeedGenerator`` states), ``opt_g``/``opt_d`` (Adam's
    iteration count, learning rate and moments), ``rng`` (the GAN's own seed state), plus the step,
    the config and the fixed noise. NaN or infinite weights raise :class:`TrainingDiverged` and
    nothing is written.
    """
    groups = trainer.state_groups()
    arrays: dict[str, np.ndarray] = {}
    header = {"format": CHECKPOINT_FORMAT, "framework": "keras", "step": int(step),
              "keras_version": keras.__version__,
              "config": cfg.to_dict() if cfg is not None else None,
              "recipe": cfg.recipe if cfg is not None else None,
              "style": "stacked" if isinstance(trainer, StackedGAN) else "train_step",
              "groups": {}}
    for group, variables in groups.items():
        header["groups"][group] = [v.path for v in variables]
        for i, v in enumerate(variables):
            a = np.asarray(v.numpy())
            if group in ("generator", "discriminator") and a.dtype.kind == "f" \
                    and not np.isfinite(a).all():
                raise TrainingDiverged(f"step {step}: {group} variable {v.path} is not finite; "
                                       f"the checkpoint was not written (the last good one is "
                                       f"kept)")
            arrays[f"{group}/{i:04d}"] = a
    arrays["fixed_noise"] = np.asarray(fixed_noise, np.float32)
    arrays["header"] = np.array(json.dumps(header, default=str))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object: savez would append .npz to a path


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}  # reads (and CRC-checks) every array now
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint there") from None
    except Exception as e:  # noqa: BLE001 - anything unreadable is a corrupt checkpoint
        raise CheckpointError(f"{path} is corrupt or not a Keras checkpoint of dcgan_lab "
                              f"({why_unreadable(e)}); delete it or pass --force to start "
                              f"afresh") from None


def load_checkpoint(path: str | Path, cfg: config.Config | None = None) -> dict:
    """Read and check a checkpoint of :func:`save_checkpoint`: ``{"header", "arrays"}``.

    Raises :class:`~dcgan_lab.run.atomic.CheckpointError` naming the file if it is unreadable,
    not one of ours, of another format version or (with ``cfg``) of another run.
    """
    path = Path(path)
    arrays = _read_npz(path)
    if "header" not in arrays or arrays["header"].dtype.kind != "U" or arrays["header"].ndim:
        raise CheckpointError(f"{path} is not a dcgan_lab Keras checkpoint (no header)")
    try:
        header = json.loads(str(arrays.pop("header")))
    except ValueError as e:
        raise CheckpointError(f"{path}: its header is not readable JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        got = header.get("format") if isinstance(header, dict) else None
        raise CheckpointError(f"{path} has format {got!r}; this version of dcgan_lab reads "
                              f"{CHECKPOINT_FORMAT!r}")
    if cfg is not None and header.get("config") is not None:
        rundir.check_checkpoint_run(path, header.get("recipe"), header["config"], cfg)
    return {"header": header, "arrays": arrays, "path": path}


def _assign(path: Path, group: str, variables: list, state: dict) -> None:
    names = state["header"]["groups"].get(group)
    if names is None or len(names) != len(variables):
        raise CheckpointError(f"{path}: group {group!r} holds "
                              f"{'no' if names is None else len(names)} variables, the model "
                              f"has {len(variables)}: it does not fit these models")
    values = []
    for i, v in enumerate(variables):
        a = state["arrays"].get(f"{group}/{i:04d}")
        if a is None or tuple(a.shape) != tuple(v.shape):
            raise CheckpointError(f"{path}: {group} variable {i} ({names[i]}) has shape "
                                  f"{None if a is None else a.shape}, the model's "
                                  f"{v.path} has {tuple(v.shape)}: it does not fit these models")
        values.append(a)
    for v, a in zip(variables, values, strict=True):  # assign only once everything has been checked
        v.assign(a.astype(v.dtype) if hasattr(a, "astype") else a)


def restore(state: dict, trainer: GAN | StackedGAN) -> int:
    """Assign a loaded checkpoint to ``trainer``'s variables; returns its step."""
    path = state["path"]
    style = "stacked" if isinstance(trainer, StackedGAN) else "train_step"
    if state["header"].get("style") != style:
        raise CheckpointError(f"{path} was written by the {state['header'].get('style')!r} style, "
                              f"not {style!r}")
    for group, variables in trainer.state_groups().items():
        _assign(path, group, variables, state)
    return int(state["header"]["step"])


# --------------------------------------------------------------------------------------------
# saving models


def _save_model(model: keras.Model, path: Path) -> None:
    """``model.save`` (the .keras zip) atomically, without compile state or optimiser."""
    single = len(model.inputs) == 1 and len(model.outputs) == 1
    clean = keras.Model(model.input if single else model.inputs,  # shares the layers
                        model.output if single else model.outputs, name=model.name)
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + ".keras")  # save() insists on the extension
        try:
            clean.save(staged)
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)


def _generate(generator: keras.Model, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """G(z) in inference mode (BatchNorm moving statistics, no dropout), float32 NHWC."""
    out = [np.asarray(generator(z[i:i + batch], training=False))
           for i in range(0, len(z), batch)]
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------
# the loop


def _device_type() -> str:
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


class _dtype_policy:
    """Set the global Keras dtype policy (e.g. ``"mixed_bfloat16"``) inside the block only."""

    def __init__(self, name: str | None):
        self.name, self.old = name, None

    def __enter__(self) -> None:
        if self.name not in (None, "off"):
            self.old = keras.mixed_precision.dtype_policy()
            keras.mixed_precision.set_dtype_policy(self.name)

    def __exit__(self, *exc) -> None:
        if self.old is not None:
            keras.mixed_precision.set_dtype_policy(self.old)


def step_loader(images: np.ndarray, cfg: config.Config, start: int, speed: Speed | None = None):
    """The :func:`step_inputs` of steps ``start + 1 .. cfg.steps``, in order (the PyTorch twin's
    ``step_loader``).

    Without ``speed.prefetch``: a plain generator (each step's inputs are drawn just before it).
    Otherwise a ``tf.data`` pipeline whose ``prefetch(speed.prefetch)`` draws the coming steps'
    inputs in a background thread while the current step trains; items are numpy arrays either
    way. (There is nothing to ``cache()``: the images already are one uint8 array in memory, and
    every step's rows, ``z`` and targets are new draws from the stateless streams.)
    """
    prefetch = (speed.prefetch if speed is not None else 0) or 0
    steps = range(start + 1, cfg.steps + 1)
    if not prefetch:
        return (step_inputs(s, images, cfg) for s in steps)
    first = step_inputs(start + 1, images, cfg) if len(steps) else None
    if first is None:
        return iter(())
    signature = {k: tf.TensorSpec(v.shape, tf.as_dtype(v.dtype)) for k, v in first.items()}
    ds = tf.data.Dataset.from_generator(lambda: (step_inputs(s, images, cfg) for s in steps),
                                        output_signature=signature).prefetch(prefetch)
    return ({k: v.numpy() for k, v in item.items()} for item in ds)


def _seed(seed: int) -> None:
    """Fix the initial weights and dropout seeds; make TensorFlow's kernels deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class Backend(loop.Backend):
    """The Keras side of :func:`dcgan_lab.run.loop.run`: models, the trainer of ``cfg.keras_style``,
    :func:`train_step`, ``checkpoint.keras.npz`` and ``generator.keras``/``discriminator.keras``."""

    framework, checkpoint_name = "keras", CHECKPOINT_NAME
    final_names = (GENERATOR_NAME, DISCRIMINATOR_NAME)

    def __init__(self, speed: Speed | None = None):
        self.speed = speed

    def label(self, cfg: config.Config) -> str:
        return f"{cfg.recipe} (keras, {cfg.keras_style})"

    def read_checkpoint(self, path: Path, cfg: config.Config | None) -> dict:
        return load_checkpoint(path, cfg)

    def checkpoint_step(self, state: dict) -> int:
        return int(state["header"]["step"])

    def build(self, cfg: config.Config) -> None:
        from .. import speed as speed_mod
        from .models import build_for

        _seed(cfg.seed)
        self.speed = speed_mod.resolve(self.speed, "keras", _device_type())
        with _dtype_policy(self.speed.mixed_precision):  # layers keep the policy they were built with
            # stacked: D frozen inside `combined` must still use batch statistics (see StackedGAN)
            self.models = build_for(cfg, tf1_batchnorm=cfg.keras_style == "stacked")
        self.trainer = make_trainer(cfg, *self.models, jit_compile=bool(self.speed.jit_compile))

    def restore(self, path: Path, state: dict) -> int:
        return restore(state, self.trainer)

    def batches(self, images: np.ndarray, cfg: config.Config, start: int):
        return step_loader(images, cfg, start, self.speed)

    def step(self, step: int, images: np.ndarray, cfg: config.Config, inputs) -> dict[str, float]:
        return train_step(step, self.trainer, images, cfg, inputs=inputs)

    def sample(self, z: np.ndarray) -> np.ndarray:
        from .. import data

        return data.to_uint8(_generate(self.models[0], z))

    def save(self, path: Path, step: int, cfg: config.Config, fixed_z: np.ndarray) -> None:
        save_checkpoint(path, self.trainer, step=step, cfg=cfg, fixed_noise=fixed_z)

    def save_final(self, run: RunDir) -> None:
        G, D = self.models
        D.trainable = True
        _save_model(G, run.path / GENERATOR_NAME)
        _save_model(D, run.path / DISCRIMINATOR_NAME)


def train(
    recipe: str | recipes.Recipe,
    out_dir: str | Path,
    *,
    options: TrainOptions | None = None,
    profile: str | None = None,
    data: str | np.ndarray | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    callbacks: Iterable[Callback] = (),
    speed: Speed | None = None,
    resolved: config.Config | None = None,
    checked: bool = False,
) -> History:
    """Train ``recipe`` with Keras into the run folder ``out_dir``; return the :class:`History`.

    The same semantics as :func:`dcgan_lab.torch.train`: ``options`` override the recipe and the
    profile budget (``options.keras_style`` picks "stacked" or "train_step"); ``data`` is a data
    set name, a folder of photos or a uint8 NHWC array; ``resume`` continues from the checkpoint
    (bit for bit on the CPU); ``force`` starts afresh in a folder that holds a run;
    ``callbacks`` are called as ``cb(step, G, D, history)`` after every step.

    The folder gets ``config.json``, ``history.csv`` (a row appended per step),
    ``samples/step_NNNNNN.png`` (the fixed ``z``), ``checkpoint.keras.npz``, and at the end
    ``training.gif``, ``generator.keras`` and ``discriminator.keras`` (load them with
    ``keras.models.load_model(path, safe_mode=True)`` or :func:`load_generator`).

    ``speed`` (:class:`~dcgan_lab.speed.Speed`) picks how the steps compute -- XLA
    (``jit_compile``), a mixed-precision policy, a ``tf.data`` prefetch of the coming steps'
    inputs -- without changing what they compute; ``None`` fields take the measured defaults
    (:data:`dcgan_lab.speed.DEFAULTS`). It is not part of the run's config.

    The loop itself is :func:`dcgan_lab.run.loop.run` (shared with PyTorch): Ctrl-C finishes the
    current step, saves a checkpoint, prints how to resume and re-raises ``KeyboardInterrupt``; a
    NaN or infinite metric raises :class:`TrainingDiverged` before that step is saved anywhere.

    ``resolved``: the run's :class:`~dcgan_lab.run.config.Config` as a caller already resolved
    it from the same arguments (the command line), and ``checked`` that it checked the folder
    against it: each check is then made once.
    """
    cfg = resolved or config.resolve_run(recipe, "keras", options, profile, data)
    return loop.run(cfg, Backend(speed), out_dir, data=data, resume=resume, force=force,
                    progress=progress, callbacks=callbacks, checked=checked)


# --------------------------------------------------------------------------------------------
# callbacks for the idiomatic gan.fit(dataset) route


class GANMonitor(keras.callbacks.Callback):
    """Save a grid of ``G(fixed z)`` every ``every`` batches (default: each epoch's end), and a
    GIF of all grids when training ends. (keras.io's DCGAN example has a callback of the same
    name that draws fresh random ``z`` each epoch and saves PNGs, without a GIF.)"""

    def __init__(self, folder: str | Path, fixed_noise: np.ndarray, every: int | None = None,
                 gif: bool = True):
        super().__init__()
        self.folder = Path(folder)
        self.fixed_noise = np.asarray(fixed_noise, np.float32)
        self.every = every
        self.gif = gif
        self.paths: list[Path] = []
        self._batches = 0

    def _save(self, tag: str) -> None:
        from .. import grids

        grid = _generate(self.model.generator, self.fixed_noise)
        path = self.folder / f"{tag}.png"
        grids.save_png(grid, path, nrow=int(math.ceil(math.sqrt(len(grid)))))
        self.paths.append(path)

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.every and self._batches % self.every == 0:
            self._save(f"step_{self._batches:06d}")

    def on_epoch_end(self, epoch, logs=None):
        if not self.every:
            self._save(f"epoch_{epoch + 1:04d}")

    def on_train_end(self, logs=None):
        if self.gif and self.paths:
            from .. import grids

            grids.save_gif(self.paths, self.folder / "training.gif")


class GANCheckpoint(keras.callbacks.Callback):
    """Save :func:`save_checkpoint` of the fitted :class:`GAN` every ``every`` batches and at the
    end (``step`` counts batches since this callback was made, plus ``initial_step``)."""

    def __init__(self, path: str | Path, every: int = 100, *, cfg: config.Config | None = None,
                 fixed_noise: np.ndarray | None = None, initial_step: int = 0):
        super().__init__()
        self.path, self.every, self.cfg = Path(path), int(every), cfg
        self.fixed_noise = np.zeros((0, 0), np.float32) if fixed_noise is None else fixed_noise
        self.step = int(initial_step)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self._save()

    def on_train_end(self, logs=None):
        self._save()

    def _save(self) -> None:
        save_checkpoint(self.path, self.model, step=self.step, cfg=self.cfg,
                        fixed_noise=self.fixed_noise)


class HistoryLogger(keras.callbacks.Callback):
    """Collect the per-batch logs of ``gan.fit`` into a :class:`History` (and a CSV, if given)."""

    def __init__(self, csv_path: str | Path | None = None, initial_step: int = 0):
        super().__init__()
        self.history = History()
        self.csv_path = None if csv_path is None else Path(csv_path)
        self.step = int(initial_step)
        self._t0 = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        logs = logs or {}
        self.history.log(step=self.step, **{k: float(logs[k]) for k in STEP_METRICS if k in logs},
                         seconds=time.perf_counter() - self._t0)

    def on_train_end(self, logs=None):
        if self.csv_path is not None:
            self.history.to_csv(self.csv_path)


# --------------------------------------------------------------------------------------------
# using a trained generator


def sample(generator: keras.Model, n: int, seed: int = 0) -> np.ndarray:
    """``n`` images from ``generator`` as uint8 NHWC (inference mode).

    ``z`` is :func:`dcgan_lab.run.streams.sample_noise` (a seeded NumPy generator), the same draws as
    the PyTorch twin's ``sample``: ported weights give the same pictures.
    """
    from .. import data

    z = streams.sample_noise(n, int(generator.input_shape[-1]), seed)
    return data.to_uint8(_generate(generator, z))


def load_generator(run_dir: str | Path) -> keras.Model:
    """The trained generator of a run folder (``generator.keras`` in safe mode, else the
    checkpoint's weights in a freshly built model)."""
    from .models import build_for

    run = RunDir(run_dir)
    cfg = run.read_config()
    if cfg.framework != "keras":
        raise config.RunDirError(f"{run.path} is a {cfg.framework} run: use "
                                   f"dcgan_lab.{cfg.framework}.load_generator")
    gen_path, ckpt_path = run.path / GENERATOR_NAME, run.path / CHECKPOINT_NAME
    if gen_path.exists():
        try:
            return keras.models.load_model(gen_path, safe_mode=True, compile=False)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{gen_path} is corrupt or not a Keras model "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, cfg)
        G, _ = build_for(cfg)
        _assign(ckpt_path, "generator", G.variables, state)
        return G
    raise CheckpointError(f"{run.path} holds neither {GENERATOR_NAME} nor {CHECKPOINT_NAME}: "
                          f"train it first (dcgan-lab train {cfg.recipe} --framework keras "
                          f"--out {run.path})")

