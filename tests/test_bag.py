"""``embedtool.embedding_bag`` against the NumPy reference and torch (docs/semantics.md §2), and its errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import embedtool
import naive
from embedtool.bag import _plan
from embedtool.errors import BadIndexError, EmbedtoolError, InvalidArgumentError

#: The kernels see int64 only; core.as_indices, which converts the rest, is tested on every dtype in test_gather.
INDEX_DTYPES = [np.uint16, np.int32, np.int64]
WEIGHT_DTYPES = [np.float16, np.float32, np.float64]
MODES = ["sum", "mean", "max"]
NORM_TYPES = [1.0, 2.0, 3.0, 0.5, math.inf]
#: Per-row error of max_norm's renormalisation against torch (docs/semantics.md §1), relative to the row.
RENORM_RTOL = {np.float16: 3 * 2.0**-10, np.float32: 1e-5, np.float64: 1e-12}


pytestmark = pytest.mark.usefixtures("both_paths")  # every test on the kernels and on the NumPy path of small calls


def bag(input, weight, offsets=None, mode="mean", per_sample_weights=None, padding_idx=None,
        include_last_offset=False, max_norm=None, norm_type=2.0):
    """The arguments of one call, as a dict for both implementations."""
    return dict(input=input, weight=weight, offsets=offsets, mode=mode, per_sample_weights=per_sample_weights,
                padding_idx=padding_idx, include_last_offset=include_last_offset, max_norm=max_norm,
                norm_type=norm_type)


def assert_matches(actual, expected, case):
    """Bit-identical for max without max_norm; otherwise within docs/semantics.md §2.

    Sums and means may differ by ``(n+1)·eps·Σ|terms|`` (eps of the accumulator: float32, float64 for float64
    tables) plus one rounding of the output; max_norm adds its per-row tolerance.
    """
    weight = case["weight"]
    assert actual.shape == expected.shape and actual.dtype == expected.dtype == weight.dtype
    assert actual.flags.c_contiguous
    if case["mode"] == "max" and case["max_norm"] is None:
        np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))
        return
    psw = case["per_sample_weights"]
    magnitude = naive.embedding_bag(
        **{**case, "weight": np.abs(weight), "per_sample_weights": None if psw is None else np.abs(psw)}
    ).astype(np.float64)
    eps = np.finfo(np.float64 if weight.dtype == np.float64 else np.float32).eps
    rtol = 0.0 if case["max_norm"] is None else RENORM_RTOL[weight.dtype.type]
    n = longest_bag(case)
    bound = (rtol if case["mode"] == "max" else (n + 1) * eps + rtol) * magnitude
    bound += np.spacing(np.abs(expected)).astype(np.float64)
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    assert np.all(diff <= bound), f"largest excess {np.max(diff - bound)}"


def longest_bag(case):
    idx = np.asarray(case["input"])
    if idx.ndim == 2:
        return idx.shape[1]
    offsets = list(case["offsets"]) + ([] if case["include_last_offset"] else [len(idx)])
    return max(np.diff(offsets), default=0)


def check(case):
    """Run embedtool and the reference on one case and compare them; the weight must stay untouched."""
    before = case["weight"].copy()
    actual = embedtool.embedding_bag(**case)
    assert_matches(actual, naive.embedding_bag(**case), case)
    np.testing.assert_array_equal(case["weight"], before)
    return actual


@st.composite
def bag_cases(draw, with_weights=True):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    num_embeddings = draw(st.integers(1, 30))
    dim = draw(st.integers(0, 6))
    index_dtype = draw(st.sampled_from(INDEX_DTYPES))
    high = min(num_embeddings, np.iinfo(index_dtype).max + 1)
    include_last_offset = False
    if draw(st.booleans()):
        indices = rng.integers(0, high, size=(draw(st.integers(0, 5)), draw(st.integers(0, 20))))
        offsets = None
    else:
        lengths = draw(st.lists(st.integers(0, 20), max_size=6))
        indices = rng.integers(0, high, size=sum(lengths))
        offsets = np.cumsum([0] + lengths)
        include_last_offset = draw(st.booleans())
        offsets = offsets if include_last_offset else offsets[:-1]
        offsets = offsets.astype(draw(st.sampled_from([np.int64, np.int32, np.uint16])))
    weight = (rng.standard_normal((num_embeddings, dim)) * draw(st.sampled_from([0.1, 1.0, 10.0]))).astype(
        draw(st.sampled_from(WEIGHT_DTYPES))
    )
    mode = draw(st.sampled_from(MODES))
    psw = None
    if with_weights and mode == "sum" and draw(st.booleans()):
        psw = rng.standard_normal(indices.shape).astype(draw(st.sampled_from(WEIGHT_DTYPES)))
    return bag(
        indices.astype(index_dtype), weight, offsets, mode, psw,
        padding_idx=draw(st.none() | st.integers(-num_embeddings, num_embeddings - 1)),
        include_last_offset=include_last_offset,
        max_norm=draw(st.none() | st.sampled_from([0.5, 1.0, 3.0])),
        norm_type=draw(st.sampled_from(NORM_TYPES)),
    )


@settings(max_examples=250, deadline=None)
@given(bag_cases())
def test_matches_reference(case):
    check(case)


@settings(max_examples=100, deadline=None)
@given(bag_cases(with_weights=False))
def test_sum_is_the_sum_of_embedding_rows(case):
    """mode="sum" equals ``embedding`` (padding zeroed, rows renormed) summed per bag."""
    case["mode"] = "sum"
    case["input"] = case["input"].astype(np.int64)  # index dtypes are covered above; this spares compilations
    rows = embedtool.embedding(case["input"], case["weight"], case["padding_idx"], case["max_norm"], case["norm_type"])
    idx = np.asarray(case["input"])
    if idx.ndim == 2:
        expected = rows.astype(np.float64).sum(axis=1)
    else:
        ends = list(case["offsets"]) + ([] if case["include_last_offset"] else [len(idx)])
        expected = np.array([rows[a:b].astype(np.float64).sum(axis=0) for a, b in zip(ends[:-1], ends[1:])])
        expected = expected.reshape(len(ends) - 1, case["weight"].shape[1])
    assert_matches(embedtool.embedding_bag(**case), expected.astype(case["weight"].dtype), case)


def example_bags(dtype):
    """Ten bags of one to twenty entries, an empty one and one of only padding (row 0), with duplicates."""
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((12, 5)).astype(dtype)
    lengths = [3, 0, 20, 1, 2, 9, 8, 17, 4, 2]
    indices = rng.integers(1, 12, size=sum(lengths))
    indices[3:23:4] = 0
    offsets = np.cumsum([0] + lengths[:-1])
    indices[offsets[-1] : offsets[-1] + 2] = 0  # the last bag: only padding
    return indices, weight, offsets


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("mode, weighted", [("sum", False), ("sum", True), ("mean", False), ("max", False)])
@pytest.mark.parametrize("padding_idx", [None, 0, -12])
def test_every_mode_dtype_padding_and_weights(mode, weighted, dtype, padding_idx):
    indices, weight, offsets = example_bags(dtype)
    psw = np.linspace(-2, 3, indices.size).astype(dtype) if weighted else None
    out = check(bag(indices, weight, offsets, mode, psw, padding_idx))
    if padding_idx is not None:
        np.testing.assert_array_equal(out[[1, -1]], 0)


@pytest.mark.parametrize("dtype", WEIGHT_DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_max_norm_renorms_each_entry_before_pooling(mode, dtype, norm_type):
    indices, weight, offsets = example_bags(dtype)
    psw = np.linspace(0.5, 2, indices.size).astype(dtype) if mode == "sum" else None
    check(bag(indices, weight * 3, offsets, mode, psw, padding_idx=0, max_norm=1.5, norm_type=norm_type))


@pytest.mark.parametrize("mode", MODES)
def test_empty_and_all_padding_bags_are_zeros(mode):
    weight = -np.ones((4, 3), np.float32)  # a max over nothing must not leak -inf or a padding row
    out = embedtool.embedding_bag([2, 2, 1, 1], weight, [0, 0, 2, 3], mode=mode, padding_idx=2)
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 0, 0], [-1, -1, -1], [-1, -1, -1]])
    assert not np.signbit(out[:2]).any()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "input, offsets, include_last_offset",
    [([], [], False), ([1, 2], [], False), ([], [0], True), (np.zeros((0, 3), np.int64), None, False)],
)
def test_zero_bags_give_zero_rows(mode, input, offsets, include_last_offset):
    out = embedtool.embedding_bag(input, np.ones((4, 3), np.float64), offsets, mode,
                                  include_last_offset=include_last_offset)
    assert out.shape == (0, 3) and out.dtype == np.float64


@pytest.mark.parametrize("mode", MODES)
def test_zero_dim_weight(mode):
    assert embedtool.embedding_bag([[1, 2], [0, 0]], np.zeros((3, 0), np.float32), mode=mode).shape == (2, 0)


@pytest.mark.parametrize("mode", MODES)
def test_2d_input_and_csr_offsets_are_the_same_bags(mode):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((20, 4)).astype(np.float32)
    indices = rng.integers(0, 20, size=(6, 11))
    expected = embedtool.embedding_bag(indices.reshape(-1), weight, np.arange(6) * 11, mode, padding_idx=3)
    np.testing.assert_array_equal(embedtool.embedding_bag(indices, weight, mode=mode, padding_idx=3), expected)
    csr = embedtool.embedding_bag(indices.reshape(-1), weight, np.arange(7) * 11, mode, padding_idx=3,
                                  include_last_offset=True)
    np.testing.assert_array_equal(csr, expected)
    # torch ignores include_last_offset for 2-D input (each row is a bag either way)
    np.testing.assert_array_equal(
        embedtool.embedding_bag(indices, weight, mode=mode, padding_idx=3, include_last_offset=True), expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_one_huge_bag_among_small_ones(mode, dtype):
    """A bag longer than a task is split across threads and folded back: same result as the reference."""
    rng = np.random.default_rng(11)
    weight = rng.standard_normal((300, 6)).astype(dtype)
    lengths = rng.integers(0, 6, size=400)
    lengths[150] = 30_000
    indices = rng.integers(0, 300, size=lengths.sum())
    psw = rng.standard_normal(indices.size).astype(dtype) if mode == "sum" else None
    check(bag(indices, weight, np.cumsum(lengths) - lengths, mode, psw, padding_idx=7))


@pytest.mark.parametrize("mode, weighted, max_norm", [("sum", False, None), ("sum", True, None), ("mean", False, 2.0)])
@pytest.mark.parametrize("dtype, dim", [(np.float32, 1000), (np.float64, 200), (np.float16, 397)])
def test_wide_tables_are_summed_in_column_blocks(mode, weighted, max_norm, dtype, dim):
    """Rows wider than the register accumulator go in blocks, the last shifted back to overlap: every column right,
    in whole bags and in a huge bag split across threads."""
    from embedtool.bag import _column_blocks

    width, starts = _column_blocks(dim, 8 if dtype == np.float64 else 4)
    assert width < dim and starts[-1] + width == dim and np.all(np.diff(starts) <= width)
    rng = np.random.default_rng(dim)
    weight = rng.standard_normal((50, dim)).astype(dtype)
    lengths = rng.integers(0, 9, size=60)
    lengths[20] = 12_000
    indices = rng.integers(0, 50, size=lengths.sum())
    psw = rng.standard_normal(indices.size).astype(dtype) if weighted else None
    check(bag(indices, weight, np.cumsum(lengths) - lengths, mode, psw, padding_idx=4, max_norm=max_norm))


@pytest.mark.parametrize("mode, weighted, max_norm", [("sum", True, None), ("mean", False, 1.0), ("max", False, None)])
@pytest.mark.parametrize("dtype, dim", [(np.float32, 31), (np.float64, 15), (np.float16, 31)])
def test_vector_chunks_of_every_size(mode, weighted, max_norm, dtype, dim):
    """The kernels read and write a row block in 64-byte vectors, then halving ones for the rest: 31 float32
    columns are vectors of 16, 8, 4, 2 and 1 elements (15 float64 ones: 8, 4, 2, 1; float16 rows are widened to
    float32 and the results rounded back in the same pieces), each right, and nothing past the row is read (the
    next row's columns stay out). The property test covers widths up to 6, the column-block test wider ones."""
    rng = np.random.default_rng(dim)
    weight = rng.standard_normal((40, dim)).astype(dtype)
    lengths = rng.integers(0, 7, size=30)
    indices = rng.integers(0, 40, size=lengths.sum())
    psw = rng.standard_normal(indices.size).astype(dtype) if weighted else None
    check(bag(indices, weight, np.cumsum(lengths) - lengths, mode, psw, padding_idx=3, max_norm=max_norm))


@pytest.mark.parametrize("huge", [False, True])
def test_max_keeps_a_nan_of_the_first_row_and_ignores_later_ones(huge):
    weight = np.array([[np.nan, 1.0], [5.0, np.nan], [2.0, 3.0]], np.float32)
    tail = np.full(20_000 if huge else 5, 2)
    indices = np.concatenate([[0, 1], tail, [1, 2, 0], tail, [1, 0]])
    offsets = [0, len(tail) + 5]
    out = check(bag(indices, weight, offsets, "max"))
    np.testing.assert_array_equal(out, [[np.nan, 3.0], [5.0, 3.0]])


def check_plan(lengths, ntasks, include_last_offset):
    """``_plan`` covers every bag once, whole or in consecutive pieces of at most a task's work, each task at most
    two tasks' work; returns the huge bags."""
    nbags = len(lengths)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    offsets = bounds if include_last_offset else bounds[:-1]
    tasks, huge = _plan(offsets, bounds[-1], nbags, ntasks)
    size = max(4096, -(-(bounds[-1] + nbags) // ntasks))
    whole = [np.arange(lo, hi) for lo, hi, piece in tasks if piece < 0]
    covered = np.concatenate([*whole, huge[:, 0], np.zeros(0, np.int64)])
    np.testing.assert_array_equal(np.sort(covered), np.arange(nbags))
    np.testing.assert_array_equal(huge[:, 0], np.flatnonzero(lengths > size))
    for b, first, stop in huge:
        pieces = tasks[(tasks[:, 2] >= first) & (tasks[:, 2] < stop)]
        np.testing.assert_array_equal(pieces[:, 2], np.arange(first, stop))
        assert pieces[0, 0] == bounds[b] and pieces[-1, 1] == bounds[b + 1]
        np.testing.assert_array_equal(pieces[1:, 0], pieces[:-1, 1])
        assert (pieces[:, 1] - pieces[:, 0]).max() <= size
    work = [bounds[hi] - bounds[lo] + hi - lo if piece < 0 else hi - lo for lo, hi, piece in tasks]
    assert max(work, default=0) <= 2 * size
    return huge


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 50), st.integers(0, 30_000)), max_size=300), st.integers(1, 64),
       st.booleans())
