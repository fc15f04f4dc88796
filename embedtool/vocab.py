"""Vocabularies: a compiled hash index from token to row id, dropping duplicates, and the ``vocab.txt`` sidecar.

``pyarrow.compute.index_in`` rebuilds its hash table on every call (about 50 ms per call for a 400,000-token
vocabulary, whatever the batch size), so the index is our own: built once per table, an open-addressing table of row
ids over the token bytes of the Arrow array, probed in parallel by each batch of queries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .errors import InputFormatError, InvalidArgumentError
from .vectors import as_strings

_U = np.uint64
_FNV_OFFSET, _FNV_PRIME = _U(0xCBF29CE484222325), _U(0x100000001B3)
_MIX1, _MIX2 = _U(0xFF51AFD7ED558CCD), _U(0xC4CEB9FE1A85EC53)


@njit(cache=True, nogil=True)
def _hash(data, s, e):
    """FNV-1a of ``data[s:e]``, finished with murmur3's mixer so that the low bits spread."""
    h = _FNV_OFFSET
    for k in range(s, e):
        h = (h ^ _U(data[k])) * _FNV_PRIME
    h ^= h >> _U(33)
    h *= _MIX1
    h ^= h >> _U(33)
    h *= _MIX2
    return h ^ (h >> _U(33))


@njit(cache=True, nogil=True)
def _same(a, sa, ea, b, sb, eb):
    if ea - sa != eb - sb:
        return False
    for k in range(ea - sa):
        if a[sa + k] != b[sb + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _build(offsets, data, slots, hashes, first):
    """Insert every token; ``first[i]`` gets the first row holding the same bytes as row ``i``."""
    mask = slots.shape[0] - 1
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        h = _hash(data, s, e)
        hashes[i] = h
        j = np.int64(h & _U(mask))
        while True:
            k = slots[j]
            if k < 0:
                slots[j] = i
                first[i] = i
                break
            if hashes[k] == h and _same(data, offsets[k], offsets[k + 1], data, s, e):
                first[i] = k
                break
            j = (j + 1) & mask


@njit(parallel=True, cache=True, nogil=True)
def _probe(offsets, data, slots, hashes, q_offsets, q_data, q_valid, out):
    """``out[i]`` = the row of query ``i``, or -1."""
    mask = slots.shape[0] - 1
    for i in prange(q_offsets.shape[0] - 1):
        out[i] = -1
        if not q_valid[i]:
            continue
        s, e = q_offsets[i], q_offsets[i + 1]
        h = _hash(q_data, s, e)
        j = np.int64(h & _U(mask))
        while True:
            k = slots[j]
            if k < 0:
                break
            if hashes[k] == h and _same(data, offsets[k], offsets[k + 1], q_data, s, e):
                out[i] = k
                break
            j = (j + 1) & mask


def string_buffers(tokens: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array as numpy views: token ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""
    kind = np.int64 if pa.types.is_large_string(tokens.type) else np.int32
    buffers = tokens.buffers()
    offsets = np.frombuffer(buffers[1], kind)[tokens.offset : tokens.offset + len(tokens) + 1] if len(tokens) else (
        np.zeros(1, kind)
    )
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


class TokenIndex:
    """Row id of each distinct token of a string array, built once; ``lookup`` is vectorised and parallel.

    ``first[i]`` is the first row holding row ``i``'s token (``i`` itself unless the token is a duplicate);
    lookups return that first row.
    """

    def __init__(self, tokens: pa.Array):
        self.tokens = tokens
        self.offsets, self.data = string_buffers(tokens)
        n = len(tokens)
        self.slots = np.full(1 << max(4, int(2 * n).bit_length()), -1, np.int64)
        self.hashes = np.empty(n, np.uint64)
        self.first = np.empty(n, np.int64)
        _build(self.offsets, self.data, self.slots, self.hashes, self.first)

    def lookup(self, queries) -> np.ndarray:
        """The row of each query token (int64), -1 for a token not in the table or a null."""
        queries = as_strings(queries)
        q_offsets, q_data = string_buffers(queries)
        valid = np.ones(len(queries), np.bool_) if queries.null_count == 0 else queries.is_valid().to_numpy(False)
        out = np.empty(len(queries), np.int64)
        _probe(self.offsets, self.data, self.slots, self.hashes, q_offsets, q_data, valid, out)
        return out


@njit(cache=True, nogil=True)
def _compact(rows, keep):
    for j in range(keep.shape[0]):
        if keep[j] != j:
            rows[j] = rows[keep[j]]


def compact_rows(matrix: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``matrix[keep]`` (``keep`` increasing) made in place, without a second matrix: the first ``len(keep)`` rows."""
    _compact(matrix.view(f"u{matrix.dtype.itemsize}"), keep)
    return matrix[: len(keep)]


def keep_unique(first: np.ndarray, policy: str) -> np.ndarray:
    """Indices of the rows to keep: the first or the last row of each token (``first`` from ``TokenIndex``)."""
    rows = np.arange(len(first))
    if policy == "first":
        return rows[first == rows]
    last = np.full(len(first), -1, np.int64)
    np.maximum.at(last, first, rows)
    return rows[last[first] == rows]


def read_vocab(path, encoding: str = "utf-8", errors: str = "strict") -> pa.Array:
    """Tokens of a vocab file: one per line (without its ``\\n`` or ``\\r\\n``), the id of a token is its line - 1."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        token = raw[raw.rfind(b"\n", 0, e.start) + 1 :].split(b"\n", 1)[0]
        raise InputFormatError(
            f"{path}:{line}: token {token!r} is not valid {encoding} "
            f"(use --errors replace or --errors ignore, or --encoding)"
        ) from None
    except LookupError:
        raise InvalidArgumentError(f"unknown encoding {encoding!r}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return pa.array([line[:-1] if line.endswith("\r") else line for line in lines], pa.string())


def write_vocab(f, tokens: pa.Array) -> None:
    """Write one token per line to the binary file ``f``."""
    import pyarrow.compute as pc

    bad = pc.match_substring_regex(tokens, r"[\n\r]")
    if pc.any(bad).as_py():
        i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise InvalidArgumentError(f"token {tokens[i].as_py()!r} (row {i}) cannot be written to a vocab file")
    if len(tokens):
        lines = pc.binary_join_element_wise(tokens, "", "\n")
        offsets, data = string_buffers(lines)
        f.write(data.data)
