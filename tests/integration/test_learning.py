"""The GAN learns: a fast check that runs in every test run (not slow-marked).

dense-mnist (PyTorch, one thread) trains 2000 steps of batch 64 on the embedded MNIST sample --
the same data with or without a data folder, so the numbers below are reproducible -- and the
package's own metric, the Frechet distance between the shipped MNIST classifier's features of
1000 generated and 1000 real test images, must fall to under 60 % of the untrained generator's.
Measured (2-core x86 box) with the recipe's Adam (lr 5e-4, beta1 0.5): untrained 1634.5; after
300 steps 1593.6 (97 %), 1000 steps 1132.2 (69 %), 2000 steps 646.1 (40 %); about 9 s of training.
"""

from __future__ import annotations

import importlib

import pytest

torch = pytest.importorskip("torch")

from dcgan_lab import data  # noqa: E402
from dcgan_lab.run.config import TrainOptions  # noqa: E402
from dcgan_lab.scoring import classifier, metrics  # noqa: E402

T = importlib.import_module("dcgan_lab.torch.backend")
THRESHOLD = 0.6  # trained FD / untrained FD must be below this


@pytest.fixture
def sample_only(monkeypatch, tmp_path):
    """Only the embedded sample: no data folder, no cache, no download."""
    monkeypatch.delenv("DCGAN_LAB_DATA", raising=False)
    monkeypatch.setenv("DCGAN_LAB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.filterwarnings("ignore::UserWarning")  # "using the small embedded SAMPLE"
def test_dense_mnist_learns_by_the_frechet_distance(tmp_path, sample_only):
    from dcgan_lab.torch.models import build

    x, _ = data.load("mnist", "train", verbose=False)
    x_test, _ = data.load("mnist", "test", verbose=False)
    assert len(x) < 60000  # the embedded sample, not the full set
    clf = classifier.get("mnist")
    real = clf.features(x_test[:1000])

    def fd(G) -> float:
        return metrics.frechet_distance(real, clf.features(T.sample(G, 1000, seed=1)))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)  # the initial weights train() builds (seed 0)
        untrained = fd(build("dense-mnist")[0])
        T.train("dense-mnist", tmp_path / "run", options=TrainOptions(
            steps=2000, batch_size=64, sample_every=2000, checkpoint_every=2000, n_fixed=16),
            data=x, device="cpu", progress=False)
        trained = fd(T.load_generator(tmp_path / "run"))
    finally:
        torch.set_num_threads(threads)
    assert trained < THRESHOLD * untrained, (trained, untrained)