def test_plan_property(lengths, ntasks, include_last_offset):
    check_plan(np.array(lengths, np.int64), ntasks, include_last_offset)


def test_plan_splits_huge_bags_and_covers_every_bag_once():
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 40, size=5000)
    lengths[[10, 2000, 4999]] = [90_000, 20_000, 50_000]
    huge = check_plan(lengths, 16, False)
    np.testing.assert_array_equal(huge[:, 0], [10, 2000, 4999])


def test_torch_parity_when_available():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for dtype in WEIGHT_DTYPES:
        indices, weight, offsets = example_bags(dtype)
        for mode in MODES:
            psw = np.linspace(-1, 2, indices.size).astype(dtype) if mode == "sum" else None
            for max_norm in (None, 1.2):
                case = bag(indices, weight, offsets, mode, psw, padding_idx=0, max_norm=max_norm)
                expected = F.embedding_bag(
                    torch.from_numpy(indices), torch.from_numpy(weight.copy()), torch.from_numpy(offsets),
                    max_norm=max_norm, mode=mode, padding_idx=0,
                    per_sample_weights=None if psw is None else torch.from_numpy(psw),
                ).numpy()
                assert_matches(embedtool.embedding_bag(**case), expected, case)
        two_d = indices[:60].reshape(6, 10)
        expected = F.embedding_bag(torch.from_numpy(two_d), torch.from_numpy(weight), mode="max").numpy()
        np.testing.assert_array_equal(embedtool.embedding_bag(two_d, weight, mode="max"), expected)


