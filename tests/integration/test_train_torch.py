"""dcgan_lab.torch.train: the loop, its checkpoints, resume, Ctrl-C, kill -9, NaN and corrupt files.

Runs are a handful of steps on a few hundred real MNIST images, on the CPU.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dcgan_lab import data, recipes  # noqa: E402
from dcgan_lab.run.atomic import CheckpointError  # noqa: E402
from dcgan_lab.run.config import RunDirError, TrainOptions, resolve  # noqa: E402
from dcgan_lab.run.history import COLUMNS, History  # noqa: E402
from dcgan_lab.run.loop import TrainingDiverged  # noqa: E402
from dcgan_lab.run.streams import load_training_images  # noqa: E402

# ``dcgan_lab.torch.train`` is the function (re-exported by the package); the module is here:
T = importlib.import_module("dcgan_lab.torch.backend")
# One intra-op thread: on a shared 2-core box, torch's spinning worker threads make tiny steps
# 50x slower; one thread also keeps in-process and subprocess runs on the same kernels.
torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
OPTS = TrainOptions(steps=6, batch_size=8, sample_every=3, checkpoint_every=2, n_fixed=16)


def _run(tmp, name, images, opts=OPTS, **kw) -> History:
    return T.train("torch-mnist" if name is None else name, tmp, options=opts, data=images,
                   device="cpu", progress=False, **kw)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = T.load_checkpoint(Path(run_dir) / T.CHECKPOINT_NAME)
    out = {f"G.{k}": v for k, v in state["generator"].items()}
    out.update({f"D.{k}": v for k, v in state["discriminator"].items()})
    for opt in ("opt_g", "opt_d"):
        for pid, s in state[opt]["state"].items():
            out.update({f"{opt}.{pid}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    return out


def _assert_same(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6, rtol=0), k


def _rows(run_dir: Path) -> list[dict]:
    """history.csv without the timings (6 significant digits, as written)."""
    h = History.from_csv(Path(run_dir) / "history.csv")
    return [{k: v for k, v in r.items() if k != "seconds"} for r in h.rows]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mnist) -> Path:
    """6 uninterrupted steps of torch-mnist: what every interrupted run must reproduce."""
    out = tmp_path_factory.mktemp("straight")
    _run(out, None, mnist)
    return out


def test_run_folder_and_history(straight):
    files = {p.name for p in straight.iterdir()}
    assert {"config.json", "history.csv", "checkpoint.pt", "generator.pt", "training.gif"} <= files
    assert sorted(p.name for p in (straight / "samples").iterdir()) == [
        "step_000003.png", "step_000006.png"]
    h = History.from_csv(straight / "history.csv")
    assert h["step"] == [1, 2, 3, 4, 5, 6]
    assert list(h.columns()) == list(COLUMNS)
    for c in ("d_real", "d_fake"):
        assert all(0.0 <= v <= 1.0 for v in h[c])
    for lr, lf, ld in zip(h["loss_d_real"], h["loss_d_fake"], h["loss_d"], strict=True):
        assert ld == pytest.approx(lr + lf, rel=1e-4)
    from PIL import Image

    with Image.open(straight / "samples" / "step_000006.png") as im:  # 16 fixed z: a 4x4 grid
        assert im.size == (4 * 28 + 5 * 2, 4 * 28 + 5 * 2)
    assert T.load_checkpoint(straight / "checkpoint.pt")["step"] == 6


def test_resume_matches_straight_within_1e6(tmp_path, straight, mnist):
    _run(tmp_path, None, mnist, OPTS.replace(steps=3))
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3
    with pytest.raises(RunDirError, match="--resume"):
        _run(tmp_path, None, mnist)
    _run(tmp_path, None, mnist, resume=True)
    _assert_same(tmp_path, straight)
    assert _rows(tmp_path) == _rows(straight)


def test_resume_restores_dropout_rng(tmp_path, mnist):
    """dense-mnist with dropout in G: the torch RNG state must travel in the checkpoint."""
    opts = OPTS.replace(steps=4, g_dropout=0.3)
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, "dense-mnist", mnist, opts)
    _run(b, "dense-mnist", mnist, opts.replace(steps=2))
    _run(b, "dense-mnist", mnist, opts, resume=True)
    _assert_same(a, b)


def _script(tmp: Path, images: np.ndarray, opts: str, hang_at: int, resume: bool,
            hang_s: float) -> Path:
    np.save(tmp / "images.npy", images)
    code = f"""
        import sys, time
        import numpy as np
        from dcgan_lab.torch import train
        from dcgan_lab.run.config import TrainOptions

        def hang(step, G, D, history):
            if step == {hang_at}:
                print("READY", flush=True)
                time.sleep({hang_s})

        train("torch-mnist", sys.argv[1], options=TrainOptions({opts}),
              data=np.load(sys.argv[2]), device="cpu", progress=False, resume={resume},
              callbacks=[hang])
    """
    path = tmp / "run.py"
    path.write_text(textwrap.dedent(code))
    return path


def _start(script: Path, out: Path, images: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(images)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 60
    for line in proc.stdout:
        if line.startswith("READY"):
            return proc
        if time.time() > deadline:
            break
    proc.kill()
    raise AssertionError(f"training subprocess never got ready: {proc.communicate()[0]}")


def test_ctrl_c_then_kill_9_then_resume_matches_straight(tmp_path, straight, mnist):
    out = tmp_path / "run"
    opts = "steps=6, batch_size=8, sample_every=3, checkpoint_every=2, n_fixed=16"
    # 1. Ctrl-C during step 3 (between checkpoints): the step finishes (the callback sleeps 2 s),
    #    then a checkpoint of step 3 is saved and KeyboardInterrupt propagates.
    script = _script(tmp_path, mnist, opts, hang_at=3, resume=False, hang_s=2)
    proc = _start(script, out, tmp_path / "images.npy")
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0
    assert (f"interrupted at step 3; resume with: dcgan-lab train torch-mnist --framework torch "
            f"--out {out} --resume") in text
    assert T.load_checkpoint(out / "checkpoint.pt")["step"] == 3
    # 2. Resume, and kill -9 inside step 5 (after the step-4 checkpoint): nothing is lost.
    script = _script(tmp_path, mnist, opts, hang_at=5, resume=True, hang_s=60)
    proc = _start(script, out, tmp_path / "images.npy")
    proc.kill()
    proc.communicate(timeout=60)
    assert T.load_checkpoint(out / "checkpoint.pt")["step"] == 4
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # 3. Resume to the end: the same weights and history as the run never interrupted.
    _run(out, None, mnist, resume=True)
    _assert_same(out, straight)
    assert _rows(out) == _rows(straight)


def _wait_for_pause(proc: subprocess.Popen, folder: Path, timeout: float = 60) -> Path:
    """Wait until the child stops inside an atomic write (tests/pause_in_write.py)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        paused = list(folder.glob(".*.tmp.paused"))
        if paused:
            return paused[0]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the child never paused inside a write: {proc.communicate()[0]}")


