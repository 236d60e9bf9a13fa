"""What both training loops share, with no framework inside: options, random streams, labels,
and the run folder.

Every random draw that is not inside a layer (dropout) comes from NumPy streams keyed by
``(seed, stream, step)``. The data order, the noise and the label noise of step ``t`` therefore
depend only on the seed and ``t``: a resumed run draws exactly what the uninterrupted run drew,
and the PyTorch and Keras loops see the same batches and the same ``z``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import profiles, recipes
from .checkpoint import read_json, write_json

G_LOSSES = ("non_saturating", "minimax")
D_BATCHES = ("separate", "concat")
FRAMEWORKS = ("torch", "keras")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class RunDirError(ValueError):
    """The output folder holds another run (or a broken one)."""


@dataclass(frozen=True)
class TrainOptions:
    """Options of a run. ``None`` means: take the recipe's value (or its profile budget)."""

    steps: int | None = None
    batch_size: int | None = None
    sample_every: int | None = None
    checkpoint_every: int | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    g_loss: str = "non_saturating"  # or "minimax": G minimises log(1 - D(G(z))), which saturates
    label_smoothing: float | None = None  # one-sided: real target = 1 - s (ganhacks 6)
    real_label_range: tuple[float, float] | None = None  # soft labels, e.g. (0.7, 1.0)
    fake_label_range: tuple[float, float] | None = None  # e.g. (0.0, 0.3)
    flip_prob: float = 0.0  # noisy labels: swap real/fake targets with this probability
    d_batches: str = "separate"  # "separate": D sees real and fake in two batches; "concat": one
    d_steps: int = 1  # D updates per G update
    g_dropout: float = 0.0  # dropout in G (ganhacks 17)
    g_activation: str | None = None  # None = the recipe's; "relu" or "leaky_relu"
    d_activation: str | None = None
    seed: int = 0
    n_fixed: int = 64  # fixed-noise samples drawn at every sample step
    metric_every: int | None = None  # record the Frechet distance every N steps (None: never)
    keras_style: str | None = None  # Keras only: "stacked" or "train_step" (None: the recipe's)

    def replace(self, **changes) -> TrainOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Config:
    """A fully resolved run: the recipe name, the framework, the profile and every option."""

    recipe: str
    framework: str
    profile: str
    data: str
    steps: int
    batch_size: int
    sample_every: int
    checkpoint_every: int
    lr_g: float
    lr_d: float
    beta1: float
    beta2: float
    loss: str
    g_loss: str
    label_smoothing: float
    real_label_range: tuple[float, float] | None
    fake_label_range: tuple[float, float] | None
    flip_prob: float
    d_batches: str
    d_steps: int
    g_dropout: float
    g_activation: str | None
    d_activation: str | None
    seed: int
    n_fixed: int
    metric_every: int | None
    keras_style: str
    half_batch: bool
    rounds_per_step: int

    @property
    def recipe_obj(self) -> recipes.Recipe:
        return recipes.get(self.recipe)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        missing = fields - set(d)
        if unknown or missing:
            raise RunDirError(f"config does not match this version of dcgan_lab: unknown keys "
                              f"{sorted(unknown)}, missing keys {sorted(missing)}")
        d = dict(d)
        for key in ("real_label_range", "fake_label_range"):
            if d[key] is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def comparable(self) -> dict:
        """The settings that define a run (not how long it goes)."""
        d = self.to_dict()
        for key in ("steps", "sample_every", "checkpoint_every", "profile"):
            d.pop(key)
        return d


def _range(name: str, value) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = (float(v) for v in value)
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"{name}={value!r}: need 0 <= low <= high <= 1")
    return (lo, hi)


