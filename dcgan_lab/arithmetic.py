"""Convolution arithmetic, framework-free (pure Python and numpy).

Output-size formulas for convolutions and transposed convolutions in the PyTorch and the Keras
conventions, ``same`` padding, a reference transposed convolution computed by zero insertion, and
helpers that plan generator (and discriminator) stacks landing on a target size such as 28, 32, 64.

Conventions follow Dumoulin & Visin (2016), "A guide to convolution arithmetic for deep learning":
``n`` is the input size along one spatial axis, ``kernel`` the kernel size, ``stride`` the stride,
``padding`` the zero padding on *each* side, ``dilation`` the kernel dilation.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "LayerSpec",
    "conv_output_size",
    "conv_transpose_output_size",
    "correlate2d_valid",
    "format_plan",
    "keras_args_for",
    "keras_conv_output_size",
    "keras_conv_transpose_output_size",
    "plan_discriminator",
    "plan_generator",
    "same_padding",
    "torch_padding_for",
    "transposed_conv_by_zero_insertion",
    "zero_insert",
    "zero_insertion_layout",
]

_KERAS_PADDINGS = ("same", "valid")


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int, or raise a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _keras_padding(padding: Any) -> str:
    if not isinstance(padding, str) or padding.lower() not in _KERAS_PADDINGS:
        raise ValueError(f"padding must be 'same' or 'valid' (Keras), got {padding!r}")
    return padding.lower()


def _positive_result(size: int, what: str, args: str) -> int:
    if size < 1:
        raise ValueError(
            f"{what} would be {size} (< 1) for {args}: use a larger input, a smaller kernel "
            "or less padding"
        )
    return size


# --------------------------------------------------------------------------------------------
# PyTorch-style formulas (explicit padding)
# --------------------------------------------------------------------------------------------
def conv_output_size(
    n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output size of ``torch.nn.Conv2d`` along one axis.

    ``floor((n + 2p - d(k - 1) - 1) / s) + 1``; with ``d = 1`` this is ``floor((n + 2p - k)/s) + 1``.
    """
    n = _int("n", n, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    padding = _int("padding", padding, 0)
    dilation = _int("dilation", dilation, 1)
    size = (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    args = f"n={n}, kernel={kernel}, stride={stride}, padding={padding}, dilation={dilation}"
    return _positive_result(size, "conv output size", args)


def conv_transpose_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output size of ``torch.nn.ConvTranspose2d`` along one axis.

    ``(n - 1) s - 2p + d(k - 1) + output_padding + 1``; with ``d = 1`` this is
    ``(n - 1) s - 2p + k + output_padding``. PyTorch requires ``output_padding`` to be smaller than
    the stride or the dilation.
    """
    n = _int("n", n, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    padding = _int("padding", padding, 0)
    output_padding = _int("output_padding", output_padding, 0)
    dilation = _int("dilation", dilation, 1)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding must be smaller than stride or dilation (PyTorch), got "
            f"output_padding={output_padding} with stride={stride}, dilation={dilation}"
        )
    size = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    args = (
        f"n={n}, kernel={kernel}, stride={stride}, padding={padding}, "
        f"output_padding={output_padding}, dilation={dilation}"
    )
    return _positive_result(size, "conv transpose output size", args)


# --------------------------------------------------------------------------------------------
# Keras-style formulas (padding="same" | "valid")
# --------------------------------------------------------------------------------------------
def same_padding(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/Keras ``padding="same"`` for a forward conv: ``(before, after)`` padding of one axis.

    ``out = ceil(n / stride)``; ``total = max((out - 1) stride + kernel - n, 0)``; the odd pixel
    goes *after* (bottom/right), unlike PyTorch's symmetric ``padding``.
    """
    n = _int("n", n, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    out = math.ceil(n / stride)
    total = max((out - 1) * stride + kernel - n, 0)
    before = total // 2
    return before, total - before


def keras_conv_output_size(n: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Output size of ``keras.layers.Conv2D``: ``ceil(n/s)`` for "same", ``floor((n-k)/s)+1`` for "valid"."""
    n = _int("n", n, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    padding = _keras_padding(padding)
    if padding == "same":
        return math.ceil(n / stride)
    size = (n - kernel) // stride + 1
    args = f"n={n}, kernel={kernel}, stride={stride}, padding='valid'"
    return _positive_result(size, "Keras conv output size", args)


def keras_conv_transpose_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: str = "valid",
    output_padding: int | None = None,
) -> int:
    """Output size of ``keras.layers.Conv2DTranspose`` (TensorFlow backend).

    Without ``output_padding``: "same" gives ``n s``, "valid" gives ``n s + max(k - s, 0)``.
    With it: ``(n - 1) s + k - 2 pad + output_padding`` where ``pad = k // 2`` ("same") or ``0``.
    Keras requires ``output_padding < stride``; TensorFlow also rejects "same" with an even kernel
    and ``output_padding=0`` (the result would not map back to ``n`` under a "same" conv).
    """
    n = _int("n", n, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    padding = _keras_padding(padding)
    if output_padding is None:
        if padding == "same":
            return n * stride
        return n * stride + max(kernel - stride, 0)
    output_padding = _int("output_padding", output_padding, 0)
    if output_padding >= stride:
        raise ValueError(
            f"output_padding must be strictly less than stride (Keras), got "
            f"output_padding={output_padding} with stride={stride}"
        )
    pad = kernel // 2 if padding == "same" else 0
    size = (n - 1) * stride + kernel - 2 * pad + output_padding
    if padding == "same" and math.ceil(size / stride) != n:
        raise ValueError(
            f"output_padding={output_padding} with padding='same' and an even kernel={kernel} "
            f"gives {size}, which a 'same' conv maps back to {math.ceil(size / stride)}, not n={n}: "
            "TensorFlow rejects it; use output_padding >= 1 or output_padding=None"
        )
    args = f"n={n}, kernel={kernel}, stride={stride}, padding={padding!r}"
    return _positive_result(size, "Keras conv transpose output size", args)


# --------------------------------------------------------------------------------------------
# zero insertion: the transposed convolution as an ordinary convolution
# --------------------------------------------------------------------------------------------
def zero_insert(x: np.ndarray, stride: int) -> np.ndarray:
    """Insert ``stride - 1`` zeros between neighbouring pixels of the last two axes.

    A 5x5 input with stride 2 becomes 9x9: ``n -> (n - 1) * stride + 1``.
    """
    stride = _int("stride", stride, 1)
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (H, W), got shape {x.shape}")
    h, w = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + ((h - 1) * stride + 1, (w - 1) * stride + 1), dtype=x.dtype)
    out[..., ::stride, ::stride] = x
    return out


PADDING, INSERTED_ZERO, INPUT_PIXEL = 0, 1, 2


def zero_insertion_layout(
    n: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> np.ndarray:
    """The grid a transposed conv slides over, as codes for a picture.

    ``INPUT_PIXEL`` (2) where an input pixel lands, ``INSERTED_ZERO`` (1) between them and
    ``PADDING`` (0) for the ``k - 1 - p`` border (plus ``output_padding`` at the bottom/right).
    Sliding a ``kernel`` x ``kernel`` window over it gives the transposed conv's output size.
    """
    n = _int("n", n, 1)
    conv_transpose_output_size(n, kernel, stride, padding, output_padding)  # validates all
    grid = zero_insert(np.full((n, n), INPUT_PIXEL, dtype=np.int8), stride)
    grid[grid == 0] = INSERTED_ZERO
    full = kernel - 1 - padding
    return _pad_or_crop(grid, full, full + output_padding)


def _pad_or_crop(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """Pad (positive) or crop (negative) both spatial axes of a 2-D array."""
    x = np.pad(x, ((max(before, 0), max(after, 0)),) * 2)
    h, w = x.shape
    top, bottom = max(-before, 0), max(-after, 0)
    return x[top : h - bottom, top : w - bottom]


def correlate2d_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Plain 2-D cross-correlation (what deep-learning "convolution" layers compute), no padding."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape)
    return np.einsum("ijkl,kl->ij", windows, kernel)


def transposed_conv_by_zero_insertion(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
) -> np.ndarray:
    """2-D single-channel transposed convolution, computed the long way round.

    Zero-insert ``stride - 1`` zeros between pixels, pad ``k - 1 - p`` zeros on every side
    ("full" padding minus ``padding``; plus ``output_padding`` zeros at the bottom/right), then
    cross-correlate with the spatially flipped kernel. Equals ``torch.nn.functional.conv_transpose2d``
    with the same ``stride``, ``padding`` and ``output_padding`` (square kernel, no bias).
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D (H, W) array, got shape {x.shape}")
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be a square 2-D (k, k) array, got shape {kernel.shape}")
    k = kernel.shape[0]
    stride = _int("stride", stride, 1)
    padding = _int("padding", padding, 0)
    output_padding = _int("output_padding", output_padding, 0)
    # validates every argument and tells us the expected size
    expected = conv_transpose_output_size(x.shape[0], k, stride, padding, output_padding)
    z = zero_insert(x, stride)
    full = k - 1 - padding
    z = _pad_or_crop(z, full, full + output_padding)
    out = correlate2d_valid(z, kernel[::-1, ::-1])
    assert out.shape[0] == expected, (out.shape, expected)
    return out


# --------------------------------------------------------------------------------------------
# solving for padding
# --------------------------------------------------------------------------------------------
def torch_padding_for(
    n_in: int, n_out: int, kernel: int, stride: int, dilation: int = 1
) -> tuple[int, int]:
    """``(padding, output_padding)`` that make ``ConvTranspose2d(kernel, stride)`` map ``n_in -> n_out``.

    Picks the smallest ``padding``; raises a ValueError saying why when no pair exists.
    """
    n_in = _int("n_in", n_in, 1)
    n_out = _int("n_out", n_out, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    dilation = _int("dilation", dilation, 1)
    max_op = max(stride, dilation) - 1
    full = (
        (n_in - 1) * stride + dilation * (kernel - 1) + 1
    )  # size with padding 0, output_padding 0
    base = full - n_out  # must equal 2 * padding - output_padding
    if base < -max_op:
        raise ValueError(
            f"n_out={n_out} is too large: ConvTranspose2d with kernel={kernel}, stride={stride} "
            f"reaches at most {full + max_op} from n_in={n_in} (padding=0, "
            f"output_padding={max_op}); use a larger kernel or stride"
        )
    if base <= 0:
        return 0, -base
    padding = (base + 1) // 2
    output_padding = 2 * padding - base
    if output_padding > max_op:
        raise ValueError(
            f"n_out={n_out} cannot be reached from n_in={n_in} with kernel={kernel}, "
            f"stride={stride}: the size drops by 2 per unit of padding and output_padding must be "
            f"< {max(stride, dilation)}; use a kernel one larger or smaller"
        )
    return padding, output_padding


def keras_args_for(n_in: int, n_out: int, kernel: int, stride: int) -> dict[str, Any]:
    """Keras ``Conv2DTranspose`` arguments (``padding``, ``output_padding``) mapping ``n_in -> n_out``.

    Tries ``padding="same"``/``"valid"`` without and then with ``output_padding``. The *size*
    matches; where the pixels land can still differ from a PyTorch layer by one (see chapter 2).
    """
    n_in = _int("n_in", n_in, 1)
    n_out = _int("n_out", n_out, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 1)
    candidates: list[tuple[str, int | None]] = [("same", None), ("valid", None)]
    candidates += [(p, op) for p in _KERAS_PADDINGS for op in range(stride)]
    for padding, output_padding in candidates:
        try:
            size = keras_conv_transpose_output_size(n_in, kernel, stride, padding, output_padding)
        except ValueError:  # arguments are valid: only this (padding, output_padding) is rejected
            continue
        if size == n_out:
            return {"padding": padding, "output_padding": output_padding}
    raise ValueError(
        f"no Keras Conv2DTranspose(kernel_size={kernel}, strides={stride}) maps n_in={n_in} to "
        f"n_out={n_out}: 'same' gives {n_in * stride}, 'valid' gives "
        f"{n_in * stride + max(kernel - stride, 0)}; add Cropping2D/ZeroPadding2D or change the kernel"
    )


# --------------------------------------------------------------------------------------------
# planning stacks
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSpec:
    """One layer of a planned stack (one spatial axis; images are square)."""

    n_in: int
    n_out: int
    kernel: int
    stride: int
    padding: int
    output_padding: int = 0
    transposed: bool = True

    @property
    def torch_name(self) -> str:
        """``ConvTranspose2d`` or ``Conv2d``."""
        return "ConvTranspose2d" if self.transposed else "Conv2d"

    def torch_kwargs(self) -> dict[str, int]:
        """Keyword arguments for the PyTorch layer (``kernel_size``, ``stride``, ``padding`` ...)."""
        kwargs = {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding}
        if self.transposed:
            kwargs["output_padding"] = self.output_padding
        return kwargs

    def check(self) -> None:
        """Raise a ValueError if the formula does not give ``n_out`` from ``n_in``."""
        if self.transposed:
            got = conv_transpose_output_size(
                self.n_in, self.kernel, self.stride, self.padding, self.output_padding
            )
        else:
            got = conv_output_size(self.n_in, self.kernel, self.stride, self.padding)
        if got != self.n_out:
            raise ValueError(f"{self}: the formula gives {got}, not n_out={self.n_out}")

    def __str__(self) -> str:
        op = f" op{self.output_padding}" if self.output_padding else ""
        return (
            f"{self.torch_name} k{self.kernel} s{self.stride} p{self.padding}{op}: "
            f"{self.n_in}x{self.n_in} -> {self.n_out}x{self.n_out}"
        )


def _kernel_candidates(kernel: int) -> list[int]:
    ks = [kernel]
    for d in (1, 2):
        ks += [k for k in (kernel - d, kernel + d) if k >= 1]
    return ks


def _up_step(n_in: int, n_out: int, kernel: int, stride: int) -> LayerSpec:
    """Best transposed-conv step ``n_in -> n_out``.

    Prefers the "natural" padding ``(k - 1) // 2`` (what k4 s2 p1 and k5 s2 p2 use), then the
    requested kernel, then kernels nearest to it, then no ``output_padding``.
    """
    best: tuple[tuple[int, int, int], LayerSpec] | None = None
    for rank, k in enumerate(_kernel_candidates(kernel)):
        try:
            p, op = torch_padding_for(n_in, n_out, k, stride)
        except ValueError:
            continue
        if p > k - 1:  # more padding than the "full" padding: a cropping layer, not a plan
            continue
        score = (abs(p - (k - 1) // 2), rank, op)
        if best is None or score < best[0]:
            best = (score, LayerSpec(n_in, n_out, k, stride, p, op))
    if best is None:
        raise ValueError(
            f"cannot plan a stride-{stride} transposed conv from {n_in} to {n_out} with a kernel "
            f"near {kernel}; choose another start or target"
        )
    return best[1]


def plan_generator(
    target: int,
    start: int | None = None,
    kernel: int = 4,
    stride: int = 2,
    first_kernel: int = 4,
) -> list[LayerSpec]:
    """Plan a stack of ``ConvTranspose2d`` layers that lands exactly on ``target``.

    ``start=None`` (or 1) starts from z as a 1x1 map: the first layer is
    ``k=first_kernel s1 p0`` (1 -> 4 for the default), as in the PyTorch DCGAN tutorial.
    An int ``start`` is the size after "project and reshape" (e.g. 4, 7 or 8). The sizes are
    planned backwards from ``target`` by ``ceil(size / stride)``; each step then gets the kernel
    (``kernel``, else the nearest that works with padding ``(k - 1) // 2``) and the padding and
    ``output_padding`` that hit its size. ``plan_generator(28)``: 1 -> 4 -> 7 -> 14 -> 28.
    """
    target = _int("target", target, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 2)
    first_kernel = _int("first_kernel", first_kernel, 1)
    plan: list[LayerSpec] = []
    if start is None or start == 1:
        start = first_kernel
        plan.append(LayerSpec(1, first_kernel, first_kernel, 1, 0, 0))
    start = _int("start", start, 1)
    if start > target:
        raise ValueError(f"start={start} is larger than target={target}: nothing to upsample")
    sizes = [target]
    while sizes[-1] > start:
        sizes.append(math.ceil(sizes[-1] / stride))
    sizes[-1] = start
    sizes.reverse()
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        plan.append(_up_step(n_in, n_out, kernel, stride))
    for spec in plan:
        spec.check()
    return plan


def plan_discriminator(
    size: int, end: int = 4, kernel: int = 4, stride: int = 2, last_kernel: int | None = None
) -> list[LayerSpec]:
    """Plan strided ``Conv2d`` layers ``size -> ... -> end`` (each ``ceil(n / stride)``), then 1x1.

    Mirrors :func:`plan_generator`: ``plan_discriminator(28)`` is 28 -> 14 -> 7 -> 4 -> 1 with
    k4 s2 p1, k4 s2 p1, k3 s2 p1 and a final ``k=end s1 p0`` conv (``last_kernel=0`` drops it).
    """
    size = _int("size", size, 1)
    end = _int("end", end, 1)
    kernel = _int("kernel", kernel, 1)
    stride = _int("stride", stride, 2)
    if end > size:
        raise ValueError(f"end={end} is larger than size={size}: nothing to downsample")
    plan: list[LayerSpec] = []
    n = size
    while n > end:
        n_out = max(math.ceil(n / stride), end)
        best: tuple[tuple[int, int, int], LayerSpec] | None = None
        for rank, k in enumerate(_kernel_candidates(kernel)):
            for p in range(k):
                try:
                    got = conv_output_size(n, k, stride, p)
                except ValueError:
                    continue
                if got == n_out:
                    score = (abs(p - (k - 1) // 2), rank, p)
                    if best is None or score < best[0]:
                        best = (score, LayerSpec(n, n_out, k, stride, p, 0, transposed=False))
        if best is None:
            raise ValueError(f"cannot plan a stride-{stride} conv from {n} to {n_out}")
        plan.append(best[1])
        n = n_out
    last = end if last_kernel is None else _int("last_kernel", last_kernel, 0)
    if last:
        plan.append(LayerSpec(n, conv_output_size(n, last), last, 1, 0, 0, transposed=False))
    for spec in plan:
        spec.check()
    return plan


def format_plan(plan: list[LayerSpec]) -> str:
    """A plain-text table of a plan: sizes, PyTorch arguments and a Keras equivalent."""
    header = ("#", "layer", "in", "k", "s", "p", "op", "out", "Keras")
    rows = [header]
    for i, spec in enumerate(plan):
        if spec.transposed:
            try:
                kargs = keras_args_for(spec.n_in, spec.n_out, spec.kernel, spec.stride)
                keras = f"padding={kargs['padding']!r}"
                if kargs["output_padding"] is not None:
                    keras += f", output_padding={kargs['output_padding']}"
            except ValueError:
                keras = "(needs cropping)"
        else:
            got = {
                p: keras_conv_output_size(spec.n_in, spec.kernel, spec.stride, p)
                if spec.n_in >= spec.kernel or p == "same"
                else None
                for p in _KERAS_PADDINGS
            }
            match = [p for p, v in got.items() if v == spec.n_out]
            keras = f"padding={match[0]!r}" if match else "(needs ZeroPadding2D)"
        rows.append(
            (
                str(i),
                spec.torch_name,
                f"{spec.n_in}x{spec.n_in}",
                str(spec.kernel),
                str(spec.stride),
                str(spec.padding),
                str(spec.output_padding) if spec.transposed else "-",
                f"{spec.n_out}x{spec.n_out}",
                keras,
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
