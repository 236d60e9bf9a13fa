"""The eight recipes in both frameworks: shapes, ranges, parameter counts, init, options, errors,
one optimiser step, shape tables, and import isolation."""

import subprocess
import sys
from functools import cache

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from dcgan_lab import keras as lab_keras  # noqa: E402
from dcgan_lab import recipes, shapes  # noqa: E402
from dcgan_lab import torch as lab_torch  # noqa: E402

NAMES = recipes.names()


@cache
def torch_pair(name):
    torch.manual_seed(0)
    return lab_torch.build(name)


@cache
def keras_pair(name):
    return lab_keras.build(name)


def _batch(r) -> int:
    return 2 if r.image_shape[0] >= 64 else 4


def _z(r, seed=0):
    return np.random.default_rng(seed).standard_normal((_batch(r), r.latent_dim)).astype("float32")


def _images_nhwc(r, seed=1):
    h, w, c = r.image_shape
    return np.random.default_rng(seed).uniform(-1, 1, (_batch(r), h, w, c)).astype("float32")


def _trainable_torch(m) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def _trainable_keras(m) -> int:
    return int(sum(np.prod(w.shape) for w in m.trainable_weights))


def test_all_eight_recipes_are_covered():
    assert set(NAMES) >= {"dense-mnist", "gia-dcgan-mnist", "bernico-mnist", "bernico-cifar10",
                          "keras-faces64", "torch-mnist", "dcgan64", "paper-lsun64"}


# ---------------------------------------------------------------------------------------------
# shapes, ranges, counts


@pytest.mark.parametrize("name", NAMES)
def test_torch_models(name):
    r = recipes.get(name)
    g, d = torch_pair(name)
    assert g.recipe is r and d.recipe is r
    assert _trainable_torch(g) == r.g_params
    assert _trainable_torch(d) == r.d_params
    h, w, c = r.image_shape
    n = _batch(r)
    g.eval()
    d.eval()
    with torch.no_grad():
        img = g(torch.from_numpy(_z(r)))
        assert img.shape == (n, c, h, w)
        assert img.min() >= -1 and img.max() <= 1 and img.std() > 0
        out = d(img)
    assert out.shape == (n, 1)
    last = [m for m in d.modules() if not list(m.children())][-1]
    if r.loss == "bce":
        assert isinstance(last, torch.nn.Sigmoid) and ((out >= 0) & (out <= 1)).all()
    else:
        assert isinstance(last, torch.nn.Linear)  # logits


@pytest.mark.parametrize("name", NAMES)
def test_keras_models(name):
    r = recipes.get(name)
    g, d = keras_pair(name)
    assert g.name == f"{name}_generator" and d.name == f"{name}_discriminator"
    assert g.recipe is r
    assert _trainable_keras(g) == r.g_params
    assert _trainable_keras(d) == r.d_params
    n = _batch(r)
    img = np.asarray(g(_z(r), training=False))
    assert img.shape == (n, *r.image_shape)
    assert img.min() >= -1 and img.max() <= 1 and img.std() > 0
    out = np.asarray(d(img, training=False))
    assert out.shape == (n, 1)
    last = d.layers[-1]
    if r.loss == "bce":
        act = getattr(last, "activation", None)
        assert act is keras.activations.sigmoid and ((out >= 0) & (out <= 1)).all()
    else:
        assert isinstance(last, keras.layers.Dense)
        assert last.activation is keras.activations.linear  # logits