def resolve(recipe: str | recipes.Recipe, framework: str, options: TrainOptions | None = None,
            profile: str | None = None, data: str | None = None) -> Config:
    """Resolve ``options`` against ``recipe`` and the profile budget into a :class:`Config`.

    Raises ``ValueError`` naming the option and the allowed values for anything out of range.
    """
    r = recipes.get(recipe)
    o = options or TrainOptions()
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework={framework!r}: choose one of {', '.join(FRAMEWORKS)}")
    prof = profiles.current(profile)
    b = r.budget(prof)
    if o.g_loss not in G_LOSSES:
        raise ValueError(f"g_loss={o.g_loss!r}: choose one of {', '.join(G_LOSSES)}")
    if o.d_batches not in D_BATCHES:
        raise ValueError(f"d_batches={o.d_batches!r}: choose one of {', '.join(D_BATCHES)}")
    for act_name, act in (("g_activation", o.g_activation), ("d_activation", o.d_activation)):
        if act not in (None, "relu", "leaky_relu"):
            raise ValueError(f"{act_name}={act!r}: choose relu or leaky_relu")
    style = o.keras_style or r.keras_style
    if style not in ("stacked", "train_step"):
        raise ValueError(f"keras_style={style!r}: choose stacked or train_step")
    if not 0.0 <= o.flip_prob <= 0.5:
        raise ValueError(f"flip_prob={o.flip_prob!r}: need 0 <= flip_prob <= 0.5")
    if not 0.0 <= o.g_dropout < 1.0:
        raise ValueError(f"g_dropout={o.g_dropout!r}: need 0 <= g_dropout < 1")
    smoothing = r.label_smoothing if o.label_smoothing is None else float(o.label_smoothing)
    if not 0.0 <= smoothing < 0.5:
        raise ValueError(f"label_smoothing={smoothing!r}: need 0 <= label_smoothing < 0.5")
    for name, v in (("lr_g", o.lr_g), ("lr_d", o.lr_d)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name}={v!r}: need a positive finite number")
    for name, v in (("beta1", o.beta1), ("beta2", o.beta2)):
        if v is not None and not 0.0 <= v < 1.0:
            raise ValueError(f"{name}={v!r}: need 0 <= {name} < 1")
    steps = o.steps if o.steps is not None else b.steps
    batch = o.batch_size if o.batch_size is not None else b.batch_size
    for name, v in (("steps", steps), ("batch_size", batch), ("d_steps", o.d_steps),
                    ("n_fixed", o.n_fixed)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r}: need a positive integer")
    if r.half_batch and batch < 2:
        raise ValueError(f"batch_size={batch}: {r.name} splits each batch in half; need >= 2")
    sample_every = o.sample_every or min(b.sample_every, steps)
    checkpoint_every = o.checkpoint_every or min(b.checkpoint_every, steps)
    return Config(
        recipe=r.name, framework=framework, profile=prof, data=data or r.dataset,
        steps=steps, batch_size=batch, sample_every=sample_every,
        checkpoint_every=checkpoint_every,
        lr_g=o.lr_g if o.lr_g is not None else r.lr_g,
        lr_d=o.lr_d if o.lr_d is not None else r.lr_d,
        beta1=o.beta1 if o.beta1 is not None else r.beta1,
        beta2=o.beta2 if o.beta2 is not None else r.beta2,
        loss=r.loss, g_loss=o.g_loss, label_smoothing=smoothing,
        real_label_range=_range("real_label_range", o.real_label_range),
        fake_label_range=_range("fake_label_range", o.fake_label_range),
        flip_prob=float(o.flip_prob), d_batches=o.d_batches, d_steps=o.d_steps,
        g_dropout=float(o.g_dropout), g_activation=o.g_activation, d_activation=o.d_activation,
        seed=int(o.seed), n_fixed=o.n_fixed, metric_every=o.metric_every,
        keras_style=style, half_batch=r.half_batch, rounds_per_step=r.rounds_per_step,
    )


def resolve_run(recipe: str | recipes.Recipe, framework: str, options: TrainOptions | None,
                profile: str | None, data: str | np.ndarray | None) -> Config:
    """:func:`resolve` for a ``train()`` call whose ``data`` may be an array (recorded in the
    config as ``<array NxHxWxC>``), a data set name, a folder or ``None`` (the recipe's)."""
    if isinstance(data, np.ndarray):
        cfg = resolve(recipe, framework, options, profile)
        return dataclasses.replace(cfg, data=f"<array {'x'.join(map(str, data.shape))}>")
    return resolve(recipe, framework, options, profile, data=None if data is None else str(data))


