"""dcgan_lab.toy (mixtures, measures, statistics) and its two trainers, dcgan_lab.torch.toy and
dcgan_lab.keras.toy: each measure can fail, the twins compute the same function, a short
training run beats a collapsed baseline, bad names are ValueErrors that name the choices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dcgan_lab import toy

torch_toy = pytest.importorskip("dcgan_lab.torch.toy")


# --------------------------------------------------------------------------------------------
# the mixtures

@pytest.mark.parametrize("name, k, std", [("ring", 8, 0.02), ("grid", 25, 0.05)])
def test_mixture_shapes_modes_and_std(name, k, std):
    m = toy.mixture(name)
    assert m.means.shape == (k, 2) and m.std == std
    x = toy.sample(name, 20_000, seed=0)
    assert x.shape == (20_000, 2) and x.dtype == np.float32
    idx, _ = toy.nearest_mode(x, name)
    offsets = x - m.means[idx]
    assert abs(offsets.std() - std) < 0.05 * std           # the per-axis spread is the std
    counts = np.bincount(idx, minlength=k)
    assert counts.min() > 0.8 * 20_000 / k                # equal weights
    np.testing.assert_array_equal(x, toy.sample(name, 20_000, seed=0))   # seeded
    assert not np.array_equal(x, toy.sample(name, 20_000, seed=1))


def test_ring_radius_and_grid_spacing():
    assert np.allclose(np.linalg.norm(toy.mixture("ring").means, axis=1), 2.0)
    g = toy.mixture("grid").means
    assert sorted(set(g[:, 0])) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_unknown_mixture_names_the_choices():
    with pytest.raises(ValueError, match="mixture='moons'.*'ring', 'grid'"):
        toy.mixture("moons")
    with pytest.raises(ValueError, match="mixture"):
        toy.make_config("moons", 10, 0)


# --------------------------------------------------------------------------------------------
# the measures, on hand-made point sets: each can fail

@pytest.mark.parametrize("name", toy.MIXTURES)
def test_real_data_covers_every_mode_at_high_quality(name):
    x = toy.sample(name, toy.N_EVAL, seed=3)
    m = toy.mixture(name)
    assert toy.modes_covered(x, name) == m.n_modes
    # a 2-D Gaussian has 1 - exp(-9/2) = 98.9% of its mass within 3 std
    assert abs(toy.high_quality_share(x, name) - (1 - math.exp(-4.5))) < 0.01


@pytest.mark.parametrize("name", toy.MIXTURES)
def test_one_mode_is_high_quality_but_covers_one(name):
    m = toy.mixture(name)
    x = (m.means[2] + m.std * np.random.default_rng(0).standard_normal((2500, 2))).astype(np.float32)
    assert toy.modes_covered(x, name) == 1
    assert toy.high_quality_share(x, name) > 0.97


@pytest.mark.parametrize("name", toy.MIXTURES)
def test_off_manifold_points_are_low_quality_and_cover_nothing(name):
    m = toy.mixture(name)
    # every mode, but blurred 10x: the right places, the wrong shape
    x = m.sample(2500, 0)
    blurred = m.means[toy.nearest_mode(x, m)[0]] + 10 * m.std * np.random.default_rng(1).standard_normal((2500, 2))
    assert toy.high_quality_share(blurred, name) < 0.1
    assert toy.modes_covered(blurred, name) == 0
    # points halfway between modes
    mid = (m.means[0] + m.means[1]) / 2
    assert toy.high_quality_share(np.tile(mid, (100, 1)), name) == 0.0


def test_a_few_stray_points_do_not_cover_a_mode():
    m = toy.mixture("ring")
    x = np.concatenate([np.tile(m.means[0], (2490, 1)), np.tile(m.means[1], (10, 1))])
    assert toy.mode_counts(x, m)[1] == 10
    assert toy.modes_covered(x, m) == 1            # 10 < 0.2 * 2500 / 8 = 62.5
    assert toy.modes_covered(x, m, min_fraction=0.01) == 2


def test_points_of_the_wrong_shape_name_it():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        toy.modes_covered(np.zeros((5, 3)), "ring")


# --------------------------------------------------------------------------------------------
# statistics on known inputs

def test_rank_test_exact_on_a_complete_separation():
    u, p = toy.rank_test([4, 5, 6], [1, 2, 3])
    assert u == 9.0
    assert p == pytest.approx(2 / math.comb(6, 3))       # only the two extreme splits


def test_rank_test_identical_groups_and_ties():
    assert toy.rank_test([8] * 10, [8] * 10)[1] == 1.0
    u, p = toy.rank_test([1, 1, 2], [1, 2, 2])
    assert u == pytest.approx(3.0) and p == 1.0


def test_rank_test_ten_against_ten_separated_is_tiny():
    _, p = toy.rank_test(np.arange(10, 20), np.arange(10))
    assert p == pytest.approx(2 / math.comb(20, 10))
    _, p_mc = toy.rank_test(np.arange(10, 20), np.arange(10), max_exact=10, n_resamples=20_000)
    assert p_mc < 1e-3                                   # the Monte Carlo branch agrees


def test_rank_test_matches_the_normal_approximation_roughly():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 1, 10), rng.normal(0, 1, 10)
    u, p = toy.rank_test(a, b)
    z = (u - 50) / math.sqrt(10 * 10 * 21 / 12)
    p_norm = math.erfc(abs(z) / math.sqrt(2))
    assert abs(p - p_norm) < 0.05


def test_bootstrap_interval_contains_the_difference_and_excludes_zero_when_clear():
    diff, lo, hi = toy.bootstrap_ci([5, 6, 7, 6, 5], [1, 2, 1, 2, 1])
    assert diff == pytest.approx(4.4) and lo <= diff <= hi and lo > 0
    diff, lo, hi = toy.bootstrap_ci([1, 2, 3], [1, 2, 3])
    assert diff == 0 and lo <= 0 <= hi
    with pytest.raises(ValueError, match="level"):
        toy.bootstrap_ci([1], [2], level=1.5)


def test_compare_verdicts_follow_the_p_value():
    better = toy.compare([8] * 10, [3, 4, 5, 3, 4, 5, 3, 4, 5, 4])
    assert better.significant and better.verdict(subject="smoothing").startswith("smoothing had more")
    same = toy.compare([3, 4, 5, 4, 3], [4, 3, 5, 4, 3])
    assert not same.significant and same.verdict().startswith("no difference")
    assert f"p = {same.p:.2g}" in same.verdict()


# --------------------------------------------------------------------------------------------
# ToyRun.coverage_over_time and ToyRun.hops on hand-built snapshot sequences

def _snapshot(name: str, counts: dict[int, int], n: int = 800) -> np.ndarray:
    """``n`` points: ``counts[k]`` exactly on mode k, the rest far off every mode (low quality)."""
    m = toy.mixture(name)
    on = [np.tile(m.means[k], (c, 1)) for k, c in counts.items()]
    off = np.full((n - sum(counts.values()), 2), 50.0)
    return np.concatenate(on + [off]).astype(np.float32)


def _run(name: str, snapshots: list[dict[int, int]], n: int = 800) -> toy.ToyRun:
    steps = list(range(0, 100 * len(snapshots), 100))
    cfg = toy.make_config(name, max(steps[-1], 1), 0, snapshot_steps=steps, n_eval=n)
    pts = np.stack([_snapshot(name, c, n) for c in snapshots])
    return toy.ToyRun(cfg, "hand", steps, pts, np.zeros((len(steps), 2, 2)),
                      np.zeros((cfg.steps, 3)), 0.0)


def _on(modes, each: int = 100) -> dict[int, int]:
    return {k: each for k in modes}


def test_coverage_over_time_marks_the_covered_modes_of_each_snapshot():
    # ring, 800 points: a mode needs 0.2 * 800 / 8 = 20 high-quality points
    run = _run("ring", [_on(range(8)), _on([0, 1, 2]), {3: 20, 4: 19}, {}])
    cov = run.coverage_over_time()
    assert cov.shape == (4, 8) and cov.dtype == bool
    expected = np.zeros((4, 8), bool)
    expected[0] = True
    expected[1, [0, 1, 2]] = True
    expected[2, 3] = True                  # 20 points cover mode 3; 19 leave mode 4 uncovered
    np.testing.assert_array_equal(cov, expected)
    # the rows are the final scores of each snapshot
    assert [run.summary(i)["modes_covered"] for i in range(4)] == [8, 3, 1, 0]


def test_hops_count_every_mode_lost_between_consecutive_snapshots():
    # 8 -> {0,1,2}: 5 lost; -> {0,1,2,3}: none (a gain is no hop); -> {3}: 3 lost; -> {3,4}: none
    run = _run("ring", [_on(range(8)), _on([0, 1, 2]), _on([0, 1, 2, 3]), _on([3]), _on([3, 4])])
    assert run.hops() == 8
    # a generator that jumps between two modes loses one at every snapshot
    assert _run("ring", [_on([0]), _on([1]), _on([0]), _on([1])]).hops() == 3
    # the same modes lost only once when they stay lost; a mode that falls below the 1/5 rule
    # counts as lost even if a few points remain there
    assert _run("ring", [_on([0, 5]), _on([0]), _on([0]), {0: 100, 5: 19}]).hops() == 1
    assert _run("ring", [_on([0, 5]), {0: 100, 5: 19}]).hops() == 1


def test_no_hops_when_modes_are_only_gained_or_kept():
    assert _run("ring", [{}, _on([0]), _on([0, 1]), _on(range(8))]).hops() == 0
    assert _run("ring", [_on(range(8))] * 4).hops() == 0
    assert _run("ring", [_on([2])]).hops() == 0              # one snapshot: nothing to lose


def test_hops_and_coverage_on_the_grid():
    # grid, 2500 points: 25 modes, a mode needs 0.2 * 2500 / 25 = 20 points
    run = _run("grid", [_on(range(25), 90), _on(range(10), 90), _on(range(5, 15), 90)], n=2500)
    cov = run.coverage_over_time()
    assert cov.shape == (3, 25)
    assert cov.sum(axis=1).tolist() == [25, 10, 10]
    assert run.hops() == 15 + 5


# --------------------------------------------------------------------------------------------
# configuration errors name the bad argument

def test_bad_loss_and_options_name_the_choices():
    with pytest.raises(ValueError, match="loss='wgan'.*'non_saturating', 'minimax'"):
        toy.make_config("ring", 10, 0, "wgan")
    with pytest.raises(ValueError, match="loss="):
        torch_toy.train_toy("ring", 10, 0, loss="lsgan")
    with pytest.raises(ValueError, match="unknown option.*lr_x"):
        toy.make_config("ring", 10, 0, lr_x=1)
    with pytest.raises(ValueError, match="d_activation='tanh'.*'leaky_relu', 'relu'"):
        toy.make_config("ring", 10, 0, d_activation="tanh")
    with pytest.raises(ValueError, match="steps=0"):
        toy.make_config("ring", 0, 0)
    with pytest.raises(ValueError, match="flip_prob"):
        toy.make_config("ring", 10, 0, flip_prob=1.5)


def test_the_stream_does_not_depend_on_how_steps_are_chunked():
    cfg = toy.make_config("grid", 10, 4, soft_labels=True, flip_prob=0.1, d_steps=2)
    a = toy.step_stream(cfg).take(6)
    s = toy.step_stream(cfg)
    b1, b2 = s.take(2), s.take(4)
    for k in a:
        np.testing.assert_array_equal(a[k], np.concatenate([b1[k], b2[k]]))
    assert a["real"].shape == (6, 2, cfg.batch_size, 2)
    assert 0.0 <= a["t_real"].min() and a["t_real"].max() <= 1.0


# --------------------------------------------------------------------------------------------
# training

def test_torch_run_is_deterministic_and_beats_a_collapsed_baseline():
    run = torch_toy.train_toy("ring", 1000, 0, snapshot_steps=(0,))
    again = torch_toy.train_toy("ring", 1000, 0, snapshot_steps=(0,))
    np.testing.assert_array_equal(run.final_points, again.final_points)
    assert run.steps == [0, 1000] and run.losses.shape == (1000, 3)
    assert run.points.shape == (2, toy.N_EVAL, 2) and run.surfaces.shape == (2, 64, 64)
    start = run.summary(0)["modes_covered"]
    collapsed = toy.modes_covered(np.tile(toy.mixture("ring").means[0], (toy.N_EVAL, 1)), "ring")
    assert collapsed == 1 and start <= 1
    assert run.summary()["modes_covered"] >= 2 > collapsed
    assert np.isfinite(run.losses).all()


def test_an_ensemble_of_seeds_trains_each_seed_as_alone():
    alone = torch_toy.train_toy("ring", 30, 1)
    together = torch_toy.train_toys("ring", 30, [0, 1])
    np.testing.assert_allclose(together[1].final_points, alone.final_points, atol=1e-4)
    assert [r.config.seed for r in together] == [0, 1]


# --------------------------------------------------------------------------------------------
# the twins

@pytest.fixture(scope="module")
def keras_toy():
    from dcgan_lab.tfquiet import import_tensorflow

    import_tensorflow()
    return pytest.importorskip("dcgan_lab.keras.toy")


def test_twins_hold_the_same_names(keras_toy):
    assert torch_toy.__all__ == keras_toy.__all__


@pytest.mark.parametrize("activation", toy.D_ACTIVATIONS)
def test_same_weights_give_the_same_outputs_in_both_frameworks(keras_toy, activation):
    cfg = toy.make_config("grid", 10, 5, d_activation=activation)
    Gt, Dt = torch_toy.build(cfg)
    Gk, Dk = keras_toy.build(cfg)
    z = np.random.default_rng(0).standard_normal((256, cfg.z_dim)).astype(np.float32)
    x = toy.sample("grid", 256, seed=1)
    assert np.abs(torch_toy.forward(Gt, z) - keras_toy.forward(Gk, z)).max() < 1e-5
    assert np.abs(torch_toy.forward(Dt, x) - keras_toy.forward(Dk, x)).max() < 1e-5
    # and ported the other way: torch's trained-looking weights into Keras
    w = [a * 1.5 + 0.1 for a in torch_toy.get_weights(Gt)]
    torch_toy.set_weights(Gt, [w])
    keras_toy.set_weights(Gk, [keras_toy.get_weights(Gk)])   # round trip is the identity
    keras_toy.set_weights(Gk, [torch_toy.get_weights(Gt)])
    assert np.abs(torch_toy.forward(Gt, z) - keras_toy.forward(Gk, z)).max() < 1e-4


@pytest.mark.parametrize("options", [{}, {"d_optimizer": "sgd", "loss": "minimax"}])
def test_a_few_training_steps_agree_across_frameworks(keras_toy, options):
    rt = torch_toy.train_toy("ring", 3, 2, **options)
    rk = keras_toy.train_toy("ring", 3, 2, **options)
    assert rk.losses.shape == rt.losses.shape == (3, 3)
    np.testing.assert_allclose(rk.losses, rt.losses, atol=1e-3)
    assert np.abs(rk.final_points - rt.final_points).max() < 0.05
    again = keras_toy.train_toy("ring", 3, 2, **options)         # deterministic given the seed
    np.testing.assert_array_equal(again.final_points, rk.final_points)


def test_unknown_d_optimizer_names_the_choices():
    with pytest.raises(ValueError, match="d_optimizer='rmsprop'.*'adam', 'sgd'"):
        toy.make_config("ring", 10, 0, d_optimizer="rmsprop")
