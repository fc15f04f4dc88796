"""The NumPy path of small jobs (embedtool/small.py): its threshold, and its results against the kernels', bit for
bit."""

from __future__ import annotations

import numpy as np
import pytest

from embedtool import small


def test_small_threshold_bounds_the_numpy_path():
    weight = np.zeros((10, 4), np.float32)
    assert small.takes(np.zeros(small.SMALL_WORK // 4, np.int64), weight)
    assert not small.takes(np.zeros(small.SMALL_WORK // 4 + 1, np.int64), weight)
    assert not small.takes([1], weight, max_norm=1.0)
    assert not small.takes([1], weight, device="auto")
    assert not small.takes([[1], [1, 2]], weight)  # ragged: the main path names the error


def test_long_bags_fold_in_order_like_the_kernels(monkeypatch):
    """A few long bags take the per-bag fold: maxima keep the first row's NaN and the first of +0 and -0, as the
    kernels' strictly-greater rule does; bit for bit."""
    from embedtool.bag import embedding_bag

    weight = np.array([[np.nan, -0.0], [1.0, 0.0], [2.0, np.nan], [0.0, -0.0]], np.float32)
    ids, offsets = np.array([0, 1, 2, 3, 3, 1, 2, 1, 3, 1]), np.array([0, 8])
    for mode in ("max", "sum", "mean"):
        mine = small.embedding_bag(ids, weight, offsets, mode=mode)
        monkeypatch.setattr(small, "SMALL_WORK", 0)
        theirs = embedding_bag(ids, weight, offsets, mode=mode)
        monkeypatch.undo()
        np.testing.assert_array_equal(mine.view(np.uint32), theirs.view(np.uint32))
    assert np.signbit(small.embedding_bag(ids, weight, offsets, mode="max")[:, 1]).all()


def test_id_text_parsed_in_python_as_the_kernel_parses_it():
    from embedtool.tokens import parse_id_lines

    for chunk in [b"1 2 3\n4\n\n5 6", b"  +7 -3\t9\r\n00012345678 123456789012345678\n", b"", b"\n"]:
        for mine, theirs in zip(small.id_lines(chunk), parse_id_lines(chunk, 1)):
            np.testing.assert_array_equal(mine, theirs)
            assert mine.dtype == theirs.dtype
    for chunk in [b"1 a", b"1_0", b"1234567890123456789", b"-", b"1.0", "\u0661".encode()]:
        assert small.id_lines(chunk) is None  # the kernel parses it and names the error


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_stats_in_numpy_match_the_kernel_bit_for_bit(dtype):
    """info --stats of a small table (NumPy) and of a large one (the kernel): the same norms to the bit, and the same
    zero (-0.0 counts as zero, NaN does not) and non-finite rows."""
    from embedtool.info_kernels import row_stats

    rng = np.random.default_rng(7)
    rows = (rng.standard_normal((300, 37)) * rng.uniform(1e-3, 1e3, (300, 1))).astype(dtype)
    rows[1] = 0.0
    rows[2] = -0.0
    rows[3, 5], rows[4, 0], rows[5, 36] = np.nan, np.inf, -np.inf
    rows[6] = np.finfo(dtype).max / 4  # squares past float32's range, summed in float64 (float64's: inf)
    n = rows.shape[0]
    norms, zero, bad = np.empty(n), np.empty(n, np.bool_), np.empty(n, np.bool_)
    row_stats(rows, norms, zero, bad)
    mine = small.row_stats(rows)
    np.testing.assert_array_equal(mine[0].view(np.uint64), norms.view(np.uint64))
    np.testing.assert_array_equal(mine[1], zero)
    np.testing.assert_array_equal(mine[2], bad)
    assert zero[1] and zero[2] and not zero[3] and bad[3:6].all() and not bad[6]
    empty = np.empty((4, 0), dtype)
    row_stats(empty, norms[:4], zero[:4], bad[:4])
    for mine, theirs in zip(small.row_stats(empty), (norms[:4], zero[:4], bad[:4])):
        np.testing.assert_array_equal(mine, theirs)
