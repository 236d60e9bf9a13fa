"""The eight recipes of the course: what each network is, where it comes from, how it trains.

A :class:`Recipe` is framework-free. ``dcgan_lab.torch.build(name)`` and
``dcgan_lab.keras.build(name)`` turn one into a (generator, discriminator) pair; the two twins have
the same layers and the trainable-parameter counts recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import profiles


@dataclass(frozen=True)
class Budget:
    """How long one profile trains: generator steps, batch size, and how often to sample/save."""

    steps: int
    batch_size: int
    sample_every: int
    checkpoint_every: int


@dataclass(frozen=True)
class Budgets:
    smoke: Budget
    cpu: Budget
    gpu: Budget


@dataclass(frozen=True)
class Recipe:
    """One GAN recipe. Shapes are (H, W, C); PyTorch twins use NCHW, Keras twins NHWC."""

    name: str
    source: str
    dataset: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    g_params: int
    d_params: int
    # what one image channel adds to G's output layer and to D's input layer (weights, and G's
    # output bias where it has one): the counts of :meth:`with_channels`' variants
    g_params_per_channel: int
    d_params_per_channel: int
    budgets: Budgets
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "bce"  # "bce": D ends in a sigmoid; "logits": D returns logits (BCE from logits)
    label_smoothing: float = 0.0
    keras_style: str = "train_step"  # "stacked" (frozen D + train_on_batch) or "train_step"
    half_batch: bool = False  # D sees batch/2 real + batch/2 fake per step (Keras-GAN style)
    rounds_per_step: int = 1  # keras-faces64 runs (D fake, D real, G) twice per train_step
    dcgan_init: bool = False  # conv N(0, .02), BN gamma N(1, .02), beta 0
    # The PyTorch step: True = G's update reuses the fake batch of D's update (``fake = G(z)``
    # once, D on ``fake.detach()``, G on ``D(fake)``) as pytorch/examples dcgan does; False = G's
    # update draws fresh z, as the Keras sources do (``combined.train_on_batch(new z)``).
    reuse_fake: bool = False
    # Layer settings, the same in both frameworks' builders. ``origin``: the framework of the
    # source; without ``dcgan_init`` a "keras" recipe keeps Keras' default init in both twins.
    origin: str = "torch"
    g_activation: str = "leaky_relu"  # hidden activations of G and D: "relu" or "leaky_relu"
    d_activation: str = "leaky_relu"
    leaky_slope: float = 0.2
    # BatchNorm, in PyTorch's convention (weight of the new batch's statistics); Keras'
    # ``momentum`` is 1 - bn_momentum (PyTorch 0.1, eps 1e-5 = Keras 0.9, epsilon 1e-5).
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def budget(self, profile: str | None = None) -> Budget:
        """The budget of ``profile`` (default: the current profile, see :mod:`dcgan_lab.profiles`)."""
        return getattr(self.budgets, profiles.current(profile))

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    def with_channels(self, channels: int | None) -> Recipe:
        """This recipe with ``channels`` (1 or 3) image channels; ``None``: unchanged. The
        builders' ``channels`` option (e.g. 3-channel Stacked MNIST from ``torch-mnist``); the
        parameter counts are those of the variant's networks."""
        if channels is None or channels == self.channels:
            return self
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3 (None = the recipe's), got {channels!r}")
        h, w, _ = self.image_shape
        extra = channels - self.channels
        return replace(self, image_shape=(h, w, channels),
                       g_params=self.g_params + extra * self.g_params_per_channel,
                       d_params=self.d_params + extra * self.d_params_per_channel)

    def replace(self, **changes) -> Recipe:
        return replace(self, **changes)


def _b(steps, batch, sample_every, checkpoint_every=None):
    return Budget(steps, batch, sample_every, checkpoint_every or max(steps // 2, 1))


_SMOKE28 = _b(12, 32, 6, 6)
_SMOKE32 = _b(8, 32, 4, 4)
_SMOKE64 = _b(4, 16, 2, 2)

_RECIPES: dict[str, Recipe] = {}


def _add(r: Recipe) -> None:
    _RECIPES[r.name] = r


_add(Recipe(
    name="dense-mnist",
    source="GANs in Action (Langr & Bok 2019), chapter 3",
    dataset="mnist", image_shape=(28, 28, 1), latent_dim=100,
    g_params=114_064, d_params=100_609,
    g_params_per_channel=101_136, d_params_per_channel=100_352,
    # The book uses Keras' default Adam (lr 1e-3, beta1 0.9); chapter 1 says why we do not.
    # Measured at 5000 x 256 (then the cpu budget; seed 0, 1000 samples): lr 1e-3 / beta1 0.9 left
    # the torch twin on one class from step ~1000 to the end; 1e-3 / 0.5 gave 10/10 classes but 37 %
    # confident samples; 5e-4 / 0.5 gave 10/10 and 45 % (torch), 9/10 and 66 % at step 4000 (Keras).
    # cpu: 10000 x 256 (the book's images: 20000 x 128). At 5000 the torch twin drew 9 classes with
    # one thread and 6 with two; at 10000: torch 10/10, 46.7 % (2 threads) and 45.6 % (1); Keras
    # 10/10, 44.0 % (full MNIST, seed 0, 1,000 samples; benchmarks/quality_cpu.md).
    lr_g=5e-4, lr_d=5e-4, beta1=0.5, keras_style="stacked",
    budgets=Budgets(_SMOKE28, _b(10000, 256, 1000, 5000), _b(20000, 128, 1000, 2000)),
    origin="keras", leaky_slope=0.01, bn_momentum=0.01, bn_eps=1e-3,
    description="Dense layers only: z100 -> 128 -> 784, D 784 -> 128 -> 1.",
))
_add(Recipe(
    name="gia-dcgan-mnist",
    source="GANs in Action (Langr & Bok 2019), chapter 4",
    dataset="mnist", image_shape=(28, 28, 1), latent_dim=100,
    g_params=1_636_737, d_params=95_105,
    g_params_per_channel=577, d_params_per_channel=288,
    lr_g=1e-3, lr_d=1e-3, beta1=0.9, keras_style="stacked",
    # cpu: 1500 x 64 with the source's Adam (1e-3, 0.9), stacked style, full MNIST, seed 0, 1,000
    # samples: 10/10 classes, 54.3% confident, FD 113.1 (1000 steps: 48.7%, 400: 37.6%;
    # benchmarks/quality_cpu.md). Chapter 3 runs its trap and train_step comparisons for 400.
    budgets=Budgets(_SMOKE28, _b(1500, 64, 250, 500), _b(20000, 128, 1000, 2000)),
    origin="keras", leaky_slope=0.01, bn_momentum=0.01, bn_eps=1e-3,
    description="Dense project to 7x7x256, k3 transposed convolutions, BN, LeakyReLU(0.01).",
))
_add(Recipe(
    name="bernico-mnist",
    source="Keras-GAN style DCGAN (Bernico, Deep Learning Quick Reference, ch. 13)",
    dataset="mnist", image_shape=(28, 28, 1), latent_dim=100,
    g_params=856_065, d_params=392_321,
    g_params_per_channel=577, d_params_per_channel=288,
    keras_style="stacked", half_batch=True,
    # cpu: 1500 x 64, stacked, full MNIST, seed 0, 1,000 samples: 10/10 classes, 50.6 % confident,
    # FD 113.9 (one thread); 400: 37.5 %, 600: 42.1 %, 1000: 46.4 %. Batch 32 was no better for the
    # same time (1000 x 32: 41.0 %). benchmarks/quality_cpu.md
    budgets=Budgets(_SMOKE28, _b(1500, 64, 250, 500), _b(20000, 128, 1000, 2000)),
    origin="keras", g_activation="relu", bn_momentum=0.2, bn_eps=1e-3,
    description="UpSampling2D + Conv2D generator, ZeroPadding2D discriminator with dropout.",
))
_add(Recipe(
    name="bernico-cifar10",
    source="Keras-GAN style DCGAN (Bernico, Deep Learning Quick Reference, ch. 13)",
    dataset="cifar10", image_shape=(32, 32, 3), latent_dim=100,
    g_params=1_051_139, d_params=392_897,
    g_params_per_channel=577, d_params_per_channel=288,
    keras_style="stacked", half_batch=True,
    budgets=Budgets(_SMOKE32, _b(60, 64, 20, 30), _b(30000, 128, 1000, 2000)),
    origin="keras", g_activation="relu", bn_momentum=0.2, bn_eps=1e-3,
    description="The MNIST recipe with an 8x8 start and three channels for 32x32 colour images.",
))
_add(Recipe(
    name="keras-faces64",
    source="TensorFlow 2 DCGAN anime-faces tutorial",
    dataset="clothing64", image_shape=(64, 64, 3), latent_dim=128,
    g_params=5_420_323, d_params=4_314_753,
    g_params_per_channel=801, d_params_per_channel=1_600,
    loss="logits", label_smoothing=0.1, keras_style="train_step", rounds_per_step=2,
    dcgan_init=True,
    # smoke: two steps of batch 8 (each step is two rounds of D and G at 64x64)
    budgets=Budgets(_b(2, 8, 1, 1), _b(8, 32, 4, 4), _b(10000, 128, 500, 1000)),
    origin="keras", bn_momentum=0.01, bn_eps=1e-3,
    description="Four k5 s2 transposed convolutions from 4x4x512; D returns logits.",
))
_add(Recipe(
    name="torch-mnist",
    source="PyTorch MNIST DCGAN (ConvTranspose2d, 1 -> 4 -> 7 -> 14 -> 28)",
    dataset="mnist", image_shape=(28, 28, 1), latent_dim=100,
    g_params=312_256, d_params=109_440,
    g_params_per_channel=512, d_params_per_channel=512,
    dcgan_init=True, reuse_fake=True,
    # cpu: 6000 steps of 64 (measured on the full MNIST, seed 0, 1,000 samples: 2000 steps gave
    # 52.9% classified with p > 0.9 and a classifier FID of 136.7; 3000 gave 58.1% and 100.3;
    # 4000 gave 59.2% and 100.9; 5000 62.9% and 77.4; 6000 64.1% and 71.0, one thread). Batch 64,
    # not the source's 128: at equal compute 1500 steps of 128 gave 50.2% and 142.3, 2000 of 128
    # 58.2% and 112.8. The gpu budget keeps the source's batch.
    budgets=Budgets(_SMOKE28, _b(6000, 64, 500, 1000), _b(20000, 128, 1000, 2000)),
    description="All-convolutional 28x28 DCGAN without conv biases.",
))
_add(Recipe(
    name="dcgan64",
    source="PyTorch DCGAN tutorial / pytorch/examples dcgan",
    dataset="clothing64", image_shape=(64, 64, 3), latent_dim=100,
    g_params=3_576_704, d_params=2_765_568,
    g_params_per_channel=1_024, d_params_per_channel=1_024,
    dcgan_init=True, reuse_fake=True,
    budgets=Budgets(_SMOKE64, _b(100, 64, 20, 50), _b(10000, 128, 500, 1000)),
    g_activation="relu",
    description="nz100, ngf = ndf = 64: the canonical 64x64 DCGAN.",
))
_add(Recipe(
    name="paper-lsun64",
    source="Radford, Metz & Chintala 2015, Figure 1 (LSUN generator)",
    dataset="clothing64", image_shape=(64, 64, 3), latent_dim=100,
    g_params=18_855_040, d_params=4_315_585,
    g_params_per_channel=3_200, d_params_per_channel=1_600,
    loss="logits", dcgan_init=True, reuse_fake=True,
    budgets=Budgets(_SMOKE64, _b(16, 32, 8, 8), _b(10000, 128, 500, 1000)),
    g_activation="relu",
    description="Project-and-reshape 100 -> 1024x4x4, k5 s2 transposed convolutions to 64x64x3.",
))


def names() -> list[str]:
    """The recipe names, in course order."""
    return list(_RECIPES)


def get(name: str | Recipe) -> Recipe:
    """The recipe called ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    if isinstance(name, Recipe):
        return name
    try:
        return _RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}: choose one of {', '.join(_RECIPES)}") from None
