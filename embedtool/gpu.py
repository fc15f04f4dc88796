"""``embedding`` and ``embedding_bag`` on the GPU: numba.cuda kernels with the semantics of docs/semantics.md §1-§2.

numba-cuda is optional (``pip install 'embedtool[gpu]'``), so nothing CUDA is imported until a GPU function is
called: the kernels below are plain functions until ``_kernels()`` imports ``numba.cuda`` into the module global
``cuda`` and wraps them with ``cuda.jit``. They reach it by that global name, which the CUDA simulator relies on.

Kernel design (launch sizes come from ``config``, computed once per shape; temporaries from per-stream buffers):

- Grid-stride loops everywhere. Row kernels use 2-D blocks: ``lanes`` threads (x, up to a warp) share one row, so
  its reads and writes are coalesced, and a block holds ``THREADS_PER_BLOCK // lanes`` rows (y).
- The plain gather copies each row as the widest unsigned word (8, 4 or 2 bytes) that divides the row and the
  arrays' addresses, four loads in flight per thread: bit-exact for every float dtype, float16 included.
- Indices are checked inside the kernels that read them (docs/semantics.md §1: valid is ``0 <= i < N``): a thread
  that meets a bad index skips its row and folds the index's flat position into the call's flag (``atomic.min``),
  so a call never waits for the GPU. ``_Queue`` reads the flags where the caller waits anyway: before a host
  result is copied to the caller's ``out`` (left untouched when the check fails), or at ``check()`` for results
  that stay on the GPU.
- max_norm: ``_mark`` lists each distinct looked-up row once (compare-and-swap on a per-row flag), ``_scale``
  computes the norm of each listed row once (its lanes reduce in shared memory) and keeps
  ``dtype(max_norm / (norm + 1e-7))`` for the rows above ``max_norm`` (-1 for the others), and the gather or the bag
  kernel applies it as it reads. Products are taken in float64 and rounded once to the weight dtype: exactly
  NumPy's float16/float32/float64 product.
- Bags: the lanes of a row of threads share a bag; each lane pools four of its words at once (four loads in
  flight), entry by entry in order, in float64; a float32 row of an even width and 8-byte alignment is read as
  complex64 words, two columns per load. A bag longer than ``_BAG_PIECE`` entries is split: its pieces are
  pooled by separate rows of threads and ``_combine`` folds them in order.
"""

from __future__ import annotations

import functools
import math
import types

import numba
import numpy as np

from . import config, core
from .device import require_gpu
from .errors import BadIndexError, GpuUnavailableError, InvalidArgumentError
from .shared_kernels import index_min_max

#: ``numba.cuda``, imported by ``_kernels()`` on first use. Kernels must reach it by this name.
cuda = None

_WARP = 32
_INT64_MAX = np.iinfo(np.int64).max
_MEAN, _MAX = core.BAG_MODES.index("mean"), core.BAG_MODES.index("max")
#: Bags of more entries are split into pieces of this many, pooled in parallel and then combined (``_pool``).
_BAG_PIECE = 64


# --- Kernels (compiled by ``_kernels()``) ---------------------------------------------------------------------


def _fill(a, value):
    """``a[:] = value`` for a 1-D array."""
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        a[i] = value


def _validate(flat, n, bad, slot):
    """Fold the flat position of each index outside ``0..n-1`` into ``bad[slot]`` (for calls that gather nothing)."""
    for i in range(cuda.grid(1), flat.shape[0], cuda.gridsize(1)):
        r = np.int64(flat[i])
        if r < 0 or r >= n:
            cuda.atomic.min(bad, slot, i)


def _gather(flat, src, pad, out, bad, slot):
    """``out[i] = src[flat[i]]``, rows as unsigned words; zeros where ``flat[i] == pad``; a bad index's position
    goes to ``bad[slot]`` (by atomic min, uint64 values >= 2**63 read as negative) and its row is skipped.

    Each lane moves four words per trip, loading all four before storing any: with one load in flight per thread,
    memory latency would cap the bandwidth. Past the row's end a lane's extra words are clamped to the row's last
    word, which it then rewrites with the value it holds anyway.
    """
    lanes = cuda.blockDim.x
    last = src.shape[1] - 1
    first = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    for i in range(first, flat.shape[0], cuda.gridDim.x * cuda.blockDim.y):
        r = np.int64(flat[i])
        if r < 0 or r >= src.shape[0]:
            if cuda.threadIdx.x == 0:
                cuda.atomic.min(bad, slot, i)
            continue
        for j in range(cuda.threadIdx.x, last + 1, 4 * lanes):
            j1 = min(j + lanes, last)
            j2 = min(j + 2 * lanes, last)
            j3 = min(j + 3 * lanes, last)
            if r == pad:
                out[i, j] = 0
                out[i, j1] = 0
                out[i, j2] = 0
                out[i, j3] = 0
            else:
                a = src[r, j]
                b = src[r, j1]
                c = src[r, j2]
                d = src[r, j3]
                out[i, j] = a
                out[i, j1] = b
                out[i, j2] = c
                out[i, j3] = d


def _mark(flat, pad, seen, rows, count):
    """List each distinct looked-up, non-padding row once in ``rows[:count[0]]`` (``seen``: a zeroed flag per row).
    Bad indices are skipped: the gather or bag kernel that follows reports them."""
    for i in range(cuda.grid(1), flat.shape[0], cuda.gridsize(1)):
        r = np.int64(flat[i])
        if r != pad and 0 <= r < seen.shape[0] and seen[r] == 0 and cuda.atomic.cas(seen, r, 0, 1) == 0:
            rows[cuda.atomic.add(count, 0, 1)] = r