def test_out_is_filled_and_returned():
    weight = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = np.full((2, 2), -1, np.float32)
    assert embedtool.embedding_bag([3, 2, 1], weight, [0, 2], mode="sum", out=out) is out
    np.testing.assert_array_equal(out, [[10, 12], [2, 3]])
    with pytest.raises(InvalidArgumentError, match=r"out must have shape \(2, 2\) and dtype float32"):
        embedtool.embedding_bag([3, 2, 1], weight, [0, 2], out=np.empty((3, 2), np.float32))


def test_memory_mapped_read_only_weight(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(20, dtype=np.float32).reshape(5, 4))
    weight = np.load(tmp_path / "w.npy", mmap_mode="r")
    out = embedtool.embedding_bag([[4, 0], [1, 1]], weight, mode="sum", max_norm=100.0)
    np.testing.assert_array_equal(out, [[16, 18, 20, 22], [8, 10, 12, 14]])
    # int64 arrays, as the pipeline passes them, with an index past the table: read, then named
    ids, offsets = np.array([4, 0, 1, 1], np.int64), np.array([0, 2], np.int64)
    np.testing.assert_array_equal(embedtool.embedding_bag(ids, weight, offsets, "sum"), out)
    with pytest.raises(BadIndexError, match="^index 5 at position 3 is out of range"):
        embedtool.embedding_bag(np.array([4, 0, 1, 5], np.int64), weight, offsets, "sum")


