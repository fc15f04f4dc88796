"""The LLVM helpers of embedtool/codegen.py, each called from a small kernel and compared with NumPy bit for bit: the
element-wise vector operations at widths that are and are not a multiple of a vector register, their rounding
(a scaled add is a multiplication then an addition, never fused), the max rule for NaN, the word loads of the id
parser and the non-temporal line copies of the gather."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from embedtool import codegen

WIDTHS = [1, 3, 8, 16, 33]
rng = np.random.default_rng(11)


def _kernels(width: int):
    """Kernels with ``width`` as a compile-time constant, as bag.py makes its column-block kernels."""

    @njit
    def add(dst, src, at):
        codegen.vector_add(dst, at, src, at, width, None)

    @njit
    def add_scaled(dst, src, at, scale):
        codegen.vector_add(dst, at, src, at, width, scale)

    @njit
    def maximum(dst, src, at):
        codegen.vector_max(dst, at, src, at, width)

    @njit
    def fill_divide(dst, at, value, divisor):
        codegen.vector_fill(dst, at, width, value)
        codegen.vector_divide(dst, at, width, divisor)

    @njit
    def stack_sum(rows):
        acc = codegen.stack_array(width, rows)
        codegen.vector_fill(acc, 0, width, 0)
        for r in range(rows.shape[0]):
            codegen.vector_add(acc, 0, rows[r], 0, width, None)
        return acc.copy()

    @njit
    def any_above(values, scale, threshold):
        return codegen.any_scaled_above(values, scale, 0, width, threshold)

    return add, add_scaled, maximum, fill_divide, stack_sum, any_above


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", WIDTHS)
def test_vector_operations_equal_numpy_bit_for_bit(width, dtype):
    add, add_scaled, maximum, fill_divide, stack_sum, any_above = _kernels(width)
    at = 2  # an offset that is not a vector's alignment
    src = rng.standard_normal(width + 5).astype(dtype)
    dst = rng.standard_normal(width + 5).astype(dtype)
    untouched = np.r_[0:at, at + width:width + 5]

    out = dst.copy()
    add(out, src, at)
    expected = dst.copy()
    expected[at:at + width] += src[at:at + width]
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))

    scale = dtype(0.3)
    out = dst.copy()
    add_scaled(out, src, at, scale)
    expected = dst.copy()
    expected[at:at + width] = expected[at:at + width] + (scale * src[at:at + width])  # rounded twice, not fused
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))

    out = dst.copy()
    fill_divide(out, at, 7.0, 3.0)
    expected = dst.copy()
    expected[at:at + width] = dtype(7.0) / dtype(3.0)
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
    np.testing.assert_array_equal(out[untouched], dst[untouched])

    rows = rng.standard_normal((5, width)).astype(dtype)
    expected = np.zeros(width, dtype)
    for row in rows:  # in row order, as the kernel adds them
        expected += row
    np.testing.assert_array_equal(stack_sum(rows).view(np.uint8), expected.view(np.uint8))

    values, scales = rng.standard_normal(width).astype(dtype), rng.uniform(0.5, 2, width).astype(dtype)
    top = float((values * scales).max())
    assert any_above(values, scales, top - 1e-3) and not any_above(values, scales, top)


@pytest.mark.parametrize("width", WIDTHS)
def test_vector_max_keeps_a_nan_already_there_and_never_takes_a_new_one(width):
    maximum = _kernels(width)[2]
    dst = np.linspace(-1, 1, width + 2).astype(np.float32)
    src = rng.standard_normal(width + 2).astype(np.float32)
    dst[0], src[min(1, width - 1)] = np.nan, np.nan
    out = dst.copy()
    maximum(out, src, 0)
    expected = dst.copy()
    expected[:width] = np.where(src[:width] > dst[:width], src[:width], dst[:width])  # NumPy's > is False for NaN
    np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))
    assert np.isnan(out[0])


def test_load_word_and_trailing_zeros_read_eight_bytes_little_endian():
    @njit
    def word_and_zeros(data, at):
        word = codegen.load_word(data, at)
        return word, codegen.trailing_zeros(word)

    data = np.frombuffer(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x00\x00\x00\x00\x00", np.uint8)
    for at in range(9):  # every alignment
        word, zeros = word_and_zeros(data, at)
        expected = int.from_bytes(bytes(data[at:at + 8]), "little")
        assert word == expected
        assert zeros == (64 if expected == 0 else (expected & -expected).bit_length() - 1)


@pytest.mark.parametrize("scale", [None, 0.5])
def test_streamed_lines_copy_64_bytes_scaled_or_not(scale):
    @njit
    def stream(dst, src, rows):
        for r in range(rows):
            codegen.stream_line(dst, r * 16, src, r * 16 + 3)
        codegen.store_fence()

    @njit
    def stream_scaled(dst, src, rows, factor):
        for r in range(rows):
            codegen.stream_scaled_line(dst, r * 16, src, r * 16 + 3, factor)
        codegen.store_fence()

    buffer = np.empty(4 * 16 + 16, np.float32)  # a 64-byte aligned view of 4 lines
    start = (-buffer.ctypes.data % 64) // 4
    dst = buffer[start:start + 64]
    src = rng.standard_normal(4 * 16 + 3).astype(np.float32)
    if scale is None:
        stream(dst, src, 4)
        expected = src[3:]
    else:
        stream_scaled(dst, src, 4, np.float32(scale))
        expected = src[3:] * np.float32(scale)
    np.testing.assert_array_equal(dst.view(np.uint32), expected.view(np.uint32))
