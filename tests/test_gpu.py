"""The GPU kernels (``embedtool.gpu``) against the NumPy reference, the CPU path's errors, and each other.

Runs in its own pytest process: under numba's CUDA simulator with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is
imported (``make test`` does), or on a real GPU without it. The simulator runs one Python thread per CUDA thread,
so the block size is patched down and the arrays are tiny; two blocks at most make the grid-stride loops wrap.
"""

import importlib.util
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba_cuda")
from numba import cuda  # noqa: E402

if not cuda.is_available():
    pytest.skip("no CUDA GPU (NUMBA_ENABLE_CUDASIM=1 runs these on the simulator)", allow_module_level=True)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import embedtool  # noqa: E402
import naive  # noqa: E402
from embedtool import config, core, device, gpu  # noqa: E402
from embedtool.errors import BadIndexError, EmbedtoolError, InvalidArgumentError  # noqa: E402

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") != "0"
WEIGHT_DTYPES = [np.float16, np.float32, np.float64]
NORM_TYPES = [1.0, 2.0, math.inf, 0.5]


@pytest.fixture(autouse=True, scope="module")
def small_blocks():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "THREADS_PER_BLOCK", 8)
        patch.setattr(config, "ROW_BLOCKS_PER_SM", 2)
        patch.setattr(config, "FLAT_BLOCKS_PER_SM", 2)
        yield


def table(dtype=np.float32, rows=20, dim=5, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal((rows, dim)) * scale).astype(dtype)