def _scale(weight, rows, count, max_norm, p, scale):
    """For each listed row ``r``: its p-norm, rounded to the weight dtype, and if that exceeds ``max_norm``,
    ``scale[r] = max_norm / (norm + 1e-7)`` in the weight dtype (``scale`` is -1 elsewhere, left as is).

    The lanes of a row of threads share a row; dynamic shared memory holds one float64 partial per thread.
    """
    shared = cuda.shared.array(0, numba.float64)
    rounded = cuda.local.array(1, weight.dtype)
    lanes = cuda.blockDim.x
    lane = cuda.threadIdx.x
    mine = cuda.threadIdx.y * lanes
    dim = weight.shape[1]
    n = count[0]
    # Every thread of a block takes the same trips, so all meet at each syncthreads.
    for base in range(cuda.blockIdx.x * cuda.blockDim.y, n, cuda.gridDim.x * cuda.blockDim.y):
        k = base + cuda.threadIdx.y
        acc = math.inf if p == -math.inf else 0.0
        if k < n:
            r = rows[k]
            for j in range(lane, dim, lanes):
                x = abs(np.float64(weight[r, j]))
                if p == 2.0:
                    acc += x * x
                elif p == 1.0:
                    acc += x
                elif p == math.inf:  # a NaN makes the norm NaN (docs/semantics.md §1); max and min skip it
                    acc = x if x > acc or x != x else acc
                elif p == -math.inf:
                    acc = x if x < acc or x != x else acc
                else:
                    acc += x**p
        shared[mine + lane] = acc
        cuda.syncthreads()
        width = lanes // 2
        while width > 0:
            if lane < width:
                a = shared[mine + lane]
                b = shared[mine + lane + width]
                if p == math.inf:
                    shared[mine + lane] = b if b > a or b != b else a
                elif p == -math.inf:
                    shared[mine + lane] = b if b < a or b != b else a
                else:
                    shared[mine + lane] = a + b
            cuda.syncthreads()
            width //= 2
        if lane == 0 and k < n:
            total = shared[mine]
            if p == 2.0:
                norm = math.sqrt(total)
            elif p == 1.0 or abs(p) == math.inf:
                norm = total
            else:
                norm = total ** (1.0 / p)
            rounded[0] = norm
            norm = np.float64(rounded[0])
            if norm > max_norm:
                scale[rows[k]] = max_norm / (norm + 1e-7)
        cuda.syncthreads()  # the partials are overwritten on the next trip


def _gather_renormed(flat, weight, pad, scale, out, bad, slot):
    """``_gather`` by elements, where a row with ``scale[r] >= 0`` is multiplied by it (float64, rounded once)."""
    lanes = cuda.blockDim.x
    lane = cuda.threadIdx.x
    dim = weight.shape[1]
    first = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    for i in range(first, flat.shape[0], cuda.gridDim.x * cuda.blockDim.y):
        r = np.int64(flat[i])
        if r < 0 or r >= weight.shape[0]:
            if lane == 0:
                cuda.atomic.min(bad, slot, i)
            continue
        if r == pad:
            for j in range(lane, dim, lanes):
                out[i, j] = 0
            continue
        s = np.float64(scale[r])
        if s < 0:
            for j in range(lane, dim, lanes):
                out[i, j] = weight[r, j]
        else:
            for j in range(lane, dim, lanes):
                out[i, j] = np.float64(weight[r, j]) * s


def _bag(flat, bounds, length, piece, per_bag, words, pairs, pad, scale, renorm, psw, weighted, mode, partial, out,
         counts, bad, slot):
    """``out[q]`` = the pooled rows of entries ``start:stop`` of row ``q``, in entry order, in float64.

    Rows are ``bounds[q]:bounds[q + 1]`` when ``length`` is -1. Otherwise every bag has ``length`` entries (a 2-D
    input: no bounds to upload) and is cut into ``per_bag`` rows of ``piece`` entries (the last one shorter).

    ``words`` is the table, or with ``pairs`` a float32 table viewed as complex64: each 8-byte load then brings two
    columns (word ``w`` holds columns ``2w`` and ``2w + 1``).

    With ``partial`` the entries are a piece of a bag, for ``_combine``: ``out`` (float64) gets the sum (mean: not
    divided) or the maximum of those rows that a NaN never wins (``_combine`` restores a leading NaN), and
    ``counts[b]`` the number of entries pooled.

    Padding entries are skipped and not counted; a bag with no other entry is zeros. A bad index is skipped too,
    its position folded into ``bad[slot]`` (by the lane that takes column 0). With ``renorm`` a row with
    ``scale[r] >= 0`` is first scaled and rounded to the weight dtype; with ``weighted`` entry k is multiplied by
    ``psw[k]``. In max mode a later entry wins only if strictly greater. Each lane pools four words at once, so
    four loads are in flight; past the row's end its words are clamped to the last one, as in ``_gather``.
    Accumulator ``c + 4 * h`` holds half ``h`` of word ``c``.
    """
    cols = cuda.local.array(4, numba.int64)
    x = cuda.local.array(8, numba.float64)
    acc = cuda.local.array(8, numba.float64)
    rounded = cuda.local.array(8, scale.dtype)  # the table's element dtype
    per = 2 if pairs else 1
    lanes = cuda.blockDim.x
    last = words.shape[1] - 1
    first = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    for b in range(first, out.shape[0], cuda.gridDim.x * cuda.blockDim.y):
        if length < 0:
            start, stop = bounds[b], bounds[b + 1]
        else:
            bag = b // per_bag
            start = bag * length + (b - bag * per_bag) * piece
            stop = min(start + piece, (bag + 1) * length)
        for j in range(cuda.threadIdx.x, last + 1, 4 * lanes):
            for c in range(4):
                cols[c] = min(j + c * lanes, last)
            for e in range(8):
                acc[e] = -math.inf if partial and mode == _MAX else 0.0
            count = 0
            for k in range(start, stop):
                r = np.int64(flat[k])
                if r < 0 or r >= words.shape[0]:
                    if j == 0:
                        cuda.atomic.min(bad, slot, k)
                    continue
                if r == pad:
                    continue
                for c in range(4):
                    v = words[r, cols[c]]
                    x[c] = np.float64(v.real)
                    x[c + 4] = np.float64(v.imag)
                if renorm and np.float64(scale[r]) >= 0:
                    for e in range(4 * per):
                        rounded[e] = x[e] * np.float64(scale[r])
                        x[e] = np.float64(rounded[e])
                w = np.float64(psw[k]) if weighted else 1.0
                for e in range(4 * per):
                    if mode == _MAX:
                        if x[e] > acc[e] or (count == 0 and not partial):
                            acc[e] = x[e]
                    elif count == 0:
                        acc[e] = x[e] * w
                    else:
                        acc[e] += x[e] * w
                count += 1
            for e in range(4 * per):
                col = per * cols[e % 4] + e // 4
                out[b, col] = acc[e] / count if mode == _MEAN and count > 0 and not partial else acc[e]
            if partial and j == 0:
                counts[b] = count


