"""The linear probe of D's features (DCGAN paper, section 5.1), its nearest-neighbour and walk
measures, and ``dcgan-lab probe``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcgan_lab.scoring import probe

torch = pytest.importorskip("torch")
lab_torch = pytest.importorskip("dcgan_lab.torch")


def test_dcgan64_features_are_every_conv_layer_pooled_to_4x4():
    D = lab_torch.random_discriminator("dcgan64")
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    f = lab_torch.probe_features(D, x, batch_size=2)
    # 64x32x32, 128x16x16, 256x8x8 and 512x4x4 blocks; the 1x1 logit is left out
    assert f.shape == (3, (64 + 128 + 256 + 512) * 16) == (3, probe.feature_size([64, 128, 256, 512]))
    assert f.dtype == np.float32 and np.isfinite(f).all()


def test_the_features_are_max_pools_of_the_blocks():
    D = lab_torch.random_discriminator("dcgan64")
    x = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        first = D.net[1](D.net[0](t))  # conv1 -> LeakyReLU: 64 x 32 x 32
    want = first.reshape(2, 64, 4, 8, 4, 8).amax(dim=(3, 5)).flatten(1).numpy()
    got = lab_torch.probe_features(D, x)[:, :64 * 16]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_keras_twin_gives_the_same_features():
    lab_keras = pytest.importorskip("dcgan_lab.keras")
    from dcgan_lab.interop import port

    Dt = lab_torch.random_discriminator("dcgan64", seed=3)
    _, Dk = lab_keras.build("dcgan64")
    port.torch_to_keras(Dt, Dk)
    x = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    ft, fk = lab_torch.probe_features(Dt, x), lab_keras.probe_features(Dk, x)
    assert ft.shape == fk.shape
    assert np.abs(ft - fk).max() < 1e-4


def test_a_random_discriminator_depends_on_its_seed_only():
    a, b = lab_torch.random_discriminator("dcgan64", 0), lab_torch.random_discriminator("dcgan64", 0)
    c = lab_torch.random_discriminator("dcgan64", 1)
    wa, wb, wc = (d.net[0].weight.detach() for d in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def _blobs(n: int, dim: int = 40, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.normal(0, 3, (k, dim))
    return (centres[y] + rng.normal(0, 1, (n, dim))).astype(np.float32), y


def test_the_probe_separates_separable_classes_and_not_shuffled_ones():
    x, y = _blobs(900)
    split = lambda a: (a[:500], a[500:650], a[650:])  # noqa: E731
    (xtr, xva, xte), (ytr, yva, yte) = split(x), split(y)
    good = probe.linear_probe("blobs", (xtr, ytr), (xva, yva), (xte, yte), n_classes=4)
    assert good.test_accuracy > 0.95 and good.labels == 500 and good.dim == 40
    ys = np.random.default_rng(9).permutation(y)
    bad = probe.linear_probe("shuffled", (xtr, ys[:500]), (xva, ys[500:650]), (xte, ys[650:]),
                             n_classes=4)
    assert bad.test_accuracy < 0.4  # chance is 0.25 on 250 test points


def test_fit_logistic_reaches_zero_gradient():
    x, y = _blobs(200, dim=5, k=3, seed=4)
    m = probe.fit_logistic(x, y, l2=0.1, iters=500, tol=1e-12)
    xs = (x - m.mean) / m.scale
    z = xs @ m.weights[:-1] + m.weights[-1]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = xs.T @ (p - np.eye(3)[y]) / len(y) + 0.1 * m.weights[:-1]
    assert np.abs(grad).max() < 1e-4


def test_fit_logistic_with_more_features_than_examples_is_exact():
    # fitted in the span of the 30 examples, the 200-dimensional weights still zero the gradient
    x, y = _blobs(30, dim=200, k=3, seed=5)
    m = probe.fit_logistic(x, y, l2=0.1, iters=500, tol=1e-12)
    assert m.weights.shape == (201, 3)
    xs = (x - m.mean) / m.scale
    z = xs @ m.weights[:-1] + m.weights[-1]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = xs.T @ (p - np.eye(3)[y]) / len(y) + 0.1 * m.weights[:-1]
    assert np.abs(grad).max() < 1e-5


def test_label_subset_is_stratified_and_exact():
    y = np.repeat(np.arange(5), [100, 50, 30, 15, 5])
    rows = probe.label_subset(y, 40, seed=0)
    assert len(rows) == 40 == len(np.unique(rows))
    counts = np.bincount(y[rows], minlength=5)
    assert counts.min() >= 1 and counts[0] > counts[1] > counts[2]
    assert np.array_equal(rows, probe.label_subset(y, 40, seed=0))
    assert len(probe.label_subset(y, None)) == len(y) == len(probe.label_subset(y, 10_000))


def test_nearest_finds_an_exact_copy_at_distance_zero():
    from dcgan_lab import data
    from dcgan_lab.scoring import evaluation

    x, _ = data.load("clothing64", "train", verbose=False)
    bank = evaluation.classify(x[:60], "clothing64")[0]
    copies = evaluation.classify(x[[7, 42]], "clothing64")[0]
    idx, dist = probe.nearest(copies, bank)
    assert list(idx) == [7, 42]
    assert np.all(dist < 1e-3)
    other = evaluation.classify(x[60:62], "clothing64")[0]
    assert np.all(probe.nearest(other, bank)[1] > 1e-2)


def test_walk_smoothness_is_one_for_even_steps_and_large_for_a_jump():
    even = np.linspace(0, 1, 10)[:, None] * np.ones((1, 3))
    jump = np.where(np.arange(10) < 5, 0.0, 1.0)[:, None] * np.ones((1, 3))
    assert probe.walk_smoothness(even) == pytest.approx(1.0)
    assert probe.walk_smoothness(jump) == pytest.approx(9.0)
    assert probe.walk_smoothness(np.stack([even, jump])) == pytest.approx(5.0)


# --- dcgan-lab probe ------------------------------------------------------------------------


def _one_line_error(r) -> str:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("dcgan-lab: error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_probe_of_a_generator_only_run_names_the_file(cli):
    from pathlib import Path

    ref = Path(__file__).resolve().parents[2] / "book" / "reference" / "dcgan64-torch"
    line = _one_line_error(cli("probe", ref))
    assert "holds no discriminator" in line and "generator.pt" in line
    assert "discriminator.pt" in line and "checkpoint.pt" in line


def test_probe_of_a_missing_folder_is_one_line(cli, tmp_path):
    assert "no such folder" in _one_line_error(cli("probe", tmp_path / "nowhere"))
    assert "config.json" in _one_line_error(cli("probe", tmp_path))


def test_probe_json_gives_three_rows(cli, tiny_run):
    r = cli("probe", tiny_run, "--labels", "60", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["labels"] == 60 and out["recipe"] == "torch-mnist" and out["dataset"] == "mnist"
    names = [row["features"] for row in out["rows"]]
    assert names[0].startswith("trained D (step 2") and names[1:] == [
        "untrained D (random init)", "raw pixels"]
    assert [row["dim"] for row in out["rows"]] == [(32 + 64 + 128) * 16] * 2 + [784]
    assert all(0.0 <= row["test_accuracy"] <= 1.0 and row["labels"] == 60 for row in out["rows"])
    assert "raw pixels" in r.stdout and "test acc" in r.stdout