def indices(shape, high=20, seed=1, dtype=np.int64):
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def assert_matches(actual, expected, exact):
    """Bit-exact for gathers, padding and max bags; docs/semantics.md §1-§2 tolerances for max_norm and sums."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if exact:
        np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))
    elif actual.dtype == np.float16:
        diff = np.abs(actual.astype(np.float32) - expected.astype(np.float32))
        assert np.all(diff <= 3 * np.spacing(np.abs(expected)).astype(np.float32))
    else:
        rtol = 1e-5 if actual.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol)


def on_device(array):
    return getattr(array, "__cuda_ndarray__", False)


def test_simulator_or_gpu_is_available():
    assert device.gpu_available()
    device.require_gpu()


def test_unavailable_gpu_is_a_one_line_reason(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "numba_cuda" else find_spec(name))
    device._unavailable_reason.cache_clear()
    try:
        assert not device.gpu_available()
        with pytest.raises(gpu.GpuUnavailableError, match=r"^cannot use the GPU: numba-cuda is not installed \("):
            device.require_gpu()
    finally:
        device._unavailable_reason.cache_clear()


# --- embedding -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 3, -2])
def test_gather_matches_reference(dtype, padding_idx):
    weight = table(dtype)
    idx = indices((3, 4))
    idx[0, :2] = [3, 18]  # both padding spellings occur; duplicates too
    actual = gpu.embedding_cuda(idx, weight, padding_idx)
    assert isinstance(actual, np.ndarray) and actual.flags.c_contiguous
    assert_matches(actual, naive.embedding(idx, weight, padding_idx), exact=True)


@pytest.mark.parametrize("dim", [1, 3, 37])
def test_gather_row_widths(dim):
    """Rows of 1 to many words per lane, as 2-, 4- or 8-byte words, clamped past the end of the row."""
    for dtype in WEIGHT_DTYPES:
        weight = table(dtype, dim=dim)
        idx = indices(9)
        assert_matches(gpu.embedding_cuda(idx, weight, 0), naive.embedding(idx, weight, 0), exact=True)


@pytest.mark.parametrize("index_dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int32])
def test_index_dtypes(index_dtype):
    weight = table()
    idx = indices(7, dtype=index_dtype)
    assert_matches(gpu.embedding_cuda(idx, weight), naive.embedding(idx, weight), exact=True)


@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (2, 1, 3)])
def test_shapes(shape):
    weight = table()
    idx = np.full(shape, 2, np.int64)
    actual = gpu.embedding_cuda(idx, weight)
    assert actual.shape == shape + (5,)
    assert (actual == weight[2]).all()


def test_zero_dim_weight():
    assert gpu.embedding_cuda([[1, 2]], np.zeros((3, 0), np.float64)).shape == (1, 2, 0)


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_max_norm_matches_reference(dtype, norm_type):
    weight = table(dtype)
    before = weight.copy()
    idx = np.array([[4, 4, 7], [0, 19, 4]])  # a duplicated row is scaled once, identically
    actual = gpu.embedding_cuda(idx, weight, padding_idx=7, max_norm=2.5, norm_type=norm_type)
    assert_matches(actual, naive.embedding(idx, weight, 7, 2.5, norm_type), exact=False)
    np.testing.assert_array_equal(actual[0, 0], actual[0, 1])
    np.testing.assert_array_equal(weight, before)  # never modified


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the simulator computes with NumPy
def test_max_norm_edge_cases():
    weight = np.array([[3, 4], [6, 8], [5e4, 5e4]], np.float64)
    out = gpu.embedding_cuda([0, 1], weight, max_norm=5.0)
    np.testing.assert_array_equal(out[0], [3, 4])  # norm == max_norm is left alone (strict >)
    np.testing.assert_allclose(out[1], [6.0 * 5 / (10 + 1e-7), 8.0 * 5 / (10 + 1e-7)], rtol=1e-15)
    half = gpu.embedding_cuda([2], weight.astype(np.float16), max_norm=1.0)
    np.testing.assert_array_equal(half, [[0, 0]])  # a float16 norm that overflows zeroes the row, as torch


@pytest.mark.parametrize("norm_type", [math.inf, 2.0])
def test_max_norm_leaves_a_row_with_nan_unchanged(norm_type):
    weight = np.array([[np.nan, 5, 0], [3, 4, 0]], np.float32)  # row 0's norm is NaN: not > max_norm, as in torch
    expected = naive.embedding(np.array([0, 1]), weight, None, 1.0, norm_type)
    np.testing.assert_array_equal(expected[0], weight[0])
    np.testing.assert_array_equal(gpu.embedding_cuda([0, 1], weight, max_norm=1.0, norm_type=norm_type), expected)
    pooled = gpu.embedding_bag_cuda([[0], [1]], weight, mode="sum", max_norm=1.0, norm_type=norm_type)
    np.testing.assert_array_equal(pooled, expected)


def test_integral_floats_and_out():
    weight = table()
    out = np.empty((2, 5), np.float32)
    assert gpu.embedding_cuda(np.array([1.0, 5.0]), weight, out=out) is out
    np.testing.assert_array_equal(out, weight[[1, 5]])


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 12),
    dim=st.integers(0, 6),
    shape=st.lists(st.integers(0, 3), max_size=3).map(tuple),
    dtype=st.sampled_from(WEIGHT_DTYPES),
    padding=st.booleans(),
    max_norm=st.none() | st.sampled_from([0.5, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_embedding_property(rows, dim, shape, dtype, padding, max_norm, seed):
    weight = table(dtype, rows, dim, seed=seed)
    idx = indices(shape, rows, seed)
    padding_idx = int(seed % rows) if padding else None
    actual = gpu.embedding_cuda(idx, weight, padding_idx, max_norm)
    assert_matches(actual, naive.embedding(idx, weight, padding_idx, max_norm), exact=max_norm is None)


# --- embedding_bag -------------------------------------------------------------------------------------------

OFFSETS = [0, 3, 3, 5, 6]  # bags of 3, 0, 2, 1, 3 entries; the one-entry bag is padding only


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_matches_reference(dtype, mode):
    weight = table(dtype)
    idx = np.array([2, 9, 2, 7, 11, 9, 0, 19, 9])
    actual = gpu.embedding_bag_cuda(idx, weight, OFFSETS, mode, padding_idx=9)
    expected = naive.embedding_bag(idx, weight, OFFSETS, mode, padding_idx=9)
    assert_matches(actual, expected, exact=mode == "max")
    np.testing.assert_array_equal(actual[[1, 3]], 0)  # empty and all-padding bags


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
def test_bag_per_sample_weights(dtype):
    weight = table(dtype)
    idx = indices((3, 4))
    psw = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    actual = gpu.embedding_bag_cuda(idx, weight, mode="sum", per_sample_weights=psw, padding_idx=-1)
    expected = naive.embedding_bag(idx, weight, mode="sum", per_sample_weights=psw, padding_idx=-1)
    assert_matches(actual, expected, exact=False)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0])
@pytest.mark.parametrize("dim", [5, 8])
def test_bag_max_norm(mode, norm_type, dim):
    weight = table(np.float32, dim=dim)
    idx = np.array([[4, 4, 1], [7, 0, 4]])
    actual = gpu.embedding_bag_cuda(idx, weight, mode=mode, max_norm=2.0, norm_type=norm_type)
    expected = naive.embedding_bag(idx, weight, mode=mode, max_norm=2.0, norm_type=norm_type)
    assert_matches(actual, expected, exact=False)


def test_bag_include_last_offset_and_zero_bags():
    weight = table()
    idx = indices(6)
    actual = gpu.embedding_bag_cuda(idx, weight, [0, 2, 6], "sum", include_last_offset=True)
    assert_matches(actual, naive.embedding_bag(idx, weight, [0, 2, 6], "sum", include_last_offset=True), False)
    assert gpu.embedding_bag_cuda(idx, weight, [], "max").shape == (0, 5)
    assert gpu.embedding_bag_cuda(np.zeros((3, 0), np.int64), weight, mode="mean").tolist() == [[0] * 5] * 3
    assert gpu.embedding_bag_cuda(idx, np.zeros((20, 0), np.float32), [0, 4]).shape == (2, 0)


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4), max_size=5),
    dim=st.integers(1, 6),
    dtype=st.sampled_from(WEIGHT_DTYPES),
    mode=st.sampled_from(["sum", "mean", "max"]),
    padding=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_bag_property(lengths, dim, dtype, mode, padding, seed):
    weight = table(dtype, 8, dim, seed=seed)
    offsets = np.cumsum([0] + lengths[:-1]) if lengths else np.zeros(0, np.int64)
    idx = indices(sum(lengths), 8, seed)
    padding_idx = int(seed % 8) if padding else None
    actual = gpu.embedding_bag_cuda(idx, weight, offsets, mode, padding_idx=padding_idx)
    expected = naive.embedding_bag(idx, weight, offsets, mode, padding_idx=padding_idx)
    assert_matches(actual, expected, exact=mode == "max")


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dim", [5, 6])
def test_long_bags_split_into_pieces_match_reference(monkeypatch, dtype, mode, dim):
    """Bags longer than a piece are pooled piece by piece and combined in order; empty, padding-only and ragged
    pieces included. In max mode a NaN leading a bag stays, one leading a later piece does not win. (float32 rows
    of an even width are read as pairs of columns.)"""
    monkeypatch.setattr(gpu, "_BAG_PIECE", 3)
    weight = table(dtype, rows=12, dim=dim)
    if mode == "max":  # the tolerances of sums do not take NaN
        weight[10] = np.nan
    lengths = [0, 1, 3, 4, 7, 10, 3]
    idx = indices(sum(lengths), 10, seed=3)
    idx[[1, 4, 5, 6, 8]] = 11  # padding: bag 3's first piece holds only padding
    idx[[9, 18]] = 10  # bag 4's first counted entry, and the first entry of bag 5's second piece
    offsets = np.cumsum([0] + lengths[:-1])
    actual = gpu.embedding_bag_cuda(idx, weight, offsets, mode, padding_idx=11)
    expected = naive.embedding_bag(idx, weight, offsets, mode, padding_idx=11)
    assert_matches(actual, expected, exact=mode == "max")
    if mode == "max":
        assert np.isnan(actual[4]).all() and not np.isnan(actual[5]).any()


@pytest.mark.parametrize("mode", ["sum", "max"])
def test_split_bags_with_max_norm_weights_and_errors(monkeypatch, mode):
    monkeypatch.setattr(gpu, "_BAG_PIECE", 2)
    weight = table(np.float32, dim=6)  # read as pairs of columns
    idx = indices((3, 5))
    psw = np.linspace(-2, 2, 15).reshape(3, 5) if mode == "sum" else None
    actual = gpu.embedding_bag_cuda(idx, weight, mode=mode, per_sample_weights=psw, max_norm=2.0)
    expected = naive.embedding_bag(idx, weight, mode=mode, per_sample_weights=psw, max_norm=2.0)
    assert_matches(actual, expected, exact=False)
    idx[2, 3] = 40
    with pytest.raises(BadIndexError, match=r"index 40 at position \(2, 3\)"):
        gpu.embedding_bag_cuda(idx, weight, mode=mode)
    device_table = gpu.DeviceTable(weight)
    ((_, pooled),) = device_table.embed_batches([batch(idx[:2])], mode=mode)
    assert_matches(pooled, naive.embedding_bag(idx[:2], weight, mode=mode), exact=mode == "max")


def test_rows_of_bags_upload_no_bounds(monkeypatch):
    """A 2-D input's bags all have its row length: the kernels compute where each bag (and each piece of a long
    one) starts, so nothing but the indices goes to the GPU, and max keeps a bag's leading NaN."""
    monkeypatch.setattr(gpu, "_BAG_PIECE", 3)
    uploads = []
    upload = gpu._Queue.upload
    monkeypatch.setattr(gpu._Queue, "upload", lambda self, name, host: uploads.append(name) or upload(self, name, host))
    weight = table(np.float32, dim=4)
    weight[7] = np.nan
    idx = indices((3, 7), high=7, seed=5)
    idx[0, 0] = idx[1, 3] = 7  # bag 0 starts with a NaN row; bag 1's second piece does
    for short in (False, True):
        bags = idx[:, :3] if short else idx
        actual = gpu.embedding_bag_cuda(bags, weight, mode="max")
        assert_matches(actual, naive.embedding_bag(bags, weight, mode="max"), exact=True)
        assert np.isnan(actual[0]).all() and not np.isnan(actual[1:]).any()
    assert set(uploads) == {"flat", "table"}


