"""Convolution arithmetic checked against the real PyTorch and Keras layers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dcgan_lab import arithmetic as ar

# --------------------------------------------------------------------------------------------
# pure formulas (no framework)
# --------------------------------------------------------------------------------------------


def test_textbook_values():
    assert ar.conv_output_size(5, 3) == 3
    assert ar.conv_output_size(28, 4, 2, 1) == 14
    assert ar.conv_output_size(7, 3, 2, 1) == 4
    assert ar.conv_output_size(7, 3, dilation=2) == 3
    assert ar.conv_transpose_output_size(1, 4, 1, 0) == 4
    assert ar.conv_transpose_output_size(4, 3, 2, 1) == 7
    assert ar.conv_transpose_output_size(7, 4, 2, 1) == 14
    assert ar.conv_transpose_output_size(4, 5, 2, 2, 1) == 8
    assert ar.keras_conv_transpose_output_size(7, 3, 2, "same") == 14
    assert ar.keras_conv_transpose_output_size(7, 5, 2, "valid") == 17
    assert ar.keras_conv_output_size(28, 3, 2, "same") == 14
    assert ar.keras_conv_output_size(28, 3, 2, "valid") == 13


@pytest.mark.parametrize(
    "n, k, s, expected",
    [
        (28, 3, 2, (0, 1)),
        (64, 5, 2, (1, 2)),
        (32, 4, 2, (1, 1)),
        (5, 3, 1, (1, 1)),
        (6, 1, 2, (0, 0)),
    ],
)
def test_same_padding_values(n, k, s, expected):
    assert ar.same_padding(n, k, s) == expected
    before, after = expected
    # "same" really gives ceil(n / s) with this padding
    assert ar.conv_output_size(n + before + after, k, s) == -(-n // s)


def test_zero_insert_shapes_and_values():
    x = np.arange(1, 26, dtype=np.float32).reshape(5, 5)
    z = ar.zero_insert(x, 2)
    assert z.shape == (9, 9)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z[::2, ::2], x)
    assert np.count_nonzero(z) == 25 and z.sum() == x.sum()
    assert ar.zero_insert(x, 3).shape == (13, 13)
    assert ar.zero_insert(x, 1).shape == (5, 5)
    assert ar.zero_insert(np.ones((2, 3, 4, 5)), 2).shape == (2, 3, 7, 9)


@pytest.mark.parametrize(
    "k, s, p", [(2, 2, 0), (3, 2, 1), (4, 2, 1), (5, 2, 2), (3, 1, 0), (3, 3, 1)]
)
def test_zero_insertion_output_size(k, s, p):
    x = np.ones((5, 5))
    out = ar.transposed_conv_by_zero_insertion(x, np.ones((k, k)), s, p)
    assert out.shape == (ar.conv_transpose_output_size(5, k, s, p),) * 2


def test_zero_insertion_5x5_with_2x2_kernel_gives_8x8():
    # the chapter's picture: 5x5 -> 9x9 by zero insertion, pad 1, 2x2 kernel -> 10 - 2 + 1 = ...
    out = ar.transposed_conv_by_zero_insertion(np.ones((5, 5)), np.ones((2, 2)), 2, 0)
    assert out.shape == (10, 10)
    out = ar.transposed_conv_by_zero_insertion(np.ones((5, 5)), np.ones((2, 2)), 2, 1)
    assert out.shape == (8, 8)
    # each output pixel of a stride-2, 2x2 all-ones transposed conv sees exactly one input pixel
    np.testing.assert_array_equal(out, np.ones((8, 8)))


def test_zero_insertion_layout_codes():
    grid = ar.zero_insertion_layout(5, 3, 2, 0)
    assert grid.shape == (13, 13)  # 9x9 after insertion, plus k - 1 - p = 2 on each side
    assert (grid == ar.INPUT_PIXEL).sum() == 25
    assert (grid == ar.INSERTED_ZERO).sum() == 81 - 25
    assert (grid[:2] == ar.PADDING).all() and (grid[:, -2:] == ar.PADDING).all()
    # sliding the kernel over the layout gives the transposed conv's size
    for k, s, p, op in [(2, 2, 1, 0), (3, 2, 1, 1), (5, 2, 2, 1), (4, 2, 1, 0)]:
        grid = ar.zero_insertion_layout(5, k, s, p, op)
        assert grid.shape[0] - k + 1 == ar.conv_transpose_output_size(5, k, s, p, op)
    assert ar.zero_insertion_layout(5, 2, 2, 1).shape == (9, 9)


def test_torch_padding_for_known_cases():
    assert ar.torch_padding_for(1, 4, 4, 1) == (0, 0)
    assert ar.torch_padding_for(4, 7, 3, 2) == (1, 0)
    assert ar.torch_padding_for(7, 14, 4, 2) == (1, 0)
    assert ar.torch_padding_for(4, 8, 5, 2) == (2, 1)
    for n_in, n_out, k, s in itertools.product(range(1, 9), range(1, 25), range(1, 6), range(1, 4)):
        try:
            p, op = ar.torch_padding_for(n_in, n_out, k, s)
        except ValueError as err:
            assert f"n_out={n_out}" in str(err)
            # really impossible: no (p, op) in the allowed range hits n_out
            for p in range(0, 2 * k + 2 * n_out):
                for op in range(s):
                    got = (n_in - 1) * s - 2 * p + k + op
                    assert got != n_out
            continue
        assert ar.conv_transpose_output_size(n_in, k, s, p, op) == n_out


def test_keras_args_for_round_trips():
    for n_in, k, s in itertools.product(range(1, 8), range(1, 6), range(1, 4)):
        for n_out in range(1, 30):
            try:
                kw = ar.keras_args_for(n_in, n_out, k, s)
            except ValueError as err:
                assert "Conv2DTranspose" in str(err)
                continue
            assert ar.keras_conv_transpose_output_size(n_in, k, s, **kw) == n_out


@pytest.mark.parametrize("target", [28, 32, 64])
@pytest.mark.parametrize("start", [None, 4])
def test_plan_generator_lands_on_target(target, start):
    plan = ar.plan_generator(target, start)
    assert plan[-1].n_out == target
    assert plan[0].n_in == (1 if start is None else start)
    for a, b in itertools.pairwise(plan):
        assert a.n_out == b.n_in
    for spec in plan:
        assert spec.transposed
        got = ar.conv_transpose_output_size(
            spec.n_in, spec.kernel, spec.stride, spec.padding, spec.output_padding
        )
        assert got == spec.n_out
    assert "ConvTranspose2d" in ar.format_plan(plan)


def test_plan_generator_matches_the_recipes():
    # dcgan64: 1 -> 4 (k4 s1 p0), then k4 s2 p1 four times
    plan = ar.plan_generator(64)
    assert [(s.kernel, s.stride, s.padding, s.output_padding) for s in plan] == [(4, 1, 0, 0)] + [
        (4, 2, 1, 0)
    ] * 4
    # torch-mnist: 1 -> 4 -> 7 -> 14 -> 28 with k4 s1 p0, k3 s2 p1, k4 s2 p1, k4 s2 p1
    plan = ar.plan_generator(28)
    assert [s.n_out for s in plan] == [4, 7, 14, 28]
    assert [(s.kernel, s.padding) for s in plan] == [(4, 0), (3, 1), (4, 1), (4, 1)]
    assert str(plan[1]) == "ConvTranspose2d k3 s2 p1: 4x4 -> 7x7"
    # paper-lsun64: project to 4x4, then k5 s2 (PyTorch needs p2 op1)
    plan = ar.plan_generator(64, start=4, kernel=5)
    assert [s.n_out for s in plan] == [8, 16, 32, 64]
    assert {(s.kernel, s.padding, s.output_padding) for s in plan} == {(5, 2, 1)}


def test_plan_discriminator_mirrors_generator():
    plan = ar.plan_discriminator(28)
    assert [s.n_in for s in plan] + [plan[-1].n_out] == [28, 14, 7, 4, 1]
    assert [(s.kernel, s.stride, s.padding) for s in plan] == [
        (4, 2, 1),
        (4, 2, 1),
        (3, 2, 1),
        (4, 1, 0),
    ]
    for size in (28, 32, 64):
        plan = ar.plan_discriminator(size)
        assert plan[0].n_in == size and plan[-1].n_out == 1
        for spec in plan:
            assert (
                ar.conv_output_size(spec.n_in, spec.kernel, spec.stride, spec.padding) == spec.n_out
            )


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: ar.conv_output_size(0, 3), "n"),
        (lambda: ar.conv_output_size(5, 0), "kernel"),
        (lambda: ar.conv_output_size(5, 3, stride=0), "stride"),
        (lambda: ar.conv_output_size(5, 3, padding=-1), "padding"),
        (lambda: ar.conv_output_size(5, 3, dilation=0), "dilation"),
        (lambda: ar.conv_output_size(5.0, 3), "n"),
        (lambda: ar.conv_output_size(True, 3), "n"),
        (lambda: ar.conv_output_size(2, 5), "conv output size"),
        (lambda: ar.conv_transpose_output_size(4, 4, 2, 1, output_padding=2), "output_padding"),
        (lambda: ar.conv_transpose_output_size(4, 4, 1, 0, output_padding=1), "output_padding"),
        (lambda: ar.conv_transpose_output_size(1, 1, 1, padding=1), "conv transpose output size"),
        (lambda: ar.keras_conv_output_size(5, 3, 1, padding="full"), "padding"),
        (lambda: ar.keras_conv_output_size(2, 3, 1, padding="valid"), "output size"),
        (lambda: ar.keras_conv_transpose_output_size(4, 3, 2, "same", 2), "output_padding"),
        (lambda: ar.keras_conv_transpose_output_size(4, 4, 2, "same", 0), "output_padding"),
        (lambda: ar.keras_conv_transpose_output_size(4, 3, 2, "SAME ", None), "padding"),
        (lambda: ar.same_padding(5, 3, 0), "stride"),
        (lambda: ar.zero_insert(np.ones(3), 2), "x"),
        (lambda: ar.zero_insert(np.ones((3, 3)), 0), "stride"),
        (lambda: ar.transposed_conv_by_zero_insertion(np.ones((3, 3)), np.ones((2, 3))), "kernel"),
        (lambda: ar.torch_padding_for(4, 100, 4, 2), "n_out"),
        (lambda: ar.torch_padding_for(4, 6, 4, 1), "n_out"),
        (lambda: ar.torch_padding_for(0, 6, 4, 1), "n_in"),
        (lambda: ar.keras_args_for(4, 9, 4, 2), "n_out"),
        (lambda: ar.plan_generator(0), "target"),
        (lambda: ar.plan_generator(28, start=64), "start"),
        (lambda: ar.plan_generator(28, stride=1), "stride"),
        (lambda: ar.plan_discriminator(28, end=64), "end"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------------------------
# PyTorch: the formulas against real layers
# --------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_GRID = list(
    itertools.product(range(1, 10), range(1, 6), range(1, 4), range(0, 3), range(1, 3))
)  # n, kernel, stride, padding, dilation


def _ours(fn, *args):
    """Our formula's answer, or "error" when it refuses the arguments."""
    try:
        return fn(*args)
    except ValueError:
        return "error"