def test_kill_9_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, straight, mnist):
    """kill -9 while checkpoint.pt of step 4 is half on disk: the step-2 one loads and resumes
    to the straight run's weights (within 1e-6)."""
    out = tmp_path / "run"
    opts = "steps=6, batch_size=8, sample_every=3, checkpoint_every=2, n_fixed=16"
    script = _script(tmp_path, mnist, opts, hang_at=0, resume=False, hang_s=0)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    pause = Path(__file__).with_name("pause_in_write.py")  # the 2nd install of checkpoint.pt
    proc = subprocess.Popen([sys.executable, str(pause), "checkpoint.pt", "2", str(script),
                             str(out), str(tmp_path / "images.npy")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    paused = _wait_for_pause(proc, out)
    half = Path(str(paused)[:-len(".paused")])
    assert 0 < half.stat().st_size  # the new checkpoint is partly written, not yet renamed
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(CheckpointError):  # what the rename would have installed is broken
        T.load_checkpoint(half)
    assert T.load_checkpoint(out / "checkpoint.pt")["step"] == 2
    _run(out, None, mnist, resume=True)
    assert not list(out.glob(".*.tmp*"))  # the resumed run removed the half-written file
    _assert_same(out, straight)
    assert _rows(out) == _rows(straight)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # the NaN sample grid
def test_nan_stops_and_keeps_last_checkpoint(tmp_path, mnist):
    def poison(step, G, D, history):
        if step == 3:  # after the step-2 checkpoint
            with torch.no_grad():
                next(G.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"step 4: loss_d=nan"):
        _run(tmp_path, None, mnist, callbacks=[poison])
    state = T.load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["generator"].values() if v.is_floating_point())
    assert History.from_csv(tmp_path / "history.csv")["step"] == [1, 2, 3]


def test_nan_weights_are_never_checkpointed(tmp_path, mnist):
    def poison(step, G, D, history):
        if step == 2:  # a checkpoint step: the callback runs before the save
            with torch.no_grad():
                next(D.parameters()).fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match="not finite"):
        _run(tmp_path, None, mnist, callbacks=[poison])
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize("content", [b"not a checkpoint at all", "foreign"])
def test_corrupt_or_foreign_checkpoint_is_refused_and_kept(tmp_path, mnist, content):
    _run(tmp_path, None, mnist, OPTS.replace(steps=2))
    ckpt = tmp_path / "checkpoint.pt"
    if content == "foreign":
        torch.save({"weights": torch.zeros(3)}, ckpt)
    else:
        ckpt.write_bytes(content)
    before = ckpt.read_bytes()
    for kw in ({"resume": True}, {}):
        with pytest.raises(CheckpointError, match=str(ckpt)):
            _run(tmp_path, None, mnist, **kw)
        assert ckpt.read_bytes() == before