@pytest.mark.parametrize("name", [n for n in NAMES if recipes.get(n).dcgan_init])
def test_dcgan_init_both_frameworks(name):
    tg, td = torch_pair(name)
    kg, kd = keras_pair(name)
    weights, gammas, betas = [], [], []
    for m in list(tg.modules()) + list(td.modules()):
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
            weights.append(m.weight.detach().numpy())
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            gammas.append(m.weight.detach().numpy())
            betas.append(m.bias.detach().numpy())
    for layer in kg.layers + kd.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            k = np.asarray(layer.kernel)
            if k.size > 10_000:
                weights.append(k)
        elif isinstance(layer, keras.layers.BatchNormalization):
            gammas.append(np.asarray(layer.gamma))
            betas.append(np.asarray(layer.beta))
    assert len(weights) >= 4 and gammas
    for w in weights:
        assert abs(w.mean()) < 0.003 and 0.018 < w.std() < 0.022
    g = np.concatenate(gammas)
    assert abs(g.mean() - 1) < 0.005 and 0.015 < g.std() < 0.025
    assert not np.concatenate(betas).any()


def test_batchnorm_conventions_match_the_source():
    """Keras momentum m == PyTorch momentum 1 - m; each twin uses the source's epsilon."""
    expected = {"bernico-mnist": (0.8, 1e-3), "gia-dcgan-mnist": (0.99, 1e-3),
                "keras-faces64": (0.99, 1e-3), "dcgan64": (0.9, 1e-5), "paper-lsun64": (0.9, 1e-5)}
    for name, (k_momentum, eps) in expected.items():
        tg, _ = torch_pair(name)
        kg, _ = keras_pair(name)
        tbn = [m for m in tg.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
        kbn = [la for la in kg.layers if isinstance(la, keras.layers.BatchNormalization)]
        assert len(tbn) == len(kbn) > 0
        for t, k in zip(tbn, kbn, strict=True):
            assert t.momentum == pytest.approx(1 - k_momentum) and t.eps == eps
            assert k.momentum == pytest.approx(k_momentum) and k.epsilon == pytest.approx(eps)


def test_leaky_relu_slopes_are_explicit():
    for name, slope in (("dense-mnist", 0.01), ("gia-dcgan-mnist", 0.01), ("bernico-mnist", 0.2),
                        ("keras-faces64", 0.2), ("paper-lsun64", 0.2)):
        _, kd = keras_pair(name)
        _, td = torch_pair(name)
        k = [la.negative_slope for la in kd.layers if isinstance(la, keras.layers.LeakyReLU)]
        t = [m.negative_slope for m in td.modules() if isinstance(m, torch.nn.LeakyReLU)]
        assert k and t and all(v == pytest.approx(slope) for v in k + t)


def test_exact_same_padding_layers():
    """Keras-origin twins pad/crop asymmetrically (TF SAME); torch-origin Keras twins pad/crop
    like PyTorch (2 before, 1 after for k5 s2 p2 output_padding 1)."""
    tg, td = torch_pair("keras-faces64")
    crops = [(m.top, m.bottom) for m in tg.modules() if isinstance(m, lab_torch.Crop2d)]
    assert crops == [(1, 2)] * 4
    pads = [m.padding for m in td.modules() if isinstance(m, torch.nn.ZeroPad2d)]
    assert pads == [(1, 2, 1, 2)] * 4
    kg, kd = keras_pair("paper-lsun64")
    crops = [la.cropping for la in kg.layers if isinstance(la, keras.layers.Cropping2D)]
    assert [tuple(map(tuple, c)) for c in crops] == [((2, 1), (2, 1))] * 4
    kg, _ = keras_pair("torch-mnist")
    crops = [la.cropping for la in kg.layers if isinstance(la, keras.layers.Cropping2D)]
    assert [tuple(map(tuple, c)) for c in crops] == [((1, 1), (1, 1))]


# ---------------------------------------------------------------------------------------------
# errors and options


def test_torch_wrong_shapes_name_the_expected_shape():
    g, d = torch_pair("dcgan64")
    with pytest.raises(ValueError, match=r"dcgan64 generator expects z of shape \(N, 100\), "
                                         r"got \(8, 64\)"):
        g(torch.zeros(8, 64))
    with pytest.raises(ValueError, match=r"expects z of shape \(N, 100\), got \(8, 100, 1, 1\)"):
        g(torch.zeros(8, 100, 1, 1))
    with pytest.raises(ValueError, match=r"dcgan64 discriminator expects images of shape "
                                         r"\(N, 3, 64, 64\), got \(2, 64, 64, 3\)"):
        d(torch.zeros(2, 64, 64, 3))
    _, d = torch_pair("dense-mnist")
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\), got \(2, 28, 28\)"):
        d(torch.zeros(2, 28, 28))