def _torch_size(fn, n: int, k: int, **kwargs):
    """Output width of a real torch op on a zero (1, 1, n, n) input, or "error"."""
    try:
        size = fn(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), **kwargs).shape[-1]
    except RuntimeError:
        return "error"
    return size if size >= 1 else "error"  # torch returns empty tensors where we raise


def test_conv_output_size_matches_torch_conv2d():
    checked = 0
    for n, k, s, p, d in TORCH_GRID:
        real = _torch_size(F.conv2d, n, k, stride=s, padding=p, dilation=d)
        ours = _ours(ar.conv_output_size, n, k, s, p, d)
        assert ours == real, (n, k, s, p, d)
        checked += real != "error"
    assert checked > 400
    # and one real nn.Conv2d layer with a non-square input
    layer = torch.nn.Conv2d(1, 2, kernel_size=(3, 5), stride=2, padding=(1, 2))
    out = layer(torch.zeros(1, 1, 28, 13)).shape[-2:]
    assert tuple(out) == (ar.conv_output_size(28, 3, 2, 1), ar.conv_output_size(13, 5, 2, 2))


def test_conv_transpose_output_size_matches_torch():
    checked = 0
    for n, k, s, p, d in TORCH_GRID:
        for op in range(max(s, d) + 1):  # includes one invalid output_padding
            real = _torch_size(
                F.conv_transpose2d, n, k, stride=s, padding=p, output_padding=op, dilation=d
            )
            ours = _ours(ar.conv_transpose_output_size, n, k, s, p, op, d)
            assert ours == real, (n, k, s, p, op, d)
            checked += real != "error"
    assert checked > 800
    layer = torch.nn.ConvTranspose2d(3, 2, kernel_size=5, stride=2, padding=2, output_padding=1)
    assert layer(torch.zeros(1, 3, 4, 4)).shape[-1] == ar.conv_transpose_output_size(4, 5, 2, 2, 1)