def _combine(partial, counts, pieces, bounds, length, per_bag, flat, weight, pad, scale, renorm, mode, out):
    """``out[b]`` from the partial rows of bag ``b`` (see ``_bag``), folded in entry order: added, or in max mode a
    later piece wins only if strictly greater, and the bag is NaN where its first counted entry is (a sequential
    maximum keeps a leading NaN and never takes a later one). Lanes share a bag. Its partial rows are
    ``pieces[b]:pieces[b + 1]`` and its entries start at ``bounds[b]`` when ``length`` is -1; otherwise
    ``per_bag`` rows from ``b * per_bag`` and entries from ``b * length``."""
    rounded = cuda.local.array(1, weight.dtype)
    first = cuda.blockIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    for b in range(first, out.shape[0], cuda.gridDim.x * cuda.blockDim.y):
        if length < 0:
            lo, hi, k = pieces[b], pieces[b + 1], bounds[b]
        else:
            lo, hi, k = b * per_bag, (b + 1) * per_bag, b * length
        n = 0
        for q in range(lo, hi):
            n += counts[q]
        r = -1  # the row of the bag's first counted entry, for max
        if mode == _MAX and n > 0:
            r = np.int64(flat[k])
            while r == pad or r < 0 or r >= weight.shape[0]:
                k += 1
                r = np.int64(flat[k])
        for j in range(cuda.threadIdx.x, out.shape[1], cuda.blockDim.x):
            v = partial[lo, j]
            for q in range(lo + 1, hi):
                if mode != _MAX:
                    v += partial[q, j]
                elif partial[q, j] > v:
                    v = partial[q, j]
            if r >= 0:
                x = np.float64(weight[r, j])
                if renorm and np.float64(scale[r]) >= 0:
                    rounded[0] = x * np.float64(scale[r])
                    x = np.float64(rounded[0])
                v = x if x != x else v
            out[b, j] = 0 if n == 0 else v / n if mode == _MEAN else v


@functools.cache
def _kernels() -> types.SimpleNamespace:
    """Import numba.cuda (after checking that a GPU can run) and wrap each kernel function with ``cuda.jit``."""
    global cuda
    require_gpu()
    from numba import cuda as numba_cuda

    cuda = numba_cuda
    jit = cuda.jit(cache=True)
    kernels = (_fill, _validate, _gather, _mark, _scale, _gather_renormed, _bag, _combine)
    return types.SimpleNamespace(**{f.__name__[1:]: jit(f) for f in kernels})


# --- Launches ---------------------------------------------------------------------------------------------------


@functools.cache
def _multiprocessors() -> int:
    """The GPU's multiprocessor count, asked once (the simulator's device has none: 1)."""
    return getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1)