# --- device arrays -------------------------------------------------------------------------------------------


def test_device_arrays_in_and_out():
    weight, idx = table(np.float16), indices((2, 3))
    d_weight, d_idx = cuda.to_device(weight), cuda.to_device(idx)
    result = gpu.embedding_cuda(d_idx, d_weight, padding_idx=1)
    assert on_device(result)
    assert_matches(result.copy_to_host(), naive.embedding(idx, weight, 1), exact=True)
    # A host input with a device weight comes back to the host; a device out is filled in place.
    assert isinstance(gpu.embedding_cuda(idx, d_weight), np.ndarray)
    d_out = cuda.device_array((2, 3, 5), np.float16)
    assert gpu.embedding_cuda(d_idx, weight, out=d_out) is d_out
    assert_matches(d_out.copy_to_host(), weight[idx], exact=True)


def test_device_arrays_for_bags():
    weight, idx = table(), indices(6)
    psw = np.linspace(-1, 1, 6)
    result = gpu.embedding_bag_cuda(
        cuda.to_device(idx), cuda.to_device(weight), cuda.to_device(np.array([0, 2])), "sum",
        per_sample_weights=cuda.to_device(psw),
    )
    assert on_device(result)
    expected = naive.embedding_bag(idx, weight, [0, 2], "sum", per_sample_weights=psw)
    assert_matches(result.copy_to_host(), expected, exact=False)