@pytest.mark.parametrize(
    "k, s, p, op",
    [
        (2, 2, 0, 0),
        (3, 1, 0, 0),
        (3, 2, 1, 0),
        (3, 2, 1, 1),
        (4, 2, 1, 0),
        (5, 2, 2, 1),
        (4, 3, 0, 2),
        (3, 2, 3, 0),
    ],
)
def test_zero_insertion_equals_torch_conv_transpose2d(k, s, p, op):
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    x = rng.normal(size=(5, 5))
    w = rng.normal(size=(k, k))
    ours = ar.transposed_conv_by_zero_insertion(x, w, s, p, op)
    real = F.conv_transpose2d(
        torch.from_numpy(x)[None, None],
        torch.from_numpy(w)[None, None],
        stride=s,
        padding=p,
        output_padding=op,
    )[0, 0].numpy()
    assert ours.shape == real.shape
    np.testing.assert_allclose(ours, real, atol=1e-10)


def test_torch_padding_for_builds_real_layers():
    for n_in, n_out, k in [(4, 7, 3), (7, 14, 4), (4, 8, 5), (3, 8, 4), (1, 4, 4), (6, 13, 4)]:
        s = 1 if n_in == 1 else 2
        p, op = ar.torch_padding_for(n_in, n_out, k, s)
        layer = torch.nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op)
        assert layer(torch.zeros(1, 1, n_in, n_in)).shape[-1] == n_out