def check_data_source(source: str) -> None:
    """Raise ``DatasetNotFound`` naming ``source`` unless it is a folder or a data set name; a
    value that looks like a path (a path separator, or a leading ``.`` or ``~``) is a folder."""
    from . import data as data_mod

    folder = Path(source).expanduser()
    if folder.is_dir() or source in data_mod.DATASETS:
        return
    names = ", ".join(data_mod.DATASETS)
    if folder.exists():
        raise data_mod.DatasetNotFound(f"--data {source} is a file, not a folder of photos; give "
                                       f"a folder of photos or a data set name ({names})")
    if os.sep in source or "/" in source or source.startswith((".", "~")):
        raise data_mod.DatasetNotFound(f"--data {source}: no such folder; give a folder of "
                                       f"photos or a data set name ({names})")
    raise data_mod.DatasetNotFound(f"--data {source}: not a data set name ({names}) nor a "
                                   f"folder of photos")


def check_batch_size(cfg: Config, n_images: int) -> None:
    """Raise ``DatasetError`` if a batch of ``cfg`` needs more real images than there are."""
    from . import data as data_mod

    need = max(d_batch_sizes(cfg))
    if n_images < need:
        raise data_mod.DatasetError(f"--batch-size {cfg.batch_size} is larger than the data set "
                                    f"({need} real images per batch, {n_images} images); choose "
                                    f"a smaller --batch-size")


def load_training_images(cfg: Config, data: str | np.ndarray | None = None) -> np.ndarray:
    """The training images of ``cfg`` as uint8 NHWC, checked against the recipe's shape.

    ``data`` may be an array (used as is), a data set name (``data.load(name, "train")``) or a
    folder of photos (``data.load_folder(path, size=H)``); ``None`` means ``cfg.data``. Grayscale
    images are repeated to three channels for colour recipes and colour images converted to
    grayscale (ITU-R 601 luma) for grayscale recipes, with a note.
    """
    from . import data as data_mod

    h, w, c = cfg.recipe_obj.image_shape
    source = cfg.data if data is None else data
    if not isinstance(source, np.ndarray):
        check_data_source(str(source))
    if isinstance(source, np.ndarray):
        images, where = source, "the array passed as data"
    elif Path(str(source)).expanduser().is_dir():
        images, where = data_mod.load_folder(Path(str(source)).expanduser(), size=h), str(source)
    else:
        images, _ = data_mod.load(str(source), "train")
        where = f"data set {source!r}"
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    error = data_mod.DatasetError
    if images.ndim != 4 or images.dtype != np.uint8:
        raise error(f"{where}: expected uint8 images of shape (N, H, W, C), got {images.dtype} "
                    f"{images.shape}")
    if images.shape[1:3] != (h, w):
        raise error(f"{where} holds {images.shape[1]}x{images.shape[2]} images but recipe "
                    f"{cfg.recipe} needs {h}x{w}: choose a {h}x{w} data set (its default is "
                    f"{cfg.recipe_obj.dataset!r}) or a folder of photos (resized on loading)")
    if images.shape[3] != c:
        if images.shape[3] == 1 and c == 3:
            print(f"note: {where} is grayscale; repeating it to 3 channels for {cfg.recipe}")
            images = np.repeat(images, 3, axis=3)
        elif images.shape[3] in (3, 4) and c == 1:
            print(f"note: {where} is colour; converting it to grayscale for {cfg.recipe}")
            luma = images[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            images = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
        else:
            raise error(f"{where} has {images.shape[3]} channels but recipe {cfg.recipe} needs {c}")
    return images


# --- random streams (stateless: keyed by seed, stream and step) -------------------------------
_DATA, _NOISE, _LABELS, _FIXED = 1, 2, 3, 4


def _rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *keys])