@pytest.mark.skipif(SIMULATED, reason="the simulator's arrays have no __cuda_array_interface__")
def test_cuda_array_interface_objects():
    class Foreign:  # what CuPy arrays and torch CUDA tensors look like to embedtool
        def __init__(self, array):
            self.__cuda_array_interface__ = array.__cuda_array_interface__
            self.array = array

    weight, idx = table(), indices(4)
    result = gpu.embedding_cuda(Foreign(cuda.to_device(idx)), Foreign(cuda.to_device(weight)))
    assert on_device(result)
    assert_matches(result.copy_to_host(), weight[idx], exact=True)


# --- errors --------------------------------------------------------------------------------------------------


def cpu_error(call):
    with pytest.raises(EmbedtoolError) as info:
        call()
    return info.type, str(info.value)


@pytest.mark.parametrize(
    "idx",
    [
        np.array([[1, 2], [20, 3]]),
        np.array([0, -1]),
        np.array([3, 2**63 + 5], np.uint64),
        np.array([1.0, 2.5]),
        np.array([True]),
    ],
)
def test_bad_indices_raise_the_cpu_error(idx):
    weight = table()
    expected = cpu_error(lambda: embedtool.embedding(idx, weight))
    assert cpu_error(lambda: gpu.embedding_cuda(idx, weight)) == expected
    if idx.dtype.kind in "iu":  # the same error from a device array, found on the device, raised by check()
        d_idx = cuda.to_device(idx)
        assert cpu_error(lambda: (gpu.embedding_cuda(d_idx, weight), gpu.check())) == expected
    if idx.ndim == 2:
        expected = cpu_error(lambda: embedtool.embedding_bag(idx, weight))
        assert cpu_error(lambda: gpu.embedding_bag_cuda(idx, weight)) == expected


