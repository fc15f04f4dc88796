"""``embedtool.embedding`` against the NumPy reference (docs/semantics.md §1), and its errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import embedtool
import naive
from embedtool.errors import BadIndexError, EmbedtoolError, InvalidArgumentError

INDEX_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64]
WEIGHT_DTYPES = [np.float16, np.float32, np.float64]
NORM_TYPES = [1.0, 2.0, 3.0, 0.5, math.inf]


pytestmark = pytest.mark.usefixtures("both_paths")  # every test on the kernels and on the NumPy path of small calls


def assert_matches(actual, expected, renormed):
    """Exact for gathers and padding; docs/semantics.md §1 tolerances with max_norm."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if not renormed:
        np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))
    elif actual.dtype == np.float16:
        diff = np.abs(actual.astype(np.float32) - expected.astype(np.float32))
        ulp = np.spacing(np.abs(expected)).astype(np.float32)
        assert np.all(diff <= 3 * ulp)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-5 if actual.dtype == np.float32 else 1e-12, atol=0)


@st.composite
def lookup_cases(draw):
    num_embeddings = draw(st.integers(1, 40))
    dim = draw(st.integers(0, 9))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    index_dtype = draw(st.sampled_from(INDEX_DTYPES))
    high = min(num_embeddings, np.iinfo(index_dtype).max + 1)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, high, size=shape).astype(index_dtype)
    weight = (rng.standard_normal((num_embeddings, dim)) * draw(st.sampled_from([0.1, 1.0, 10.0]))).astype(
        draw(st.sampled_from(WEIGHT_DTYPES))
    )
    padding_idx = draw(st.none() | st.integers(-num_embeddings, num_embeddings - 1))
    max_norm = draw(st.none() | st.sampled_from([0.5, 1.0, 3.0]))
    norm_type = draw(st.sampled_from(NORM_TYPES))
    return indices, weight, padding_idx, max_norm, norm_type


@settings(max_examples=300, deadline=None)
@given(lookup_cases())
def test_matches_reference(case):
    indices, weight, padding_idx, max_norm, norm_type = case
    before = weight.copy()
    actual = embedtool.embedding(indices, weight, padding_idx, max_norm, norm_type)
    expected = naive.embedding(indices, weight, padding_idx, max_norm, norm_type)
    assert actual.shape == indices.shape + (weight.shape[1],)
    assert actual.flags.c_contiguous
    assert_matches(actual, expected, max_norm is not None)
    np.testing.assert_array_equal(weight, before)  # never modified


@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (2, 3, 4, 5)])
def test_shapes(shape):
    weight = np.arange(12, dtype=np.float32).reshape(4, 3)
    indices = np.full(shape, 2, np.int64)
    out = embedtool.embedding(indices, weight)
    assert out.shape == shape + (3,)
    assert (out == weight[2]).all()


def test_zero_dim_weight():
    assert embedtool.embedding([[1, 2]], np.zeros((3, 0), np.float64)).shape == (1, 2, 0)


def test_padding_row_is_zero_even_when_weight_row_is_not():
    weight = np.ones((5, 4), np.float32)
    out = embedtool.embedding([0, 4, 1], weight, padding_idx=-1)
    np.testing.assert_array_equal(out, [[1] * 4, [0] * 4, [1] * 4])


def test_duplicates_and_zipf_match_reference_with_max_norm():
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((1000, 32)).astype(np.float32)
    indices = np.minimum(rng.zipf(1.3, size=20_000) - 1, 999)
    expected = naive.embedding(indices, weight, padding_idx=3, max_norm=2.0)
    assert_matches(embedtool.embedding(indices, weight, padding_idx=3, max_norm=2.0), expected, True)


def test_norm_equal_to_max_norm_is_left_alone():
    weight = np.array([[3.0, 4.0], [6.0, 8.0]], np.float64)
    out = embedtool.embedding([0, 1], weight, max_norm=5.0)
    np.testing.assert_array_equal(out[0], [3.0, 4.0])
    np.testing.assert_allclose(out[1], [6.0 * 5 / (10 + 1e-7), 8.0 * 5 / (10 + 1e-7)], rtol=1e-15)