def test_keras_wrong_shapes_name_the_expected_shape():
    g, d = keras_pair("dcgan64")
    with pytest.raises(ValueError, match=r"dcgan64_generator.*expected shape=\(None, 100\), "
                                         r"found shape=\(8, 64\)"):
        g(np.zeros((8, 64), "float32"))
    with pytest.raises(ValueError, match=r"dcgan64_discriminator.*expected shape=\(None, 64, 64, "
                                         r"3\), found shape=\(2, 3, 64, 64\)"):
        d(np.zeros((2, 3, 64, 64), "float32"))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 100\)"):
        g.predict(np.zeros((4, 64), "float32"), verbose=0)


def test_unknown_recipe_and_bad_options():
    for build in (lab_torch.build, lab_keras.build):
        with pytest.raises(KeyError, match="unknown recipe 'nope'.*dcgan64"):
            build("nope")
        with pytest.raises(ValueError, match="g_dropout"):
            build("dense-mnist", g_dropout=1.5)
        with pytest.raises(ValueError, match="g_activation.*'relu'"):
            build("dense-mnist", g_activation="elu")


@pytest.mark.parametrize("name", ["dense-mnist", "torch-mnist", "bernico-mnist", "keras-faces64",
                                  "dcgan64", "paper-lsun64"])
def test_channels_option_builds_other_channel_counts(name):
    """``channels`` changes G's output and D's input channels in both twins, nothing else."""
    h, w, c = recipes.get(name).image_shape
    other = 4 - c  # 1 <-> 3
    tg, td = lab_torch.build(name, channels=other)
    kg, kd = lab_keras.build(name, channels=other)
    z = np.zeros((2, recipes.get(name).latent_dim), np.float32)
    assert tuple(tg(torch.from_numpy(z)).shape) == (2, other, h, w)
    assert tuple(kg(z).shape) == (2, h, w, other)
    assert tg.recipe.image_shape == kd.recipe.image_shape == (h, w, other)
    variant = recipes.get(name).with_channels(other)  # its counts are those of the built twins
    assert _trainable_torch(tg) == _trainable_keras(kg) == variant.g_params != recipes.get(name).g_params
    assert _trainable_torch(td) == _trainable_keras(kd) == variant.d_params != recipes.get(name).d_params
    assert tuple(td(tg(torch.from_numpy(z))).shape) == (2, 1) and kd.input_shape == (None, h, w, other)
    assert lab_torch.build(name, channels=c)[0].recipe is recipes.get(name)
    for build in (lab_torch.build, lab_keras.build):
        with pytest.raises(ValueError, match="channels must be 1 or 3"):
            build(name, channels=2)


def test_options_dropout_and_activation_swap():
    r = recipes.get("dcgan64")
    tg, td = lab_torch.build(r, g_dropout=0.3, g_activation="leaky_relu", d_activation="relu")
    kg, kd = lab_keras.build(r, g_dropout=0.3, g_activation="leaky_relu", d_activation="relu")
    assert sum(isinstance(m, torch.nn.Dropout) for m in tg.modules()) == 4
    assert sum(isinstance(la, keras.layers.Dropout) for la in kg.layers) == 4
    assert not any(isinstance(m, torch.nn.ReLU) for m in tg.modules())
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in tg.modules()) == 4
    assert sum(isinstance(la, keras.layers.LeakyReLU) for la in kg.layers) == 4
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in td.modules())
    assert not any(isinstance(la, keras.layers.LeakyReLU) for la in kd.layers)
    # options change no parameter count, and the twins still port
    assert _trainable_torch(tg) == _trainable_keras(kg) == r.g_params
    from dcgan_lab.interop import port

    port.torch_to_keras(tg, kg)
    tg.eval()
    with torch.no_grad():
        t = tg(torch.from_numpy(_z(r))).numpy().transpose(0, 2, 3, 1)
    assert np.abs(t - np.asarray(kg(_z(r), training=False))).max() < 1e-4
    # dropout is active in training mode only
    tg.train()
    with torch.no_grad():
        a, b = tg(torch.from_numpy(_z(r))), tg(torch.from_numpy(_z(r)))
    assert not torch.equal(a, b)
    # defaults reproduce the recipe
    g0, _ = lab_torch.build(r)
    assert not any(isinstance(m, torch.nn.Dropout) for m in g0.modules())
    assert sum(isinstance(m, torch.nn.ReLU) for m in g0.modules()) == 4


