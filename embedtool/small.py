"""The NumPy path of ``embedding`` and ``embedding_bag`` for small inputs: no numba, so nothing to import or compile.

A shell call on a few hundred ids spent about 0.6 s loading numba and its cached kernels (and seconds compiling them
on a first run) for microseconds of work. Below ``SMALL_WORK`` output elements, and without max_norm, the work is
done here instead, with the same checks (``core``) and results: gathers and padding bit for bit; bags are folded
entry by entry in order (many short bags a position at a time across the bags, a few long ones a bag at a time),
in the kernels' accumulator dtype (float32, float64 for float64 tables), so maxima are bit for bit too (a later entry
wins only if strictly greater) and sums and means equal the kernels' up to their fused multiply-adds and the order
of a bag split across threads (docs/semantics.md §2 tolerances). ``gather.embedding`` and ``bag.embedding_bag``
send small calls here; the pipeline calls it directly, so a small CLI job never imports numba.

The other small paths live here too, each the kernels' result bit for bit: id text parsed in Python (``id_lines``),
a small vocabulary indexed in a dict (``TokenIndex``), and the row statistics of ``info --stats`` (``row_stats``).
A small text weight file (``SMALL_TEXT`` bytes) is read by ``formats.text_rows.read_small``. The kernels live in
modules of their own (``gather``, ``bag``, ``*_kernels``), imported only where a kernel is called.
"""

from __future__ import annotations

import numpy as np

from . import core
from .arrays import as_strings
from .device import on_gpu

#: Largest output (elements: entries x D) done with NumPy. Above it the parallel kernels win, once loaded: NumPy's
#: gather of 2**20 float32 elements took about 1 ms here, the bag fold (one NumPy step per bag position) a few ms.
#: Tests set it to 0 (every call on the kernels) or infinity (every call here) to run the parity tests on both.
SMALL_WORK = 1 << 20


def takes(input, weight, max_norm=None, device=None) -> bool:
    """Whether a call goes the NumPy way: host arrays, no max_norm, a small output."""
    if max_norm is not None or device not in (None, "cpu") or on_gpu(input) or on_gpu(weight):
        return False
    try:
        return np.size(input) * (np.shape(weight)[-1] if np.ndim(weight) == 2 else 1) <= SMALL_WORK
    except ValueError:  # a ragged list: the main path names the error
        return False


def index_min_max(flat: np.ndarray) -> tuple[int, int]:
    """The index scan of ``core.as_indices``, in NumPy (Python ints: uint64 values stay out of range)."""
    return int(flat.min()), int(flat.max())


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, *, out=None, where=None):
    """``gather.embedding`` on the CPU without max_norm, in NumPy: the rows are copied as their bits."""
    weight = core.check_weight(weight)
    num_embeddings, dim = weight.shape
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    core.check_max_norm(max_norm, norm_type)
    idx = core.as_indices(input, num_embeddings, index_min_max, where)
    result = core.output_array(idx.shape + (dim,), weight.dtype, out)
    if idx.size == 0 or dim == 0:
        return result
    flat = idx.reshape(-1)
    bits = core.BITS_DTYPE[weight.dtype.itemsize]
    out2d = result.reshape(flat.shape[0], dim).view(bits)
    np.take(weight.view(bits), flat, axis=0, out=out2d)
    out2d[flat == pad] = 0
    return result


def embedding_bag(input, weight, offsets=None, mode="mean", per_sample_weights=None, padding_idx=None,
                  include_last_offset=False, max_norm=None, norm_type=2.0, *, out=None, where=None):
    """``bag.embedding_bag`` on the CPU without max_norm, in NumPy: each bag folded entry by entry in order."""
    weight = core.check_weight(weight)
    num_embeddings, dim = weight.shape
    core.check_bag_mode(mode)
    pad = core.normalize_padding_idx(padding_idx, num_embeddings)
    core.check_max_norm(max_norm, norm_type)
    idx = core.index_array(input)
    core.bag_offsets(idx.shape, offsets, include_last_offset)
    accumulate = np.dtype(np.float64 if weight.dtype.itemsize == 8 else np.float32)
    psw = core.sample_weights(per_sample_weights, idx.shape, mode, accumulate)
    bounds = core.bag_bounds(idx.shape, offsets, include_last_offset)
    idx = core.as_indices(idx, num_embeddings, index_min_max, where)
    result = core.output_array((bounds.shape[0] - 1, dim), weight.dtype.newbyteorder("="), out)
    if result.size == 0:
        return result
    flat = idx.reshape(-1)
    starts, lengths = bounds[:-1], np.diff(bounds)
    acc = np.zeros(result.shape, accumulate)
    counts = np.zeros(result.shape[0], np.int64)
    if lengths.max() <= lengths.shape[0]:  # many short bags: a NumPy step per position, across the bags
        for k in range(int(lengths.max())):
            bags = np.flatnonzero(lengths > k)
            at = starts[bags] + k
            counted = flat[at] != pad
            bags, at = bags[counted], at[counted]
            values = weight[flat[at]].astype(accumulate)
            if mode == "max":
                held = acc[bags]
                first = (counts[bags] == 0)[:, None]
                acc[bags] = np.where(first | (values > held), values, held)
            else:
                acc[bags] += values if psw is None else values * psw[at][:, None]
            counts[bags] += 1
    else:  # a few long bags: a NumPy step per bag, along its entries
        for b in np.flatnonzero(lengths):
            at = np.arange(starts[b], starts[b] + lengths[b])
            at = at[flat[at] != pad]
            if at.size:
                values = weight[flat[at]].astype(accumulate)
                if mode == "max":
                    acc[b] = _sequential_max(values)
                else:
                    acc[b] = np.add.accumulate(values if psw is None else values * psw[at][:, None])[-1]
                counts[b] = at.size
    if mode == "mean":
        many = counts > 1
        acc[many] /= counts[many].astype(accumulate)[:, None]
    result[...] = acc
    return result