def test_non_contiguous_and_big_endian_weights():
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    np.testing.assert_array_equal(embedtool.embedding_bag([[5, 1]], base[:, ::3], mode="sum"), [[60, 66, 72, 78]])
    big = base.astype(">f4")
    out = embedtool.embedding_bag([[2, 0]], big, mode="max")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, base[[2]].astype(np.float32))


# ---- errors: each names the offending value and its position. Arguments and offsets are checked before any output
# is written; indices as the kernels read them.


@pytest.mark.parametrize(
    "offsets, include_last_offset, message",
    [
        ([1, 3], False, "offset 1 at position 0 must be 0: the first bag starts the input"),
        ([0, 4, 2], False, "offset 2 at position 2 is smaller than the one before it, 4: offsets must not decrease"),
        ([0, 2, 9], False, "offset 9 at position 2 is past the end of the input (length 6)"),
        ([0, 2, 5], True, "offset 5 at position 2 must equal the input length 6, the end of the last bag, "
                          "with include_last_offset"),
        ([], True, "include_last_offset needs at least one offset, the input length 6"),
        ([[0, 2]], False, "offsets must be 1-D, got shape (1, 2)"),
        ([0.0, 2.0], False, "offsets must be integers, got dtype float64"),
        (np.array([0, 2**63 + 1], np.uint64), False, f"offset {2**63 + 1} at position 1 is past the end"),
    ],
)
@pytest.mark.parametrize("as_array", [False, True], ids=["list", "array"])  # arrays: int64 ones take the fast path
def test_bad_offsets(offsets, include_last_offset, message, as_array):
    out = np.full((2, 2), 7, np.float32)
    offsets = np.asarray(offsets) if as_array else offsets
    with pytest.raises(InvalidArgumentError) as info:
        embedtool.embedding_bag(np.arange(6), np.zeros((6, 2), np.float32), offsets,
                                include_last_offset=include_last_offset, out=out)
    assert str(info.value).startswith(message)
    assert (out == 7).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "avg"}, "mode must be 'sum', 'mean' or 'max', got 'avg'"),
        ({"per_sample_weights": [1.0, 2.0, 3.0]},
         "per_sample_weights only works with mode='sum' (as in torch), got mode='mean'"),
        ({"mode": "sum", "per_sample_weights": [1.0, 2.0]},
         "per_sample_weights must have the input's shape (3,), got (2,)"),
        ({"mode": "sum", "per_sample_weights": [True, False, True]},
         "per_sample_weights must be numbers, got dtype bool"),
        ({"input": [[0, 1]], "offsets": [0]}, "offsets must be None for 2-D input, where each row is a bag"),
        ({"offsets": None}, "offsets are required with 1-D input (or pass a 2-D input, one bag per row)"),
        ({"input": np.zeros((1, 1, 1), np.int64)}, "input must be 2-D, or 1-D with offsets, got 3-D"),
        ({"input": 3}, "input must be 2-D, or 1-D with offsets, got 0-D"),
        ({"input": [True, False, True]}, "indices must be integers, got a bool array"),
        ({"padding_idx": 4}, "padding_idx 4 is out of range for a table of 4 rows"),
        ({"max_norm": 0.0}, "max_norm must be a finite number > 0, got 0.0"),
        ({"norm_type": -1.0}, "norm_type must be > 0, inf or -inf, got -1.0"),
        ({"weight": np.zeros((4, 2), np.int8)}, "weight dtype must be float16, float32 or float64, got int8"),
    ],
)
@pytest.mark.parametrize("as_array", [False, True], ids=["lists", "arrays"])  # int64 arrays take the fast path
def test_bad_arguments(kwargs, message, as_array):
    args = {"input": [0, 1, 2], "weight": np.zeros((4, 2), np.float32), "offsets": [0, 1], **kwargs}
    if as_array:
        args.update((k, np.asarray(args[k])) for k in ("input", "offsets") if args[k] is not None)
    with pytest.raises(EmbedtoolError) as info:
        embedtool.embedding_bag(**args)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_float16_mean_is_rounded_once():
    """The float32 sum is divided, then rounded: a sum beyond float16's range (torch gives inf) still has its mean,
    and a three-entry mean is the correctly rounded one."""
    weight = np.array([[40000.0], [40000.0], [0.1], [0.2], [0.4]], np.float16)
    got = embedtool.embedding_bag([0, 1, 2, 3, 4], weight, [0, 2], mode="mean")
    exact = np.array([[40000.0], [weight[2:].astype(np.float64).mean()]])
    np.testing.assert_array_equal(got, exact.astype(np.float16))