def test_float16_norm_overflow_gives_zeros():
    weight = np.full((2, 4), 60000, np.float16)
    np.testing.assert_array_equal(embedtool.embedding([1], weight, max_norm=1.0), np.zeros((1, 4), np.float16))


def test_integral_floats_are_accepted():
    weight = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(embedtool.embedding(np.array([3.0, 0.0]), weight), weight[[3, 0]])


def test_memory_mapped_read_only_weight_is_not_copied(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(20, dtype=np.float32).reshape(5, 4))
    weight = np.load(tmp_path / "w.npy", mmap_mode="r")
    out = embedtool.embedding([[4, 0], [1, 1]], weight, max_norm=1.0)
    assert out.shape == (2, 2, 4)
    assert isinstance(weight, np.memmap) and not weight.flags.writeable


def test_non_contiguous_and_big_endian_weights():
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    weight = base[:, ::3]
    np.testing.assert_array_equal(embedtool.embedding([5, 1], weight), weight[[5, 1]])
    big = base.astype(">f4")
    out = embedtool.embedding([2, 0], big, max_norm=1.0)
    expected = naive.embedding([2, 0], base.astype(np.float32), max_norm=1.0)
    np.testing.assert_allclose(out.astype(np.float32), expected, rtol=1e-5)


def test_out_is_filled_and_returned():
    weight = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = np.full((3, 2), -1, np.float32)
    result = embedtool.embedding([3, 2, 1], weight, out=out)
    assert result is out
    np.testing.assert_array_equal(out, weight[[3, 2, 1]])


@pytest.mark.parametrize("max_norm", [None, 1.0])
@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("dim", [256, 300, 777])
@pytest.mark.parametrize("shift", [0, 1, 5])
def test_streaming_gather_matches_reference(monkeypatch, dtype, dim, shift, max_norm):
    """Large outputs are written with non-temporal stores; every alignment of the output gives the same values."""
    from embedtool import gather

    monkeypatch.setattr(gather, "_STREAM_OUTPUT", 0)  # stream this small output too
    rng = np.random.default_rng(dim + shift)
    weight = (rng.standard_normal((300, dim)) / np.sqrt(dim) * 1.2).astype(dtype)  # norms on both sides of 1
    idx = rng.integers(0, 300, size=(40, 25))
    out = np.empty(idx.size * dim + shift, dtype)[shift:].reshape(idx.shape + (dim,))  # lines start mid-row
    streamed = gather._streams(out.reshape(idx.size, dim), weight)
    assert streamed == (dim * np.dtype(dtype).itemsize >= gather._STREAM_ROW)
    embedtool.embedding(idx, weight, padding_idx=3, max_norm=max_norm, out=out)
    expected = naive.embedding(idx, weight, padding_idx=3, max_norm=max_norm)
    assert_matches(out, expected, renormed=max_norm is not None)


def test_torch_parity_when_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((50, 7)).astype(np.float32)
    indices = rng.integers(0, 50, size=(6, 9))
    for norm_type in NORM_TYPES:
        expected = torch.nn.functional.embedding(
            torch.from_numpy(indices), torch.from_numpy(weight.copy()), max_norm=1.5, norm_type=norm_type
        ).numpy()
        actual = embedtool.embedding(indices, weight, max_norm=1.5, norm_type=norm_type)
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=0)
    expected = torch.nn.functional.embedding(torch.from_numpy(indices), torch.from_numpy(weight)).numpy()
    np.testing.assert_array_equal(embedtool.embedding(indices, weight), expected)


# ---- errors: every message names the value, its position and the table size, before any output is written.


