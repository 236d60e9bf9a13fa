"""A run's settings, framework-free: :class:`TrainOptions` (what a caller may set),
:class:`Config` (every value a run needs, written to ``config.json``) and :func:`resolve`, the one
place every option is checked (a ``ValueError`` naming the option and its allowed values).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import profiles, recipes

G_LOSSES = ("non_saturating", "minimax")
# the game D and G play (CLI ``--loss``): the BCE game of the sources ("gan", the default), or a
# critic objective: WGAN-GP (Gulrajani et al. 2017) or hinge (Miyato et al. 2018), whose D is a
# critic (an unbounded score: no sigmoid, no BatchNorm; see the builders' ``critic`` option)
OBJECTIVES = ("gan", "wgan-gp", "hinge")
# D's and G's updates (CLI ``--update``): D, then G against the updated D (the PyTorch DCGAN
# tutorial, the default), or both from one forward pass (the TensorFlow DCGAN tutorial)
UPDATES = ("alternating", "simultaneous")
GP_WEIGHT = 10.0  # WGAN-GP's lambda (the paper's Algorithm 1)
D_BATCHES = ("separate", "concat")
FRAMEWORKS = ("torch", "keras")


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
    objective: str = "gan"  # CLI --loss: "gan", "wgan-gp" or "hinge" (OBJECTIVES)
    update: str = "alternating"  # CLI --update: "alternating" or "simultaneous" (UPDATES)

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
    # added after the first release: a config.json without them is read with these defaults
    objective: str = "gan"
    update: str = "alternating"

    @property
    def critic(self) -> bool:
        """Whether D is a critic (an objective other than the BCE game): no sigmoid, no BatchNorm."""
        return self.objective != "gan"

    @property
    def recipe_obj(self) -> recipes.Recipe:
        return recipes.get(self.recipe)

    def to_dict(self) -> dict:
        """Every field, but the options added after the first release only where they differ
        from their defaults: a default run's config.json is byte for byte what it always was."""
        d = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if f.default is not dataclasses.MISSING and d[f.name] == f.default:
                del d[f.name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        fields = {f.name for f in dataclasses.fields(cls)}
        optional = {f.name for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING}
        unknown = set(d) - fields
        missing = fields - set(d) - optional
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


def check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` (``"name=value: choose one of a, b"``) unless ``value`` is a choice
    (the one wording of :func:`resolve` and of the Keras trainers built without it)."""
    if value not in choices:
        raise ValueError(f"{name}={value!r}: choose one of {', '.join(choices)}")


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
    check_choice("g_loss", o.g_loss, G_LOSSES)
    check_choice("d_batches", o.d_batches, D_BATCHES)
    for act_name, act in (("g_activation", o.g_activation), ("d_activation", o.d_activation)):
        if act not in (None, "relu", "leaky_relu"):
            raise ValueError(f"{act_name}={act!r}: choose relu or leaky_relu")
    style = o.keras_style or r.keras_style
    if style not in ("stacked", "train_step"):
        raise ValueError(f"keras_style={style!r}: choose stacked or train_step")
    if framework == "keras" and style == "stacked" and o.g_loss != "non_saturating":
        raise ValueError(f"g_loss={o.g_loss!r} is not available with keras_style='stacked' "
                         f"(recipe {r.name}): combined.train_on_batch(z, ones) can only "
                         f"minimise BCE against targets. Use TrainOptions(keras_style="
                         f"'train_step', g_loss={o.g_loss!r})")
    check_choice("objective", o.objective, OBJECTIVES)
    check_choice("update", o.update, UPDATES)
    if o.objective != "gan":
        if o.g_loss != "non_saturating":
            raise ValueError(f"g_loss={o.g_loss!r} has no meaning with objective={o.objective!r}: "
                             "G's loss is then -mean D(G(z)); leave g_loss='non_saturating'")
        set_labels = [n for n, v in (("label_smoothing", o.label_smoothing),
                                     ("real_label_range", o.real_label_range),
                                     ("fake_label_range", o.fake_label_range),
                                     ("flip_prob", o.flip_prob)) if v]
        if set_labels:
            raise ValueError(f"{', '.join(set_labels)}: D's targets have no meaning with "
                             f"objective={o.objective!r} (a critic has no labels)")
    if o.update == "simultaneous" and o.d_steps != 1:
        raise ValueError(f"d_steps={o.d_steps!r}: update='simultaneous' makes one D and one G "
                         "update from one forward pass; use d_steps=1 or update='alternating'")
    if framework == "keras" and style == "stacked" and (o.objective, o.update) != (
            "gan", "alternating"):
        raise ValueError(f"objective={o.objective!r}, update={o.update!r} need "
                         f"keras_style='train_step' (recipe {r.name} trains with 'stacked': "
                         "train_on_batch against targets, one model after the other)")
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
        objective=o.objective, update=o.update,
    )


def resolve_run(recipe: str | recipes.Recipe, framework: str, options: TrainOptions | None,
                profile: str | None, data: str | np.ndarray | None) -> Config:
    """:func:`resolve` for a ``train()`` call whose ``data`` may be an array (recorded in the
    config as ``<array NxHxWxC>``), a data set name, a folder or ``None`` (the recipe's)."""
    if isinstance(data, np.ndarray):
        cfg = resolve(recipe, framework, options, profile)
        return dataclasses.replace(cfg, data=f"<array {'x'.join(map(str, data.shape))}>")
    return resolve(recipe, framework, options, profile, data=None if data is None else str(data))