def test_ragged_lists_are_a_clear_error():
    with pytest.raises(InvalidArgumentError, match="^indices must be a rectangular array, got a ragged sequence; for "
                       "bags of different sizes pass flat indices with offsets$"):
        embedtool.embedding_bag([[0, 1], [2]], np.zeros((4, 2), np.float32))


def test_bad_index_names_its_position_and_the_callers_place():
    weight = np.zeros((5, 2), np.float32)
    with pytest.raises(BadIndexError, match=r"^index 5 at position \(1, 0\) is out of range \(the table has 5 rows"):
        embedtool.embedding_bag([[0, 1], [5, 2]], weight)
    with pytest.raises(BadIndexError, match="^index -1 at line 8 is out of range"):
        embedtool.embedding_bag(np.array([0, -1], np.int8), weight, [0], where=lambda i: f"line {i + 7}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("max_norm", [None, 1.0])
@pytest.mark.parametrize("bad", [-1, 300, 2**40])
def test_an_index_outside_the_table_is_named_wherever_it_is(mode, max_norm, bad):
    """The kernels flag an index outside the table as they read it, in a small bag or in a huge one split across
    threads, before reading its row; the error names the first such index."""
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((300, 4)).astype(np.float32)
    lengths = rng.integers(0, 6, size=400)
    lengths[150] = 30_000
    offsets = np.cumsum(lengths) - lengths
    for position in (3, offsets[150] + 20_000):
        indices = rng.integers(0, 300, size=lengths.sum())
        indices[[position, -1]] = bad
        with pytest.raises(BadIndexError, match=f"^index {bad} at position {position} is out of range"):
            embedtool.embedding_bag(indices, weight, offsets, mode, max_norm=max_norm)


@pytest.mark.parametrize("dtype", [np.uint64, np.int32, np.uint8])
def test_an_index_outside_the_table_in_other_integer_dtypes(dtype):
    weight = np.zeros((5, 2), np.float32)
    bad = 2**63 + 5 if dtype == np.uint64 else 7
    with pytest.raises(BadIndexError, match=f"^index {bad} at position 2 is out of range"):
        embedtool.embedding_bag(np.array([0, 1, bad, 3], dtype), weight, [0, 2], mode="sum")


def test_device_cpu_and_bad_device():
    weight = np.eye(3, dtype=np.float32)
    np.testing.assert_array_equal(embedtool.embedding_bag([[0, 1]], weight, mode="sum", device="cpu"), [[1, 1, 0]])
    with pytest.raises(InvalidArgumentError, match="device must be one of auto, cpu, cuda, got 'tpu'"):
        embedtool.embedding_bag([[0, 1]], weight, device="tpu")