def test_plans_build_real_torch_stacks():
    for target in (28, 32, 64):
        for plan in (ar.plan_generator(target), ar.plan_generator(target, start=4, kernel=5)):
            x = torch.zeros(1, 1, plan[0].n_in, plan[0].n_in)
            for spec in plan:
                x = torch.nn.ConvTranspose2d(1, 1, bias=False, **spec.torch_kwargs())(x)
                assert x.shape[-1] == spec.n_out
            assert x.shape[-1] == target
        x = torch.zeros(1, 1, target, target)
        for spec in ar.plan_discriminator(target):
            x = torch.nn.Conv2d(1, 1, bias=False, **spec.torch_kwargs())(x)
        assert x.shape[-1] == 1


# --------------------------------------------------------------------------------------------
# Keras: the formulas against real layers (built sparingly: each call builds a layer)
# --------------------------------------------------------------------------------------------
keras = pytest.importorskip("keras")

KERAS_CONV_GRID = [(n, k, s) for n in (1, 4, 7, 8) for k in (1, 2, 3, 5) for s in (1, 2, 3)]
KERAS_CONVT_GRID = [(n, k, s) for n in (1, 4, 7) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3)]


def _keras_size(layer_cls, n: int, k: int, **kwargs):
    """Output width of a real Keras layer called on a zero (1, n, n, 1) input, or "error"."""
    try:
        layer = layer_cls(1, k, **kwargs)
        width = layer(np.zeros((1, n, n, 1), "float32")).shape[1]
        # an empty image is no output: TensorFlow's own kernels raise for it, its oneDNN kernels
        # (on by default) return a tensor of width 0 (e.g. Conv2DTranspose n=1, k=2, "same")
        return width if width > 0 else "error"
    except ValueError:
        return "error"
    except Exception as err:  # TensorFlow's InvalidArgumentError (e.g. "same", even k, op=0);
        # with oneDNN, an AbortedError ("could not create a primitive descriptor") for the same
        if type(err).__name__ in ("InvalidArgumentError", "AbortedError"):
            return "error"
        raise