# ---------------------------------------------------------------------------------------------
# one optimiser step changes the weights


@pytest.mark.parametrize("name", NAMES)
def test_torch_adam_step_changes_weights(name):
    r = recipes.get(name)
    torch.manual_seed(0)
    g, d = lab_torch.build(name)
    opt_g = torch.optim.Adam(g.parameters(), lr=r.lr_g, betas=(r.beta1, r.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=r.lr_d, betas=(r.beta1, r.beta2))
    crit = torch.nn.BCELoss() if r.loss == "bce" else torch.nn.BCEWithLogitsLoss()
    real = torch.from_numpy(np.ascontiguousarray(_images_nhwc(r).transpose(0, 3, 1, 2)))
    z = torch.from_numpy(_z(r))
    n = real.shape[0]
    d_before = [p.detach().clone() for p in d.parameters()]
    g_before = [p.detach().clone() for p in g.parameters()]
    # D step: real -> 1, fake -> 0
    opt_d.zero_grad()
    loss_d = crit(d(real), torch.ones(n, 1)) + crit(d(g(z).detach()), torch.zeros(n, 1))
    loss_d.backward()
    opt_d.step()
    assert all(not torch.equal(a, b) for a, b in zip(d_before, d.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(g_before, g.parameters(), strict=True))
    # G step: non-saturating loss, labels 1
    d_after = [p.detach().clone() for p in d.parameters()]
    opt_g.zero_grad()
    loss_g = crit(d(g(z)), torch.ones(n, 1))
    loss_g.backward()
    opt_g.step()
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert all(not torch.equal(a, b) for a, b in zip(g_before, g.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(d_after, d.parameters(), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_keras_train_on_batch_changes_weights(name):
    r = recipes.get(name)
    g, d = lab_keras.build(name)
    loss = keras.losses.BinaryCrossentropy(from_logits=r.loss == "logits")
    # Eager steps keep the suite fast on 2 cores; torch-mnist also runs the compiled
    # (tf.function) path.
    eager = {"run_eagerly": name != "torch-mnist"}
    d.compile(optimizer=keras.optimizers.Adam(r.lr_d, beta_1=r.beta1), loss=loss, **eager)
    real, z = _images_nhwc(r), _z(r)
    n = real.shape[0]
    d_before = [np.array(w) for w in d.trainable_weights]
    g_before = [np.array(w) for w in g.trainable_weights]
    x = np.concatenate([real, np.asarray(g(z, training=False))])
    y = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))]).astype("float32")
    loss_d = d.train_on_batch(x, y)
    assert np.isfinite(loss_d)
    d_after = [np.array(w) for w in d.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(d_before, d_after, strict=True))
    # stacked G -> D with D frozen, labels 1: G changes, D (weights and BN statistics) does not
    d_all = [np.array(w) for w in d.weights]
    d.trainable = False
    zin = keras.Input((r.latent_dim,))
    gan = keras.Model(zin, d(g(zin)))
    gan.compile(optimizer=keras.optimizers.Adam(r.lr_g, beta_1=r.beta1), loss=loss, **eager)
    assert _trainable_keras(gan) == r.g_params
    loss_g = gan.train_on_batch(z, np.ones((n, 1), "float32"))
    assert np.isfinite(loss_g)
    assert all(not np.array_equal(a, np.array(b))
               for a, b in zip(g_before, g.trainable_weights, strict=True))
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(d_all, d.weights, strict=True))


