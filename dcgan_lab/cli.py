"""The ``dcgan-lab`` command line: recipes, train, sample, evaluate, probe, arithmetic,
import-weights, export.

    dcgan-lab recipes
    dcgan-lab train torch-mnist --framework torch --profile smoke --out runs/mnist
    dcgan-lab train torch-mnist --framework torch --out runs/mnist --resume
    dcgan-lab sample runs/mnist -n 64 --out grid.png
    dcgan-lab evaluate runs/mnist -n 1000 --json
    dcgan-lab probe runs/dcgan64 --labels 1000 --json
    dcgan-lab arithmetic conv 28 --kernel 3 --stride 2 --padding 1
    dcgan-lab arithmetic transpose 7 --kernel 4 --stride 2 --padding 1
    dcgan-lab arithmetic plan 64
    dcgan-lab import-weights netG.pth --recipe dcgan64 --framework torch --out runs/imported
    dcgan-lab export runs/imported --onnx generator.onnx

Frameworks are imported only when a command needs one (:func:`dcgan_lab.frameworks.get`; one that is
not installed exits with status 1 naming its pip extra). Bad options exit with status 2 and a
one-line message naming the option and the allowed values; a run that cannot start or continue (a
folder holding another run or other files, a corrupt checkpoint, missing data, a diverged loss)
exits with status 1 and a one-line error. Arguments are checked before anything is written:
``sample --out`` and ``export --onnx`` never replace an existing file without ``--force``, and
never a run folder's own files (config, history, checkpoint, models, sample grids), even with it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__, frameworks, profiles, recipes
from .run import config, loop, rundir, streams


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors reported as one line (exit status 1) instead of a traceback."""
    from . import data
    from .interop import WeightsMismatch
    from .interop.onnx_export import ExportError
    from .run.atomic import CheckpointError, OutputError

    return (config.RunDirError, CheckpointError, OutputError, loop.TrainingDiverged,
            data.DatasetNotFound, data.DatasetError, frameworks.FrameworkMissing,
            _FrameworkMissing, _CannotEvaluate, ExportError, WeightsMismatch)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _FrameworkMissing(RuntimeError):
    """A framework function this version lacks (a missing framework is
    :class:`~dcgan_lab.frameworks.FrameworkMissing`)."""


class _CannotEvaluate(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# argument types


def _label_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW,HIGH such as 0.7,1.0") from None
    if not 0.0 <= lo <= hi <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= LOW <= HIGH <= 1")
    return lo, hi


#: the largest count an option takes (steps, batch size, ...): far beyond any real run
MAX_COUNT = 10**9


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _positive_int(text: str) -> int:
    v = _int(text)
    if not 1 <= v <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r}: need a positive integer up to {MAX_COUNT:,}")
    return v


def _seed(text: str) -> int:
    v = _int(text)
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= seed < 2**32")
    return v


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r}: need a finite number")
    return v


def _positive_float(text: str) -> float:
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: need a positive number")
    return v


def _fraction(high: float, closed: bool):
    """An argument type for a number in [0, high) (``closed``: [0, high])."""
    def parse(text: str) -> float:
        v = _number(text)
        if not (0.0 <= v <= high if closed else 0.0 <= v < high):
            raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= value {'<=' if closed else '<'} "
                                             f"{high:g}")
        return v

    return parse


def _padding(text: str) -> int | str:
    if text in ("same", "valid"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: padding is an integer (PyTorch) or "
                                         f"'same'/'valid' (Keras)") from None


# --------------------------------------------------------------------------------------------
# the parser


