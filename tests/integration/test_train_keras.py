"""dcgan_lab.keras.train: both Keras styles, checkpoints, resume, Ctrl-C, kill -9, NaN, corrupt files.

Runs are a handful of steps on a few hundred real MNIST images, on the CPU.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dcgan_lab import data, recipes  # noqa: E402
from dcgan_lab.run import rundir, streams  # noqa: E402
from dcgan_lab.run.atomic import CheckpointError  # noqa: E402
from dcgan_lab.run.config import TrainOptions, resolve  # noqa: E402
from dcgan_lab.run.history import COLUMNS, History  # noqa: E402
from dcgan_lab.run.loop import TrainingDiverged  # noqa: E402

# ``dcgan_lab.keras.train`` is the function (re-exported by the package); the module is here:
T = importlib.import_module("dcgan_lab.keras.backend")
ROOT = Path(__file__).resolve().parents[2]
OPTS = TrainOptions(steps=6, batch_size=8, sample_every=3, checkpoint_every=3, n_fixed=16)
# one recipe per style: dense-mnist is "stacked", torch-mnist "train_step" (with BatchNorm)
STYLES = {"stacked": "dense-mnist", "train_step": "torch-mnist"}


def _run(out, name, images, opts=OPTS, **kw) -> History:
    return T.train(name, out, options=opts, data=images, progress=False, **kw)


def _state(run_dir: Path) -> dict[str, np.ndarray]:
    return T.load_checkpoint(Path(run_dir) / T.CHECKPOINT_NAME)["arrays"]


def _assert_same(a: Path, b: Path) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], atol=1e-6, rtol=0, err_msg=k)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mnist) -> dict[str, Path]:
    """Six uninterrupted steps of each style."""
    out = {}
    for style, name in STYLES.items():
        out[style] = tmp_path_factory.mktemp(f"straight_{style}")
        _run(out[style], name, mnist)
    return out


def test_run_folder_history_and_models(straight):
    run = straight["stacked"]
    for f in ("config.json", "history.csv", T.CHECKPOINT_NAME, "training.gif",
              T.GENERATOR_NAME, T.DISCRIMINATOR_NAME):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000003.png", "step_000006.png"]
    cfg = rundir.RunDir(run).read_config()
    assert (cfg.framework, cfg.keras_style, cfg.steps) == ("keras", "stacked", 6)
    h = History.from_csv(run / "history.csv")
    assert h["step"] == [1, 2, 3, 4, 5, 6]
    assert list(h.columns()) == list(COLUMNS)
    for c in COLUMNS:
        assert all(math.isfinite(v) for v in h[c]), c
    assert all(0 <= v <= 1 for v in h["d_real"] + h["d_fake"])
    np.testing.assert_allclose(h["loss_d"], np.add(h["loss_d_real"], h["loss_d_fake"]), rtol=1e-5)
    # the saved models load in safe mode and compute what the checkpoint's weights compute
    G = keras.models.load_model(run / T.GENERATOR_NAME, safe_mode=True)
    D = keras.models.load_model(run / T.DISCRIMINATOR_NAME, safe_mode=True)
    z = streams.sample_noise(3, 100, 0)
    x = np.asarray(G(z, training=False))
    assert x.shape == (3, 28, 28, 1) and np.abs(x).max() <= 1
    assert np.asarray(D(x)).shape == (3, 1)
    G2 = T.load_generator(run)
    np.testing.assert_allclose(np.asarray(G2(z, training=False)), x, atol=1e-6)
    (run / T.GENERATOR_NAME).rename(run / "g.bak")  # without generator.keras: the checkpoint's
    try:
        G3 = T.load_generator(run)
        np.testing.assert_allclose(np.asarray(G3(z, training=False)), x, atol=1e-6)
    finally:
        (run / "g.bak").rename(run / T.GENERATOR_NAME)


@pytest.mark.parametrize("style", list(STYLES))
def test_resume_matches_straight(tmp_path, straight, mnist, style):
    name = STYLES[style]
    _run(tmp_path, name, mnist, OPTS.replace(steps=3))
    assert _state(tmp_path)["fixed_noise"].shape == (16, 100)
    h = _run(tmp_path, name, mnist, resume=True)
    assert h["step"] == [1, 2, 3, 4, 5, 6]
    _assert_same(tmp_path, straight[style])
    h_straight = History.from_csv(straight[style] / "history.csv")
    np.testing.assert_allclose(h["loss_g"], h_straight["loss_g"], rtol=1e-5)  # CSV: 6 digits
    assert History.from_csv(tmp_path / "history.csv")["step"] == [1, 2, 3, 4, 5, 6]


def test_resume_restores_dropout_rng(tmp_path, mnist):
    """bernico-mnist's D has dropout: its SeedGenerator states go into the checkpoint."""
    opts = OPTS.replace(steps=2, batch_size=4, checkpoint_every=1, g_dropout=0.2)
    _run(tmp_path / "a", "bernico-mnist", mnist, opts)
    _run(tmp_path / "b", "bernico-mnist", mnist, opts.replace(steps=1))
    groups = T.load_checkpoint(tmp_path / "b" / T.CHECKPOINT_NAME)["header"]["groups"]
    assert sum("seed_generator" in p for p in groups["discriminator"]) == 4
    assert sum("seed_generator" in p for p in groups["generator"]) >= 1  # g_dropout
    _run(tmp_path / "b", "bernico-mnist", mnist, opts, resume=True)
    _assert_same(tmp_path / "a", tmp_path / "b")