def _blocks(units: int, per_block: int, per_sm: int) -> int:
    """Blocks for a grid-stride loop: enough for every unit, at most ``per_sm`` per multiprocessor."""
    return max(1, min(-(-units // per_block), _multiprocessors() * per_sm))


def _flat_launch(n: int) -> tuple[int, int]:
    """(blocks, threads) for a grid-stride loop over ``n`` items."""
    return _flat_config(n, config.THREADS_PER_BLOCK, config.FLAT_BLOCKS_PER_SM)


def _row_launch(nrows: int, width: int, per_lane: int = 1) -> tuple[int, tuple[int, int]]:
    """(blocks, (lanes, rows per block)) for a loop over ``nrows`` rows of ``width`` items: up to a warp of lanes
    share a row, enough for each to take ``per_lane`` items of it (a power of two, for the reductions)."""
    return _row_config(nrows, width, per_lane, config.THREADS_PER_BLOCK, config.ROW_BLOCKS_PER_SM)


# Launch configurations, computed once per shape (and per setting of ``config``, which tests patch).
@functools.lru_cache(maxsize=1024)
def _flat_config(n: int, threads: int, per_sm: int) -> tuple[int, int]:
    return _blocks(n, threads, per_sm), threads


@functools.lru_cache(maxsize=1024)
def _row_config(nrows: int, width: int, per_lane: int, threads: int, per_sm: int) -> tuple[int, tuple[int, int]]:
    lanes = min(_WARP, threads, 1 << max(-(-width // per_lane) - 1, 0).bit_length())
    return _blocks(nrows, threads // lanes, per_sm), (lanes, threads // lanes)


# --- Arrays -----------------------------------------------------------------------------------------------------


def _on_device(x):
    """``x`` as a numba device array if it lives on the GPU (numba array or ``__cuda_array_interface__``), else None."""
    if getattr(x, "__cuda_ndarray__", False):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cuda.as_cuda_array(x)
    return None


def _to_host(x):
    """``x`` as a host array (a GPU array is copied: only small ones, such as offsets, come here)."""
    d = _on_device(x)
    return x if d is None else d.copy_to_host()


def _stand_in(d) -> np.ndarray:
    """A zero-byte host array with ``d``'s shape and dtype, for core's checks, which read nothing else."""
    return np.broadcast_to(np.zeros((), d.dtype), d.shape)


def _contiguous(d, what: str):
    if not d.is_c_contiguous():
        raise InvalidArgumentError(f"{what} on the GPU must be C-contiguous")
    return d


def _table(weight):
    """The checked table: a C-contiguous device array, or a native-order host array (uploaded by ``_uploaded``)."""
    d = _on_device(weight)
    if d is not None:
        core.check_weight(_stand_in(d))
        return _contiguous(d, "weight")
    weight = core.check_weight(weight)
    return weight if weight.dtype.isnative else weight.astype(weight.dtype.newbyteorder("="))


def _uploaded(table, queue=None):
    """The table on the GPU: copied there if it is a host array that fits in free GPU memory (into ``queue``'s
    buffer for one call, else into its own array, on the default stream)."""
    if _on_device(table) is not None:
        return table
    free = cuda.current_context().get_memory_info().free
    if table.nbytes > free:
        raise GpuUnavailableError(
            f"the weight table ({table.nbytes / 2**30:.2f} GiB) does not fit in the GPU's free memory "
            f"({free / 2**30:.2f} GiB)"
        )
    return cuda.to_device(np.ascontiguousarray(table)) if queue is None else queue.upload("table", table)


def _indices(input, num_embeddings: int, where, queue):
    """The indices as a flat device array; returns ``(flat, shape, values)``, ``values`` being the flat indices on
    the host when they were there (for the error message), else ``flat``.

    Integer arrays, on the GPU or not, are checked on the GPU by the kernels that read them. Other dtypes (integral
    floats, bool) go through ``core.as_indices`` on the host, which converts or rejects them; a GPU array of those
    makes a round trip.
    """
    d = _on_device(input)
    if d is not None and d.dtype.kind in "iu":
        flat = _contiguous(d, "input").reshape(d.size)
        return flat, tuple(d.shape), flat
    host = core.index_array(input) if d is None else d.copy_to_host()
    if host.dtype.kind not in "iu" or not host.dtype.isnative:
        host = core.as_indices(host, num_embeddings, index_min_max, where)
    values = host.reshape(-1)
    return queue.upload("flat", values), host.shape, values


class _Queue:
    """The work queued on one CUDA stream: its calls' index checks, read when the caller waits for the stream
    anyway, and its reusable buffers.

    Each call takes a slot of ``flags`` (device int64: the first bad flat position, ``INT64_MAX`` while none) that
    its kernels fold bad positions into. At most ``SLOTS`` calls wait to be checked: the next one checks them first.

    Buffers (``buffer``) are kept between calls instead of a ``cudaMalloc`` per call: work on one stream runs in
    order, so a call's temporaries are free for the next call on the stream once queued. A buffer of more than
    ``keep_bytes`` is not kept: its transfers dwarf an allocation, and it would hold GPU memory after the call.
    (numba-cuda's external memory manager plugin would pool every allocation, results included, but needs an
    allocator to plug in: RMM or CuPy, neither a dependency.)
    """

    SLOTS = 64

    def __init__(self, stream, keep_bytes=256 << 20):
        self.stream = stream
        self.keep_bytes = keep_bytes
        self.flags = cuda.to_device(np.full(self.SLOTS, _INT64_MAX, np.int64), stream=stream)
        self.read = cuda.pinned_array(self.SLOTS, np.int64)
        self.pending = []  # (values, num_embeddings, where) per taken slot
        self.buffers = {}

    def buffer(self, name: str, shape, dtype, allocate=None):
        """The named buffer, viewed as a C-contiguous ``shape`` array of ``dtype``: device memory by default, or
        from ``allocate(nbytes, np.uint8)`` (``cuda.pinned_array`` for staging host memory). The one before is
        reused when it is large enough; its contents are undefined."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(np.atleast_1d(shape)) * dtype.itemsize
        held = self.buffers.get(name)
        if held is None or held.size < nbytes:
            if allocate is None:
                held = cuda.device_array(max(nbytes, 1), np.uint8, stream=self.stream)
            else:
                held = allocate(max(nbytes, 1), np.uint8)
            if nbytes <= self.keep_bytes:
                self.buffers[name] = held
        return held[:nbytes].view(dtype).reshape(shape)

    def upload(self, name: str, host: np.ndarray):
        """``host`` copied into the named device buffer (queued on the stream)."""
        host = np.ascontiguousarray(host)
        device = self.buffer(name, host.shape, host.dtype)
        if host.size:
            device.copy_to_device(host, stream=self.stream)
        return device

    def slot(self, values, num_embeddings: int, where) -> int:
        """A slot for a call whose flat indices are ``values`` (host or device array); ``where`` names positions."""
        if len(self.pending) == self.SLOTS:
            self.raise_first()
        self.pending.append((values, num_embeddings, where))
        return len(self.pending) - 1

    def raise_first(self) -> None:
        """Wait for the stream, then raise ``BadIndexError`` for the first queued call that met a bad index (naming
        the index, its position and N, as the CPU path does); every queued call counts as checked afterwards."""
        self.flags.copy_to_host(self.read, stream=self.stream)
        self.stream.synchronize()
        pending, self.pending = self.pending, []
        failed = np.flatnonzero(self.read[: len(pending)] != _INT64_MAX)
        if failed.size == 0:
            return
        bad = int(self.read[failed[0]])
        values, num_embeddings, where = pending[failed[0]]
        self.flags.copy_to_device(np.full(self.SLOTS, _INT64_MAX, np.int64), stream=self.stream)
        value = values[bad] if isinstance(values, np.ndarray) else values[bad : bad + 1].copy_to_host()[0]
        raise BadIndexError(int(value), where(bad), num_embeddings)


@functools.cache
def _default_queue() -> _Queue:
    """The checks of the calls on the default stream (``embedding_cuda``, ``embedding_bag_cuda``)."""
    return _Queue(cuda.default_stream())


def check() -> None:
    """Raise ``BadIndexError`` if a call whose result stayed on the GPU met a bad index (the first such call since
    the last check); waits for the GPU. A later call with a host result checks them too."""
    _kernels()
    _default_queue().raise_first()


def _check_only(flat, num_embeddings: int, queue: _Queue, slot: int) -> None:
    """Check ``flat`` into ``slot`` for a call whose kernels read no index (rows of width 0, no bags)."""
    blocks, threads = _flat_launch(flat.size)
    _kernels().validate[blocks, threads, queue.stream](flat, num_embeddings, queue.flags, slot)


def _deliver(target, result, callers_out: bool, queue: _Queue) -> None:
    """Copy a host call's ``target`` (device, or None) into ``result`` once the checks pass: a new array in the
    same wait, the caller's ``out`` only after it, so that a failed check leaves ``out`` untouched."""
    if target is not None and not callers_out:
        target.copy_to_host(result, stream=queue.stream)
    queue.raise_first()
    if target is not None and callers_out:
        target.copy_to_host(result, stream=queue.stream)
        queue.stream.synchronize()


def _device_output(shape: tuple, dtype, out, stream):
    """A new device array, or the caller's GPU ``out`` checked (a host input's ``out`` is ``core.output_array``'s)."""
    if out is None:
        return cuda.device_array(shape, dtype, stream=stream)
    d = _on_device(out)
    if d is None:
        raise InvalidArgumentError(f"out must be a GPU array when the input is one, got {type(out).__name__}")
    if d.shape != shape or d.dtype != dtype:
        raise InvalidArgumentError(f"out must have shape {shape} and dtype {dtype}, got {d.shape} {d.dtype}")
    return _contiguous(d, "out")


def _word_size(*arrays) -> int:
    """The widest word (8, 4 or 2 bytes) dividing the rows and the arrays' GPU addresses: the gather's unit."""
    row = arrays[0].shape[1] * arrays[0].dtype.itemsize
    addresses = [a.__cuda_array_interface__["data"][0] for a in arrays if hasattr(a, "__cuda_array_interface__")]
    return next(w for w in (8, 4, 2) if row % w == 0 and all(x % w == 0 for x in addresses))


# --- Work on the GPU (device arrays in and out, launched on ``stream``) ---------------------------------------


def _row_scales(flat, weight, pad: int, max_norm: float, p: float, queue):
    """Per table row, ``dtype(max_norm / (norm + 1e-7))`` for each looked-up row whose norm exceeds ``max_norm``,
    else -1: the scale of each distinct row is computed once (``_mark``, then ``_scale``)."""
    k = _kernels()
    num_embeddings, dim = weight.shape
    stream = queue.stream
    seen = queue.buffer("seen", num_embeddings, np.int32)
    scale = queue.buffer("scale", num_embeddings, weight.dtype)
    rows = queue.buffer("rows", max(1, min(flat.size, num_embeddings)), np.int64)
    count = queue.buffer("count", 1, np.int64)
    k.fill[1, 1, stream](count, 0)
    blocks, threads = _flat_launch(num_embeddings)
    k.fill[blocks, threads, stream](seen, 0)
    k.fill[blocks, threads, stream](scale, -1.0)
    blocks, threads = _flat_launch(flat.size)
    k.mark[blocks, threads, stream](flat, pad, seen, rows, count)
    # Launched for every possible row; the kernel reads the true count on the GPU, so the host never waits.
    blocks, (lanes, per_block) = _row_launch(rows.size, dim)
    k.scale[blocks, (lanes, per_block), stream, lanes * per_block * 8](weight, rows, count, max_norm, p, scale)
    return scale


def _lookup(flat, weight, pad: int, max_norm, p: float, out, queue: _Queue, slot: int) -> None:
    """Gather the ``flat`` indices of ``weight`` into ``out`` (n, D), with padding zeros and max_norm, on the
    checks' stream; bad indices go to ``slot``."""
    stream = queue.stream
    k = _kernels()
    if max_norm is None:
        word = np.dtype(f"u{_word_size(weight, out)}")
        src, dst = weight.view(word), out.view(word)
        blocks, threads = _row_launch(flat.size, src.shape[1], per_lane=4)
        k.gather[blocks, threads, stream](flat, src, pad, dst, queue.flags, slot)
    else:
        scale = _row_scales(flat, weight, pad, max_norm, p, queue)
        blocks, threads = _row_launch(flat.size, weight.shape[1])
        k.gather_renormed[blocks, threads, stream](flat, weight, pad, scale, out, queue.flags, slot)


def _layout(shape: tuple, offsets, include_last_offset: bool) -> tuple:
    """The checked bags of an input of ``shape``, as ``_pool`` takes them, and their number: a 2-D input's row
    length (bags of one length need no bounds, on the host or the GPU), else their bounds (host int64, B + 1)."""
    if core.bag_offsets(shape, offsets, include_last_offset) is None:
        return shape[1], shape[0]
    bounds = core.bag_bounds(shape, offsets, include_last_offset)
    return bounds, bounds.size - 1


def _pool(flat, bags, weight, pad: int, max_norm, p: float, psw, mode: str, out, queue: _Queue, slot: int) -> None:
    """Pool the ``bags`` (from ``_layout``) of the ``flat`` indices into ``out`` (B, D), on the queue's stream; bad
    indices go to ``slot``.

    Bags of more than ``_BAG_PIECE`` entries are cut into pieces of that many, pooled in parallel into float64
    partial rows that ``_combine`` folds in entry order (as the CPU kernel does): a long bag is not one row of
    threads' sequential work.
    """
    k = _kernels()
    stream = queue.stream
    renorm = max_norm is not None
    scale = _row_scales(flat, weight, pad, max_norm, p, queue) if renorm else queue.buffer("scale", 1, weight.dtype)
    weighted = psw is not None
    psw = psw if weighted else queue.buffer("psw", 1, np.float64)
    code = core.BAG_MODES.index(mode)
    pairs = weight.dtype == np.float32 and _word_size(weight) == 8
    words = weight.view(np.complex64) if pairs else weight
    regular = isinstance(bags, int)
    length = bags if regular else -1
    bounds = queue.buffer("bounds", 1, np.int64) if regular else queue.upload("bounds", bags)
    lengths = None if regular else np.diff(bags)
    if (length if regular else lengths.max(initial=0)) <= _BAG_PIECE:
        counts = queue.buffer("counts", 1, np.int64)
        blocks, threads = _row_launch(out.shape[0], words.shape[1], per_lane=4)
        k.bag[blocks, threads, stream](flat, bounds, length, length, 1, words, pairs, pad, scale, renorm, psw,
                                       weighted, code, False, out, counts, queue.flags, slot)
        return
    if regular:  # every bag in the same number of pieces: no cuts to upload either
        per_bag = -(-length // _BAG_PIECE)
        rows, cuts, pieces = out.shape[0] * per_bag, bounds, bounds
    else:
        per_bag = np.maximum(1, -(-lengths // _BAG_PIECE))
        pieces = np.zeros(len(bags), np.int64)
        np.cumsum(per_bag, out=pieces[1:])
        bag = np.repeat(np.arange(len(lengths)), per_bag)
        rows = int(pieces[-1])
        cuts = queue.upload("cuts", np.append(bags[bag] + (np.arange(rows) - pieces[bag]) * _BAG_PIECE, bags[-1]))
        pieces, per_bag = queue.upload("pieces", pieces), 1
    partial = queue.buffer("partial", (rows, out.shape[1]), np.float64)
    counts = queue.buffer("counts", rows, np.int64)
    blocks, threads = _row_launch(rows, words.shape[1], per_lane=4)
    k.bag[blocks, threads, stream](flat, cuts, length, _BAG_PIECE, per_bag, words, pairs, pad, scale, renorm, psw,
                                   weighted, code, True, partial, counts, queue.flags, slot)
    blocks, threads = _row_launch(out.shape[0], out.shape[1])
    k.combine[blocks, threads, stream](partial, counts, pieces, bounds, length, per_bag, flat, weight, pad, scale,
                                       renorm, code, out)


# --- Public entry points ----------------------------------------------------------------------------------------


def embedding_cuda(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, *, out=None, where=None):
    """``embedding`` on the GPU: ``weight[input]`` with torch's ``F.embedding`` semantics (docs/semantics.md §1).

    Parameters
    ----------
    input : array_like of int, or GPU array
        Indices of any shape and any integer dtype (integral floats accepted, bool rejected), ``0 <= i < N``.
    weight : ndarray or GPU array, shape (N, D), float16/float32/float64
        The table, never modified. A host table is copied to the GPU for this call (see ``DeviceTable`` to keep
        it there).
    padding_idx : int, optional
        Positions whose index equals it (negative counts from the end) embed to zeros.
    max_norm : float, optional
        Rows whose ``norm_type``-norm exceeds it are scaled by ``max_norm / (norm + 1e-7)`` in the output.
    norm_type : float
        The p of the norm: > 0, or inf.
    out : array, optional
        Where to write: a C-contiguous array of shape ``input.shape + (D,)`` and the weight's dtype, on the GPU
        when the input is there, a host array otherwise.
    where : callable, optional
        ``where(flat_position) -> str`` names a bad index's position in the caller's terms.

    Returns
    -------
    array of shape ``input.shape + (D,)`` and the weight's dtype: a numba device array when ``input`` is a GPU
    array (numba, or any ``__cuda_array_interface__`` object such as CuPy or torch CUDA), with no copy to the host;
    a NumPy array otherwise.

    Raises
    ------
    GpuUnavailableError
        No GPU can run (numba-cuda missing, no driver or device), or a host table does not fit in GPU memory.
    BadIndexError
        An index is out of range (checked by the gather on the GPU). For a result that stays on the GPU, raised by
        ``check()`` (or the next call with a host result) instead.

    Examples
    --------
    >>> w = np.arange(6, dtype=np.float32).reshape(3, 2)
    >>> embedding_cuda([[2, 0]], w, padding_idx=0)  # doctest: +SKIP
    array([[[4., 5.],
            [0., 0.]]], dtype=float32)
    """
    _kernels()
    queue = _default_queue()
    stream = queue.stream
    table = _table(weight)
    num_embeddings, dim = table.shape
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    max_norm, p = core.check_max_norm(max_norm, norm_type)
    d_input = _on_device(input)
    flat, shape, values = _indices(input if d_input is None else d_input, num_embeddings, where, queue)
    if d_input is not None:
        result = _device_output(shape + (dim,), table.dtype, out, stream)
    else:
        result = core.output_array(shape + (dim,), table.dtype, out)
    if flat.size == 0:
        return result
    slot = queue.slot(values, num_embeddings, where or core.array_position(shape))
    target = None
    if dim == 0:
        _check_only(flat, num_embeddings, queue, slot)
    else:
        out2d = result.reshape(flat.size, dim)
        target = out2d if d_input is not None else queue.buffer("target", out2d.shape, table.dtype)
        _lookup(flat, _uploaded(table, queue), pad, max_norm, p, target, queue, slot)
    if d_input is None:
        _deliver(target, result.reshape(flat.size, dim), out is not None, queue)
    return result


def embedding_bag_cuda(
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
):
    """``embedding_bag`` on the GPU: the sum, mean or max of looked-up rows per bag (docs/semantics.md §2).

    Parameters
    ----------
    input : array_like of int, or GPU array
        2-D ``(B, L)``: each row is a bag (``offsets`` must be None). 1-D: the entries of all bags, cut by
        ``offsets``. Any integer dtype (integral floats accepted, bool rejected), ``0 <= i < N``.
    weight : ndarray or GPU array, shape (N, D), float16/float32/float64
        The table, never modified (a host table is copied to the GPU for this call).
    offsets : array_like of int, or GPU array, optional
        With 1-D input, where each bag starts. Must start at 0, not decrease and not exceed ``len(input)``.
    mode : {"mean", "sum", "max"}
        The reduction. A bag that is empty or only padding gives zeros in every mode.
    per_sample_weights : array_like of float, or GPU array, optional
        One weight per entry (the input's shape), multiplying its row; only with ``mode="sum"``.
    padding_idx : int, optional
        Entries equal to it (negative counts from the end) are skipped and not counted in the mean.
    include_last_offset : bool
        ``offsets`` has ``B + 1`` entries (CSR), the last of which must be ``len(input)``.
    max_norm : float, optional
        Each entry's row whose ``norm_type``-norm exceeds it is scaled by ``max_norm / (norm + 1e-7)`` first.
    norm_type : float
        The p of the norm: > 0, or inf.
    out : array, optional
        Where to write: a C-contiguous ``(B, D)`` array of the weight's dtype, on the GPU when the input is there.
    where : callable, optional
        ``where(flat_position) -> str`` names a bad index's position in the caller's terms.

    Returns
    -------
    array of shape ``(B, D)`` and the weight's dtype: a numba device array when ``input`` is a GPU array, a NumPy
    array otherwise.

    Notes
    -----
    Sums and means accumulate in float64, in entry order; max is bit-identical to a sequential loop. GPU offsets
    are checked on the host (a copy of B + 1 integers); GPU indices and per-sample weights stay on the GPU, and a
    bad index in them is raised by ``check()`` (or the next call with a host result).

    Examples
    --------
    >>> w = np.array([[1, 2], [3, 4], [5, 0]], dtype=np.float32)
    >>> embedding_bag_cuda([0, 1, 2, 2], w, offsets=[0, 2, 2], mode="sum")  # doctest: +SKIP
    array([[ 4.,  6.],
           [ 0.,  0.],
           [10.,  0.]], dtype=float32)
    """
    _kernels()
    queue = _default_queue()
    stream = queue.stream
    table = _table(weight)
    num_embeddings, dim = table.shape
    core.check_bag_mode(mode)
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    max_norm, p = core.check_max_norm(max_norm, norm_type)
    d_input = _on_device(input)
    idx = core.index_array(input) if d_input is None else d_input
    bags, count = _layout(idx.shape, None if offsets is None else _to_host(offsets), include_last_offset)
    psw = _device_sample_weights(per_sample_weights, idx.shape, mode, queue)
    flat, flat_shape, values = _indices(idx, num_embeddings, where, queue)
    shape = (count, dim)
    if d_input is not None:
        result = _device_output(shape, table.dtype, out, stream)
    else:
        result = core.output_array(shape, table.dtype, out)
    if result.size == 0 and flat.size == 0:
        return result
    slot = queue.slot(values, num_embeddings, where or core.array_position(flat_shape))
    target = None
    if result.size == 0:
        _check_only(flat, num_embeddings, queue, slot)
    else:
        target = result if d_input is not None else queue.buffer("target", shape, table.dtype)
        _pool(flat, bags, _uploaded(table, queue), pad, max_norm, p, psw, mode, target, queue, slot)
    if d_input is None:
        _deliver(target, result, out is not None, queue)
    return result


def _device_sample_weights(per_sample_weights, shape: tuple, mode: str, queue):
    """The per-sample weights as a flat GPU array (None when there are none), checked as ``core.sample_weights``
    does; a GPU array is used in place (any number dtype), a host one is copied as float64."""
    if per_sample_weights is None:
        return None
    d = _on_device(per_sample_weights)
    if d is None:
        return queue.upload("psw", core.sample_weights(per_sample_weights, shape, mode, np.float64))
    core.sample_weights(np.zeros((), d.dtype), (), mode, np.float64)  # the checks of mode and dtype, on a stand-in
    if d.shape != shape:
        raise InvalidArgumentError(f"per_sample_weights must have the input's shape {shape}, got {d.shape}")
    return _contiguous(d, "per_sample_weights").reshape(d.size)


class DeviceTable:
    """A weight table copied to the GPU once, to embed many batches without copying it again.

    ``embedding`` and ``embedding_bag`` take the arguments of ``embedding_cuda`` and ``embedding_bag_cuda`` less
    the weight. ``embed_batches`` embeds a sequence of host batches with the copies of one batch overlapping the
    kernels of the other, as the file pipeline needs.

    Parameters
    ----------
    weight : ndarray or GPU array, shape (N, D), float16/float32/float64
        The table (a GPU array is used in place).

    Raises
    ------
    GpuUnavailableError
        No GPU can run here, or the table does not fit in the GPU's free memory.
    """

    def __init__(self, weight):
        _kernels()
        self.weight = _uploaded(_table(weight))

    def embedding(self, input, padding_idx=None, max_norm=None, norm_type=2.0, *, out=None, where=None):
        """``embedding_cuda(input, self.weight, ...)``."""
        return embedding_cuda(input, self.weight, padding_idx, max_norm, norm_type, out=out, where=where)

    def embedding_bag(self, input, offsets=None, mode="mean", **options):
        """``embedding_bag_cuda(input, self.weight, offsets, mode, ...)``."""
        return embedding_bag_cuda(input, self.weight, offsets, mode, **options)

    def embed_batches(self, batches, padding_idx=None, max_norm=None, norm_type=2.0, *, mode=None):
        """Yield ``(batch, values)`` for each host batch, pipelined on two CUDA streams.

        Batches alternate between two streams, each with its own pinned host buffers: a batch is staged in pinned
        memory, copied to the GPU, checked and looked up, and its result copied back, while the other stream does
        the same for the next batch.

        Parameters
        ----------
        batches : iterable
            Objects with ``ids`` (a host index array), ``offsets`` and ``where``, and optionally ``weights``
            (per-sample weights for ``mode="sum"``, flat, one per id), such as the pipeline's ``readers.Batch``.
            Without ``mode``, values are ``embedding(ids)`` (``offsets`` is not used). With ``mode``, each row of
            ``ids`` is a bag when ``offsets`` is None, otherwise bag ``b`` is ``ids[offsets[b]:offsets[b + 1]]``
            (CSR offsets, one more than the bags). ``where`` names a flat position of ``ids`` in errors (None: the
            position within the batch).
        padding_idx, max_norm, norm_type
            As for ``embedding_cuda``; checked once, before the first batch.
        mode : {None, "sum", "mean", "max"}
            Pool each bag, as ``embedding_bag_cuda`` does.

        Yields
        ------
        (batch, ndarray)
            The batch and its values: ``ids.shape + (D,)`` without ``mode``, ``(bags, D)`` with it. The array is a
            view of a reused pinned buffer, valid until the next pair is asked for: write or copy it before then.
        """
        num_embeddings = self.weight.shape[0]
        pad = core.normalize_padding_idx(padding_idx, num_embeddings)
        max_norm, p = core.check_max_norm(max_norm, norm_type)
        if mode is not None:
            core.check_bag_mode(mode)
        slots = (_Slot(), _Slot())
        pending = None
        for k, batch in enumerate(batches):
            slots[k % 2].submit(batch, self.weight, pad, max_norm, p, mode)
            if pending is not None:
                yield pending.result()
            pending = slots[k % 2]
        if pending is not None:
            yield pending.result()


class _Slot:
    """One CUDA stream of ``DeviceTable.embed_batches`` with its buffers (pinned on the host), all kept: the
    pipeline's batches are bounded."""

    def __init__(self):
        self.stream = cuda.stream()
        self.queue = _Queue(self.stream, keep_bytes=math.inf)
        self.batch = self.values = None

    def submit(self, batch, weight, pad: int, max_norm, p: float, mode) -> None:
        """Stage the batch and queue its kernels (which check its indices) and the copy back: nothing waits."""
        num_embeddings, dim = weight.shape
        where = batch.where or core.array_position(np.shape(batch.ids))
        idx = np.asarray(batch.ids)
        if idx.dtype.kind not in "iu" or not idx.dtype.isnative:
            idx = core.as_indices(idx, num_embeddings, index_min_max, where)
        if mode is None:
            shape = idx.shape + (dim,)
        else:
            idx = idx if batch.offsets is not None else idx.reshape(idx.shape[0], -1)
            bags, count = _layout(idx.shape, batch.offsets, batch.offsets is not None)
            shape = (count, dim)
        self.batch = batch
        queue = self.queue
        self.values = queue.buffer("values", shape, weight.dtype, cuda.pinned_array)
        if self.values.size == 0 or idx.size == 0:
            self.values[...] = 0  # no entries: only empty bags, if any
            return
        staged = queue.buffer("staged", idx.size, idx.dtype, cuda.pinned_array)
        staged[:] = idx.reshape(-1)
        flat = queue.upload("flat", staged)
        slot = queue.slot(idx.reshape(-1), num_embeddings, where)
        out = queue.buffer("out", (self.values.size // dim, dim), weight.dtype)
        if mode is None:
            _lookup(flat, weight, pad, max_norm, p, out, queue, slot)
        else:
            weights = getattr(batch, "weights", None)
            psw = None if weights is None else _device_sample_weights(weights.reshape(idx.shape), idx.shape, mode,
                                                                      queue)
            _pool(flat, bags, weight, pad, max_norm, p, psw, mode, out, queue, slot)
        out.copy_to_host(self.values.reshape(-1, dim), stream=self.stream)

    def result(self) -> tuple:
        """Wait for this stream's batch, raise ``BadIndexError`` if it holds a bad index, return it with its values."""
        self.queue.raise_first()
        return self.batch, self.values
