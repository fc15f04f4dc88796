"""Vocabularies: a compiled hash index from token to row id, dropping duplicates, and the ``vocab.txt`` sidecar.

``pyarrow.compute.index_in`` rebuilds its hash table on every call (about 50 ms per call for a 400,000-token
vocabulary, whatever the batch size), so the index is our own: built once per table, an open-addressing table over
the token bytes of the Arrow array, probed in parallel by each batch of queries, or token by token as
``tokens.scan_space_tokens`` splits a text chunk. A token's hash folds in eight bytes at a time (``mix``), so a
scanner that reads eight bytes at a time hashes as it goes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from numba import njit, prange

from .arrays import as_strings, string_buffers
from .codegen import load_word
from .errors import InputFormatError, InvalidArgumentError

_U = np.uint64
HASH_SEED, _PRIME = _U(0xCBF29CE484222325), _U(0x9E3779B97F4A7C15)  # a token's running hash starts at HASH_SEED
_MIX1, _MIX2 = _U(0xFF51AFD7ED558CCD), _U(0xC4CEB9FE1A85EC53)


@njit(cache=True, nogil=True)
def word_at(data, k, e):
    """The bytes ``data[k:min(k + 8, e)]`` as a little-endian uint64, zeros above them; never reads past ``data``."""
    n = e - k
    if n >= 8:
        return load_word(data, k)
    if k + 8 <= data.shape[0]:
        return load_word(data, k) & ((_U(1) << _U(8 * n)) - _U(1))
    w = _U(0)
    for t in range(n):
        w |= _U(data[k + t]) << _U(8 * t)
    return w


@njit(cache=True, nogil=True)
def mix(h, word):
    """Fold eight bytes of a token into its running hash."""
    h = (h ^ word) * _PRIME
    return h ^ (h >> _U(32))


@njit(cache=True, nogil=True)
def finish(h, length):
    """The hash of a token from its running hash: murmur3's finaliser, so that the low bits spread."""
    h ^= _U(length)
    h ^= h >> _U(33)
    h *= _MIX1
    h ^= h >> _U(33)
    h *= _MIX2
    return h ^ (h >> _U(33))


@njit(cache=True, nogil=True)
def token_hash(data, s, e):
    """Hash of ``data[s:e]``, eight bytes at a time (``mix`` from ``HASH_SEED``, then ``finish``)."""
    h = HASH_SEED
    for k in range(s, e, 8):
        h = mix(h, word_at(data, k, e))
    return finish(h, e - s)


@njit(cache=True, nogil=True)
def _same(a, sa, ea, b, sb, eb):
    if ea - sa != eb - sb:
        return False
    for k in range(ea - sa):
        if a[sa + k] != b[sb + k]:
            return False
    return True


_EMPTY = _U(0xFFFFFFFFFFFFFFFF)
_LOW32, _HIGH32 = _U(0xFFFFFFFF), _U(0xFFFFFFFF00000000)
MAX_ROWS = (1 << 32) - 1  # a row id fills a slot's low 32 bits; all ones marks an empty slot


@njit(cache=True, nogil=True)
def _key(h, length):
    """A slot's upper 32 bits for a token of hash ``h``: its length (saturated at 16 bits), the hash's top 16 bits."""
    return (_U(min(length, 0xFFFF)) | (h >> _U(48) << _U(16))) << _U(32)


@njit(cache=True, nogil=True)
def _slot(table, offsets, data, h, word, query, s, e):
    """The slot of token ``query[s:e]`` (hash ``h``, first eight bytes ``word``): the one holding it, or the empty
    one where it goes. A slot is two uint64: the token's first eight bytes, then its row, length (saturated at
    16 bits) and the hash's top 16 bits. Tokens of up to eight bytes are compared within the slot, in the one cache
    line the probe reads anyway; only longer ones read the rest of their bytes from ``data``."""
    mask = table.shape[0] - 1
    key = _key(h, e - s)
    j = np.int64(h & _U(mask))
    while True:
        meta = table[j, 1]
        if meta == _EMPTY:
            return j
        if meta & _HIGH32 == key and table[j, 0] == word:
            row = np.int64(meta & _LOW32)
            if e - s <= 8 or _same(data, offsets[row] + 8, offsets[row + 1], query, s + 8, e):
                return j
        j = (j + 1) & mask


@njit(cache=True, nogil=True)
def find(table, offsets, data, h, word, query, s, e):
    """The row of token ``query[s:e]`` (hash ``h``, first eight bytes ``word``) in the index, or -1."""
    meta = table[_slot(table, offsets, data, h, word, query, s, e), 1]
    return np.int64(-1) if meta == _EMPTY else np.int64(meta & _LOW32)


@njit(cache=True, nogil=True)
def _build(offsets, data, table, first):
    """Insert every token; ``first[i]`` gets the first row holding the same bytes as row ``i``."""
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        h, word = token_hash(data, s, e), word_at(data, s, e)
        j = _slot(table, offsets, data, h, word, data, s, e)
        if table[j, 1] == _EMPTY:
            table[j, 0] = word
            table[j, 1] = _key(h, e - s) | _U(i)
            first[i] = i
        else:
            first[i] = np.int64(table[j, 1] & _LOW32)


@njit(parallel=True, cache=True, nogil=True)
def _probe(table, offsets, data, q_offsets, q_data, q_valid, out):
    """``out[i]`` = the row of query ``i``, or -1."""
    for i in prange(q_offsets.shape[0] - 1):
        s, e = q_offsets[i], q_offsets[i + 1]
        out[i] = -1
        if q_valid[i]:
            out[i] = find(table, offsets, data, token_hash(q_data, s, e), word_at(q_data, s, e), q_data, s, e)


class TokenIndex:
    """Row id of each distinct token of a string array, built once; ``lookup`` is vectorised and parallel.

    ``first[i]`` is the first row holding row ``i``'s token (``i`` itself unless the token is a duplicate);
    lookups return that first row.
    """

    def __init__(self, tokens: pa.Array):
        self.tokens = tokens
        self.offsets, self.data = string_buffers(tokens)
        n = len(tokens)
        if n > MAX_ROWS:
            raise InvalidArgumentError(f"a vocabulary of {n:,} tokens is more than the index holds ({MAX_ROWS:,})")
        self.table = np.full((1 << max(4, int(2 * n).bit_length()), 2), _EMPTY, np.uint64)  # at most half full
        self.first = np.empty(n, np.int64)
        _build(self.offsets, self.data, self.table, self.first)

    def lookup(self, queries) -> np.ndarray:
        """The row of each query token (int64), -1 for a token not in the table or a null."""
        queries = as_strings(queries)
        q_offsets, q_data = string_buffers(queries)
        valid = np.ones(len(queries), np.bool_) if queries.null_count == 0 else queries.is_valid().to_numpy(False)
        out = np.empty(len(queries), np.int64)
        _probe(self.table, self.offsets, self.data, q_offsets, q_data, valid, out)
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
