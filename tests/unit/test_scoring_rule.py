"""The course's one scorer: one coverage rule, one sample size per dataset, one real reference."""

from __future__ import annotations

import numpy as np
import pytest

from dcgan_lab.book import keras_notes
from dcgan_lab.scoring import evaluation, metrics


def _labels(counts: dict[int, int], n: int) -> np.ndarray:
    """``n`` labels: ``counts[c]`` of class c, the rest class 0."""
    out = [np.full(k, c) for c, k in counts.items()]
    rest = n - sum(counts.values())
    return np.concatenate([np.zeros(rest, np.int64)] + out)


def test_coverage_rule_is_one_percent_of_the_samples():
    assert metrics.COVERAGE_PERCENT == 1
    assert metrics.coverage_min_count(1000) == 10
    assert metrics.coverage_min_count(372) == 4
    assert metrics.coverage_min_count(700) == 7       # integer arithmetic: no float round-up
    assert metrics.coverage_min_count(256) == 3
    assert metrics.coverage_min_count(50) == 1 and metrics.coverage_min_count(0) == 1
    with pytest.raises(ValueError):
        metrics.coverage_min_count(-1)


def test_a_class_with_9_of_1000_is_not_covered_with_10_it_is():
    nine = metrics.mode_coverage(_labels({1: 9}, 1000), 10)
    ten = metrics.mode_coverage(_labels({1: 10}, 1000), 10)
    assert nine.covered == 1 and ten.covered == 2
    # explicit min_count (Stacked MNIST's 1000 modes) still counts a single sample
    assert metrics.mode_coverage(_labels({1: 1}, 1000), 10, min_count=1).covered == 2
    with pytest.raises(ValueError, match="min_count"):
        metrics.mode_coverage(_labels({}, 10), 10, min_count=0)


def test_one_sample_size_per_dataset():
    assert evaluation.SAMPLE_SIZES == {"mnist": 1000, "fashion_mnist": 1000, "cifar10": 1000,
                                       "clothing64": 372}
    from dcgan_lab.scoring import classifier
    assert set(evaluation.SAMPLE_SIZES) == set(classifier.DATASETS)
    assert evaluation.sample_size("clothing64") == 372
    with pytest.raises(ValueError, match="no sample size"):
        evaluation.sample_size("svhn")


def test_evaluate_callback_and_cli_default_to_the_datasets_size():
    import inspect

    from dcgan_lab import cli
    for fn in (evaluation.evaluate, evaluation.fid_callback, evaluation.real_reference,
               evaluation.real_subsets):
        assert inspect.signature(fn).parameters["n"].default is None, fn.__name__
    args = cli.build_parser().parse_args(["evaluate", "some-run"])
    assert args.n is None


class _Gen:
    """Stands in for a generator: records the n it was asked for (evaluation.sample is patched)."""


def test_evaluate_draws_the_datasets_size(monkeypatch):
    x = evaluation.real_reference("mnist", 100).images
    asked = []

    def fake_sample(G, n, seed):
        asked.append(n)
        return np.resize(x, (n, *x.shape[1:]))

    monkeypatch.setattr(evaluation, "sample", fake_sample)
    monkeypatch.setattr(evaluation, "real_reference",
                        lambda dataset, n=None, seed=0: _small_ref(dataset, n, seed, x))
    evaluation.evaluate(_Gen(), "mnist")
    assert asked == [1000]


def _small_ref(dataset, n, seed, x):
    feats = evaluation.classify(np.resize(x, (n, *x.shape[1:])), dataset)[0]
    return evaluation.Reference(dataset, "test", x, feats)


def test_real_subsets_reference_is_the_real_reference():
    ref = evaluation.real_reference("mnist", 200, seed=3)
    sub = evaluation.real_subsets("mnist", 200, seed=3)
    assert np.array_equal(ref.images, sub.reference)


def test_sample_report_and_evaluate_are_one_scorer():
    ref = evaluation.real_reference("mnist", 300)
    fake = evaluation.real_reference("mnist", 300, seed=1).images.copy()
    fake[:150] = fake[0]                         # half of them one image: fewer modes, worse FD
    real = ref.images
    rep = keras_notes.sample_report(fake, real, "mnist")
    ev = evaluation.evaluate(fake, "mnist", real=real)
    assert rep.fid == pytest.approx(ev["fid"], rel=1e-9)
    assert rep.confident == pytest.approx(ev["confident"])
    assert rep.coverage.covered == ev["modes_covered"]
    assert rep.coverage.kl == pytest.approx(ev["kl"])
    # with no real images both score against the same real reference
    rep0 = keras_notes.sample_report(fake, dataset="mnist")
    ev0 = evaluation.evaluate(fake, "mnist")
    assert rep0.n_real == 300
    assert rep0.fid == pytest.approx(ev0["fid"], rel=1e-9)
    assert rep0.coverage.covered == ev0["modes_covered"]