def test_checkpoint_of_another_run_is_refused(tmp_path, mnist):
    _run(tmp_path, None, mnist, OPTS.replace(steps=2))
    cfg = resolve("torch-mnist", "torch", OPTS.replace(lr_d=1e-5))
    with pytest.raises(CheckpointError, match="different run"):
        T.load_checkpoint(tmp_path / "checkpoint.pt", cfg)
    with pytest.raises(CheckpointError, match="differs in lr_d"):
        _run(tmp_path, None, mnist, OPTS.replace(lr_d=1e-5), resume=True)
    with pytest.raises(RunDirError, match="different run.*lr_d"):  # the folder says the same
        _run(tmp_path, None, mnist, OPTS.replace(lr_d=1e-5))


def test_variants_half_batch_concat_minimax_soft_labels(tmp_path, mnist):
    """bernico-mnist (half real, half fake) with two D steps, soft and noisy labels, minimax G."""
    base = TrainOptions(steps=2, batch_size=8, d_steps=2, real_label_range=(0.7, 1.0),
                        fake_label_range=(0.0, 0.3), flip_prob=0.1, g_loss="minimax", n_fixed=4)
    h_sep = _run(tmp_path / "sep", "bernico-mnist", mnist, base)
    h_cat = _run(tmp_path / "cat", "bernico-mnist", mnist, base.replace(d_batches="concat"))
    for h in (h_sep, h_cat):
        assert all(np.isfinite(h[c]).all() for c in COLUMNS)
        assert all(v < 0 for v in h["loss_g"])  # minimax: G minimises log(1 - D(G(z))) < 0
    # one pass over real+fake changes BatchNorm's statistics, hence the updates
    assert h_sep["loss_d"][1] != pytest.approx(h_cat["loss_d"][1], abs=1e-6)


def test_train_step_logits_recipe():
    """paper-lsun64 returns logits: the step uses BCE from logits and reports probabilities."""
    from dcgan_lab.torch.models import build

    cfg = resolve("paper-lsun64", "torch", TrainOptions(batch_size=2))
    torch.manual_seed(0)
    G, D = build("paper-lsun64")
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    before = next(G.parameters()).detach().clone()
    m = T.train_step(1, G, D, opt_g, opt_d, images, cfg, torch.device("cpu"))
    assert 0.0 < m["d_real"] < 1.0 and 0.0 < m["d_fake"] < 1.0
    assert m["loss_d"] > 0 and m["loss_g"] > 0
    assert not torch.equal(before, next(G.parameters()))


def test_callbacks_see_every_step_and_can_add_columns(tmp_path, mnist):
    seen = []

    def metric(step, G, D, history):
        seen.append(step)
        if step % 2 == 0:
            history.rows[-1]["fid"] = float(step)

    h = _run(tmp_path, None, mnist, OPTS.replace(steps=4), callbacks=[metric])
    assert seen == [1, 2, 3, 4]
    assert History.from_csv(tmp_path / "history.csv")["fid"][1::2] == [2.0, 4.0] == h["fid"][1::2]


def test_sample_and_load_generator(straight):
    G = T.load_generator(straight)
    a = T.sample(G, 5, seed=3)
    assert a.shape == (5, 28, 28, 1) and a.dtype == np.uint8
    assert np.array_equal(a, T.sample(G, 5, seed=3))
    assert not np.array_equal(a, T.sample(G, 5, seed=4))
    (straight / "generator.pt").rename(straight / "g.bak")  # falls back to the checkpoint
    try:
        assert np.array_equal(a, T.sample(T.load_generator(straight), 5, seed=3))
    finally:
        (straight / "g.bak").rename(straight / "generator.pt")


