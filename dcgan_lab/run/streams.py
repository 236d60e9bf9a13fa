"""What a run feeds its steps, framework-free: the training images and the stateless random
streams.

Every random draw that is not inside a layer (dropout) comes from NumPy streams keyed by
``(seed, stream, step)``. The data order, the noise and the label noise of step ``t`` therefore
depend only on the seed and ``t``: a resumed run draws exactly what the uninterrupted run drew,
and the PyTorch and Keras loops see the same batches and the same ``z``. :func:`d_targets` is the
one place D's targets (one-sided smoothing, soft ranges, flips) are drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .config import Config


def check_data_source(source: str) -> None:
    """Raise ``DatasetNotFound`` naming ``source`` unless it is a folder or a data set name; a
    value that looks like a path (a path separator, or a leading ``.`` or ``~``) is a folder."""
    from .. import data as data_mod

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
    from .. import data as data_mod

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
    from .. import data as data_mod

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
_DATA, _NOISE, _LABELS, _FIXED, _MIX = 1, 2, 3, 4, 5


def _rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *keys])


def batch_indices(step: int, n_images: int, batch_size: int, seed: int, sub: int = 0,
                  per_step: int = 1) -> np.ndarray:
    """Rows of the real batch for ``step`` (D sub-step ``sub`` of ``per_step``).

    Batches walk through epochs of a shuffle that depends only on ``seed`` and the epoch, so the
    batch of any step can be computed without replaying the steps before it. ``batch_size`` must
    not exceed ``n_images``: :func:`check_batch_size` says so, once, before a run's first step.
    """
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


def mix_weights(cfg: Config, step: int, n: int, sub: int = 0) -> np.ndarray:
    """WGAN-GP's interpolation weights ``eps`` (n, 1, 1, 1) float32, U(0, 1): the penalty's
    ``x_hat = eps x + (1 - eps) G(z)`` per image (a stream of its own: the others are unchanged)."""
    return _rng(cfg.seed, _MIX, step, sub).random((n, 1, 1, 1), dtype=np.float32)


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
    (see :func:`d_sub`); with ``cfg.objective == "wgan-gp"`` also ``eps`` (U, n_real, 1, 1, 1),
    the penalty's :func:`mix_weights`.
    """
    from .. import data

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
            if getattr(cfg, "objective", "gan") == "wgan-gp":
                out.setdefault("eps", []).append(mix_weights(cfg, step, n_real, sub=sub))
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