def test_bad_index_names_value_position_and_size_before_writing():
    out = np.full((2, 2, 5), 7, np.float32)
    with pytest.raises(BadIndexError, match=r"index 20 at position \(1, 0\) is out of range.*20 rows"):
        gpu.embedding_cuda(np.array([[1, 2], [20, 3]]), table(), out=out)
    assert (out == 7).all()
    with pytest.raises(BadIndexError, match=r"index 30 at row 7"):
        gpu.embedding_bag_cuda([[30]], table(), where=lambda flat: "row 7")


def test_bad_indices_are_found_when_no_row_is_read():
    """Rows of width 0 and zero bags gather nothing: a kernel of checks alone still finds the bad index."""
    empty, idx = np.zeros((20, 0), np.float32), np.array([[1, 30], [2, 3]])
    assert cpu_error(lambda: gpu.embedding_cuda(idx, empty)) == cpu_error(lambda: embedtool.embedding(idx, empty))
    expected = cpu_error(lambda: embedtool.embedding_bag(idx, empty, mode="sum"))
    assert cpu_error(lambda: gpu.embedding_bag_cuda(idx, empty, mode="sum")) == expected


def test_kernels_fold_the_first_bad_position_into_the_calls_flag():
    """The gather and bag kernels check indices themselves (no scan, no wait): the flag gets the first bad flat
    position, whichever block meets it first, and the good rows are still gathered."""
    weight = table()
    idx = indices(40)
    idx[[5, 22, 37]] = [20, -3, 99]
    queue = gpu._Queue(cuda.stream())
    d_idx, d_out = cuda.to_device(idx), cuda.device_array((40, 5), np.float32)
    gpu._lookup(d_idx, cuda.to_device(weight), -1, None, 2.0, d_out, queue, queue.slot(idx, 20, str))
    bounds = np.arange(0, 41, 4)
    d_bags = cuda.device_array((10, 5), np.float32)
    slot = queue.slot(idx, 20, str)
    gpu._pool(d_idx, bounds, cuda.to_device(weight), -1, 1.0, 2.0, None, "sum", d_bags, queue, slot)
    np.testing.assert_array_equal(queue.flags.copy_to_host()[:3], [5, 5, np.iinfo(np.int64).max])
    good = np.flatnonzero((idx >= 0) & (idx < 20))
    np.testing.assert_array_equal(d_out.copy_to_host()[good], weight[idx[good]])
    with pytest.raises(BadIndexError, match=r"^index 20 at 5 is out of range"):
        queue.raise_first()