# ---------------------------------------------------------------------------------------------
# shape tables


def test_summaries_show_the_same_layers_in_both_layouts():
    r = recipes.get("paper-lsun64")
    tg, _ = torch_pair(r.name)
    kg, _ = keras_pair(r.name)
    tt, kt = lab_torch.summary(tg), lab_keras.summary(kg)
    assert isinstance(tt, shapes.ShapeTable) and isinstance(kt, shapes.ShapeTable)
    assert tt.total_params == kt.total_params == r.g_params
    assert tt.path == ("100 -> 16384 -> 1024x4x4 -> 512x8x8 -> 256x16x16 -> 128x32x32 -> "
                       "3x64x64")
    # Keras shows the full transposed output before each Cropping2D
    assert kt.path == ("100 -> 16384 -> 4x4x1024 -> 11x11x512 -> 8x8x512 -> 19x19x256 -> "
                       "16x16x256 -> 35x35x128 -> 32x32x128 -> 67x67x3 -> 64x64x3")
    text = str(tt)
    assert "net.4 (ConvTranspose2d)" in text and "13,107,200" in text and "18,855,040" in text
    assert "<table" in tt._repr_html_() and "18,855,040" in kt._repr_html_()
    both = shapes.side_by_side(tt, kt, titles=("PyTorch (C, H, W)", "Keras (H, W, C)"))
    lines = str(both).splitlines()
    assert lines[0].startswith("PyTorch (C, H, W)") and "Keras (H, W, C)" in lines[0]
    assert any("1024x4x4" in ln and "4x4x1024" in ln for ln in lines)
    assert both._repr_html_().count("<table") == 2


def test_summary_of_discriminators_and_rows():
    for name in ("torch-mnist", "bernico-mnist"):
        r = recipes.get(name)
        _, td = torch_pair(name)
        _, kd = keras_pair(name)
        tt, kt = lab_torch.summary(td), lab_keras.summary(kd)
        assert tt.total_params == kt.total_params == r.d_params
        h, w, c = r.image_shape
        assert tt.rows[0].output_shape == (c, h, w) and kt.rows[0].output_shape == (h, w, c)
        assert tt.rows[-1].output_shape == (1,) and kt.rows[-1].output_shape == (1,)
        assert sum(row.params for row in tt.rows) == r.d_params
    tab = shapes.ShapeTable.from_rows([("a", (3,), 5), ("b", (2, 4), 7)], title="t")
    assert tab.total_params == 12 and tab.path == "3 -> 2x4"
    lines = str(tab).splitlines()
    assert lines[0] == "t" and len({len(ln) for ln in lines[1:]}) == 1  # aligned
    with pytest.raises(ValueError, match="2 tables but 1 titles"):
        shapes.side_by_side(tab, tab, titles=("x",))


# ---------------------------------------------------------------------------------------------
# import isolation


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip().splitlines()[-1]


def test_torch_side_never_imports_tensorflow_or_keras():
    out = _run("import sys\nimport dcgan_lab.torch as t\nfrom dcgan_lab import shapes\nfrom dcgan_lab.interop import port\n"
               "g, d = t.build('dcgan64'); t.summary(g)\n"
               "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    assert out == "[]"


def test_keras_side_never_imports_torch():
    out = _run("import sys\nimport dcgan_lab.keras as k\nfrom dcgan_lab import shapes\nfrom dcgan_lab.interop import port\n"
               "g, d = k.build('dcgan64'); k.summary(g)\n"
               "print(sorted(m for m in ('torch',) if m in sys.modules))")
    assert out == "[]"