def _sequential_max(values: np.ndarray) -> np.ndarray:
    """Per column, what a loop keeping a later value only if strictly greater gives: the first row's NaN, else the
    first of the largest values (so the first of +0 and -0)."""
    largest = np.fmax.reduce(values, axis=0)  # NaNs ignored; NaN where a column holds only NaNs
    first = (values == largest).argmax(axis=0)
    return np.where(np.isnan(values[0]), values[0], values[first, np.arange(values.shape[1])])


def row_stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``info_kernels.row_stats`` of a small float32/float64 chunk in NumPy: ``(norms, zero, nonfinite)`` per row, bit
    for bit (the squares summed in float64 in column order, as the kernel's loop does)."""
    wide = rows.astype(np.float64)
    with np.errstate(over="ignore"):  # a norm beyond float64's range is inf, as in the kernel
        squares = np.add.accumulate(wide * wide, axis=1)
    norms = np.sqrt(squares[:, -1]) if rows.shape[1] else np.zeros(rows.shape[0])
    return norms, (rows == 0).all(axis=1), ~np.isfinite(rows).all(axis=1)


#: Largest chunk of id text (bytes) parsed in Python, about 20 ms of it: above it ``tokens.parse_id_lines``.
SMALL_TEXT = 1 << 18


def id_lines(chunk: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """``tokens.parse_id_lines`` of a small chunk, in Python: ``(values, offsets)``; None where the chunk is larger,
    or holds anything but decimal ids of up to 18 digits, signed or not (the kernel then parses it and names the
    error). ASCII whitespace separates ids, a newline ends a row, as there."""
    if len(chunk) > SMALL_TEXT:
        return None
    lines = (chunk if chunk.endswith(b"\n") else chunk + b"\n").split(b"\n")[:-1]
    rows = [line.split() for line in lines]
    for row in rows:
        for token in row:
            digits = token[1:] if token[:1] in (b"+", b"-") else token
            if not (digits.isdigit() and len(digits) <= 18):
                return None
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(row) for row in rows], out=offsets[1:])
    return np.array([int(token) for row in rows for token in row], np.int64), offsets


#: Largest vocabulary indexed in a dict, about 10 ms to build: above it ``vocab.TokenIndex``'s compiled hash table.
SMALL_VOCAB = 1 << 16


def token_index(tokens):
    """The index of a vocabulary (a pyarrow string array): a ``TokenIndex`` dict for a small one, no kernel to
    compile, else ``vocab.TokenIndex``."""
    if len(tokens) <= SMALL_VOCAB:
        return TokenIndex(tokens)
    from .vocab import TokenIndex as Compiled

    return Compiled(tokens)


class TokenIndex:
    """``vocab.TokenIndex`` of a small vocabulary, as a dict: the same ``first`` and ``lookup``. Batches of more
    than ``SMALL_WORK`` queries, and the fused scan of large token text (``tokens.scan_space_tokens``, which reads
    ``table``, ``offsets`` and ``data``), use the compiled index, built on first need."""

    def __init__(self, tokens):
        self.tokens = tokens
        self._rows: dict = {}
        # A null token's bytes are empty, as the compiled index sees them.
        self.first = np.array([self._rows.setdefault("" if t is None else t, i)
                               for i, t in enumerate(tokens.to_pylist())], np.int64)
        self._compiled = None

    def lookup(self, queries) -> np.ndarray:
        """The row of each query token (int64), -1 for a token not in the vocabulary or a null."""
        if not (isinstance(queries, (list, tuple)) and all(isinstance(q, str) for q in queries)):
            queries = as_strings(queries)  # (not for a list of str: pa.array would import pandas, 0.4 s)
            if len(queries) > SMALL_WORK:
                return self.compiled().lookup(queries)
            queries = queries.to_pylist()
        rows = self._rows
        return np.array([-1 if q is None else rows.get(q, -1) for q in queries], np.int64)

    def compiled(self):
        if self._compiled is None:
            from .vocab import TokenIndex as Compiled

            self._compiled = Compiled(self.tokens)
        return self._compiled

    def __getattr__(self, name):
        if name in ("table", "offsets", "data"):
            return getattr(self.compiled(), name)
        raise AttributeError(name)
