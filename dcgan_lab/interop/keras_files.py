"""Import a Keras generator (and discriminator) saved elsewhere into a dcgan_lab Keras run folder.

A ``.keras`` file is loaded with ``keras.saving.load_model(..., safe_mode=True)`` (no lambda or
other code in the file runs); its layers that hold weights are matched in order, by the shapes
of their weights, to those of the recipe's network, and the images of the loaded model and of
ours are compared. A ``.weights.h5`` file holds no network: Keras loads it into the recipe's.
The run folder (``config.json``, ``generator.keras``, an empty ``history.csv`` and a step-0
checkpoint with fresh optimisers) is accepted by ``sample``, ``evaluate`` and ``train --resume``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ..run import config, rundir, streams
from ..run.atomic import why_unreadable
from .report import ImportReport, WeightsMismatch


def _weighted(model) -> list:
    """The layers of ``model`` that hold weights, in order (nested models flattened)."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:
            out += _weighted(layer)
        elif layer.weights:
            out.append(layer)
    return out


def _shapes(layer) -> str:
    return ", ".join("x".join(map(str, w.shape)) for w in layer.weights)


def copy_matched(source, target, origin: str, what: str) -> None:
    """Copy ``source``'s weights into ``target`` layer by layer, checking every shape first."""
    src, dst = _weighted(source), _weighted(target)
    for i, (s, d) in enumerate(itertools.zip_longest(src, dst)):
        if s is None or d is None:
            first = f"{what}'s {d.name} ({_shapes(d)})" if s is None else f"{s.name} ({_shapes(s)})"
            raise WeightsMismatch(f"{origin}: has {len(src)} layers with weights, the {what} has "
                                  f"{len(dst)}; the first without a match is the {first}")
        if [tuple(w.shape) for w in s.weights] != [tuple(w.shape) for w in d.weights]:
            raise WeightsMismatch(f"{origin}: layer {i} ({s.name}: {_shapes(s)}) does not match "
                                  f"the {what}'s layer {d.name} ({_shapes(d)})")
    for s, d in zip(src, dst, strict=True):
        d.set_weights(s.get_weights())


def _load_into(path: Path, model, what: str) -> float | None:
    """Load the Keras file ``path`` into ``model``; the largest output difference to the file's
    own network (None for a ``.weights.h5``, which holds no network)."""
    import keras

    if not path.is_file():
        raise WeightsMismatch(f"{path}: no such file")
    if path.name.endswith(".weights.h5"):
        try:
            model.load_weights(path)
        except Exception as e:  # noqa: BLE001 - Keras' own mismatch message, in one line
            raise WeightsMismatch(f"{path} does not fit the {what} ({why_unreadable(e)})"
                                  ) from None
        return None
    if path.suffix != ".keras":
        raise WeightsMismatch(f"{path}: expected a .keras or .weights.h5 file")
    try:
        source = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001 - anything unreadable is reported in one line
        raise WeightsMismatch(f"{path} is not a Keras model that loads in safe mode "
                              f"({why_unreadable(e)})") from None
    copy_matched(source, model, str(path), what)
    shape = (16, *tuple(model.input_shape[1:]))
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    return float(np.abs(np.asarray(source(x, training=False))
                        - np.asarray(model(x, training=False))).max())


def import_keras(generator: str | Path, recipe: str, out: str | Path,
                 discriminator: str | Path | None = None, force: bool = False) -> ImportReport:
    """Write a Keras run folder at ``out`` holding the weights of ``generator`` (and
    ``discriminator``, else a fresh D) as recipe ``recipe``; see the module's docstring."""
    from ..keras.backend import Backend
    from ..run.history import History
    from ..speed import PLAIN

    cfg = config.resolve(recipe, "keras", config.TrainOptions(), None, None)
    run = rundir.RunDir(out)
    run.check(cfg, force=force)
    backend = Backend(speed=PLAIN)
    backend.build(cfg)  # the run's own models (seeded by cfg.seed) and trainer
    G, D = backend.models
    g_diff = _load_into(Path(generator), G, f"{recipe} generator")
    d_diff = None
    if discriminator is not None:
        d_diff = _load_into(Path(discriminator), D, f"{recipe} discriminator")
    run.prepare(cfg, force=force)
    History().to_csv(run.history_path)
    backend.save_final(run)  # generator.keras and discriminator.keras, atomically
    backend.save(run.path / backend.checkpoint_name, 0, cfg,
                 streams.fixed_noise(cfg.n_fixed, cfg.recipe_obj.latent_dim, cfg.seed))
    return ImportReport(run.path, g_diff, d_diff)