def test_keras_conv_output_size_matches_conv2d():
    for (n, k, s), padding in itertools.product(KERAS_CONV_GRID, ("same", "valid")):
        real = _keras_size(keras.layers.Conv2D, n, k, strides=s, padding=padding)
        ours = _ours(ar.keras_conv_output_size, n, k, s, padding)
        assert ours == real, (n, k, s, padding)


def test_keras_conv_transpose_output_size_matches_conv2dtranspose():
    checked = 0
    for (n, k, s), padding in itertools.product(KERAS_CONVT_GRID, ("same", "valid")):
        for op in [None, *range(s)]:
            real = _keras_size(
                keras.layers.Conv2DTranspose, n, k, strides=s, padding=padding, output_padding=op
            )
            ours = _ours(ar.keras_conv_transpose_output_size, n, k, s, padding, op)
            assert ours == real, (n, k, s, padding, op)
            checked += real != "error"
    assert checked > 150


def _keras_same(layer_class, x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    """One-channel ``layer_class`` (Conv2D or Conv2DTranspose), kernel ``w``, stride ``s``,
    padding "same", no bias, applied to the single image ``x``."""
    layer = layer_class(1, w.shape[0], strides=s, padding="same", use_bias=False)
    layer.build((1, *x.shape, 1))
    layer.set_weights([w[:, :, None, None]])
    return np.asarray(layer(x[None, :, :, None]))[0, :, :, 0]


def test_keras_same_padding_is_where_the_pixels_go():
    # forward conv: Keras "same" == explicit same_padding + "valid" correlation
    rng = np.random.default_rng(0)
    for n, k, s in [(8, 5, 2), (7, 3, 2), (6, 4, 2), (5, 2, 1)]:
        x = rng.normal(size=(n, n)).astype("float32")
        w = rng.normal(size=(k, k)).astype("float32")
        real = _keras_same(keras.layers.Conv2D, x, w, s)
        before, after = ar.same_padding(n, k, s)
        ours = ar.correlate2d_valid(np.pad(x, ((before, after), (before, after))), w)[::s, ::s]
        np.testing.assert_allclose(ours, real, atol=1e-4)


def test_keras_conv2dtranspose_equals_zero_insertion_then_same_crop():
    # transposed conv, "same": the full (p=0) result cropped by the forward conv's same_padding
    rng = np.random.default_rng(1)
    for n, k, s in [(4, 5, 2), (4, 4, 2), (5, 3, 2), (3, 3, 1)]:
        x = rng.normal(size=(n, n)).astype("float32")
        w = rng.normal(size=(k, k)).astype("float32")
        real = _keras_same(keras.layers.Conv2DTranspose, x, w, s)
        full = ar.transposed_conv_by_zero_insertion(x, w, s, 0)
        before, after = ar.same_padding(n * s, k, s)
        ours = full[before : full.shape[0] - after, before : full.shape[1] - after]
        np.testing.assert_allclose(ours, real, atol=1e-4)
