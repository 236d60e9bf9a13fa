"""Import the weights of the canonical PyTorch DCGAN into a dcgan_lab run folder.

The pytorch/examples ``dcgan/main.py`` and the PyTorch DCGAN tutorial save ``netG.pth`` /
``netD.pth`` state dicts whose keys are ``main.0.weight``, ``main.1.running_mean``, ...; our
``dcgan64`` is the same network with keys ``net.1.weight``, ... . :func:`import_torch` matches
the layers by structure (the order of the layers that hold weights, their kinds and shapes, not
their names), rebuilds the source's own network to check that both compute the same images, and
writes a run folder that ``dcgan-lab sample``, ``evaluate`` and ``train --resume`` accept.

A file of another architecture raises :class:`WeightsMismatch` naming the first layer that does
not fit. Files are read with ``torch.load(..., weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import torch
from torch import nn

from ..run import config, rundir, streams
from ..run.atomic import why_unreadable
from .report import ImportReport, WeightsMismatch

#: the recipes a canonical source exists for, with the rebuild of that source's networks
CANONICAL = {"dcgan64": "pytorch/examples dcgan/main.py (nz=100, ngf=ndf=64, nc=3)"}


# --------------------------------------------------------------------------------------------
# the canonical networks, as pytorch/examples dcgan/main.py writes them (nz=100, ngf=ndf=64, nc=3)


class CanonicalGenerator(nn.Module):
    """``Generator`` of pytorch/examples ``dcgan/main.py``: z (N, nz, 1, 1) -> (N, nc, 64, 64)."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class CanonicalDiscriminator(nn.Module):
    """``Discriminator`` of pytorch/examples ``dcgan/main.py``: (N, nc, 64, 64) -> (N,)."""

    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


# --------------------------------------------------------------------------------------------
# reading and matching state dicts


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a saved state dict (``weights_only=True``); a ``module.`` prefix (a model
    saved inside ``nn.DataParallel``) is dropped."""
    path = Path(path)
    if not path.is_file():
        raise WeightsMismatch(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # torch warns before refusing a pickle; we say it once
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - anything unreadable is reported in one line
        raise WeightsMismatch(f"{path} is not a PyTorch state dict or checkpoint "
                              f"({why_unreadable(e)}); give the file that "
                              f"torch.save(netG.state_dict(), PATH) wrote") from None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsMismatch(f"{path} is not a PyTorch state dict (a dict of names to tensors); "
                              f"give the file that torch.save(netG.state_dict(), PATH) wrote")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _layers(state: dict[str, torch.Tensor]) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """The state dict grouped by layer (the key without its last part), in order."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        layer, _, name = key.rpartition(".")
        groups.setdefault(layer, {})[name] = value
    return list(groups.items())


def _describe(layer: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k} {'x'.join(map(str, v.shape)) or 'scalar'}" for k, v in layer.items())


def match_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                     origin: str, what: str) -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``target``'s keys, matched layer by layer in order.

    Each pair of layers must hold the same tensors (weight, bias, BatchNorm statistics) with the
    same shapes; otherwise :class:`WeightsMismatch` names the first layer that does not fit.
    """
    src, dst = _layers(source), _layers(target)
    out: dict[str, torch.Tensor] = {}
    for i, (s, d) in enumerate(itertools.zip_longest(src, dst)):
        if s is None:
            raise WeightsMismatch(f"{origin}: has {len(src)} layers with weights, the {what} has "
                                  f"{len(dst)}; the first without a match is the {what}'s "
                                  f"{d[0]} ({_describe(d[1])})")
        if d is None:
            raise WeightsMismatch(f"{origin}: has {len(src)} layers with weights, the {what} has "
                                  f"{len(dst)}; the first without a match is {s[0]} "
                                  f"({_describe(s[1])})")
        (sname, stensors), (dname, dtensors) = s, d
        fits = set(stensors) == set(dtensors) and all(
            stensors[k].shape == dtensors[k].shape for k in dtensors)
        if not fits:
            raise WeightsMismatch(f"{origin}: layer {i} ({sname}: {_describe(stensors)}) does not "
                                  f"match the {what}'s layer {dname} ({_describe(dtensors)})")
        for k, v in stensors.items():
            out[f"{dname}.{k}" if dname else k] = v.to(dtype=dtensors[k].dtype)
    return out


# --------------------------------------------------------------------------------------------
# the import


def _max_diff(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, x_theirs: torch.Tensor) -> float:
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        a = ours(x).reshape(-1)
        b = theirs(x_theirs).reshape(-1)
    return float((a - b).abs().max())


def _load(model: nn.Module, weights: dict, origin: str) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise WeightsMismatch(f"{origin}: {str(e).splitlines()[0][:200]}") from None


def import_torch(generator: str | Path, recipe: str, out: str | Path,
                 discriminator: str | Path | None = None, force: bool = False) -> ImportReport:
    """Write a run folder at ``out`` holding the canonical ``generator`` (and ``discriminator``)
    state dicts as recipe ``recipe``: ``config.json``, ``generator.pt``, an empty
    ``history.csv`` and a step-0 ``checkpoint.pt`` with fresh Adam optimisers (so that
    ``train --resume`` continues from these weights), written by the PyTorch
    :class:`~dcgan_lab.torch.backend.Backend` as a run of ``train()`` is. Without ``discriminator``, D is freshly
    initialised. The outputs of our network and of the source's rebuilt one are compared on 16
    fixed z (and 16 images for D); the maximum differences are returned."""
    from ..run.history import History
    from ..speed import PLAIN
    from ..torch.backend import Backend

    if recipe not in CANONICAL:
        raise WeightsMismatch(f"recipe {recipe!r} has no canonical PyTorch source to import "
                              f"from; known: {', '.join(CANONICAL)}")
    cfg = config.resolve(recipe, "torch", config.TrainOptions(), None, None)
    run = rundir.RunDir(out)
    run.check(cfg, force=force)  # a folder holding a run is refused before anything is read

    backend = Backend("cpu", speed=PLAIN)
    backend.build(cfg)  # the run's own models (seeded by cfg.seed) and fresh Adam optimisers
    G, D = backend.models
    src_g = read_state_dict(generator)
    _load(G, match_state_dict(src_g, G.state_dict(), str(generator), f"{recipe} generator"),
          str(generator))
    canon_g = CanonicalGenerator()
    _load(canon_g, src_g, str(generator))
    z = torch.from_numpy(streams.sample_noise(16, cfg.recipe_obj.latent_dim, 0))
    g_diff = _max_diff(G, canon_g, z, z.reshape(16, -1, 1, 1))

    d_diff = None
    if discriminator is not None:
        src_d = read_state_dict(discriminator)
        _load(D, match_state_dict(src_d, D.state_dict(), str(discriminator),
                                  f"{recipe} discriminator"), str(discriminator))
        canon_d = CanonicalDiscriminator()
        _load(canon_d, src_d, str(discriminator))
        with torch.no_grad():
            x = canon_g(z.reshape(16, -1, 1, 1))
        d_diff = _max_diff(D, canon_d, x, x)

    run.prepare(cfg, force=force)
    History().to_csv(run.history_path)
    G.train()
    D.train()
    backend.save_final(run)  # generator.pt, written atomically as train() writes it
    backend.save(run.path / backend.checkpoint_name, 0, cfg,
                 streams.fixed_noise(cfg.n_fixed, cfg.recipe_obj.latent_dim, cfg.seed))
    return ImportReport(run.path, g_diff, d_diff)
