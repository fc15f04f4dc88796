"""``embedding_bag``: the sum, mean or maximum of looked-up rows per bag, on Numba-parallel CPU kernels.

The public wrapper checks the arguments (``core``; arguments already in the kernel's form skip straight to it,
``_ready``) and makes one compiled call: the kernel checks the offsets and plans the work, without copying them
(``_layout``), then does the work in one pass over the entries: an index outside the table is flagged before its row
is read (``core`` then names it), padding is skipped, max_norm reads rows from the small table of rows scaled once
each (``shared_kernels.renormed_rows``), per-sample weights multiply as the rows are added. Sums accumulate in float32 for
float16/float32 tables (as torch does) and in float64 for float64 tables, entry by entry in order; sums and maxima
alike are held in vector registers, a column block at a time: the kernel is compiled once per block width and mode
(``_pool_kernel``), as fbgemm's are. Rows are added, compared and written in whole vectors (``codegen.vector_*``):
left to LLVM, blocks of up to 32 columns became scalar code (16 or 32 columns ran 0.7x and 0.4-0.55x torch's sums).

Work is balanced by entries, not by bags: ``_plan`` cuts the bags into tasks of about equal work, and a bag with
more entries than a task is split across several tasks that reduce into partial rows; ``_combine`` then folds each
such bag's partials in entry order. So one huge bag among many small ones keeps every thread busy.

float16 tables are read as their uint16 bits (numba cannot compute with float16) and widened to float32 in vector
registers as they are loaded (F16C), or, on CPUs without it, decoded through a 65536-entry table; their float32
results are rounded to float16 once, by NumPy.
"""

from __future__ import annotations

import functools
import math

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from . import core, small
from .codegen import (HAS_F16C, prefetch, stack_array, vector_add, vector_copy, vector_divide, vector_fill,
                      vector_max, wide_vectors)
from .device import use_gpu
from .errors import InvalidArgumentError
from .shared_kernels import distinct_rows, index_min_max, renormed_rows, round_to_half

_SUM, _MEAN, _MAX = range(3)
_INT64, _FLOAT32, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.float64)
_OK, _BAD_INDEX, _BAD_OFFSETS = range(3)  # what a pooling kernel returns

#: Least work per task (entries + bags): below it, waking a thread costs more than it saves.
_MIN_TASK = 4096
#: Tasks to cut the bags into: 8 per thread, as tasks are cut at bag boundaries and more, smaller ones even out the
#: threads' shares. Planned for numba's largest thread count (``numba.get_num_threads()`` cannot be compiled into a
#: cached kernel, and from Python costs tens of microseconds cold); with fewer threads each runs more tasks.
_TASKS = numba.config.NUMBA_NUM_THREADS * 8
#: Bags of at most this many entries are never split across tasks: each is summed in one pass, in entry order (so a
#: float32 sum rounds as a sequential loop's does; fastText's subword vectors rely on it).
WHOLE_BAG = _MIN_TASK // 2


def _register_bytes() -> int:
    """The accumulator kept in vector registers, in bytes: all 16 of AVX2's 32-byte registers (as fbgemm's AVX2
    kernels hold), or 24 of AVX-512's 32 64-byte ones. A wider accumulator spills to the stack, and every addition
    then also loads and stores it: sums at D=300 on an AVX2 CPU, against torch in one process, ran 0.65-0.69x with
    1536-byte blocks and 0.83-1.00x with 512-byte ones (the entry loop of the time)."""
    return 1536 if llvm.get_host_cpu_features().get("avx512f") else 512


#: Wider tables are summed in column blocks of at most this many bytes (``_column_blocks``).
_BLOCK_BYTES = _register_bytes()
#: The pooling kernel asks for the row this many entries ahead, up to this many of its cache lines: rows of a large
#: table come from memory, and waiting for each in turn would leave the additions idle. Measured against torch with
#: cold caches (as after the previous batch), all of a 400-byte row 32 ahead ran 1.04-1.09x, its first line
#: 16 ahead 0.77-0.80x; with warm caches both ran alike. More lines of a wider row cost more than they saved.
_AHEAD = 32
_AHEAD_LINES = 8