def test_images_are_checked_against_the_recipe(mnist):
    cfg = resolve("torch-mnist", "torch", OPTS)
    rgb = np.repeat(mnist[:4], 3, axis=3)
    gray = load_training_images(cfg, rgb)
    assert gray.shape == (4, 28, 28, 1)
    assert np.abs(gray.astype(int) - mnist[:4].astype(int)).max() <= 1
    with pytest.raises(data.DatasetError, match="28x28"):
        load_training_images(cfg, np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="larger than the data set"):
        T.train("torch-mnist", "/nonexistent/never", options=OPTS, data=mnist[:4], device="cpu")


def test_step_inputs_follow_the_shared_streams(mnist):
    """The batches and z are those of the shared NumPy streams (the Keras twin's step_inputs are
    checked against the same streams); a recipe that reuses D's fake batch draws no z_g."""
    from dcgan_lab.run import streams

    keras_origin = resolve("dense-mnist", "torch", OPTS.replace(d_steps=2))
    inp = T.step_inputs(4, mnist, keras_origin)
    assert set(inp) == {"real", "z_d", "t_real", "t_fake", "z_g"}
    assert inp["real"].shape == (2, 8, 1, 28, 28) and inp["z_g"].shape == (1, 8, 100)
    for j in range(2):
        rows = streams.batch_indices(4, len(mnist), 8, 0, sub=j, per_step=2)
        np.testing.assert_array_equal(inp["real"][j].numpy(),
                                      data.to_float(mnist[rows]).transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(inp["z_d"][j].numpy(), streams.noise(4, 8, 100, 0, sub=j))
    np.testing.assert_array_equal(inp["z_g"][0].numpy(), streams.noise(4, 8, 100, 0, sub=2))
    torch_origin = resolve("torch-mnist", "torch", OPTS.replace(d_steps=2))
    assert streams.reuses_fake(torch_origin) and not streams.reuses_fake(keras_origin)
    inp2 = T.step_inputs(4, mnist, torch_origin)
    assert set(inp2) == {"real", "z_d", "t_real", "t_fake"}  # G trains on G(z_d[-1])
    for k in inp2:
        assert torch.equal(inp2[k], inp[k]), k


def _count_g_inputs(G) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    G.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("name", ["torch-mnist", "dense-mnist"])
def test_g_update_reuses_d_fake_batch_only_for_pytorch_recipes(mnist, name):
    from dcgan_lab.torch.models import build

    cfg = resolve(name, "torch", OPTS)
    torch.manual_seed(0)
    G, D = build(name)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    seen = _count_g_inputs(G)
    inputs = T.step_inputs(1, mnist, cfg)
    T.train_step(1, G, D, opt_g, opt_d, mnist, cfg, torch.device("cpu"), inputs=inputs)
    if recipes.get(name).reuse_fake:  # one G forward: D's fake batch, then G's update on it
        assert len(seen) == 1 and torch.equal(seen[0], inputs["z_d"][0])
    else:  # D's fakes under no_grad, then G on fresh z
        assert len(seen) == 2 and torch.equal(seen[1], inputs["z_g"][0])
    assert all(p.requires_grad for p in D.parameters())  # D was frozen for G's update only


def test_torch_step_is_the_pytorch_examples_step(mnist):
    """torch-mnist's step computes what pytorch/examples dcgan/main.py computes on the same
    real batch and z: fake = netG(noise) once, D on real and fake.detach(), G on netD(fake)."""
    from dcgan_lab.torch.models import build

    cfg = resolve("torch-mnist", "torch", OPTS)
    inputs = T.step_inputs(1, mnist, cfg)
    pairs = []
    for _ in range(2):
        torch.manual_seed(0)
        G, D = build("torch-mnist")
        pairs.append((G, D, torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                      torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))))
    G, D, opt_g, opt_d = pairs[0]
    T.train_step(1, G, D, opt_g, opt_d, mnist, cfg, torch.device("cpu"), inputs=inputs)
    netG, netD, optimizerG, optimizerD = pairs[1]
    criterion = torch.nn.BCELoss()
    real, noise = inputs["real"][0], inputs["z_d"][0]
    netD.zero_grad()
    output = netD(real).view(-1)
    criterion(output, torch.ones_like(output)).backward()
    fake = netG(noise)
    output = netD(fake.detach()).view(-1)
    criterion(output, torch.zeros_like(output)).backward()
    optimizerD.step()
    netG.zero_grad()
    output = netD(fake).view(-1)
    criterion(output, torch.ones_like(output)).backward()
    optimizerG.step()
    for a, b in ((G, netG), (D, netD)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.allclose(va.float(), vb.float(), atol=1e-6, rtol=0), k
