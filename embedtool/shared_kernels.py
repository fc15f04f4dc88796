"""CPU kernels shared by embedding, embedding_bag and the GPU path: the index range scan, max_norm row scaling, float16 rounding."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .codegen import HAS_F16C, vector_copy, wide_vectors

_SCAN_CHUNK = 1 << 16
#: Below this many indices one thread scans them faster than waking the others (about 40 us).
_PARALLEL_SCAN = 1 << 20


@njit(cache=True, nogil=True)
def _span(flat, start, stop):
    """Smallest and largest of ``flat[start:stop]`` (as int64: uint64 values >= 2**63 come out negative, hence
    invalid)."""
    wide_vectors()
    part = flat[start:stop]  # indexed from 0 up: no negative-index check per element, so the loop vectorises
    lo = np.int64(part[0])
    hi = lo
    for i in range(1, part.shape[0]):
        v = np.int64(part[i])
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@njit(parallel=True, cache=True, nogil=True)
def _min_max(flat):
    """``_span`` of all of ``flat``, one chunk per task."""
    n = flat.shape[0]
    nchunks = (n + _SCAN_CHUNK - 1) // _SCAN_CHUNK
    los = np.empty(nchunks, np.int64)
    his = np.empty(nchunks, np.int64)
    for c in prange(nchunks):
        los[c], his[c] = _span(flat, c * _SCAN_CHUNK, min(n, (c + 1) * _SCAN_CHUNK))
    return los.min(), his.max()


@njit(parallel=True, cache=True, nogil=True)
def _mark_rows(flat, padding_idx, mark):
    """Set ``mark[r] = 1`` for every looked-up, non-padding row (read before write: hot rows stay shared)."""
    for i in prange(flat.shape[0]):
        r = np.int64(flat[i])
        if r != padding_idx and mark[r] == 0:
            mark[r] = 1


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def row_norm(row, p):
    """``vector_norm(row, p)`` of a float32/float64 row, accumulated in float64.

    The sums may be reordered (``reassoc``), so they vectorise; NaN and inf keep their meaning.
    """
    dim = row.shape[0]
    if p == 2.0:
        acc = 0.0
        for j in range(dim):
            x = np.float64(row[j])
            acc += x * x
        return math.sqrt(acc)
    if p == 1.0:
        acc = 0.0
        for j in range(dim):
            acc += abs(np.float64(row[j]))
        return acc
    if p == math.inf:  # a NaN makes the norm NaN, as in torch (max and min would skip it): docs/semantics.md §1
        acc = 0.0
        for j in range(dim):
            x = abs(np.float64(row[j]))
            if x > acc or x != x:
                acc = x
        return acc
    if p == -math.inf:
        acc = math.inf
        for j in range(dim):
            x = abs(np.float64(row[j]))
            if x < acc or x != x:
                acc = x
        return acc
    acc = 0.0
    for j in range(dim):
        acc += abs(np.float64(row[j])) ** p
    return acc ** (1.0 / p)


@njit(parallel=True, cache=True, nogil=True)
def _row_norms(matrix, rows, p):
    """``row_norm(matrix[r], p)`` for each r in ``rows``."""
    norms = np.empty(rows.shape[0], np.float64)
    for k in prange(rows.shape[0]):
        wide_vectors()
        norms[k] = row_norm(matrix[rows[k]], p)
    return norms


#: max_norm's state per table row (bytes, at most: a uint8 mark and an int32 slot, or a float64 scale) and the most
#: of it ``distinct_rows`` allows beside the output's size before it re-indexes onto the rows looked up.
_STATE_BYTES, _MAX_STATE = 8, 64 << 20

#: Elements per task of ``_round_to_half``.
_HALF_BLOCK = 1 << 16


@njit(inline="always")
def round_to_half(bits, values):
    """``bits[i]`` = the float16 bits of ``values[i]`` (1-D float32), rounded to nearest even, 16 at a time."""
    j, n = 0, values.shape[0]
    while j + 16 <= n:
        vector_copy(bits, j, values, j, 16)
        j += 16
    while j < n:
        vector_copy(bits, j, values, j, 1)
        j += 1


@njit(parallel=True, cache=True, nogil=True)
def _round_to_half(values, bits):
    """``round_to_half`` over flat arrays, a block per task."""
    n = values.shape[0]
    for block in prange(-(-n // _HALF_BLOCK)):
        start, stop = block * _HALF_BLOCK, min(n, (block + 1) * _HALF_BLOCK)
        round_to_half(bits[start:stop], values[start:stop])


def to_float16(values: np.ndarray) -> np.ndarray:
    """``values.astype(np.float16)`` (values beyond float16's range become inf, silently either way), for float32
    arrays in vector registers on all cores (F16C): NumPy's cast goes one element at a time, about 3 ns each, which
    for ``--output-dtype float16`` cost more than the gather."""
    if values.dtype != np.float32 or not HAS_F16C or not values.flags.c_contiguous:
        with np.errstate(over="ignore"):
            return values.astype(np.float16)
    result = np.empty(values.shape, np.float16)
    _round_to_half(values.reshape(-1), result.view(np.uint16).reshape(-1))
    return result


def index_min_max(flat: np.ndarray) -> tuple[int, int]:
    """The index scan for ``core.as_indices``: parallel for large inputs, where it pays for waking the threads."""
    return _min_max(flat) if flat.shape[0] >= _PARALLEL_SCAN else _span(flat, 0, flat.shape[0])


def distinct_rows(flat: np.ndarray, weight: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(flat, weight, pad)`` for max_norm, whose state is per table row (a scale, or a mark and a slot): as given
    while that state is small, else re-indexed onto a table of the distinct looked-up rows (copied), so that 3 ids
    from a 2**30-row table cost three rows, not gigabytes. The scaled rows, hence the output, are the same."""
    if weight.shape[0] * _STATE_BYTES <= max(_MAX_STATE, flat.shape[0] * weight.shape[1] * weight.itemsize):
        return flat, weight, pad
    rows, local = np.unique(flat, return_inverse=True)
    at = int(np.searchsorted(rows, pad))
    return local.astype(np.int64, copy=False), np.ascontiguousarray(weight[rows]), (
        at if pad >= 0 and at < rows.shape[0] and rows[at] == pad else -1
    )


def _looked_up_rows(flat, num_embeddings: int, pad: int) -> np.ndarray:
    """The distinct non-padding rows that ``flat`` looks up, sorted."""
    mark = np.zeros(num_embeddings, np.uint8)
    _mark_rows(flat, pad, mark)
    return np.flatnonzero(mark)


def _exceeding(norms: np.ndarray, dtype, max_norm: float):
    """torch's test and scale: the norm rounded to the weight dtype, strict ``>``, ``dtype(max_norm/(norm+1e-7))``."""
    with np.errstate(over="ignore"):
        norms = norms.astype(dtype).astype(np.float64)
    exceed = norms > max_norm
    return exceed, (max_norm / (norms[exceed] + 1e-7)).astype(dtype)


def renormed_rows(flat, weight, pad, max_norm, norm_type):
    """For float16 (or non-native) weights: the looked-up rows that max_norm changes, scaled once per distinct row.

    Returns ``slot`` (int32 per table row: -1, or the row's place in ``scaled``) and ``scaled`` (weight dtype). A
    float16 norm that overflows becomes inf, so its row becomes zeros, as in torch.
    """
    rows = _looked_up_rows(flat, weight.shape[0], pad)
    wide = np.asarray(weight[rows], np.float32 if weight.dtype.itemsize <= 4 else np.float64)
    exceed, factors = _exceeding(_row_norms(wide, np.arange(rows.shape[0]), norm_type), weight.dtype, max_norm)
    slot = np.full(weight.shape[0], -1, np.int32)
    slot[rows[exceed]] = np.arange(factors.shape[0], dtype=np.int32)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.ascontiguousarray(weight[rows[exceed]] * factors[:, None], dtype=weight.dtype)
    return slot, scaled