_CHILD = textwrap.dedent("""
    import sys, time, importlib
    import numpy as np
    from dcgan_lab import data
    from dcgan_lab.run.config import TrainOptions
    T = importlib.import_module("dcgan_lab.keras.backend")
    x, _ = data.load("mnist", "train", verbose=False)
    opts = TrainOptions(steps=6, batch_size=8, sample_every=3, checkpoint_every=1, n_fixed=16)
    print("ready", flush=True)
    T.train("dense-mnist", sys.argv[1], options=opts, data=np.ascontiguousarray(x[:256]),
            progress=False, resume=sys.argv[2] == "resume",
            callbacks=[lambda step, G, D, h: time.sleep(0.25)])
""")


def _child(out: Path, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(out), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_rows(out: Path, n: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        f = out / "history.csv"
        if f.exists() and len(f.read_text().splitlines()) - 1 >= n:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the child run made no progress")


def test_ctrl_c_then_kill_9_then_resume_matches_straight(tmp_path, straight, mnist):
    # Ctrl-C: the step in progress finishes, a checkpoint is saved, the way to resume is printed
    proc = _child(tmp_path, "fresh")
    _wait_rows(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "resume with" in err and "--resume" in err
    done = T.load_checkpoint(tmp_path / T.CHECKPOINT_NAME)["header"]["step"]
    assert 2 <= done < 6
    assert f"interrupted at step {done}" in err
    # kill -9 in the middle of the resumed run: the last atomic checkpoint survives
    proc = _child(tmp_path, "resume")
    _wait_rows(tmp_path, done + 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not (tmp_path / T.GENERATOR_NAME).exists()
    step = T.load_checkpoint(tmp_path / T.CHECKPOINT_NAME)["header"]["step"]
    assert step < 6
    h = _run(tmp_path, "dense-mnist", mnist, resume=True)
    assert h["step"] == [1, 2, 3, 4, 5, 6]
    _assert_same(tmp_path, straight["stacked"])


_CHILD_PLAIN = textwrap.dedent("""
    import sys, importlib
    import numpy as np
    from dcgan_lab import data
    from dcgan_lab.run.config import TrainOptions
    T = importlib.import_module("dcgan_lab.keras.backend")
    x, _ = data.load("mnist", "train", verbose=False)
    opts = TrainOptions(steps=6, batch_size=8, sample_every=3, checkpoint_every=3, n_fixed=16)
    T.train("dense-mnist", sys.argv[1], options=opts, data=np.ascontiguousarray(x[:256]),
            progress=False)
""")


def test_kill_9_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, straight, mnist):
    """kill -9 while the step-6 checkpoint is half on disk: the step-3 one loads and resumes to
    the straight run's weights (within 1e-6)."""
    pause = Path(__file__).with_name("pause_in_write.py")  # the 2nd install of the checkpoint
    proc = subprocess.Popen([sys.executable, str(pause), T.CHECKPOINT_NAME, "2", "-c",
                             _CHILD_PLAIN, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not list(tmp_path.glob(".*.tmp.paused")):
        if proc.poll() is not None or time.time() - t0 > 90:
            proc.kill()
            pytest.fail(f"the child never paused inside a write: {proc.communicate()}")
        time.sleep(0.05)
    half = Path(str(next(tmp_path.glob(".*.tmp.paused")))[:-len(".paused")])
    assert half.stat().st_size > 0  # partly written, not yet renamed
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(CheckpointError):
        T.load_checkpoint(half)
    assert T.load_checkpoint(tmp_path / T.CHECKPOINT_NAME)["header"]["step"] == 3
    h = _run(tmp_path, "dense-mnist", mnist, resume=True)
    assert h["step"] == [1, 2, 3, 4, 5, 6]
    assert not list(tmp_path.glob(".*.tmp*"))
    _assert_same(tmp_path, straight["stacked"])


def test_nan_stops_and_keeps_last_checkpoint(tmp_path, mnist, monkeypatch):
    real_step = T.train_step

    def diverging(step, trainer, images, cfg, inputs=None):
        m = real_step(step, trainer, images, cfg, inputs=inputs)
        return {**m, "loss_g": math.nan} if step == 5 else m

    monkeypatch.setattr(T, "train_step", diverging)
    with pytest.raises(TrainingDiverged, match="step 5"):
        _run(tmp_path, "dense-mnist", mnist)
    assert T.load_checkpoint(tmp_path / T.CHECKPOINT_NAME)["header"]["step"] == 3
    assert not (tmp_path / T.GENERATOR_NAME).exists()
    assert History.from_csv(tmp_path / "history.csv")["step"] == [1, 2, 3, 4]


def test_nan_weights_are_never_checkpointed(tmp_path, mnist):
    def poison(step, G, D, history):
        if step == 4:
            w = G.trainable_weights[0]
            w.assign(np.full(w.shape, np.nan, np.float32))

    with pytest.raises(TrainingDiverged, match="not finite"):
        _run(tmp_path, "torch-mnist", mnist, OPTS.replace(checkpoint_every=2), callbacks=[poison])
    assert T.load_checkpoint(tmp_path / T.CHECKPOINT_NAME)["header"]["step"] == 2


@pytest.mark.parametrize("kind", ["garbage", "truncated", "foreign"])
def test_corrupt_or_foreign_checkpoint_is_refused_and_kept(tmp_path, straight, mnist, kind):
    run = tmp_path / "run"
    shutil.copytree(straight["stacked"], run)
    ckpt = run / T.CHECKPOINT_NAME
    if kind == "garbage":
        ckpt.write_bytes(b"not a checkpoint at all")
    elif kind == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    else:
        with ckpt.open("wb") as f:
            np.savez(f, weights=np.zeros(3))
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match=T.CHECKPOINT_NAME):
        _run(run, "dense-mnist", mnist, OPTS.replace(steps=8), resume=True)
    assert ckpt.read_bytes() == before


def test_checkpoint_of_another_run_is_refused(tmp_path, straight):
    cfg = resolve("dense-mnist", "keras", OPTS.replace(lr_d=1e-5))
    with pytest.raises(CheckpointError, match="lr_d"):
        T.load_checkpoint(straight["stacked"] / T.CHECKPOINT_NAME, cfg)
    cfg = resolve("torch-mnist", "keras", OPTS)
    with pytest.raises(CheckpointError, match="recipe"):
        T.load_checkpoint(straight["stacked"] / T.CHECKPOINT_NAME, cfg)


def test_stacked_freeze_trains_the_right_model(mnist):
    """D.train_on_batch moves D only; combined.train_on_batch moves G only."""
    cfg = resolve("gia-dcgan-mnist", "keras", OPTS)
    G, D = importlib.import_module("dcgan_lab.keras.models").build(cfg.recipe)
    st = T.StackedGAN.from_config_of(cfg, G, D)
    inputs = T.step_inputs(1, mnist, cfg)

    def snap(m):
        return [np.array(v) for v in m.trainable_weights]

    g0, d0 = snap(G), snap(D)
    st.train_d(inputs["real"][0], st.generator.predict_on_batch(inputs["z_d"][0]),
               inputs["t_real"][0], inputs["t_fake"][0])
    g1, d1 = snap(G), snap(D)
    assert all((a == b).all() for a, b in zip(g0, g1, strict=True))
    assert all((a != b).any() for a, b in zip(d0, d1, strict=True))
    st.train_g(inputs["z_g"][0])
    g2, d2 = snap(G), snap(D)
    assert all((a == b).all() for a, b in zip(d1, d2, strict=True))
    assert sum((a != b).any() for a, b in zip(g1, g2, strict=True)) >= len(g1) - 1
    assert D.trainable  # left trainable for the next D update


def test_step_inputs_follow_the_shared_streams(mnist):
    cfg = resolve("torch-mnist", "keras", OPTS.replace(d_steps=2, real_label_range=(0.7, 1.0)))
    inp = T.step_inputs(4, mnist, cfg)
    assert inp["real"].shape == (2, 8, 28, 28, 1) and inp["z_g"].shape == (1, 8, 100)
    rows = streams.batch_indices(4, 256, 8, 0, sub=1, per_step=2)
    np.testing.assert_array_equal(inp["real"][1], data.to_float(mnist[rows]))
    np.testing.assert_array_equal(inp["z_d"][1], streams.noise(4, 8, 100, 0, sub=1))
    np.testing.assert_array_equal(inp["z_g"][0], streams.noise(4, 8, 100, 0, sub=2))
    np.testing.assert_array_equal(inp["t_real"][0], streams.d_targets(cfg, 4, 8, 8)[0])
    half = resolve("bernico-mnist", "keras", OPTS)
    assert T.step_inputs(1, mnist, half)["real"].shape[1] == 4  # Keras-GAN half batches


def test_variants(tmp_path, mnist):
    two = OPTS.replace(steps=2, sample_every=2, checkpoint_every=2)
    runs = {
        "concat-stacked": ("dense-mnist", two.replace(d_batches="concat")),
        "concat-train_step": ("torch-mnist", two.replace(d_batches="concat", d_steps=2)),
        "minimax-soft-noisy": ("dense-mnist", two.replace(
            keras_style="train_step", g_loss="minimax", real_label_range=(0.7, 1.0),
            fake_label_range=(0.0, 0.3), flip_prob=0.1, lr_d=1e-4)),
        "smoothing-activations": ("dense-mnist", two.replace(
            label_smoothing=0.1, g_activation="relu", d_activation="relu")),
    }
    for tag, (name, opts) in runs.items():
        h = _run(tmp_path / tag, name, mnist, opts)
        assert len(h) == 2, tag
        for c in COLUMNS:
            assert all(math.isfinite(v) for v in h[c]), (tag, c)
    h = History.from_csv(tmp_path / "minimax-soft-noisy" / "history.csv")
    assert all(v < 0 for v in h["loss_g"])  # log(1 - D(G(z))) is negative
    with pytest.raises(ValueError, match="g_loss='minimax'.*keras_style"):
        _run(tmp_path / "bad", "dense-mnist", mnist, two.replace(g_loss="minimax"))


def test_fit_with_callbacks(tmp_path, mnist):
    """The idiomatic route: gan.fit(dataset) with sample grids, checkpoints and a history."""
    from dcgan_lab.keras import make_dataset
    from dcgan_lab.keras.models import build

    cfg = resolve("torch-mnist", "keras", OPTS)
    G, D = build(cfg.recipe)
    gan = T.GAN.from_config_of(cfg, G, D)
    fixed = streams.fixed_noise(9, 100, 0)
    logger = T.HistoryLogger(tmp_path / "history.csv")
    gan.fit(make_dataset(mnist[:64], 16), epochs=2, verbose=0, shuffle=False, callbacks=[
        T.GANMonitor(tmp_path / "samples", fixed),
        T.GANCheckpoint(tmp_path / T.CHECKPOINT_NAME, every=3, cfg=cfg, fixed_noise=fixed),
        logger,
    ])
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "epoch_0001.png", "epoch_0002.png", "training.gif"]
    h = History.from_csv(tmp_path / "history.csv")
    assert h["step"] == list(range(1, 9))
    for c in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert all(math.isfinite(v) for v in h[c]), c
    state = T.load_checkpoint(tmp_path / T.CHECKPOINT_NAME, cfg)
    assert state["header"]["step"] == 8
    G2, D2 = build(cfg.recipe)
    gan2 = T.GAN.from_config_of(cfg, G2, D2)
    assert T.restore(state, gan2) == 8
    z = streams.sample_noise(4, 100, 1)
    np.testing.assert_allclose(np.asarray(G2(z)), np.asarray(G(z)), atol=1e-6)
    assert int(gan2.g_optimizer.iterations) == int(gan.g_optimizer.iterations) == 8


def test_sample_is_seeded_uint8(straight):
    G = T.load_generator(straight["train_step"])
    a, b, c = T.sample(G, 5, seed=1), T.sample(G, 5, seed=1), T.sample(G, 5, seed=2)
    assert a.dtype == np.uint8 and a.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    z = np.random.default_rng(1).standard_normal((5, 100), dtype=np.float32)
    np.testing.assert_array_equal(a, data.to_uint8(np.asarray(G(z, training=False))))


_DATA: dict[str, np.ndarray] = {}


def _images(dataset: str) -> np.ndarray:
    if dataset not in _DATA:
        x, _ = data.load(dataset, "train", verbose=False)
        _DATA[dataset] = np.ascontiguousarray(x[:64])
    return _DATA[dataset]


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_trains_two_steps(tmp_path, name):
    r = recipes.get(name)
    batch = 4 if r.image_shape[0] == 64 else 8
    opts = TrainOptions(steps=2, batch_size=batch, n_fixed=4)
    h = T.train(name, tmp_path, options=opts, profile="smoke", data=_images(r.dataset),
                progress=False)
    assert h["step"] == [1, 2]
    for c in COLUMNS:
        assert all(math.isfinite(v) for v in h[c]), c
    for f in ("config.json", "history.csv", T.CHECKPOINT_NAME, "training.gif",
              T.GENERATOR_NAME, T.DISCRIMINATOR_NAME, "samples/step_000002.png"):
        assert (tmp_path / f).is_file(), f
    cfg = rundir.RunDir(tmp_path).read_config()
    assert cfg.keras_style == r.keras_style and cfg.profile == "smoke"


def test_dense_mnist_discriminator_separates_early(tmp_path):
    x, _ = data.load("mnist", "train", verbose=False)
    h = T.train("dense-mnist", tmp_path, options=TrainOptions(
        steps=100, batch_size=64, sample_every=50, checkpoint_every=50), data=x, progress=False)
    d_real, d_fake = np.mean(h["d_real"][10:40]), np.mean(h["d_fake"][10:40])
    assert d_real > d_fake + 0.1, (d_real, d_fake)
    assert all(math.isfinite(v) for v in h["loss_d"] + h["loss_g"])