def _add_interop_parsers(sub) -> argparse.ArgumentParser:
    """The ``import-weights`` and ``export`` subcommands; returns the first's parser."""
    iw = sub.add_parser("import-weights", help="import a canonical DCGAN's weights as a run",
                        description="Read a generator saved by a canonical source (PyTorch: the "
                                    "state dict of pytorch/examples dcgan/main.py or the PyTorch "
                                    "tutorial, netG.pth, for dcgan64; Keras: a .keras or "
                                    ".weights.h5 of the recipe's network) into a run folder that "
                                    "sample, evaluate and train --resume accept. Layers are "
                                    "matched by structure and shape; the outputs are checked "
                                    "against the source's own network.")
    iw.add_argument("path", type=Path, metavar="PATH",
                    help="the generator (netG.pth, G.keras or G.weights.h5)")
    iw.add_argument("--recipe", required=True, choices=recipes.names(), metavar="RECIPE",
                    help="the recipe the weights are for (torch: dcgan64)")
    iw.add_argument("--framework", choices=config.FRAMEWORKS, required=True,
                    help="the framework that saved PATH")
    iw.add_argument("--discriminator", type=Path, default=None, metavar="NETD",
                    help="the discriminator, saved the same way; default: a fresh D")
    iw.add_argument("--out", type=Path, required=True, help="the run folder to write")
    iw.add_argument("--force", action="store_true", help="replace a run already in --out")

    ex = sub.add_parser("export", help="export a run's generator to ONNX",
                        description="Write the generator of RUN_DIR (PyTorch or Keras) as ONNX "
                                    "and check it against the framework's own output with "
                                    "onnxruntime (the largest difference is printed).")
    ex.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ex.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx")
    ex.add_argument("--force", action="store_true",
                    help="replace an existing OUT.onnx (never a file of a run folder)")
    return iw


