"""The compiled kernels of the vocabulary index (``vocab.TokenIndex`` and ``tokens.scan_space_tokens`` import them
when they first need one, so that a small job loads no numba): an open-addressing hash table over the token bytes of
an Arrow string array. A token's hash folds in eight bytes at a time (``mix``), so a scanner that reads eight bytes
at a time hashes as it goes. See ``vocab`` for why the index is our own.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .codegen import load_word

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


EMPTY = _U(0xFFFFFFFFFFFFFFFF)  # an empty slot
_LOW32, _HIGH32 = _U(0xFFFFFFFF), _U(0xFFFFFFFF00000000)


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
        if meta == EMPTY:
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
    return np.int64(-1) if meta == EMPTY else np.int64(meta & _LOW32)


@njit(cache=True, nogil=True)
def build(offsets, data, table, first):
    """Insert every token; ``first[i]`` gets the first row holding the same bytes as row ``i``."""
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        h, word = token_hash(data, s, e), word_at(data, s, e)
        j = _slot(table, offsets, data, h, word, data, s, e)
        if table[j, 1] == EMPTY:
            table[j, 0] = word
            table[j, 1] = _key(h, e - s) | _U(i)
            first[i] = i
        else:
            first[i] = np.int64(table[j, 1] & _LOW32)


@njit(parallel=True, cache=True, nogil=True)
def probe(table, offsets, data, q_offsets, q_data, q_valid, out):
    """``out[i]`` = the row of query ``i``, or -1."""
    for i in prange(q_offsets.shape[0] - 1):
        s, e = q_offsets[i], q_offsets[i + 1]
        out[i] = -1
        if q_valid[i]:
            out[i] = find(table, offsets, data, token_hash(q_data, s, e), word_at(q_data, s, e), q_data, s, e)


@njit(cache=True, nogil=True)
def compact(rows, keep):
    """``rows[:len(keep)] = rows[keep]`` in place (``keep`` increasing)."""
    for j in range(keep.shape[0]):
        if keep[j] != j:
            rows[j] = rows[keep[j]]