def test_failed_check_at_the_copy_back_leaves_the_callers_out_untouched():
    weight = table()
    out = np.full((2, 5), 7, np.float32)
    with pytest.raises(BadIndexError, match=r"index 25 at position 1"):
        gpu.embedding_bag_cuda([0, 25, 3], weight, [0, 1], "max", out=out)
    assert (out == 7).all()
    out = np.full((3, 5), 7, np.float32)
    with pytest.raises(BadIndexError, match=r"index 20 at position 2"):
        gpu.embedding_cuda(np.array([1, 2, 20]), weight, max_norm=1.0, out=out)
    assert (out == 7).all()
    assert gpu.embedding_cuda(np.array([1, 2, 3]), weight, out=out) is out  # the failed check is forgotten
    np.testing.assert_array_equal(out, weight[[1, 2, 3]])


def test_device_resident_result_raises_at_check_not_at_the_call():
    weight = table()
    d_idx = cuda.to_device(np.array([[1, 2], [3, 20]]))
    result = gpu.embedding_cuda(d_idx, weight)  # queued: nothing waits for the GPU
    assert on_device(result)
    gpu.embedding_cuda(cuda.to_device(np.array([1])), weight)  # a later good call does not hide it
    with pytest.raises(BadIndexError, match=r"^index 20 at position \(1, 1\) is out of range"):
        gpu.check()
    gpu.check()  # reported once
    gpu.embedding_bag_cuda(cuda.to_device(np.array([4, -1])), weight, cuda.to_device(np.array([0, 1])), "sum")
    with pytest.raises(BadIndexError, match=r"^index -1 at position 1 "):  # the next host call waits, so it raises
        gpu.embedding_cuda([0], weight)


def test_unchecked_device_calls_are_bounded(monkeypatch):
    monkeypatch.setattr(gpu._Queue, "SLOTS", 3)
    gpu.check()
    gpu._default_queue.cache_clear()
    try:
        weight, bad = table(dim=1), cuda.to_device(np.array([30]))
        gpu.embedding_cuda(bad, weight)
        gpu.embedding_cuda(bad[:0], weight)  # no indices: takes no slot
        gpu.embedding_cuda(cuda.to_device(np.array([1])), weight)
        gpu.embedding_cuda(cuda.to_device(np.array([2])), weight)
        with pytest.raises(BadIndexError, match="index 30 at position 0"):  # the fourth waits for the first three
            gpu.embedding_cuda(cuda.to_device(np.array([3])), weight)
    finally:
        gpu._default_queue.cache_clear()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding_idx": 20},
        {"max_norm": 0.0},
        {"norm_type": -1.0, "max_norm": 1.0},
        {"mode": "median"},
        {"mode": "mean", "per_sample_weights": np.ones(4)},
        {"offsets": [1, 4]},
        {"offsets": [0, 5]},
        {"offsets": [0, 1], "include_last_offset": True},
    ],
)
def test_bad_bag_arguments_raise_the_cpu_error(kwargs):
    weight, idx = table(), indices(4)
    kwargs = {"offsets": [0, 2], **kwargs}
    expected = cpu_error(lambda: embedtool.embedding_bag(idx, weight, **kwargs))
    assert cpu_error(lambda: gpu.embedding_bag_cuda(idx, weight, **kwargs)) == expected


def test_bad_weight_and_out():
    with pytest.raises(InvalidArgumentError, match="weight must be 2-D"):
        gpu.embedding_cuda([0], cuda.to_device(np.zeros(3, np.float32)))
    with pytest.raises(InvalidArgumentError, match="dtype must be float16"):
        gpu.embedding_cuda([0], np.zeros((3, 2), np.int32))
    with pytest.raises(InvalidArgumentError, match="out must be a GPU array"):
        gpu.embedding_cuda(cuda.to_device(np.array([0])), table(), out=np.empty((1, 5), np.float32))