def _add_train_parser(sub) -> argparse.ArgumentParser:
    """The ``train`` subcommand; returns its parser."""
    t = sub.add_parser("train", help="train a recipe into a run folder",
                       description="Train RECIPE with PyTorch or Keras into a run folder "
                                   "(config.json, history.csv, samples/, checkpoint, GIF).")
    t.add_argument("recipe", choices=recipes.names(), metavar="RECIPE",
                   help=f"one of: {', '.join(recipes.names())}")
    t.add_argument("--framework", choices=config.FRAMEWORKS,
                   help="default: torch (with --resume: the run's)")
    t.add_argument("--profile", choices=profiles.PROFILES, default=None,
                   help=f"budget (default: ${profiles.ENV_VAR}, else by hardware)")
    t.add_argument("--out", type=Path, default=None,
                   help="run folder (default: runs/RECIPE-FRAMEWORK)")
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--force", action="store_true",
                   help="start afresh in a folder holding a run, or train in a non-empty folder "
                        "(only files named as a run's are replaced)")
    t.add_argument("--data", default=None, metavar="PATH_OR_NAME",
                   help="data set name (mnist, fashion_mnist, cifar10, clothing64) or a folder "
                        "of photos (default: the recipe's)")
    t.add_argument("--steps", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--sample-every", type=_positive_int)
    t.add_argument("--checkpoint-every", type=_positive_int)
    t.add_argument("--lr-g", type=_positive_float)
    t.add_argument("--lr-d", type=_positive_float)
    t.add_argument("--beta1", type=_fraction(1.0, closed=False))
    t.add_argument("--g-loss", choices=config.G_LOSSES, help="default: non_saturating")
    t.add_argument("--loss", choices=config.OBJECTIVES,
                   help="the game: gan (the sources' BCE, default), wgan-gp (Gulrajani et al. "
                        "2017: a critic without BatchNorm, gradient penalty 10) or hinge "
                        "(Miyato et al. 2018)")
    t.add_argument("--update", choices=config.UPDATES,
                   help="alternating (D, then G against the updated D: the PyTorch tutorial; "
                        "default) or simultaneous (both from one forward pass: the TensorFlow "
                        "tutorial)")
    t.add_argument("--label-smoothing", type=_fraction(1.0, closed=False),
                   help="one-sided: real target = 1 - X")
    t.add_argument("--real-labels", type=_label_range, metavar="LO,HI",
                   help="soft real targets drawn from [LO, HI], e.g. 0.7,1.0")
    t.add_argument("--fake-labels", type=_label_range, metavar="LO,HI",
                   help="soft fake targets drawn from [LO, HI], e.g. 0.0,0.3")
    t.add_argument("--flip-prob", type=_fraction(1.0, closed=True),
                   help="noisy labels: swap probability (default 0)")
    t.add_argument("--d-batches", choices=config.D_BATCHES, help="default: separate")
    t.add_argument("--d-steps", type=_positive_int, help="D updates per G update (default 1)")
    t.add_argument("--g-dropout", type=_fraction(1.0, closed=False),
                   help="dropout in G (default 0)")
    t.add_argument("--g-activation", choices=("relu", "leaky_relu"))
    t.add_argument("--d-activation", choices=("relu", "leaky_relu"))
    t.add_argument("--seed", type=_seed, help="default 0")
    t.add_argument("--n-fixed", type=_positive_int,
                   help="fixed-noise samples per sample grid (default 64)")
    t.add_argument("--keras-style", choices=("stacked", "train_step"))
    t.add_argument("--device", default=None, help="PyTorch device (default: cuda, mps, cpu)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--speed", default=None, metavar="OPTIONS",
                   help="how the steps compute, e.g. mixed_precision=mixed_bfloat16 (Keras) or "
                        "channels_last,autocast=bf16 (PyTorch); 'plain' = every option off; "
                        "default: the measured defaults (dcgan_lab.speed.DEFAULTS)")
    d = t.add_argument_group(
        "data-parallel training", "--batch-size is then the global batch, split evenly; PyTorch "
        "runs under torchrun (torchrun --standalone --nproc_per_node N -m dcgan_lab.cli train "
        "RECIPE --distributed ...; gloo on CPUs, one GPU per process with nccl), Keras with "
        "MirroredStrategy in one process (the train_step style)")
    d.add_argument("--distributed", action="store_true",
                   help="train data-parallel (with every option above but --device and --speed)")
    d.add_argument("--devices", type=_positive_int, metavar="N",
                   help="Keras: use the first N GPUs (default all)")
    d.add_argument("--cpu-replicas", type=_positive_int, metavar="N",
                   help="Keras, no GPU: split the CPU into N logical devices")
    return t


def _add_sample_parsers(sub) -> None:
    """The ``sample``, ``evaluate`` and ``probe`` subcommands (a trained run's G or D)."""
    from .scoring.probe import CLI_DESCRIPTION as probe_description

    s = sub.add_parser("sample", help="draw a grid of samples from a trained run",
                       description="Draw N samples from the generator of RUN_DIR into a PNG grid.")
    s.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    s.add_argument("-n", type=_positive_int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", type=Path, default=Path("samples.png"))
    s.add_argument("--force", action="store_true",
                   help="replace an existing --out file (never a file of a run folder)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--nrow", type=_positive_int, default=None,
                   help="images per row (default: a square grid)")

    e = sub.add_parser("evaluate", help="score a trained run's samples with the classifier",
                       description="Draw N samples from the generator of RUN_DIR and score them "
                                   "against real test images with the shipped classifier of the "
                                   "run's data set: Fréchet distance of its features, modes "
                                   "covered, KL to uniform, confident share (p > 0.9), "
                                   "precision and recall.")
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    e.add_argument("-n", type=_positive_int, default=None,
                   help="number of samples, and of real images (default: the data set's one "
                        "sample size, 1000, or 372 for clothing64)")
    e.add_argument("--seed", type=_seed, default=0, help="seed of z and of the real subset")
    e.add_argument("--json", action="store_true",
                   help="also print the scores as one JSON line, last")

    pr = sub.add_parser("probe", help="linear probe on a trained run's discriminator",
                        description=probe_description)
    pr.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    pr.add_argument("--labels", type=_positive_int, default=None, metavar="N", help="training "
                    "labels used (a stratified subset; default: the whole training split)")
    pr.add_argument("--seed", type=_seed, default=0, help="seed of the labels and the untrained D")
    pr.add_argument("--json", action="store_true", help="also print one JSON line, last")


def _add_arithmetic_parser(sub) -> list[argparse.ArgumentParser]:
    """The ``arithmetic`` subcommand; returns its ``conv``, ``transpose`` and ``plan`` parsers."""
    a = sub.add_parser("arithmetic", help="convolution shape calculator",
                       description="Output sizes of convolutions and transposed convolutions, "
                                   "and generator plans that land on a target size.")
    asub = a.add_subparsers(dest="what", metavar="{conv,transpose,plan}", required=True)
    c = asub.add_parser("conv", help="Conv2d / Conv2D output size")
    c.add_argument("n", type=_positive_int, help="input size")
    c.add_argument("--kernel", "-k", type=_positive_int, required=True)
    c.add_argument("--stride", "-s", type=_positive_int, default=1)
    c.add_argument("--padding", "-p", type=_padding, default=0,
                   help="integer (PyTorch) or same/valid (Keras)")
    c.add_argument("--dilation", type=_positive_int, default=1)
    tr = asub.add_parser("transpose", help="ConvTranspose2d / Conv2DTranspose output size")
    tr.add_argument("n", type=_positive_int, help="input size")
    tr.add_argument("--kernel", "-k", type=_positive_int, required=True)
    tr.add_argument("--stride", "-s", type=_positive_int, default=1)
    tr.add_argument("--padding", "-p", type=_padding, default=0,
                    help="integer (PyTorch) or same/valid (Keras)")
    tr.add_argument("--output-padding", type=int, default=None)
    tr.add_argument("--dilation", type=_positive_int, default=1)
    pl = asub.add_parser("plan", help="plan a generator (or discriminator) stack for a size")
    pl.add_argument("target", type=_positive_int, help="image size to land on, e.g. 28, 32, 64")
    pl.add_argument("--start", type=_positive_int, default=None,
                    help="size after project-and-reshape (default: z as a 1x1 map)")
    pl.add_argument("--kernel", "-k", type=_positive_int, default=4)
    pl.add_argument("--stride", "-s", type=_positive_int, default=2)
    pl.add_argument("--discriminator", action="store_true",
                    help="plan the discriminator's strided convolutions instead")
    return [c, tr, pl]


def build_parser() -> argparse.ArgumentParser:
    """The ``dcgan-lab`` command's parser: one subparser per command."""
    p = _Parser(prog="dcgan-lab", description="The dcgan-lab course's tools.")
    p.add_argument("--version", action="version", version=f"dcgan-lab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("recipes", help="list the recipes",
                   description="List the recipes: data set, image shape, latent size, "
                               "parameter counts and source.")
    t = _add_train_parser(sub)
    _add_sample_parsers(sub)
    arithmetic_parsers = _add_arithmetic_parser(sub)
    iw = _add_interop_parsers(sub)
    for sp in (t, *arithmetic_parsers, iw):
        sp.set_defaults(parser=sp)  # usage errors found after parsing show the right usage line
    return p


# --------------------------------------------------------------------------------------------
# commands


def cmd_recipes(args: argparse.Namespace) -> int:
    rows = [("recipe", "dataset", "shape", "latent", "G params", "D params", "loss", "source")]
    for name in recipes.names():
        r = recipes.get(name)
        rows.append((r.name, r.dataset, "x".join(map(str, r.image_shape)), str(r.latent_dim),
                     f"{r.g_params:,}", f"{r.d_params:,}", r.loss, r.source))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for i, row in enumerate(rows):
        cells = [c.rjust(w) if 3 <= j <= 5 else c.ljust(w) for j, (c, w) in
                 enumerate(zip(row[:-1], widths, strict=True))]
        print("  ".join([*cells, row[-1]]))
        if i == 0:
            print("  ".join(["-" * w for w in widths] + ["-" * 6]))
    return 0


def _function(module, name: str, framework: str):
    """``module.name`` (a framework package's function), or a one-line error naming it."""
    fn = getattr(module, name, None)
    if not callable(fn):
        raise _FrameworkMissing(f"dcgan_lab.{framework} has no {name}() in this version")
    return fn


#: TrainOptions field -> the command-line option (its argparse dest) that sets it
_OPTION_ARGS = {
    "steps": "steps", "batch_size": "batch_size", "sample_every": "sample_every",
    "checkpoint_every": "checkpoint_every", "lr_g": "lr_g", "lr_d": "lr_d", "beta1": "beta1",
    "g_loss": "g_loss", "label_smoothing": "label_smoothing", "real_label_range": "real_labels",
    "fake_label_range": "fake_labels", "flip_prob": "flip_prob", "d_batches": "d_batches",
    "d_steps": "d_steps", "g_dropout": "g_dropout", "g_activation": "g_activation",
    "d_activation": "d_activation", "seed": "seed", "n_fixed": "n_fixed",
    "keras_style": "keras_style", "objective": "loss", "update": "update",
}


def _options(args: argparse.Namespace, saved: config.Config | None) -> config.TrainOptions:
    """The options given on the command line; with ``--resume``, the others come from the run's
    config.json (so ``--resume`` alone continues the run as it was started)."""
    given = {f: getattr(args, a) for f, a in _OPTION_ARGS.items() if getattr(args, a) is not None}
    if saved is not None:
        old = saved.to_dict()
        keep = {f: old[f] for f in _OPTION_ARGS if f in old}
        keep.update(metric_every=old.get("metric_every"))
        return config.TrainOptions(**{**keep, **given})
    return config.TrainOptions(**given)


def _name_option(message: str) -> str:
    """``"flip_prob=0.9: ..."`` -> ``"argument --flip-prob: flip_prob=0.9: ..."``."""
    field = message.partition("=")[0]
    if field in _OPTION_ARGS:
        return f"argument --{_OPTION_ARGS[field].replace('_', '-')}: {message}"
    return message


def _check_distributed(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Usage errors of the options that belong to one kind of run only."""
    if args.device is not None and args.framework != "torch":
        parser.error("--device applies to --framework torch only")
    if args.distributed:
        for option, value in (("--device", args.device), ("--speed", args.speed)):
            if value is not None:
                parser.error(f"{option} does not apply with --distributed (torchrun picks each "
                             f"process's device; the step is the plain one)")
        if args.framework == "keras" and args.keras_style == "stacked":
            parser.error("--keras-style stacked does not apply with --distributed (Keras trains "
                         "the train_step style under MirroredStrategy)")
    if (args.devices is not None or args.cpu_replicas is not None) and not (
            args.distributed and args.framework == "keras"):
        parser.error("--devices and --cpu-replicas apply to --distributed --framework keras only")


def _distributed_train(args: argparse.Namespace, kwargs: dict):
    """The data-parallel ``train`` of ``args.framework`` (see
    :func:`dcgan_lab.frameworks.distributed`), with the Keras strategy in ``kwargs``."""
    module = frameworks.distributed(args.framework)
    if args.framework == "keras":
        kwargs["strategy"] = module.make_strategy(args.cpu_replicas, args.devices)
        strategy = kwargs["strategy"]
        print(f"MirroredStrategy over {strategy.num_replicas_in_sync} replicas: "
              f"{', '.join(strategy.extended.worker_devices)}", flush=True)
    return module.train


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Train a recipe into a run folder; every argument is checked before anything is written."""
    from .run.atomic import check_output_folder

    out = args.out or Path("runs") / f"{args.recipe}-{args.framework or 'torch'}"
    check_output_folder(out)
    run = rundir.RunDir(out)
    saved = run.read_config() if args.resume and run.config_path.exists() else None
    if saved is not None and saved.recipe != args.recipe:
        raise config.RunDirError(f"{out} holds a {saved.recipe} run, not {args.recipe}: "
                                   f"choose another --out")
    options = _options(args, saved)
    args.framework = args.framework or (saved.framework if saved is not None else "torch")
    _check_distributed(args, parser)
    if args.distributed and args.framework == "keras":  # MirroredStrategy trains GAN.train_step
        options = options.replace(keras_style="train_step")
    data = args.data
    if data is None and saved is not None and not saved.data.startswith("<"):
        data = saved.data  # the data set or folder the run was started on
    try:  # option values out of range are usage errors (exit 2), found before any import
        cfg = config.resolve(args.recipe, args.framework, options, args.profile, data)
    except ValueError as e:
        parser.error(_name_option(str(e)))
    speed_options = None
    if args.speed is not None:
        from . import speed as speed_mod

        try:  # the options' names and values; what a device lacks is the trainer's to say
            speed_options = speed_mod.parse(args.speed, args.framework)
        except ValueError as e:
            parser.error(f"argument --speed: {e}")
    streams.check_data_source(cfg.data)
    checked = not args.resume or saved is None
    if checked:  # a folder holding a run or other files: refused now (the loop checks it else)
        run.check(cfg, resume=args.resume, force=args.force)
    kwargs = dict(options=options, profile=args.profile, data=data, resume=args.resume,
                  force=args.force, progress=not args.no_progress, resolved=cfg, checked=checked)
    if args.distributed:
        train = _distributed_train(args, kwargs)
    else:
        train = _function(frameworks.get(args.framework), "train", args.framework)
        kwargs["speed"] = speed_options
        if args.device is not None:
            kwargs["device"] = args.device
    if os.environ.get("RANK", "0") == "0":  # under torchrun: process 0 speaks
        print(f"training {cfg.recipe} with {args.framework} ({cfg.profile} profile: {cfg.steps} "
              f"steps of batch {cfg.batch_size}) into {out}")
    history = train(args.recipe, out, **kwargs)
    if os.environ.get("RANK", "0") != "0":
        return 0
    last = history.rows[-1] if len(history) else {}
    summary = ", ".join(f"{k}={last[k]:.3f}" for k in ("loss_d", "loss_g", "d_real", "d_fake")
                        if k in last)
    print(f"done: {out} (samples/, training.gif, history.csv){'; last step: ' if summary else ''}"
          f"{summary}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw a grid of samples into a new PNG (an existing one only with --force)."""
    from . import figures
    from .run.atomic import check_output_file, write_output

    cfg = rundir.RunDir(args.run_dir).read_config()
    check_output_file(args.out, "--out", force=args.force)
    mod = frameworks.get(cfg.framework)
    G = _function(mod, "load_generator", cfg.framework)(args.run_dir)
    images = _function(mod, "sample", cfg.framework)(G, args.n, seed=args.seed)
    nrow = args.nrow or math.ceil(math.sqrt(args.n))
    write_output(args.out, lambda tmp: figures.save_png(images, tmp, nrow=nrow), "--out")
    print(f"wrote {args.out}: {args.n} samples of {cfg.recipe} ({cfg.framework}, seed {args.seed})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a run's generator against real test images (see :func:`dcgan_lab.scoring.evaluation.evaluate`)."""
    import json

    from .scoring import classifier, evaluation

    run = rundir.RunDir(args.run_dir)
    if not run.path.is_dir():
        raise config.RunDirError(f"{run.path} is not a run folder: no such folder")
    cfg = run.read_config()
    dataset = cfg.data
    if dataset not in classifier.DATASETS:
        raise _CannotEvaluate(
            f"{run.path}: recipe {cfg.recipe} was trained on {dataset}, which has no shipped "
            f"classifier yet; evaluate scores runs on {', '.join(classifier.DATASETS)}")
    if tuple(cfg.recipe_obj.image_shape) != classifier.IMAGE_SHAPES[dataset]:
        raise _CannotEvaluate(
            f"{run.path}: recipe {cfg.recipe} makes {'x'.join(map(str, cfg.recipe_obj.image_shape))}"
            f" images; the {dataset} classifier takes "
            f"{'x'.join(map(str, classifier.IMAGE_SHAPES[dataset]))}")
    mod = frameworks.get(cfg.framework)
    G = _function(mod, "load_generator", cfg.framework)(run.path)

    subsets = evaluation.real_subsets(dataset, args.n, seed=args.seed)
    for note in subsets.notes:
        print(note)
    n = subsets.n
    images = _function(mod, "sample", cfg.framework)(G, n, seed=args.seed)
    try:
        scores = evaluation.evaluate(images, dataset, seed=args.seed, real=subsets.reference,
                                     floor_real=subsets.floor)
    except ValueError as e:
        raise _CannotEvaluate(f"{run.path}: {e}") from None
    floor = scores.get("real_fid_floor")

    print(f"evaluate {run.path}: {cfg.recipe} ({cfg.framework}), {n} samples (seed {args.seed}) "
          f"against {n} real {dataset} test images")
    fl = f"   (real vs real: {floor:.2f})" if floor is not None else ""
    rows = [("Fréchet distance (classifier features)", f"{scores['fid']:.2f}{fl}"),
            ("modes covered", f"{scores['modes_covered']:.0f} / 10"),
            ("KL to uniform (nats)", f"{scores['kl']:.4f}"),
            (f"confident (p > {evaluation.CONFIDENCE})", f"{scores['confident']:.3f}"),
            ("precision / recall (k=3)", f"{scores['precision']:.3f} / {scores['recall']:.3f}"),
            ("diversity (1 = the data's)", f"{scores['diversity']:.3f}")]
    for name, value in rows:
        print(f"  {name:<40} {value}")
    if args.json:
        def num(v):
            return float(v) if v is not None and math.isfinite(v) else None

        out = {k: num(scores[k]) for k in ("fid", "modes_covered", "kl", "confident",
                                           "precision", "recall", "diversity")}
        out.update(real_fid_floor=num(floor), n=n, seed=args.seed, recipe=cfg.recipe,
                   framework=cfg.framework, dataset=dataset, run=str(run.path))
        print(json.dumps(out))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """The probe table of a run's D (see :func:`dcgan_lab.scoring.probe.probe_run`)."""
    from .scoring import probe

    if not args.run_dir.is_dir():
        raise config.RunDirError(f"{args.run_dir} is not a run folder: no such folder")
    try:
        rows = probe.probe_run(args.run_dir, labels=args.labels, seed=args.seed)
    except ValueError as e:
        if isinstance(e, _user_errors()):
            raise
        raise _CannotEvaluate(f"{args.run_dir}: {e}") from None
    print("\n".join(probe.report_lines(args.run_dir, rows, args.seed, args.json)))
    return 0


def cmd_import_weights(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Import a canonical generator (and discriminator) into a run folder."""
    from .run.atomic import check_output_folder

    if args.framework == "torch" and args.recipe != "dcgan64":
        parser.error(f"--recipe {args.recipe}: a canonical PyTorch source exists for dcgan64 only")
    check_output_folder(args.out)
    from .interop import import_weights

    report = import_weights(args.framework, args.path, args.recipe, args.out,
                            discriminator=args.discriminator, force=args.force)
    print(f"imported {args.path} as {args.recipe} ({args.framework}) into {report.run_dir}")
    for what, given, diff in (("generator", args.path, report.g_max_diff),
                              ("discriminator", args.discriminator, report.d_max_diff)):
        if given is None:
            print(f"  {what}: none given; a freshly initialised D")
        elif diff is None:
            print(f"  {what}: {given} holds weights only (.weights.h5): Keras loaded them into "
                  f"the recipe's network")
        else:
            print(f"  {what}: max |difference| to the source's network = {diff:.3g} "
                  f"(16 inputs)")
    print(f"  dcgan-lab sample {report.run_dir} and evaluate use these weights; "
          f"dcgan-lab train {args.recipe} --out {report.run_dir} --resume continues training "
          f"from them with fresh Adam optimisers (weights only: no optimiser state was imported)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a run's generator to ONNX, checked with onnxruntime."""
    from .interop import onnx_export

    cfg = rundir.RunDir(args.run_dir).read_config()
    frameworks.get(cfg.framework)
    diff = onnx_export.export(args.run_dir, args.onnx, force=args.force)
    size = args.onnx.stat().st_size / 1e6
    print(f"wrote {args.onnx} ({size:.1f} MB): the {cfg.recipe} generator of {args.run_dir} "
          f"({cfg.framework}), input z (N, {cfg.recipe_obj.latent_dim}) -> images NCHW in [-1, 1]")
    print(f"onnxruntime vs {cfg.framework}: max |difference| = {diff:.3g} over 16 samples "
          f"(tolerance {onnx_export.TOLERANCE:.0e})")
    return 0


def cmd_arithmetic(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import arithmetic as ar

    try:
        if args.what == "conv":
            n, k, s, p = args.n, args.kernel, args.stride, args.padding
            if isinstance(p, str):
                out = ar.keras_conv_output_size(n, k, s, p)
                how = (f"Keras Conv2D padding={p!r}: "
                       + (f"ceil({n}/{s})" if p == "same" else f"floor(({n} - {k})/{s}) + 1"))
            else:
                out = ar.conv_output_size(n, k, s, p, args.dilation)
                dk = f"{args.dilation}*({k} - 1) + 1" if args.dilation > 1 else f"{k}"
                how = f"Conv2d k{k} s{s} p{p}: floor(({n} + 2*{p} - {dk})/{s}) + 1"
            print(f"{how} = {out}")
            print(f"{n}x{n} -> {out}x{out}")
        elif args.what == "transpose":
            n, k, s, p, op = args.n, args.kernel, args.stride, args.padding, args.output_padding
            if isinstance(p, str):
                out = ar.keras_conv_transpose_output_size(n, k, s, p, op)
                how = f"Keras Conv2DTranspose padding={p!r}" + (
                    f", output_padding={op}" if op is not None else "")
            else:
                out = ar.conv_transpose_output_size(n, k, s, p, op or 0, args.dilation)
                how = (f"ConvTranspose2d k{k} s{s} p{p} op{op or 0}: "
                       f"({n} - 1)*{s} - 2*{p} + {k} + {op or 0}")
                if args.dilation > 1:
                    how += f" (dilation {args.dilation})"
            print(f"{how} = {out}")
            print(f"{n}x{n} -> {out}x{out}")
        else:
            if args.discriminator:
                plan = ar.plan_discriminator(args.target, kernel=args.kernel, stride=args.stride)
            else:
                plan = ar.plan_generator(args.target, start=args.start, kernel=args.kernel,
                                         stride=args.stride)
            print(ar.format_plan(plan))
    except ValueError as e:
        parser.error(str(e))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "recipes":
            return cmd_recipes(args)
        if args.command == "train":
            return cmd_train(args, args.parser)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "probe":
            return cmd_probe(args)
        if args.command == "import-weights":
            return cmd_import_weights(args, args.parser)
        if args.command == "export":
            return cmd_export(args)
        return cmd_arithmetic(args, args.parser)
    except KeyboardInterrupt:
        return 130  # the trainer has printed how to resume
    except Exception as e:  # noqa: BLE001 - only the known user errors become one line
        if isinstance(e, _user_errors()):
            print(f"dcgan-lab: error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
