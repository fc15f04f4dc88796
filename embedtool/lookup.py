"""``embedding``: the lookup ``weight[input]`` with padding and max_norm, on Numba-parallel CPU kernels.

The public wrapper validates and prepares (``core``), the underscored kernels do the work. Kernels copy rows as
unsigned-integer bits of the weight's width, so float16/32/64 share one compiled gather per width and the copy is
bit-exact. max_norm is fused into the one pass over the output: the rows that need scaling are found and scaled once
per distinct row (a few rows, before the gather), and the gather reads each output row either from the weight or
from that small table of scaled rows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import core

_SCAN_CHUNK = 1 << 16


@njit(parallel=True, cache=True, nogil=True)
def _min_max(flat):
    """Smallest and largest index (as int64: uint64 values >= 2**63 come out negative, hence invalid)."""
    n = flat.shape[0]
    nchunks = (n + _SCAN_CHUNK - 1) // _SCAN_CHUNK
    los = np.empty(nchunks, np.int64)
    his = np.empty(nchunks, np.int64)
    for c in prange(nchunks):
        start = c * _SCAN_CHUNK
        stop = min(n, start + _SCAN_CHUNK)
        lo = np.int64(flat[start])
        hi = lo
        for i in range(start + 1, stop):
            v = np.int64(flat[i])
            lo = min(lo, v)
            hi = max(hi, v)
        los[c] = lo
        his[c] = hi
    return los.min(), his.max()


@njit(parallel=True, cache=True, nogil=True)
def _gather(flat, weight, padding_idx, out):
    """``out[i] = weight[flat[i]]``, zeros where ``flat[i] == padding_idx``. Bits in, bits out."""
    dim = weight.shape[1]
    for i in prange(flat.shape[0]):
        r = np.int64(flat[i])
        if r == padding_idx:
            for j in range(dim):
                out[i, j] = 0
        else:
            for j in range(dim):
                out[i, j] = weight[r, j]


@njit(parallel=True, cache=True, nogil=True)
def _gather_renormed(flat, weight, padding_idx, slot, scaled, out):
    """``_gather`` where a row with ``slot[r] >= 0`` is read from ``scaled[slot[r]]`` instead of the weight."""
    dim = weight.shape[1]
    for i in prange(flat.shape[0]):
        r = np.int64(flat[i])
        if r == padding_idx:
            for j in range(dim):
                out[i, j] = 0
        else:
            s = slot[r]
            if s < 0:
                for j in range(dim):
                    out[i, j] = weight[r, j]
            else:
                for j in range(dim):
                    out[i, j] = scaled[s, j]


@njit(parallel=True, cache=True, nogil=True)
def _mark_rows(flat, padding_idx, mark):
    """Set ``mark[r] = 1`` for every looked-up, non-padding row (read before write: hot rows stay shared)."""
    for i in prange(flat.shape[0]):
        r = np.int64(flat[i])
        if r != padding_idx and mark[r] == 0:
            mark[r] = 1


@njit(parallel=True, cache=True, nogil=True)
def _row_norms(rows, p):
    """``vector_norm(row, p)`` of each row of a float32/float64 matrix, accumulated in float64."""
    n, dim = rows.shape
    norms = np.empty(n, np.float64)
    for k in prange(n):
        if p == 2.0:
            acc = 0.0
            for j in range(dim):
                x = np.float64(rows[k, j])
                acc += x * x
            norms[k] = math.sqrt(acc)
        elif p == 1.0:
            acc = 0.0
            for j in range(dim):
                acc += abs(np.float64(rows[k, j]))
            norms[k] = acc
        elif p == math.inf:
            acc = 0.0
            for j in range(dim):
                acc = max(acc, abs(np.float64(rows[k, j])))
            norms[k] = acc
        elif p == -math.inf:
            acc = math.inf
            for j in range(dim):
                acc = min(acc, abs(np.float64(rows[k, j])))
            norms[k] = acc
        else:
            acc = 0.0
            for j in range(dim):
                acc += abs(np.float64(rows[k, j])) ** p
            norms[k] = acc ** (1.0 / p)
    return norms


def index_min_max(flat: np.ndarray) -> tuple[int, int]:
    """The parallel index scan, for ``core.as_indices``."""
    return _min_max(flat)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, *, out=None, where=None):
    """Look up rows of ``weight``: ``weight[input]`` with torch's ``F.embedding`` semantics (see SEMANTICS.md).

    Parameters
    ----------
    input : array_like of int
        Indices of any shape and any integer dtype (integral floats accepted, bool rejected), ``0 <= i < N``.
    weight : ndarray, shape (N, D), float16/float32/float64
        The table. Never modified; may be a read-only memory map (it is not copied).
    padding_idx : int, optional
        Positions whose index equals it (negative counts from the end) embed to zeros.
    max_norm : float, optional
        Rows whose ``norm_type``-norm exceeds it are scaled by ``max_norm / (norm + 1e-7)`` in the output.
    norm_type : float
        The p of the norm: > 0, or inf.
    out : ndarray, optional
        A C-contiguous array of shape ``input.shape + (D,)`` and the weight's dtype to write into (reusing it
        avoids the page faults of a fresh allocation).
    where : callable, optional
        ``where(flat_position) -> str`` names a bad index's position in the caller's terms (file line, row...).

    Returns
    -------
    ndarray of shape ``input.shape + (D,)`` and the weight's dtype.

    Examples
    --------
    >>> w = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> embedding([[2, 0]], w, padding_idx=0)
    array([[[4., 5.],
            [0., 0.]]], dtype=float32)
    """
    weight = core.check_weight(weight)
    num_embeddings, dim = weight.shape
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    max_norm, norm_type = core.check_max_norm(max_norm, norm_type)
    idx = core.as_indices(input, num_embeddings, index_min_max, where)
    result = core.output_array(idx.shape + (dim,), weight.dtype, out)
    if idx.size == 0 or dim == 0:
        return result
    flat = idx.reshape(-1)
    bits = core.BITS_DTYPE[weight.dtype.itemsize]
    out2d = result.reshape(flat.shape[0], dim).view(bits)
    if max_norm is None:
        _gather(flat, weight.view(bits), pad, out2d)
    else:
        slot, scaled = renormed_rows(flat, weight, pad, max_norm, norm_type)
        _gather_renormed(flat, weight.view(bits), pad, slot, scaled.view(bits), out2d)
    return result


def renormed_rows(flat, weight, pad, max_norm, norm_type):
    """Find the looked-up rows whose norm exceeds ``max_norm`` and scale them, once per distinct row.

    Returns ``slot`` (int32 per table row: -1, or the row's place in ``scaled``) and ``scaled`` (weight dtype). The
    norm is rounded to the weight dtype before the strict ``>`` test and the scale is ``dtype(max_norm / (norm +
    1e-7))``, as torch's ``embedding_renorm_`` does; a float16 norm that overflows becomes inf and the row zeros.
    """
    num_embeddings = weight.shape[0]
    mark = np.zeros(num_embeddings, np.uint8)
    _mark_rows(flat, pad, mark)
    rows = np.flatnonzero(mark)
    values = weight[rows]
    if values.dtype not in (np.float32, np.float64) or not values.dtype.isnative:
        values = values.astype(np.float32 if values.dtype.itemsize <= 4 else np.float64)
    with np.errstate(over="ignore"):
        norms = _row_norms(values, norm_type).astype(weight.dtype).astype(np.float64)
    exceed = norms > max_norm
    slot = np.full(num_embeddings, -1, np.int32)
    slot[rows[exceed]] = np.arange(int(exceed.sum()), dtype=np.int32)
    scale = (max_norm / (norms[exceed] + 1e-7)).astype(weight.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.ascontiguousarray(weight[rows[exceed]] * scale[:, None], dtype=weight.dtype)
    return slot, scaled