def test_out_of_range_names_value_position_and_size():
    weight = np.zeros((5, 2), np.float32)
    out = np.full((2, 3, 2), 7, np.float32)
    with pytest.raises(BadIndexError) as info:
        embedtool.embedding([[0, 1, 2], [3, 5, 4]], weight, out=out)
    assert str(info.value) == (
        "index 5 at position (1, 1) is out of range (the table has 5 rows, valid indices are 0..4)"
    )
    assert (out == 7).all()  # nothing written


@pytest.mark.parametrize(
    "indices, message",
    [
        (np.array([1, -1, 2], np.int8), "index -1 at position 1 is out of range"),
        (np.array([2**63 + 5], np.uint64), f"index {2**63 + 5} at position 0 is out of range"),
        (np.array([[0.0, 1.5]]), "index 1.5 at position (0, 1) is not an integer"),
        (np.array([np.nan]), "index nan at position 0 is not an integer"),
        (np.array([7.0]), "index 7 at position 0 is out of range"),
        (np.int64(9), "index 9 at position () is out of range"),
    ],
)
def test_bad_indices(indices, message):
    with pytest.raises(BadIndexError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        embedtool.embedding(indices, np.zeros((5, 2), np.float32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input": np.array([True])}, "indices must be integers, got a bool array"),
        ({"input": ["a"]}, "indices must be integers, got dtype <U1"),
        ({"input": [[0, 1], [2]]}, "indices must be a rectangular array, got a ragged sequence"),
        ({"weight": np.zeros(5, np.float32)}, "weight must be 2-D"),
        ({"weight": np.zeros((5, 2, 1), np.float32)}, "weight must be 2-D"),
        ({"weight": np.zeros((5, 2), np.int32)}, "weight dtype must be float16, float32 or float64, got int32"),
        ({"max_norm": float("nan")}, "max_norm must be a finite number > 0, got nan"),
        ({"max_norm": -1.0}, "max_norm must be a finite number > 0, got -1.0"),
        ({"max_norm": 1.0, "norm_type": 0}, "norm_type must be > 0"),
        ({"padding_idx": 5}, r"padding_idx 5 is out of range for a table of 5 rows \(valid: -5..4\)"),
        ({"padding_idx": -6}, "padding_idx -6 is out of range"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"input": [0, 1], "weight": np.zeros((5, 2), np.float32), **kwargs}
    with pytest.raises(EmbedtoolError, match=message):
        embedtool.embedding(**args)


def test_argument_errors_are_value_errors_too():
    with pytest.raises(ValueError):
        embedtool.embedding([0], np.zeros((2, 2), np.float32), padding_idx=9)
    assert issubclass(InvalidArgumentError, EmbedtoolError)


# ---- to_float16: the output cast of ``--output-dtype float16``.


def assert_same_float16(got, values):
    """Bit for bit NumPy's cast, but for NaN payloads (the vector conversion quiets signalling NaNs)."""
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    assert got.dtype == np.float16 and got.shape == values.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], expected.view(np.uint16)[~nan])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(width=32), max_size=70), st.integers(0, 2))
def test_to_float16_rounds_as_numpy(values, extra_dims):
    """Every float32 (ties to even, subnormals, overflow to inf, NaN) and every length around the 16-element
    vectors comes out as NumPy's cast gives it; so do other ranks."""
    from embedtool.shared_kernels import to_float16

    array = np.array(values, np.float32).reshape((-1,) + (1,) * extra_dims)
    assert_same_float16(to_float16(array), array)


def test_to_float16_over_many_blocks_and_other_dtypes():
    from embedtool.shared_kernels import _HALF_BLOCK, to_float16

    rng = np.random.default_rng(3)
    scale = np.float32(2.0) ** rng.integers(-30, 18, size=7 * (_HALF_BLOCK // 2 + 5))  # 3.5 blocks
    values = (rng.standard_normal(scale.size).astype(np.float32) * scale).reshape(-1, 7)
    assert_same_float16(to_float16(values), values)
    for other in (values.astype(np.float64), values[:, ::2]):  # NumPy's cast: float64 and strided arrays
        assert_same_float16(to_float16(other), other)
