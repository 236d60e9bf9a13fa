"""Convolution arithmetic, framework-free (pure Python and numpy).

Output-size formulas for convolutions and transposed convolutions in PyTorch and Keras
conventions, zero insertion, and helpers that plan generator stacks landing on a target size.
"""

from __future__ import annotations

import math


def same_padding(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/Keras ``padding="same"`` for a forward conv: ``(before, after)`` padding of one axis.

    ``out = ceil(n / stride)``; the total padding is split with the extra pixel *after*.
    """
    out = math.ceil(n / stride)
    total = max((out - 1) * stride + kernel - n, 0)
    before = total // 2
    return before, total - before