# --- buffers and launches ------------------------------------------------------------------------------------


def test_repeated_calls_allocate_no_device_memory(monkeypatch):
    """Temporaries (uploaded indices and table, staging output, bounds, row scales) come from the default stream's
    buffers, and launch sizes from a cache: a second call of the same shapes, or smaller, allocates nothing."""
    weight = table()
    idx = indices((4, 3))
    gpu.embedding_cuda(idx, weight, max_norm=1.0)
    gpu.embedding_bag_cuda(idx, weight, mode="sum", per_sample_weights=np.ones((4, 3)))
    allocations = []
    for name in ("device_array", "to_device"):
        allocate = getattr(cuda, name)
        monkeypatch.setattr(cuda, name, lambda *a, allocate=allocate, **k: allocations.append(a) or allocate(*a, **k))
    hits = gpu._row_config.cache_info().hits
    actual = gpu.embedding_cuda(idx[:2], weight, max_norm=1.0)
    pooled = gpu.embedding_bag_cuda(idx, weight, mode="sum", per_sample_weights=np.ones((4, 3)))
    assert allocations == []
    assert gpu._row_config.cache_info().hits > hits
    assert_matches(actual, naive.embedding(idx[:2], weight, max_norm=1.0), exact=False)
    assert_matches(pooled, naive.embedding_bag(idx, weight, mode="sum"), exact=False)
    gpu.embedding_cuda(indices((5, 3)), weight)  # larger: the buffers grow
    assert allocations


def test_buffers_above_the_limit_are_not_kept():
    queue = gpu._Queue(cuda.stream(), keep_bytes=64)
    small, big = queue.buffer("a", 8, np.int64), queue.buffer("b", (3, 3), np.int64)
    assert small.shape == (8,) and big.shape == (3, 3) and big.dtype == np.int64
    assert queue.buffer("a", 4, np.int32).size == 4 and set(queue.buffers) == {"a"}


# --- DeviceTable ---------------------------------------------------------------------------------------------


def batch(ids, offsets=None, where=None, weights=None):
    return types.SimpleNamespace(ids=ids, offsets=offsets, where=where, weights=weights)


def test_device_table_batches_match():
    weight = table(np.float64)
    device_table = gpu.DeviceTable(weight)
    batches = [batch(indices((2, 3), seed=s)) for s in range(4)]
    batches += [batch(np.zeros((0, 3), np.int64)), batch(np.array([5.0, 6.0]))]
    seen = []
    for item, values in device_table.embed_batches(iter(batches), padding_idx=5):
        assert isinstance(values, np.ndarray)
        assert_matches(values, naive.embedding(item.ids, weight, 5), exact=True)
        seen.append(item)
    assert seen == batches
    ((item, values),) = device_table.embed_batches(batches[:1], max_norm=1.0, norm_type=1.0)
    assert_matches(values, naive.embedding(item.ids, weight, max_norm=1.0, norm_type=1.0), exact=False)


@pytest.mark.parametrize("mode", ["sum", "max"])
def test_device_table_bag_batches(mode):
    weight = table()
    device_table = gpu.DeviceTable(weight)
    ragged = batch(np.array([1, 2, 3, 4, 0]), np.array([0, 2, 2, 5]))
    rows = batch(indices((3, 2, 2)))
    empty = batch(np.zeros(0, np.int64), np.array([0, 0]))
    results = device_table.embed_batches([ragged, rows, empty], 0, mode=mode)
    pooled = {id(item): values.copy() for item, values in results}
    expected = naive.embedding_bag(ragged.ids, weight, ragged.offsets, mode, padding_idx=0, include_last_offset=True)
    assert_matches(pooled[id(ragged)], expected, exact=mode == "max")
    expected = naive.embedding_bag(rows.ids.reshape(3, 4), weight, mode=mode, padding_idx=0)
    assert_matches(pooled[id(rows)], expected, exact=mode == "max")
    np.testing.assert_array_equal(pooled[id(empty)], np.zeros((1, 5), np.float32))


