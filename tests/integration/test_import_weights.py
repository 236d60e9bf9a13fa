"""``dcgan-lab import-weights``: the canonical PyTorch DCGAN's state dicts become a dcgan64 run."""

from __future__ import annotations

import pickle
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dcgan_lab.interop.torch_canonical import (  # noqa: E402
    CanonicalDiscriminator,
    CanonicalGenerator,
)
from dcgan_lab.run import rundir, streams  # noqa: E402


def _trained_like(module: torch.nn.Module) -> torch.nn.Module:
    """Random weights and BatchNorm statistics, as after training (not the initial 0/1)."""
    torch.manual_seed(3)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return module.eval()


@pytest.fixture(scope="module")
def canonical(tmp_path_factory) -> tuple[Path, Path, torch.nn.Module]:
    folder = tmp_path_factory.mktemp("canonical")
    g, d = _trained_like(CanonicalGenerator()), _trained_like(CanonicalDiscriminator())
    torch.save(g.state_dict(), folder / "netG.pth")  # keys main.0.weight, main.1.weight, ...
    torch.save(d.state_dict(), folder / "netD.pth")
    return folder / "netG.pth", folder / "netD.pth", g


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def test_import_then_sample_gives_the_canonical_networks_images(cli, canonical, tmp_path):
    net_g, net_d, g = canonical
    run = tmp_path / "run"
    r = cli("import-weights", net_g, "--recipe", "dcgan64", "--framework", "torch",
            "--discriminator", net_d, "--out", run)
    assert r.returncode == 0, r.stderr
    diffs = [float(v) for v in re.findall(r"max \|difference\| to the source's network = (\S+)",
                                          r.stdout)]
    assert len(diffs) == 2 and max(diffs) <= 1e-6, r.stdout
    assert "fresh Adam optimisers" in r.stdout

    from dcgan_lab.torch import load_generator, sample

    ours = sample(load_generator(run), 8, seed=5)
    z = torch.from_numpy(streams.sample_noise(8, 100, 5)).reshape(8, 100, 1, 1)
    with torch.no_grad():
        theirs = g(z).permute(0, 2, 3, 1).numpy()
    from dcgan_lab import data

    assert np.array_equal(ours, data.to_uint8(theirs))
    r = cli("sample", run, "-n", "4", "--out", tmp_path / "grid.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_train_resume_continues_from_the_imported_weights(cli, canonical, tmp_path):
    net_g, _, _ = canonical
    run = tmp_path / "run"
    assert cli("import-weights", net_g, "--recipe", "dcgan64", "--framework", "torch", "--out", run).returncode == 0
    r = cli("train", "dcgan64", "--out", run, "--resume", "--steps", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming dcgan64 from step 0" in r.stdout
    assert len(rundir.RunDir(run).path.joinpath("history.csv").read_text().splitlines()) == 2


def test_a_file_of_another_architecture_is_one_line_naming_the_layer(cli, canonical, tmp_path):
    _, net_d, _ = canonical
    r = cli("import-weights", net_d, "--recipe", "dcgan64", "--framework", "torch", "--out", tmp_path / "run")
    err = _one_line_error(r)
    assert "main.0" in err and "64x3x4x4" in err and str(net_d) in err
    assert not (tmp_path / "run").exists()

    smaller = CanonicalGenerator(ngf=32)  # same layer kinds, other widths
    torch.save(smaller.state_dict(), tmp_path / "small.pth")
    err = _one_line_error(cli("import-weights", tmp_path / "small.pth", "--recipe", "dcgan64", "--framework", "torch",
                              "--out", tmp_path / "run"))
    assert "main.0" in err and "100x256x4x4" in err


def test_unsafe_or_foreign_files_are_refused(cli, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    bad = tmp_path / "pickled.pth"
    bad.write_bytes(pickle.dumps(Payload()))
    r = cli("import-weights", bad, "--recipe", "dcgan64", "--framework", "torch", "--out", tmp_path / "run")
    assert "code ran" not in r.stdout
    assert str(bad) in _one_line_error(r)
    err = _one_line_error(cli("import-weights", tmp_path / "missing.pth", "--recipe", "dcgan64", "--framework", "torch",
                              "--out", tmp_path / "run"))
    assert "no such file" in err


def test_keras_files_import_and_a_foreign_one_is_one_line(cli, tmp_path):
    keras = pytest.importorskip("keras")
    from dcgan_lab.keras import load_generator, sample
    from dcgan_lab.keras.models import build

    keras.utils.set_random_seed(4)
    G, _ = build("dense-mnist")
    G.save(tmp_path / "G.keras")
    G.save_weights(tmp_path / "G.weights.h5")
    build("gia-dcgan-mnist")[0].save(tmp_path / "other.keras")
    want = sample(G, 6, seed=2)
    for name in ("G.keras", "G.weights.h5"):
        run = tmp_path / f"run-{name}"
        r = cli("import-weights", tmp_path / name, "--recipe", "dense-mnist", "--framework",
                "keras", "--out", run)
        assert r.returncode == 0, r.stderr
        assert np.array_equal(sample(load_generator(run), 6, seed=2), want)
        if name == "G.keras":  # compared with the loaded model's own images
            assert "max |difference| to the source's network = 0 " in r.stdout
    err = _one_line_error(cli("import-weights", tmp_path / "other.keras", "--recipe",
                              "dense-mnist", "--framework", "keras", "--out", tmp_path / "bad"))
    assert "layer 0" in err and "100x12544" in err
