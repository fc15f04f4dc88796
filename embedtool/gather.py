"""``embedding`` on the CPU: the gather ``weight[input]`` with padding and max_norm, on Numba-parallel kernels.

The public wrapper validates and prepares (``core``), the underscored kernels do the work. Kernels copy rows as
unsigned-integer bits of the weight's width, so float16/32/64 share one compiled gather per width and the copy is
bit-exact. max_norm is fused into the one pass over the output (float32/float64): the first position that looks a
row up computes its norm and scale, which the gather applies as it copies; for float16, which numba cannot compute
with, NumPy scales the distinct looked-up rows once and the gather copies either the weight row or its scaled copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import core, small
from .codegen import prefetch, store_fence, stream_line, stream_scaled_line, wide_vectors
from .device import use_gpu
from .shared_kernels import distinct_rows, index_min_max, renormed_rows, row_norm

#: ``_gather_max_norm`` requests the row this many positions ahead: it cannot copy a row before its norm is known, so
#: without the request each new row's wait for memory would stall the copy (2x on a 2M-row table).
_AHEAD = 8
#: Tables smaller than this stay in cache: requesting their rows ahead only adds work.
_PREFETCH_TABLE = 1 << 26
#: Outputs from this size on are written past the cache (``_gather_streaming``). A pipeline batch (about 32 MB) stays
#: below it, so the writer reads it back from cache; glibc's memcpy makes the same switch at 3/4 of the last level.
_STREAM_OUTPUT = 1 << 27
#: ... and only when rows have this many bytes: shorter rows are mostly partial lines, where streaming loses (a
#: 400-byte row: 0.6x to 1.0x the normal gather; 1,200 bytes: 1.4x).
_STREAM_ROW = 1024
#: ... and only from tables up to this size.
_STREAM_TABLE = 1 << 29
#: Rows per block of ``_gather_streaming`` (one fence each).
_STREAM_BLOCK = 256


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


@njit(cache=True, nogil=True, inline="always")
def _before_whole_line(misalign, i, row_bytes, itemsize, dim):
    """How many elements of output row ``i`` come before its first whole 64-byte line (``misalign``: the output's
    address modulo 64)."""
    return min(dim, (64 - (misalign + i * row_bytes) % 64) % 64 // itemsize)


@njit(parallel=True, cache=True, nogil=True)
def _gather_streaming(flat, weight, padding_idx, misalign, out):
    """``_gather`` for outputs too large for the cache: each row's whole 64-byte lines are written with non-temporal
    stores (``misalign``: the output's address modulo 64), the partial lines at its ends with normal ones. Rows go
    in blocks of ``_STREAM_BLOCK``, each ended by a fence, so the output is complete when the kernel returns."""
    n, dim = out.shape
    per_line = 64 // out.itemsize
    row_bytes = dim * out.itemsize
    for b in prange((n + _STREAM_BLOCK - 1) // _STREAM_BLOCK):
        for i in range(b * _STREAM_BLOCK, min(n, (b + 1) * _STREAM_BLOCK)):
            r = np.int64(flat[i])
            if r == padding_idx:
                for j in range(dim):
                    out[i, j] = 0
                continue
            head = _before_whole_line(misalign, i, row_bytes, out.itemsize, dim)
            for j in range(head):
                out[i, j] = weight[r, j]
            j = head
            while j + per_line <= dim:
                stream_line(out, (i, j), weight, (r, j))
                j += per_line
            for k in range(j, dim):
                out[i, k] = weight[r, k]
        store_fence()


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
def _gather_max_norm(flat, weight, padding_idx, max_norm, p, scale, ahead, misalign, out):
    """``_gather`` with max_norm for float32/float64: ``out[i] = weight[r] * scale[r]``.

    ``scale`` (per table row, the weight's dtype) starts as NaN, "not known yet": the first position that looks a row
    up computes its norm and scale, which the row's later positions reuse, so each distinct row is read for its norm
    once, just before it is copied. Two threads meeting a new row at once both compute it and store the same value.
    A scale of 1 leaves a row bit-exact. With ``ahead`` > 0 (large tables), the row that many positions on and its
    scale are requested from memory first. With ``misalign`` >= 0 (the output's address modulo 64) the output is
    streamed as in ``_gather_streaming``, each whole line scaled on its way.
    """
    n, dim = out.shape
    line = 64 // out.itemsize  # elements per cache line
    row_bytes = dim * out.itemsize
    one = scale.dtype.type(1)
    for b in prange((n + _STREAM_BLOCK - 1) // _STREAM_BLOCK):
        wide_vectors()
        for i in range(b * _STREAM_BLOCK, min(n, (b + 1) * _STREAM_BLOCK)):
            if ahead > 0 and i + ahead < n:
                coming = np.int64(flat[i + ahead])
                prefetch(scale, coming)
                for j in range(0, dim, line):
                    prefetch(weight, (coming, j))
            r = np.int64(flat[i])
            if r == padding_idx:
                for j in range(dim):
                    out[i, j] = 0
                continue
            s = scale[r]
            if s != s:
                norm = np.float64(scale.dtype.type(row_norm(weight[r], p)))  # torch compares the norm in the weight's dtype
                s = scale.dtype.type(max_norm / (norm + 1e-7)) if norm > max_norm else one
                scale[r] = s
            if misalign < 0:
                for j in range(dim):
                    out[i, j] = weight[r, j] * s
                continue
            head = _before_whole_line(misalign, i, row_bytes, out.itemsize, dim)
            for j in range(head):
                out[i, j] = weight[r, j] * s
            j = head
            while j + line <= dim:
                stream_scaled_line(out, (i, j), weight, (r, j), s)
                j += line
            for k in range(j, dim):
                out[i, k] = weight[r, k] * s
        if misalign >= 0:
            store_fence()


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, *, out=None, where=None, device=None):
    """Look up rows of ``weight``: ``weight[input]`` with torch's ``F.embedding`` semantics (docs/semantics.md §1).

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
    device : {None, "auto", "cpu", "cuda"}
        None (default) runs where the data is: on the GPU when ``input`` or ``weight`` is a GPU array (numba,
        CuPy, torch CUDA; the result is then a numba device array, with no host round trip), else on the CPU.
        ``auto`` uses the GPU when one is usable, ``cuda`` insists (a clear error without one), ``cpu`` never.

    Returns
    -------
    ndarray of shape ``input.shape + (D,)`` and the weight's dtype (a device array for GPU inputs).

    Examples
    --------
    >>> w = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> embedding([[2, 0]], w, padding_idx=0)
    array([[[4., 5.],
            [0., 0.]]], dtype=float32)
    """
    if small.takes(input, weight, max_norm, device):  # no kernel to load or compile for a few rows
        return small.embedding(input, weight, padding_idx, max_norm, norm_type, out=out, where=where)
    if use_gpu(device, input, weight, out):
        from .gpu import embedding_cuda

        return embedding_cuda(input, weight, padding_idx, max_norm, norm_type, out=out, where=where)
    weight = core.check_weight(weight)
    num_embeddings, dim = weight.shape
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    max_norm, norm_type = core.check_max_norm(max_norm, norm_type)
    idx = core.as_indices(input, num_embeddings, index_min_max, where)
    result = core.output_array(idx.shape + (dim,), weight.dtype, out)
    if idx.size == 0 or dim == 0:
        return result
    flat = idx.reshape(-1)
    if max_norm is not None:
        flat, weight, pad = distinct_rows(flat, weight, pad)
    bits = core.BITS_DTYPE[weight.dtype.itemsize]
    out2d = result.reshape(flat.shape[0], dim).view(bits)
    if max_norm is None and _streams(out2d, weight):
        _gather_streaming(flat, weight.view(bits), pad, out2d.ctypes.data % 64, out2d)
    elif max_norm is None:
        _gather(flat, weight.view(bits), pad, out2d)
    elif weight.dtype in (np.float32, np.float64):
        scale = np.full(weight.shape[0], np.nan, weight.dtype)
        ahead = _AHEAD if weight.nbytes >= _PREFETCH_TABLE else 0
        misalign = out2d.ctypes.data % 64 if _streams(out2d, weight) else -1
        _gather_max_norm(flat, weight, pad, max_norm, norm_type, scale, ahead, misalign,
                         result.reshape(flat.shape[0], dim))
    else:  # float16 or non-native byte order: numba cannot compute with these, NumPy scales the rows
        slot, scaled = renormed_rows(flat, weight, pad, max_norm, norm_type)
        _gather_renormed(flat, weight.view(bits), pad, slot, scaled.view(bits), out2d)
    return result


def _streams(out2d: np.ndarray, weight: np.ndarray) -> bool:
    """Whether the gather writes ``out2d`` with non-temporal stores: only an output larger than the cache (read
    back soon, a cached one is faster), with rows of whole lines mostly, elements aligned (the lines then are), and a
    table that the cache can mostly hold (rows read from memory compete with the streamed lines for the same line
    buffers: a 2.4 GB table, read at random, came out at 0.9x)."""
    return (out2d.nbytes >= _STREAM_OUTPUT and out2d.shape[1] * out2d.itemsize >= _STREAM_ROW
            and out2d.flags.aligned and weight.nbytes <= _STREAM_TABLE)