#: float16 bits -> exact float32 value.
_HALF = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _value(table, lut, index):
    """``table[index]``; float16 tables come as uint16 bits and are decoded through ``lut``. For kernels only."""


@overload(_value, inline="always")
def _value_impl(table, lut, index):
    if table.dtype == types.uint16:
        return lambda table, lut, index: lut[table[index]]
    return lambda table, lut, index: table[index]


@njit(cache=True, nogil=True, inline="always")
def _bound(offsets, n, b):
    """Where bag ``b`` starts (bag ``b - 1`` ends): ``offsets[b]``, or ``n`` past the last offset."""
    return offsets[b] if b < offsets.shape[0] else n


@njit(cache=True, nogil=True)
def _bag_at(offsets, n, nbags, target):
    """The bag whose work (entries, plus one per bag) holds position ``target``: the last ``b`` with
    ``bound(b) + b <= target``, by bisection (bounds checked already, so that sum only grows)."""
    lo, hi = 0, nbags - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _bound(offsets, n, mid) + mid <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True, nogil=True)
def _plan(offsets, n, nbags, ntasks):
    """Cut bags ``0:nbags`` (bag ``b`` is entries ``bound(b):bound(b + 1)`` of ``n``) into about ``ntasks`` tasks of
    equal work (entries, plus one per bag for writing it).

    Returns ``tasks``, rows ``(lo, hi, piece)``: bags ``lo:hi`` when ``piece < 0``, otherwise entries ``lo:hi`` of a
    huge bag, reduced into partial row ``piece``; and ``huge``, rows ``(bag, first_piece, stop_piece)``. A bag is
    huge when it has more entries than a task; its pieces are consecutive, in entry order. The cuts are found by
    bisection, at every multiple of the task size, so planning reads a few hundred bounds rather than every one.
    """
    total = n + nbags
    size = max(_MIN_TASK, -(-total // ntasks))
    tasks = np.empty((4 * (total // size) + 4, 3), np.int64)
    huge = np.empty((total // size + 1, 3), np.int64)
    ntask = nhuge = npiece = 0
    first = 0  # the first bag not yet in a task
    for t in range(1, -(-total // size)):
        b = _bag_at(offsets, n, nbags, t * size)
        if b < first:  # a huge bag already split, or a cut already made after this bag
            continue
        start, stop = _bound(offsets, n, b), _bound(offsets, n, b + 1)
        if stop - start > size:
            if first < b:
                tasks[ntask] = (first, b, -1)
                ntask += 1
            k = -(-(stop - start) // size)
            huge[nhuge] = (b, npiece, npiece + k)
            nhuge += 1
            for p in range(k):
                tasks[ntask] = (start + (stop - start) * p // k, start + (stop - start) * (p + 1) // k, npiece)
                ntask += 1
                npiece += 1
        else:
            tasks[ntask] = (first, b + 1, -1)
            ntask += 1
        first = b + 1
    if first < nbags:
        tasks[ntask] = (first, nbags, -1)
        ntask += 1
    return tasks[:ntask], huge[:nhuge]


@njit(cache=True, nogil=True)
def _layout(offsets, n, include_last_offset, ntasks):
    """Check int64 ``offsets`` into ``n`` entries (``core.bag_bounds``'s rules) and ``_plan`` the work, in one
    compiled call: ``(nbags, tasks, huge)``, with ``nbags < 0`` when an offset breaks a rule (``core.bag_bounds``
    then says which). The offsets are read once, in a loop LLVM vectorises, and not copied: with the caches cold,
    as after the previous batch, a copy, a checking loop that stopped at the first fault and a plan visiting every
    bag took 95 us here for 16,384 bags, all on one thread while the others waited (pooling them takes 0.4-1.3 ms
    on 16 cores); now 57 us, most of it the cold read of the offsets.
    """
    m = offsets.shape[0]
    nbags = m - 1 if include_last_offset else m
    if m and (offsets[0] != 0 or offsets[m - 1] > n or (include_last_offset and offsets[m - 1] != n)):
        nbags = -1
    drops = 0
    for b in range(1, m):
        drops += offsets[b] < offsets[b - 1]
    if drops or nbags < 0:
        return -1, np.empty((0, 3), np.int64), np.empty((0, 3), np.int64)
    tasks, huge = _plan(offsets, n, nbags, ntasks)
    return nbags, tasks, huge


@njit(cache=True, nogil=True)
def _prepare(flat, offsets, include_last, ntasks, out):
    """What a pooling kernel does before its parallel loop: ``_layout``, and the partial rows (and their entry
    counts) of the huge bags' pieces. Done inside the kernel: each call from Python costs tens of microseconds when
    the previous batch has flushed the caches (the wrapper, ``_layout`` and numba's ``get_num_threads`` cost 10-20%
    of a 1 ms call then)."""
    nbags, tasks, huge = _layout(offsets, flat.shape[0], include_last, ntasks)
    npieces = huge[-1, 2] if huge.shape[0] else 0
    return nbags, tasks, huge, np.empty((npieces, out.shape[1]), out.dtype), np.empty(npieces, np.int64)


def _add_row(acc, width, rows, lut, at, c0, psw, k):
    """``acc += rows[at, c0:c0 + width]``, each term times ``psw[k]`` first unless ``psw`` is None. For kernels
    only."""


@overload(_add_row, inline="always", prefer_literal=True)
def _add_row_impl(acc, width, rows, lut, at, c0, psw, k):
    if not isinstance(width, types.IntegerLiteral):  # numba retries with the literal
        return None
    n = width.literal_value
    weighted = not isinstance(psw, types.NoneType)
    if _vectors(rows, lut):
        if weighted:
            return lambda acc, width, rows, lut, at, c0, psw, k: vector_add(acc, 0, rows, (at, c0), n, psw[k])
        return lambda acc, width, rows, lut, at, c0, psw, k: vector_add(acc, 0, rows, (at, c0), n, None)

    def elements(acc, width, rows, lut, at, c0, psw, k):
        for j in range(n):
            v = _value(rows, lut, (at, c0 + np.uint64(j)))
            acc[j] += psw[k] * v if weighted else v

    return elements


def _fold_max(acc, width, rows, lut, at, c0, first):
    """``acc = rows[at, c0:c0 + width]`` for a bag's first row, else the element-wise maximum: a value wins only if
    strictly greater (one ``vmaxps`` per vector), so a NaN already in ``acc`` stays and later NaNs are ignored. For
    kernels only."""


@overload(_fold_max, inline="always", prefer_literal=True)
def _fold_max_impl(acc, width, rows, lut, at, c0, first):
    if not isinstance(width, types.IntegerLiteral):  # numba retries with the literal
        return None
    n = width.literal_value
    if _vectors(rows, lut):

        def vectors(acc, width, rows, lut, at, c0, first):
            if first:
                vector_copy(acc, 0, rows, (at, c0), n)
            else:
                vector_max(acc, 0, rows, (at, c0), n)

        return vectors

    def elements(acc, width, rows, lut, at, c0, first):
        if first:
            for j in range(n):
                acc[j] = _value(rows, lut, (at, c0 + np.uint64(j)))
        else:
            for j in range(n):
                v = _value(rows, lut, (at, c0 + np.uint64(j)))
                if v > acc[j]:
                    acc[j] = v

    return elements


def _vectors(rows, lut) -> bool:
    """Whether ``rows`` (a numba array type) can be read in whole vectors: C-contiguous, and floats or float16 bits
    on a CPU that widens them in registers (elsewhere those are decoded one by one through ``lut``)."""
    return rows.layout == "C" and (isinstance(lut, types.NoneType) or HAS_F16C)


@functools.cache
def _pool_kernel(width: int, itemsize: int, maximum: bool):
    """The parallel pooling kernel for column blocks of ``width``, tables of ``itemsize``-byte elements and sums (and
    means) or maxima (compiled once per triple and argument types, cached on disk).

    Lays out the bags (``_prepare``), runs the tasks of ``_plan`` (each writes its own bags or partial row:
    race-free), then folds the huge bags' pieces (``_combine``). For each bag and each column block (``starts``)
    the accumulator is a stack array of the constant ``width``, which LLVM keeps in vector registers: a row costs
    one load and one addition (or ``vmaxps``) per vector (``_add_row``, ``_fold_max``), and its block's first
    ``lines`` cache lines were requested ``_AHEAD`` entries before. ``psw`` (per entry) is None without per-sample
    weights, ``slot`` (per table row) and ``scaled`` None without max_norm, ``lut`` None but for float16 tables:
    numba compiles those branches out, so a plain sum's loop holds only the prefetches, the check of the index and
    the additions. Indices are used as unsigned once checked, so numba adds no negative-index fix-up per access.

    In max mode a later value wins only if strictly greater. A whole bag's first counted row starts the maximum (so
    a NaN there stays, as in torch); a piece of a bag starts at -inf, so NaNs never win there (``_combine`` puts the
    first row's back). Returns ``_OK``, ``_BAD_OFFSETS`` (out untouched) or ``_BAD_INDEX`` (an index lies outside
    the table: its entry is skipped, the output is garbage).
    """
    per_line = 64 // itemsize
    lines = min(_AHEAD_LINES, -(-width // per_line))

    @njit(parallel=True, cache=True, nogil=True)
    def pool(flat, offsets, include_last, ntasks, starts, table, lut, pad, psw, slot, scaled, mean, out, half):
        nbags, tasks, huge, partial, counts = _prepare(flat, offsets, include_last, ntasks, out)
        if nbags < 0:
            return _BAD_OFFSETS
        n = flat.shape[0]
        nrows = np.uint64(table.shape[0])
        last = flat.shape[0] - 1
        bad = np.empty(tasks.shape[0], np.bool_)  # np.zeros would be a parallel loop of its own: one more wake-up
        for t in prange(tasks.shape[0]):
            bad[t] = False
            wide_vectors()
            acc = stack_array(width, out)
            lo, hi, piece = tasks[t, 0], tasks[t, 1], tasks[t, 2]
            for i in range(1 if piece >= 0 else hi - lo):
                start, stop = (lo, hi) if piece >= 0 else (_bound(offsets, n, lo + i), _bound(offsets, n, lo + i + 1))
                for c in range(starts.shape[0]):
                    c0 = starts[c]
                    vector_fill(acc, 0, width, -math.inf if maximum else 0)
                    skipped = 0
                    for k in range(start, stop):
                        ahead = flat[np.uint64(min(k + _AHEAD, last))]
                        for q in range(lines):
                            prefetch(table, (ahead, c0 + np.uint64(q * per_line)))
                        r = flat[np.uint64(k)]
                        if np.uint64(r) >= nrows or r == pad:  # negative indices too
                            bad[t] |= np.uint64(r) >= nrows
                            skipped += 1
                            continue
                        row = np.uint64(r)
                        s = -1 if slot is None else slot[row]  # max_norm: the row's place in scaled, if changed
                        if maximum:
                            first = piece < 0 and k - start == skipped  # the bag's first counted row
                            if s < 0:
                                _fold_max(acc, width, table, lut, row, c0, first)
                            else:
                                _fold_max(acc, width, scaled, lut, np.uint64(s), c0, first)
                        elif s < 0:
                            _add_row(acc, width, table, lut, row, c0, psw, k)
                        else:
                            _add_row(acc, width, scaled, lut, np.uint64(s), c0, psw, k)
                    count = stop - start - skipped
                    if piece >= 0:
                        counts[piece] = count
                        vector_copy(partial, (piece, c0), acc, 0, width)
                        continue
                    if count == 0:  # an empty or all-padding bag: zeros in every mode
                        vector_fill(acc, 0, width, 0)
                    elif mean and count > 1:
                        vector_divide(acc, 0, width, out.dtype.type(count))  # an int64 count: a float64 division
                    if half is None:
                        vector_copy(out, (lo + i, c0), acc, 0, width)
                    else:  # rounded to float16 as it is stored
                        vector_copy(half, (lo + i, c0), acc, 0, width)
        if bad.any():
            return _BAD_INDEX
        _combine(flat, offsets, huge, table, lut, pad, slot, scaled, _MAX if maximum else _MEAN if mean else _SUM,
                 partial, counts, out, half)
        return _OK

    return pool


@functools.cache  # the same few widths every call: no list and array to build each time
def _column_blocks(dim: int, itemsize: int) -> tuple[int, np.ndarray]:
    """The block width and starts covering ``dim`` columns: one block when its accumulator fits in registers.

    Wider tables are cut into as few blocks of at most ``_BLOCK_BYTES`` as cover them, of equal width (300 float32
    columns: three of 100, not 128, 128 and 44); where they do not divide evenly the last one is shifted back to end
    at the edge (its columns overlapping the one before are summed twice, in the same order, so they come out the
    same).
    """
    width = -(-dim // -(-dim * itemsize // _BLOCK_BYTES))
    starts = list(range(0, dim - width + 1, width))
    if starts[-1] + width < dim:
        starts.append(dim - width)
    return width, np.array(starts, np.uint64)


@njit(cache=True, nogil=True)
def _combine(flat, offsets, huge, table, lut, pad, slot, scaled, mode, partial, counts, out, half):
    """Write each huge bag from its pieces' partial rows, folded in entry order (and rounded into ``half``, unless
    it is None)."""
    for h in range(huge.shape[0]):
        b, first, stop = huge[h, 0], huge[h, 1], huge[h, 2]
        n = counts[first:stop].sum()
        # The bag's first counted entry: in a sequential maximum, a NaN in its row stays.
        k, end = _bound(offsets, flat.shape[0], b), _bound(offsets, flat.shape[0], b + 1)
        while k < end - 1 and flat[k] == pad:
            k += 1
        r = flat[k]
        s = -1 if slot is None else slot[r]
        for j in range(out.shape[1]):
            v = partial[first, j]
            for p in range(first + 1, stop):
                if mode != _MAX:
                    v += partial[p, j]
                elif partial[p, j] > v:
                    v = partial[p, j]
            if mode == _MAX:
                x = _value(table, lut, (r, j)) if s < 0 else _value(scaled, lut, (s, j))
                v = x if x != x else v
            out[b, j] = 0 if n == 0 else v / n if mode == _MEAN else v
        if half is not None:
            round_to_half(half[b], out[b])


def embedding_bag(
    input,
    weight,
    offsets=None,
    mode="mean",
    per_sample_weights=None,
    padding_idx=None,
    include_last_offset=False,
    max_norm=None,
    norm_type=2.0,
    *,
    out=None,
    where=None,
    device=None,
):
    """Pool looked-up rows of ``weight`` per bag, with torch's ``F.embedding_bag`` semantics (docs/semantics.md §2).

    Parameters
    ----------
    input : array_like of int
        2-D ``(B, L)``: each row is a bag (``offsets`` must be None). 1-D: the entries of all bags, cut by
        ``offsets``. Any integer dtype (integral floats accepted, bool rejected), ``0 <= i < N``.
    weight : ndarray, shape (N, D), float16/float32/float64
        The table. Never modified, not copied (a read-only memory map is fine).
    offsets : array_like of int, optional
        With 1-D input, where each bag starts: bag ``b`` is ``input[offsets[b]:offsets[b + 1]]``, the last one ends
        at ``len(input)``. Must start at 0, not decrease and not exceed ``len(input)``.
    mode : {"mean", "sum", "max"}
        The reduction. A bag that is empty or only padding gives zeros in every mode.
    per_sample_weights : array_like of numbers, optional
        One weight per entry (the input's shape), multiplying its row; only with ``mode="sum"``, as in torch. Used
        in the accumulator's precision (float32, float64 for float64 tables), whatever their dtype.
    padding_idx : int, optional
        Entries equal to it (negative counts from the end) are skipped and not counted in the mean.
    include_last_offset : bool
        ``offsets`` has ``B + 1`` entries (CSR), the last of which must be ``len(input)``.
    max_norm : float, optional
        Each entry's row whose ``norm_type``-norm exceeds it is scaled by ``max_norm / (norm + 1e-7)`` first.
    norm_type : float
        The p of the norm: > 0, or inf.
    out : ndarray, optional
        A C-contiguous ``(B, D)`` array of the weight's dtype to write into (reused across batches, it avoids the
        page faults of a fresh allocation). Indices are checked as the kernels read them, so after a
        ``BadIndexError`` it holds partial results.
    where : callable, optional
        ``where(flat_position) -> str`` names a bad index's position in the caller's terms (file line, row...).
    device : {None, "auto", "cpu", "cuda"}
        As for ``embedding``: None runs where the data is (the GPU when an argument is a GPU array), ``auto`` uses
        the GPU when one is usable, ``cuda`` insists, ``cpu`` never. The GPU path is ``gpu.embedding_bag_cuda``.

    Returns
    -------
    ndarray of shape ``(B, D)`` and the weight's dtype (a device array for GPU inputs).

    Notes
    -----
    Sums and means accumulate in float32 for float16 and float32 tables, as torch does, and in float64 for float64
    tables, entry by entry in order, as torch does (a bag split across threads adds its pieces' sums at the end).
    In max mode a later entry wins only if strictly greater, so the result is bit-identical to a sequential loop
    (a NaN in a bag's first row stays, later NaNs are ignored, as in torch). Indices are used as int64 (others are
    converted, one compiled kernel serves all); a bag longer than a thread's share of the work is split across
    threads.

    Examples
    --------
    >>> w = np.array([[1, 2], [3, 4], [5, 0]], dtype=np.float32)
    >>> embedding_bag([0, 1, 2, 2], w, offsets=[0, 2, 2], mode="sum")
    array([[ 4.,  6.],
           [ 0.,  0.],
           [10.,  0.]], dtype=float32)
    >>> embedding_bag([[0, 2], [1, 0]], w, mode="max", padding_idx=0)
    array([[5., 0.],
           [3., 4.]], dtype=float32)
    """
    if small.takes(input, weight, max_norm, device):  # no kernel to load or compile for a few bags
        return small.embedding_bag(input, weight, offsets, mode, per_sample_weights, padding_idx, include_last_offset,
                                   max_norm, norm_type, out=out, where=where)
    if _ready(input, weight, offsets, per_sample_weights, include_last_offset, max_norm, device):
        core.check_bag_mode(mode)
        core.check_max_norm(None, norm_type)
        pad = core.normalize_padding_idx(padding_idx, weight.shape[0])
        return _pool(input, input, offsets, offsets, include_last_offset, weight, mode, pad, None, None, norm_type,
                     out, where)
    if use_gpu(device, input, weight, offsets, per_sample_weights, out):
        from .gpu import embedding_bag_cuda

        return embedding_bag_cuda(input, weight, offsets, mode, per_sample_weights, padding_idx, include_last_offset,
                                  max_norm, norm_type, out=out, where=where)
    weight = core.check_weight(weight)
    num_embeddings = weight.shape[0]
    core.check_bag_mode(mode)
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    max_norm, norm_type = core.check_max_norm(max_norm, norm_type)
    idx = core.index_array(input)
    offs = core.bag_offsets(idx.shape, offsets, include_last_offset)
    if offs is None:  # 2-D: each row a bag, and include_last_offset ignored, as in torch
        offs = np.arange(idx.shape[0], dtype=np.int64) * idx.shape[1]
        include_last_offset = False
    accumulate = np.dtype(np.float64 if weight.dtype.itemsize == 8 else np.float32)
    psw = core.sample_weights(per_sample_weights, idx.shape, mode, accumulate)
    # Native integers are range-checked by the kernels as they read them; max_norm reads rows first.
    if max_norm is not None or idx.dtype.kind not in "iu" or not idx.dtype.isnative:
        idx = core.as_indices(idx, num_embeddings, index_min_max, where)
    flat = idx.reshape(-1).astype(np.int64, copy=False)
    if max_norm is not None:
        flat, weight, pad = distinct_rows(flat, weight, pad)
    if not weight.dtype.isnative:
        weight = weight.astype(weight.dtype.newbyteorder("="))
    return _pool(idx, flat, offs.astype(np.int64, copy=False), offsets, include_last_offset, weight, mode, pad, psw,
                 max_norm, norm_type, out, where)


def _ready(input, weight, offsets, per_sample_weights, include_last_offset, max_norm, device) -> bool:
    """Whether the arguments are already what the kernel takes, so ``embedding_bag`` can skip its checks and
    conversions: host int64 indices and offsets (1-D), a native float32/float64 table (memory maps too), no
    per-sample weights or max_norm (``_pool`` checks ``out`` either way). With the caches cold, as after the
    previous batch, those steps cost 40-100 us, 3-7% of pooling a batch of 2**17 entries; these tests, under 10 us."""
    return (
        device is None and per_sample_weights is None and max_norm is None
        and isinstance(input, np.ndarray) and input.ndim == 1 and input.dtype == _INT64
        and isinstance(offsets, np.ndarray) and offsets.ndim == 1 and offsets.dtype == _INT64
        and (offsets.shape[0] > 0 or not include_last_offset)
        and isinstance(weight, np.ndarray) and weight.ndim == 2
        and (weight.dtype == _FLOAT32 or weight.dtype == _FLOAT64)
    )


def _pool(idx, flat, offs, offsets, include_last_offset, weight, mode, pad, psw, max_norm, norm_type, out, where):
    """Run the pooling kernel on checked arguments (``flat``: the int64 indices, ``offs``: int64 bag starts) into
    ``out`` (checked here) or a new array; a bad offset or index found by the kernel is named by ``core``, from the
    caller's ``idx`` and ``offsets``."""
    num_embeddings, dim = weight.shape
    try:
        result = core.output_array((offs.shape[0] - include_last_offset, dim), weight.dtype, out)
    except InvalidArgumentError:
        core.bag_bounds(idx.shape, offsets, include_last_offset)  # a bad offset is the cause to report
        raise
    accumulate = np.dtype(np.float64 if weight.dtype.itemsize == 8 else np.float32)
    if result.size == 0:  # no kernel runs to check the offsets and indices
        core.bag_bounds(idx.shape, offsets, include_last_offset)
        core.as_indices(idx, num_embeddings, index_min_max, where)
        return result
    # float16 results are rounded as the kernel stores them (half); sums then holds only the rows of huge bags.
    half = result.view(np.uint16) if result.dtype == np.float16 and HAS_F16C else None
    sums = result if result.dtype == accumulate else np.empty(result.shape, accumulate)
    table = weight.view(np.uint16) if weight.dtype == np.float16 else weight
    if max_norm is None:
        slot = scaled = None
    else:
        slot, scaled = renormed_rows(flat, weight, pad, max_norm, norm_type)
        scaled = scaled.view(table.dtype)
    width, starts = _column_blocks(dim, sums.itemsize)
    pool = _pool_kernel(width, table.itemsize, mode == "max")
    lut = _HALF if weight.dtype == np.float16 else None
    status = pool(flat, offs, include_last_offset, _TASKS, starts, table, lut, pad, psw, slot, scaled, mode == "mean",
                  sums, half)
    if status == _BAD_OFFSETS:  # core finds the offset that breaks a rule, and raises
        core.bag_bounds(idx.shape, offsets, include_last_offset)
    if status == _BAD_INDEX:  # core finds the first index outside the table, and raises
        core.as_indices(idx, num_embeddings, index_min_max, where)
    if sums is not result and half is None:
        result[...] = sums
    return result