def batch_indices(step: int, n_images: int, batch_size: int, seed: int, sub: int = 0,
                  per_step: int = 1) -> np.ndarray:
    """Rows of the real batch for ``step`` (D sub-step ``sub`` of ``per_step``).

    Batches walk through epochs of a shuffle that depends only on ``seed`` and the epoch, so the
    batch of any step can be computed without replaying the steps before it.
    """
    if n_images < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the data set ({n_images} images)")
    per_epoch = n_images // batch_size
    epoch, i = divmod(step * per_step + sub, per_epoch)
    order = _rng(seed, _DATA, epoch).permutation(n_images)
    return order[i * batch_size:(i + 1) * batch_size]


def noise(step: int, n: int, latent_dim: int, seed: int, sub: int = 0) -> np.ndarray:
    """Standard-normal ``z`` of shape (n, latent_dim), float32, for ``step``/``sub``."""
    return _rng(seed, _NOISE, step, sub).standard_normal((n, latent_dim), dtype=np.float32)


def fixed_noise(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """The fixed ``z`` whose samples are drawn at every sample step (same in both frameworks)."""
    return _rng(seed, _FIXED).standard_normal((n, latent_dim), dtype=np.float32)


def d_targets(cfg: Config, step: int, n_real: int, n_fake: int, sub: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """D's targets (n, 1) float32 for the real and the fake batch of ``step``.

    Soft ranges draw uniformly; one-sided smoothing lowers only the real target; with
    ``flip_prob`` each target is swapped for the other side's (noisy labels).
    """
    rng = _rng(cfg.seed, _LABELS, step, sub)

    def draw(n: int, rng_range, default: float) -> np.ndarray:
        if rng_range is None:
            return np.full((n, 1), default, np.float32)
        return rng.uniform(rng_range[0], rng_range[1], (n, 1)).astype(np.float32)

    real = draw(n_real, cfg.real_label_range, 1.0 - cfg.label_smoothing)
    fake = draw(n_fake, cfg.fake_label_range, 0.0)
    if cfg.flip_prob > 0:
        flip_r = rng.random((n_real, 1)) < cfg.flip_prob
        flip_f = rng.random((n_fake, 1)) < cfg.flip_prob
        real = np.where(flip_r, 1.0 - real, real).astype(np.float32)
        fake = np.where(flip_f, 1.0 - fake, fake).astype(np.float32)
    return real, fake


def d_sub(cfg: Config, round_: int, j: int) -> int:
    """Stream ``sub`` index of D update ``j`` (of ``cfg.d_steps``) in round ``round_`` of a step.

    Convention shared by both trainers: steps are numbered 1..cfg.steps (the history's ``step``
    and the checkpoint's step count completed steps) and the streams of step ``t`` are keyed by
    ``t``. Each step runs ``cfg.rounds_per_step`` rounds of (``cfg.d_steps`` D updates, then one G
    update); D update ``j`` of round ``r`` uses ``sub = d_sub(cfg, r, j)`` for
    :func:`batch_indices` (with ``per_step=d_updates_per_step(cfg)``), :func:`noise` and
    :func:`d_targets`; the G update of round ``r`` draws fresh ``z`` with ``sub = g_sub(cfg, r)``
    (or, in the PyTorch step of a recipe that :func:`reuses_fake`, trains on the fake batch of
    the round's last D update and draws nothing).
    """
    return round_ * cfg.d_steps + j


def g_sub(cfg: Config, round_: int = 0) -> int:
    """Stream ``sub`` index of the G update of round ``round_`` (see :func:`d_sub`)."""
    return cfg.rounds_per_step * cfg.d_steps + round_


def reuses_fake(cfg: Config) -> bool:
    """Whether the PyTorch step's G update reuses the fake batch of the round's last D update
    (``Recipe.reuse_fake``: the PyTorch-origin recipes, as pytorch/examples dcgan does) instead
    of drawing fresh ``z`` with ``sub = g_sub(cfg, r)``. Needs a full fake batch (no half batch).
    """
    return bool(cfg.recipe_obj.reuse_fake) and not cfg.half_batch


def d_updates_per_step(cfg: Config) -> int:
    """Real batches D consumes per step (``per_step`` of :func:`batch_indices`)."""
    return cfg.rounds_per_step * cfg.d_steps


def sample_noise(n: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """The ``z`` of ``sample(generator, n, seed)`` in both frameworks: float32 (n, latent_dim)."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim), dtype=np.float32)


def d_batch_sizes(cfg: Config) -> tuple[int, int]:
    """(real, fake) images per D step: half and half for Keras-GAN recipes, else a full batch each."""
    if cfg.half_batch:
        half = cfg.batch_size // 2
        return half, cfg.batch_size - half
    return cfg.batch_size, cfg.batch_size


def step_inputs(step: int, images: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
    """The real batches, ``z`` and D targets of ``step`` as NumPy arrays (NHWC), for both
    frameworks (``dcgan_lab.torch.step_inputs`` makes NCHW tensors of them).

    Keys: ``real`` (U, n_real, H, W, C) float32 in [-1, 1], ``z_d`` (U, n_fake, latent),
    ``t_real`` (U, n_real, 1), ``t_fake`` (U, n_fake, 1), ``z_g`` (rounds, batch, latent), where
    U = rounds_per_step * d_steps and D update ``j`` of round ``r`` takes row ``r * d_steps + j``
    (see :func:`d_sub`).
    """
    from . import data

    latent = cfg.recipe_obj.latent_dim
    n_real, n_fake = d_batch_sizes(cfg)  # half and half for Keras-GAN recipes
    per_step = d_updates_per_step(cfg)
    out: dict[str, list[np.ndarray]] = {"real": [], "z_d": [], "t_real": [], "t_fake": [],
                                        "z_g": []}
    for rnd in range(cfg.rounds_per_step):
        for j in range(cfg.d_steps):
            sub = d_sub(cfg, rnd, j)
            rows = batch_indices(step, len(images), n_real, cfg.seed, sub=sub, per_step=per_step)
            out["real"].append(data.to_float(images[rows]))
            out["z_d"].append(noise(step, n_fake, latent, cfg.seed, sub=sub))
            t_real, t_fake = d_targets(cfg, step, n_real, n_fake, sub=sub)
            out["t_real"].append(t_real)
            out["t_fake"].append(t_fake)
        out["z_g"].append(noise(step, cfg.batch_size, latent, cfg.seed, sub=g_sub(cfg, rnd)))
    return {k: np.stack(v) for k, v in out.items()}


def shard(inputs: dict, index: int, count: int) -> dict:
    """Part ``index`` (of ``count`` processes or replicas) of every batch of :func:`step_inputs`:
    its contiguous slice of the batch dimension (axis 1), NumPy arrays or torch tensors alike.
    Raises ``ValueError`` if a batch does not split evenly."""
    out = {}
    for k, v in inputs.items():
        n = v.shape[1]
        if n % count:
            raise ValueError(f"{k}: a batch of {n} does not split over {count} processes or "
                             f"replicas; choose --batch-size a multiple of {count} (x2 for "
                             f"half-batch recipes)")
        per = n // count
        out[k] = v[:, index * per:(index + 1) * per]
    return out


def run_arguments(cfg: Config) -> str:
    """The options of the data-parallel trainers' command lines that define ``cfg``'s run
    (``--batch-size``, ``--seed``, and ``--data`` unless the recipe's): what a resume repeats."""
    data = "" if cfg.data == cfg.recipe_obj.dataset else f" --data {cfg.data}"
    return f"--batch-size {cfg.batch_size} --seed {cfg.seed}{data}"


# --- the run folder ---------------------------------------------------------------------------
class RunDir:
    """Layout of a run folder: config.json, history.csv, samples/, checkpoint files, final models."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def history_path(self) -> Path:
        return self.path / "history.csv"

    @property
    def history_copy_path(self) -> Path:
        """The history as of the last checkpoint (written just before it): what a resume
        restores ``history.csv`` from when that file is missing, damaged or cut."""
        return self.path / "checkpoint.history.csv"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def sample_path(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"

    def sample_paths(self) -> list[Path]:
        return sorted(self.samples.glob("step_*.png"))

    @property
    def gif_path(self) -> Path:
        return self.path / "training.gif"

    def read_config(self) -> Config:
        if not self.config_path.exists():
            raise RunDirError(f"{self.path} is not a run folder: {self.config_path.name} is missing")
        return Config.from_dict(read_json(self.config_path))

    def prepare(self, cfg: Config, resume: bool = False, force: bool = False) -> bool:
        """Check the folder and write ``config.json``. Returns True when resuming an existing run.

        A folder that holds a different run is refused unless ``force``; a folder that holds this
        run is refused unless ``resume`` (or ``force``, which starts afresh). Temporary files
        that a killed run left half-written (``.NAME.*.tmp``: an atomic write that never got
        renamed) are removed.
        """
        exists = self.check(cfg, resume=resume, force=force)
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create the run folder {self.path} ({e.strerror or e}); "
                              f"choose another --out") from None
        for folder in (self.path, self.samples):
            for stale in folder.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
        write_json(self.config_path, cfg.to_dict())
        return exists and resume and not force

    def check(self, cfg: Config, resume: bool = False, force: bool = False) -> bool:
        """The checks of :meth:`prepare` without writing anything (to fail before slow work).

        A folder that holds other files but no run (no ``config.json``) is refused unless
        ``force`` (which writes only the run's own names there). Returns whether the folder
        already holds a run (a ``config.json``).
        """
        exists = self.config_path.exists()
        if exists and not force:
            old = self.read_config()
            if old.comparable() != cfg.comparable():
                diff = {k: (old.comparable()[k], v) for k, v in cfg.comparable().items()
                        if old.comparable().get(k) != v}
                raise RunDirError(
                    f"{self.path} holds a different run (differences as old -> new: "
                    f"{json.dumps(diff, default=str)}); choose another --out, or pass --force "
                    f"to start afresh there")
            if not resume:
                raise RunDirError(f"{self.path} already holds this run: pass --resume to continue "
                                  f"it or --force to start afresh")
        elif resume and not exists:
            raise RunDirError(f"cannot resume: {self.path} holds no run ({self.config_path.name} "
                              f"is missing)")
        elif not exists and not force and self.path.is_dir():
            others = self._other_entries()
            if others:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                raise RunDirError(f"{self.path} is not empty ({shown}) but holds no run (no "
                                  f"{self.config_path.name}); choose a new or empty --out, or "
                                  f"pass --force to train there (files named as a run's are "
                                  f"replaced)")
        return exists

    def _other_entries(self) -> list[str]:
        """The names in the folder, but for an empty ``samples/`` (a run killed while starting)."""
        return sorted(p.name for p in self.path.iterdir()
                      if not (p == self.samples and p.is_dir() and not any(p.iterdir())))


def check_checkpoint_run(path: Path, recipe: str | None, config: dict | str, cfg: Config) -> None:
    """Raise :class:`~dcgan_lab.checkpoint.CheckpointError` naming ``path`` unless a checkpoint's
    ``recipe`` and ``config`` (``Config.to_dict()``, or its JSON) belong to the run of ``cfg``."""
    from .checkpoint import CheckpointError

    if recipe != cfg.recipe:
        raise CheckpointError(f"{path} belongs to recipe {recipe!r}, not {cfg.recipe!r}: choose "
                              f"another --out or pass --force")
    try:
        old = Config.from_dict(json.loads(config) if isinstance(config, str) else config)
    except (ValueError, TypeError, RunDirError) as e:
        raise CheckpointError(f"{path}: its config is unreadable ({e})") from None
    if old.comparable() != cfg.comparable():
        diff = sorted(k for k, v in cfg.comparable().items() if old.comparable().get(k) != v)
        raise CheckpointError(f"{path} belongs to a different run (differs in {', '.join(diff)}): "
                              f"choose another --out or pass --force")


def check_finite(step: int, **losses: float) -> None:
    """Raise :class:`TrainingDiverged` naming the loss and step if any loss is NaN or infinite."""
    bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
    if bad:
        names = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingDiverged(f"step {step}: {names}. Training stopped; the last good checkpoint "
                               f"is kept. Try a lower learning rate (--lr-d/--lr-g) or label "
                               f"smoothing, then --resume.")