def test_device_table_bag_batches_with_sample_weights():
    """``--weights-column`` on the GPU: a batch's flat weights scale its entries, in ragged and row batches."""
    weight = table()
    device_table = gpu.DeviceTable(weight)
    ragged = batch(np.array([1, 2, 3, 4, 0]), np.array([0, 2, 2, 5]), weights=np.array([0.5, 2.0, -1.0, 3.0, 7.0]))
    rows = batch(indices((3, 2)), weights=np.arange(6, dtype=np.float32).reshape(3, 2))
    pooled = {id(item): values.copy() for item, values in device_table.embed_batches([ragged, rows], 0, mode="sum")}
    expected = naive.embedding_bag(ragged.ids, weight, ragged.offsets, "sum", ragged.weights, padding_idx=0,
                                   include_last_offset=True)
    assert_matches(pooled[id(ragged)], expected, exact=False)
    expected = naive.embedding_bag(rows.ids, weight, mode="sum", per_sample_weights=rows.weights, padding_idx=0)
    assert_matches(pooled[id(rows)], expected, exact=False)


def test_device_table_errors_name_positions_in_the_whole_input():
    device_table = gpu.DeviceTable(table())
    batches = [batch(np.array([[1, 2]])), batch(np.array([[3, 99]]), where=core.array_position((2, 2), offset=1))]
    with pytest.raises(BadIndexError, match=r"index 99 at position \(1, 1\)"):
        list(device_table.embed_batches(batches))


def test_device_table_one_off_calls():
    weight = table(np.float16)
    device_table = gpu.DeviceTable(cuda.to_device(weight))
    idx = indices((2, 3))
    assert_matches(device_table.embedding(idx, 0), naive.embedding(idx, weight, 0), exact=True)
    expected = naive.embedding_bag(idx, weight, mode="max")
    assert_matches(device_table.embedding_bag(idx, mode="max"), expected, exact=True)


def test_table_larger_than_free_memory_is_a_clear_error(monkeypatch):
    full = types.SimpleNamespace(get_memory_info=lambda: types.SimpleNamespace(free=1000, total=1000))
    monkeypatch.setattr(cuda, "current_context", lambda: full)
    with pytest.raises(gpu.GpuUnavailableError, match=r"weight table \(0.00 GiB\) does not fit .* free memory"):
        gpu.DeviceTable(np.zeros((100, 10), np.float32))


def test_benchmark_runs_end_to_end():
    bench = Path(__file__).parents[1] / "benchmarks" / "bench_gpu.py"
    done = subprocess.run([sys.executable, str(bench), "--smoke"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n| ") == 3  # the header and a row per smoke case


def test_a_static_model_pools_on_the_gpu_as_on_the_cpu(tmp_path):
    """A model2vec directory's bag with --device cuda: its tokenizer's ids pooled by the GPU bag kernel, normalised,
    equal to the CPU's within float32 sums' rounding (docs/semantics.md §3)."""
    pytest.importorskip("model2vec")
    import pyarrow as pa

    from embedtool.pipeline import embed_path
    from model_files import make_model, sentences, wordpiece_tokenizer

    texts = sentences(60)
    model = make_model(tmp_path / "m2v", wordpiece_tokenizer(texts), "float32", normalize=True, weighted=True)
    (tmp_path / "t.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n")
    for where in ("cuda", "cpu"):
        embed_path(model, tmp_path / "t.txt", tmp_path / f"{where}.arrow", mode="mean", device=where, progress=False)
    on_gpu, on_cpu = (pa.ipc.open_file(str(tmp_path / f"{w}.arrow")).read_all().column("embedding").to_pylist()
                      for w in ("cuda", "cpu"))
    np.testing.assert_allclose(np.array(on_gpu), np.array(on_cpu), rtol=1e-5, atol=1e-6)
    assert np.abs(np.linalg.norm(np.array(on_cpu), axis=1)[np.abs(np.array(on_cpu)).sum(1) > 0] - 1).max() < 1e-5
