"""The framework-free training support: options, random streams, labels, run folders, history."""

import numpy as np
import pytest

from dcgan_lab.run import loop, streams
from dcgan_lab.run.atomic import atomic_path, atomic_write_text
from dcgan_lab.run.config import RunDirError, TrainOptions, resolve
from dcgan_lab.run.history import History
from dcgan_lab.run.rundir import RunDir


def test_resolve_takes_recipe_and_budget_defaults():
    cfg = resolve("torch-mnist", "torch", profile="smoke")
    r = cfg.recipe_obj
    assert (cfg.steps, cfg.batch_size) == (r.budgets.smoke.steps, r.budgets.smoke.batch_size)
    assert (cfg.lr_g, cfg.beta1, cfg.loss) == (2e-4, 0.5, "bce")
    cfg2 = resolve("torch-mnist", "torch", TrainOptions(steps=7, lr_d=1e-4), profile="cpu")
    assert cfg2.steps == 7 and cfg2.lr_d == 1e-4 and cfg2.sample_every <= 7


@pytest.mark.parametrize("opts, word", [
    (TrainOptions(g_loss="wasserstein"), "g_loss"),
    (TrainOptions(d_batches="mixed"), "d_batches"),
    (TrainOptions(flip_prob=0.9), "flip_prob"),
    (TrainOptions(real_label_range=(0.9, 0.7)), "real_label_range"),
    (TrainOptions(steps=0), "steps"),
    (TrainOptions(keras_style="fit"), "keras_style"),
    (TrainOptions(label_smoothing=0.7), "label_smoothing"),
])
def test_bad_options_name_the_option(opts, word):
    with pytest.raises(ValueError, match=word):
        resolve("dense-mnist", "torch", opts, profile="smoke")


def test_unknown_framework_and_recipe():
    with pytest.raises(ValueError, match="torch, keras"):
        resolve("dense-mnist", "jax", profile="smoke")
    with pytest.raises(KeyError, match="dcgan64"):
        resolve("dcgan65", "torch", profile="smoke")


def test_batches_walk_epochs_without_repeats():
    n, b = 100, 10
    seen = np.concatenate([streams.batch_indices(s, n, b, seed=3) for s in range(10)])
    assert sorted(seen) == list(range(n))  # one epoch = every image once
    assert np.array_equal(streams.batch_indices(4, n, b, 3), streams.batch_indices(4, n, b, 3))
    assert not np.array_equal(streams.batch_indices(4, n, b, 3), streams.batch_indices(14, n, b, 3))


def test_noise_is_a_function_of_seed_and_step():
    a = streams.noise(5, 4, 100, seed=1)
    assert a.shape == (4, 100) and a.dtype == np.float32
    assert np.array_equal(a, streams.noise(5, 4, 100, seed=1))
    assert not np.array_equal(a, streams.noise(6, 4, 100, seed=1))
    assert not np.array_equal(a, streams.noise(5, 4, 100, seed=2))
    assert abs(streams.fixed_noise(4096, 10, 0).std() - 1) < 0.05


def test_targets_follow_the_label_options():
    plain = resolve("torch-mnist", "torch", profile="smoke")
    real, fake = streams.d_targets(plain, 0, 8, 8)
    assert (real == 1).all() and (fake == 0).all()
    smooth = resolve("torch-mnist", "torch", TrainOptions(label_smoothing=0.1), profile="smoke")
    real, fake = streams.d_targets(smooth, 0, 8, 8)
    assert np.allclose(real, 0.9) and (fake == 0).all()  # one-sided
    soft = resolve("torch-mnist", "torch", TrainOptions(real_label_range=(0.7, 1.0),
                                                        fake_label_range=(0.0, 0.3)), profile="smoke")
    real, fake = streams.d_targets(soft, 3, 5000, 5000)
    assert 0.7 <= real.min() and real.max() <= 1.0 and 0.0 <= fake.min() and fake.max() <= 0.3
    assert real.std() > 0.05
    noisy = resolve("torch-mnist", "torch", TrainOptions(flip_prob=0.2), profile="smoke")
    real, fake = streams.d_targets(noisy, 3, 20000, 20000)
    assert abs((real == 0).mean() - 0.2) < 0.02 and abs((fake == 1).mean() - 0.2) < 0.02


def test_half_batch_recipes_split_the_batch():
    cfg = resolve("bernico-mnist", "keras", TrainOptions(batch_size=128), profile="smoke")
    assert streams.d_batch_sizes(cfg) == (64, 64)
    cfg = resolve("torch-mnist", "torch", TrainOptions(batch_size=128), profile="smoke")
    assert streams.d_batch_sizes(cfg) == (128, 128)


def test_run_dir_refuses_another_run(tmp_path):
    cfg = resolve("torch-mnist", "torch", profile="smoke")
    run = RunDir(tmp_path / "run")
    assert run.prepare(cfg) is False
    with pytest.raises(RunDirError, match="--resume"):
        run.prepare(cfg)
    assert run.prepare(cfg, resume=True) is True
    longer = resolve("torch-mnist", "torch", TrainOptions(steps=99), profile="smoke")
    assert run.prepare(longer, resume=True) is True  # more steps: still the same run
    other = resolve("torch-mnist", "torch", TrainOptions(lr_d=1e-3), profile="smoke")
    with pytest.raises(RunDirError, match="different run.*lr_d"):
        run.prepare(other, resume=True)
    assert run.prepare(other, force=True) is False
    assert run.read_config().lr_d == 1e-3
    with pytest.raises(RunDirError, match="cannot resume"):
        RunDir(tmp_path / "empty").prepare(cfg, resume=True)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "ckpt.bin"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.bin"]  # no temporary left behind


def test_history_csv_round_trip_and_truncate(tmp_path):
    h = History()
    for s in range(1, 6):
        h.log(step=s, loss_d=1.0 / s, loss_g=float(s), d_real=0.5, d_fake=0.5)
    h.log(step=6, loss_d=0.1, fid=12.5)
    h.to_csv(tmp_path / "h.csv")
    back = History.from_csv(tmp_path / "h.csv")
    assert back["step"] == [1, 2, 3, 4, 5, 6]
    assert back["loss_d"][:2] == pytest.approx([1.0, 0.5])
    assert np.isnan(back["fid"][0]) and back["fid"][5] == 12.5
    back.truncate(3)
    assert back["step"] == [1, 2, 3]
    with pytest.raises(KeyError, match="loss_d"):
        back["nope"]


def test_check_finite_names_the_loss():
    loop.check_finite(3, loss_d=0.5)
    with pytest.raises(loop.TrainingDiverged, match="step 7: loss_g=nan"):
        loop.check_finite(7, loss_d=0.5, loss_g=float("nan"))
