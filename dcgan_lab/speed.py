"""Speed options of both trainers, with no framework inside.

A :class:`Speed` says *how* a run computes, never *what*: every option keeps the data, ``z``
and the label noise of each step (the stateless streams of :mod:`dcgan_lab.run`), so a run
with an option on gives the losses of the run with it off -- exactly for the input pipeline
options, to float rounding for the memory layout and compilers, to bfloat16 rounding for the
mixed-precision ones. That is why speed options are arguments of ``train`` and not fields of the
run's config: a run may be resumed with other speed options.

``None`` means "the measured default of this framework on this kind of device" (:data:`DEFAULTS`,
measured with ``benchmarks/bench_train.py``; see ``benchmarks/results.md`` and the appendix of
the book).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

AUTOCAST = ("off", "bf16", "fp16")
MIXED_PRECISION = ("off", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class Speed:
    """How a run computes. ``None`` fields take :func:`resolve`'s measured default.

    PyTorch: ``channels_last`` (NHWC memory layout of the conv nets and their inputs),
    ``compile`` (``torch.compile`` of G and D), ``autocast`` (``"bf16"``/``"fp16"`` forward
    passes, losses in float32; ``"off"``), ``workers`` (DataLoader worker processes that
    prepare each step's batch, ``z`` and targets ahead of the step; 0 = in the training
    process), ``pin_memory`` (page-locked host batches for faster copies to a GPU).

    Keras: ``jit_compile`` (XLA compilation of the train step), ``mixed_precision`` (a Keras
    dtype policy while building the models, e.g. ``"mixed_bfloat16"``; ``"off"``),
    ``prefetch`` (a ``tf.data`` pipeline that prepares this many steps ahead; 0 = none).
    """

    channels_last: bool | None = None
    compile: bool | None = None
    autocast: str | None = None
    workers: int | None = None
    pin_memory: bool | None = None
    jit_compile: bool | None = None
    mixed_precision: str | None = None
    prefetch: int | None = None

    def replace(self, **changes) -> Speed:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """The options that differ from everything off, e.g. ``"channels_last, workers=1"``."""
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v in (None, False, 0, "off"):
                continue
            parts.append(f.name if v is True else f"{f.name}={v}")
        return ", ".join(parts) or "plain"


#: Everything off: the plain loop (what the tests of the trainers run).
PLAIN = Speed(channels_last=False, compile=False, autocast="off", workers=0, pin_memory=False,
              jit_compile=False, mixed_precision="off", prefetch=0)

#: Measured defaults per (framework, device type); see benchmarks/results.md for the numbers.
#: Keras on the CPU computes with TensorFlow's oneDNN kernels, as TensorFlow ships (the course
#: once switched them off: 2x slower). On keras-faces64 at batch 64 (AMD EPYC with AVX-512 BF16)
#: oneDNN took a train_step from 9.4 s to 3.6 s; XLA measured no faster; the mixed_bfloat16 policy
#: 1.6x faster again, but it rounds activations to bfloat16 and is emulated (slow) on CPUs without
#: native bf16, so it is opt-in: :data:`FASTEST_KERAS_CPU`.
#: CPU (the 2-core x86 box of this build): everything off. channels_last measured 1.2-1.4x
#: faster on conv recipes, but dropout draws its mask in memory order, so on recipes with
#: dropout (bernico-*, g_dropout) it changes which units drop: opt in. bf16 autocast was faster
#: too but rounds activations to bf16; torch.compile (40-60 s to compile), DataLoader workers,
#: XLA and prefetch measured slower or no better. On dcgan64 at batch 64 (one process, alternating blocks against the canonical step;
#: benchmarks/results.md) channels_last ran 1.23x, bf16 autocast 2.24x, both 2.82x the canonical
#: step, plain 1.10x: ``parse("channels_last,autocast=bf16")`` is the fastest CPU choice measured.
#: GPU: the usual winners, not measured in this build (no GPU was available).
DEFAULTS: dict[tuple[str, str], Speed] = {
    ("torch", "cpu"): PLAIN,
    ("torch", "cuda"): PLAIN.replace(channels_last=True, autocast="bf16", workers=2,
                                     pin_memory=True),
    ("torch", "mps"): PLAIN,
    ("keras", "cpu"): PLAIN,
    ("keras", "gpu"): PLAIN.replace(jit_compile=True, prefetch=2),
}

#: The fastest PyTorch options measured on the CPU (dcgan64, batch 64; see :data:`DEFAULTS`):
#: opt-in, since they change float rounding (channels_last) and round activations to bfloat16.
#: ``benchmarks/bench_train.py --targets`` measures them against the canonical step.
FASTEST_CPU = PLAIN.replace(channels_last=True, autocast="bf16")

#: The fastest Keras option measured on the CPU (keras-faces64 and dcgan64, batch 64, oneDNN on):
#: layers built under the ``mixed_bfloat16`` policy. ``bench_train.py --targets`` measures it
#: against keras.io's ``train_step``.
FASTEST_KERAS_CPU = PLAIN.replace(mixed_precision="mixed_bfloat16")


def resolve(speed: Speed | None, framework: str, device_type: str) -> Speed:
    """``speed`` with every ``None`` replaced by the default of ``framework`` on ``device_type``.

    Raises ``ValueError`` naming the option for a value out of range.
    """
    base = DEFAULTS.get((framework, device_type), PLAIN)
    s = speed or Speed()
    filled = Speed(**{f.name: (getattr(s, f.name) if getattr(s, f.name) is not None
                               else getattr(base, f.name)) for f in dataclasses.fields(Speed)})
    if filled.autocast not in AUTOCAST:
        raise ValueError(f"autocast={filled.autocast!r}: choose one of "
                         f"{', '.join(map(str, AUTOCAST))}")
    if filled.mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision={filled.mixed_precision!r}: choose one of "
                         f"{', '.join(map(str, MIXED_PRECISION))}")
    for name in ("workers", "prefetch"):
        v = getattr(filled, name)
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"{name}={v!r}: need an integer >= 0")
    return filled


def parse(text: str | None, framework: str = "torch", device_type: str = "cpu") -> Speed:
    """Speed options from text, for a command line: ``"channels_last,autocast=bf16"`` is
    :data:`PLAIN` with those options on (a bare name means ``True``, digits an integer);
    ``None``, ``""`` or ``"plain"`` is everything off. Raises ``ValueError`` naming an unknown
    option or a bad value (checked by :func:`resolve` for ``framework`` on ``device_type``)."""
    if not text or text == "plain":
        return PLAIN
    names = [f.name for f in dataclasses.fields(Speed)]
    changes: dict = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name not in names:
            raise ValueError(f"speed option {name!r}: choose from {', '.join(names)}")
        if name in ("channels_last", "compile", "pin_memory", "jit_compile") and value:
            if value not in ("true", "false", "on", "off", "1", "0"):
                raise ValueError(f"{name}={value!r}: need true or false")
            changes[name] = value in ("true", "on", "1")
        else:
            changes[name] = True if not value else int(value) if value.isdigit() else value
    return resolve(PLAIN.replace(**changes), framework, device_type)


#: The frameworks :func:`describe_devices` knows, by the name of their Python module.
FRAMEWORK_MODULES = {"torch": "torch", "keras": "tensorflow"}


def describe_devices(frameworks: str | tuple[str, ...] | list[str] | None = None) -> str:
    """One line naming the device each framework computes on, for a chapter to print, e.g.
    ``"torch 2.13.0+cpu: cpu (2 threads) | keras 3.13.0 / tensorflow 2.21.0: CPU (no GPU)"``.

    ``frameworks``: ``"torch"``, ``"keras"`` or both; ``None`` means every framework that is
    installed. A framework is imported only if it is installed (``importlib.util.find_spec``) and
    asked for, so ``describe_devices("torch")`` never imports TensorFlow; one that is not
    installed is named as such. The device is the one :func:`dcgan_lab.torch.pick_device` picks
    (CUDA, then MPS, then the CPU) and, for Keras, the first GPU TensorFlow sees, else the CPU.
    """
    import importlib.util

    if frameworks is None:
        names = [f for f, mod in FRAMEWORK_MODULES.items() if importlib.util.find_spec(mod)]
    else:
        names = [frameworks] if isinstance(frameworks, str) else list(frameworks)
    for name in names:
        if name not in FRAMEWORK_MODULES:
            raise ValueError(f"framework {name!r}: choose from {', '.join(FRAMEWORK_MODULES)}")
    parts = []
    for name in names:
        if importlib.util.find_spec(FRAMEWORK_MODULES[name]) is None:
            parts.append(f"{name}: not installed")
        elif name == "torch":
            parts.append(_describe_torch())
        else:
            parts.append(_describe_keras())
    return " | ".join(parts) if parts else "no framework installed (pip install dcgan-lab[all])"


def _describe_torch() -> str:
    import torch

    if torch.cuda.is_available():
        i = torch.cuda.current_device()
        n = torch.cuda.device_count()
        where = (f"cuda:{i} ({torch.cuda.get_device_name(i)}"
                 f"{f', {n} GPUs' if n > 1 else ''}, CUDA {torch.version.cuda})")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        where = "mps (Apple GPU)"
    else:
        gpu_build = "" if torch.version.cuda is None else ", a CUDA build that sees no GPU"
        n = torch.get_num_threads()
        where = f"cpu ({n} thread{'s' if n != 1 else ''}{gpu_build})"
    return f"torch {torch.__version__}: {where}"


def _describe_keras() -> str:

    from .tfquiet import import_tensorflow

    tf = import_tensorflow()

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        more = f", {len(gpus)} GPUs" if len(gpus) > 1 else ""
        where = f"GPU:0 ({details.get('device_name', gpus[0].name)}{more})"
    else:
        where = "CPU (no GPU visible)"
    try:
        import keras

        head = f"keras {keras.__version__} / tensorflow {tf.__version__}"
    except ImportError:
        head = f"tensorflow {tf.__version__}"
    return f"{head}: {where}"
