"""The argument checks of embedtool/core.py that every path (CPU kernels, NumPy, GPU) shares, called directly:
docs/semantics.md §1 (indices, padding_idx, max_norm) and §2 (bag layouts, per-sample weights). The same rules
driven through ``embedding`` and ``embedding_bag`` are in test_gather.py and test_bag.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedtool import core
from embedtool.errors import BadIndexError, InvalidArgumentError


def _min_max(flat):
    return flat.min(), flat.max()


def test_check_weight_keeps_maps_and_refuses_other_shapes_and_dtypes(tmp_path):
    np.save(tmp_path / "w.npy", np.ones((3, 2), np.float32))
    mapped = np.load(tmp_path / "w.npy", mmap_mode="r")
    assert core.check_weight(mapped) is mapped  # never copied
    assert core.check_weight(np.ones((2, 2), ">f8")).dtype == np.dtype(">f8")  # byte order is the reader's concern
    with pytest.raises(InvalidArgumentError, match=r"2-D .* got 1-D with shape \(3,\)"):
        core.check_weight(np.ones(3, np.float32))
    with pytest.raises(InvalidArgumentError, match="float16, float32 or float64, got int64"):
        core.check_weight(np.ones((2, 2), np.int64))


@pytest.mark.parametrize(("padding_idx", "row"), [(None, -1), (0, 0), (4, 4), (-1, 4), (-5, 0), (np.int16(-2), 3)])
def test_padding_idx_counts_negative_values_from_the_end(padding_idx, row):
    assert core.normalize_padding_idx(padding_idx, 5) == row


@pytest.mark.parametrize(("padding_idx", "message"), [
    (5, r"padding_idx 5 is out of range for a table of 5 rows \(valid: -5..4\)"),
    (-6, "padding_idx -6 is out of range"),
    (True, "must be an integer, got True"),
    (1.0, "must be an integer, got 1.0"),
])
def test_padding_idx_outside_the_table_is_named(padding_idx, message):
    with pytest.raises(InvalidArgumentError, match=message):
        core.normalize_padding_idx(padding_idx, 5)


def test_max_norm_and_norm_type_are_checked_as_numbers():
    assert core.check_max_norm(None, 2) == (None, 2.0)
    assert core.check_max_norm(1, "inf") == (1.0, math.inf)
    assert core.check_max_norm(0.5, -math.inf) == (0.5, -math.inf)
    for max_norm, norm_type, message in [(0, 2, "finite number > 0, got 0"), (math.nan, 2, "got nan"),
                                         (math.inf, 2, "got inf"), ("x", 2, "must be a number, got 'x'"),
                                         (1, 0, "norm_type must be > 0"), (1, "p", "norm_type must be a number")]:
        with pytest.raises(InvalidArgumentError, match=message):
            core.check_max_norm(max_norm, norm_type)


def test_indices_of_any_integer_dtype_pass_uncopied_and_bad_ones_are_named():
    ids = np.array([[0, 3], [4, 1]], np.uint16)
    assert core.as_indices(ids, 5, _min_max) is ids
    swapped = core.as_indices(np.array([1, 2], ">i4"), 5, _min_max)
    assert swapped.dtype.isnative and swapped.tolist() == [1, 2]
    with pytest.raises(BadIndexError, match=r"index 5 at position \(1, 0\) is out of range \(the table has 5 rows"):
        core.as_indices(np.array([[0, 1], [5, -1]]), 5, _min_max)
    with pytest.raises(BadIndexError, match=r"index -1 at position 2"):
        core.as_indices(np.array([0, 1, -1]), 5, _min_max)


def test_float_indices_must_be_integral_and_in_range():
    assert core.as_indices(np.array([0.0, 4.0]), 5, _min_max).dtype == np.int64
    with pytest.raises(BadIndexError, match="1.5 at position 1.*not an integer"):
        core.as_indices(np.array([0.0, 1.5]), 5, _min_max)
    with pytest.raises(BadIndexError, match="nan at position 0"):
        core.as_indices(np.array([np.nan]), 5, _min_max)
    with pytest.raises(BadIndexError, match="index 7 at position 0 is out of range"):
        core.as_indices(np.array([7.0]), 5, _min_max)
    with pytest.raises(InvalidArgumentError, match="got a bool array"):
        core.as_indices(np.array([True]), 5, _min_max)
    with pytest.raises(InvalidArgumentError, match="ragged sequence"):
        core.as_indices([[1, 2], [3]], 5, _min_max)


def test_output_array_reuses_only_a_matching_writeable_contiguous_out():
    out = np.empty((2, 3), np.float32)
    assert core.output_array((2, 3), np.dtype(np.float32), out) is out
    for bad, message in [(np.empty((3, 2), np.float32), "shape"), (np.empty((2, 3), np.float64), "dtype"),
                         (np.empty((3, 2), np.float32).T, "C-contiguous"), ([[0.0] * 3] * 2, "numpy array")]:
        with pytest.raises(InvalidArgumentError, match=message):
            core.output_array((2, 3), np.dtype(np.float32), bad)


@pytest.mark.parametrize(("shape", "offsets", "last", "bounds"), [
    ((2, 3), None, False, [0, 3, 6]),  # 2-D: one bag per row
    ((5,), [0, 2, 2], False, [0, 2, 2, 5]),  # an empty bag in the middle
    ((5,), [0, 2, 5], True, [0, 2, 5]),
    ((0,), [], False, [0]),  # no bags
])
def test_bag_bounds_from_offsets_as_torch_reads_them(shape, offsets, last, bounds):
    assert core.bag_bounds(shape, offsets, last).tolist() == bounds


@pytest.mark.parametrize(("shape", "offsets", "last", "message"), [
    ((5,), [1, 3], False, "offset 1 at position 0 must be 0"),
    ((5,), [0, 6], False, "offset 6 at position 1 is past the end of the input"),
    ((5,), [0, 3, 2], False, "offset 2 at position 2 is smaller than the one before it, 3"),
    ((5,), [0, 3], True, "offset 3 at position 1 must equal the input length 5"),
    ((2, 3), [0], False, "offsets must be None for 2-D input"),
    ((5,), None, False, "offsets are required with 1-D input"),
    ((5,), [0.0], False, "offsets must be integers"),
])
def test_bad_bag_offsets_name_the_first_offender(shape, offsets, last, message):
    with pytest.raises(InvalidArgumentError, match=message):
        core.bag_bounds(shape, None if offsets is None else np.array(offsets), last)


def test_per_sample_weights_need_sum_and_the_inputs_shape():
    weights = core.sample_weights([[1, 2], [3, 4]], (2, 2), "sum", np.float32)
    assert weights.dtype == np.float32 and weights.tolist() == [1, 2, 3, 4]
    assert core.sample_weights(None, (2, 2), "mean", np.float32) is None
    with pytest.raises(InvalidArgumentError, match="only works with mode='sum'"):
        core.sample_weights([1.0], (1,), "mean", np.float32)
    with pytest.raises(InvalidArgumentError, match=r"the input's shape \(3,\), got \(2,\)"):
        core.sample_weights([1.0, 2.0], (3,), "sum", np.float32)
    with pytest.raises(InvalidArgumentError, match="mode must be 'sum', 'mean' or 'max', got 'avg'"):
        core.check_bag_mode("avg")
