"""The compiled kernels of text inputs (``tokens`` imports them when a chunk is too large for its Python path, so
that a small job loads no numba): the id-line parser, and the space tokenizer fused with the vocabulary lookup
(``vocab_kernels``). See ``tokens`` for the rules these follow."""

from __future__ import annotations

import numpy as np
from numba import njit

from .codegen import load_word, trailing_zeros
from .vocab_kernels import HASH_SEED, find, finish, mix, token_hash, word_at

_MAX_DIGITS = 18  # an id of more digits would overflow int64: reported as not a valid id

_ZEROS = np.uint64(0x3030303030303030)  # '0' in each byte
_HIGH_BITS = np.uint64(0x8080808080808080)
_ABOVE_NINE = np.uint64(0x7676767676767676)  # added to a byte's digit value, sets its high bit when it exceeds 9


@njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 10 or c == 9 or c == 13 or c == 11 or c == 12


@njit(cache=True, nogil=True)
def _digits_value(word, count):
    """The number written by the first ``count`` (1-7) bytes of ``word``, digit values (``byte - '0'``) in little-endian
    order: shifted so they are the top bytes (zeros below act as leading zeros), then combined pairwise, SWAR."""
    word <<= np.uint64(64 - 8 * count)
    word = (word & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561) >> np.uint64(8)
    word = (word & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601) >> np.uint64(16)
    return np.int64((word & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001) >> np.uint64(32))


@njit(cache=True, nogil=True)
def parse_ids(buf, values, line_ends):
    """Parse ASCII-whitespace separated integers, one sequence per ``\\n``-terminated line.

    ``buf`` ends with a newline (chunks are whole lines), which ends every number without a bounds check. A number
    of up to 7 digits is read in one step: its 8 bytes as a word, the first non-digit found by bit tricks, the digits
    combined in parallel; longer ones and signed ones digit by digit. Fills ``values`` and ``line_ends`` (the count
    of values after each line). Returns ``(n_values, n_lines, bad)`` where ``bad`` is the byte offset of the first
    token that is not an integer id (-1 if none).
    """
    n = buf.shape[0]
    nv = 0
    nl = 0
    i = 0
    while i < n:
        c = buf[i]
        if np.uint64(np.int64(c) - 48) <= np.uint64(9) and i + 8 <= n:
            digits = load_word(buf, i) - _ZEROS
            count = np.int64(trailing_zeros(((digits + _ABOVE_NINE) | digits) & _HIGH_BITS) >> np.uint64(3))
            if count < 8:
                if not _is_space(buf[i + count]):
                    return nv, nl, i
                values[nv] = _digits_value(digits, count)
                nv += 1
                i += count
                continue
        if c == 10:
            line_ends[nl] = nv
            nl += 1
            i += 1
        elif _is_space(c):
            i += 1
        else:  # a sign, a long number, one near the end of the chunk, or not a number
            start = i
            negative = c == 45
            if c == 45 or c == 43:
                i += 1
            digits_start = i
            value = np.int64(0)
            d = np.int64(buf[i]) - 48
            while np.uint64(d) <= np.uint64(9):
                value = value * 10 + d
                i += 1
                d = np.int64(buf[i]) - 48
            count = i - digits_start
            if count == 0 or count > _MAX_DIGITS or not _is_space(buf[i]):
                return nv, nl, start
            values[nv] = -value if negative else value
            nv += 1
    return nv, nl, -1



_ONES = np.uint64(0x0101010101010101)
_SPACES = np.uint64(0x2020202020202020)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)


@njit(cache=True, nogil=True)
def _zero_bytes(x):
    """The high bit of each zero byte of ``x``: exact for the lowest one (higher ones may be false)."""
    return (x - _ONES) & ~x & _HIGH_BITS


@njit(cache=True, nogil=True)
def _token_end(buf, i):
    """Where the token starting at ``i`` ends: at the next space or newline, before a line's trailing ``\\r``s."""
    e = i
    while buf[e] != 32 and buf[e] != 10:
        e += 1
    if buf[e] == 10:
        while e > i and buf[e - 1] == 13:
            e -= 1
    return e


@njit(cache=True, nogil=True)
def scan_tokens(buf, table, offsets, data, ids, starts, line_ends):
    """The space tokenizer fused with the vocabulary lookup, over ``\\n``-terminated lines (``vocab.TokenIndex``'s
    arrays). No token string is made: eight bytes at a time, one load finds where the token ends (bit tricks, as in
    ``parse_ids``) and feeds its hash, and the token is probed at once. Tokens are the runs of bytes other than
    space and newline, a line's trailing ``\\r``s not included (as ``split_lines`` then ``tokenize``). Fills ``ids``
    (-1 for an OOV token), ``starts`` (each token's first byte) and ``line_ends`` (the count of tokens after each
    line); returns ``(n_tokens, n_lines)``.
    """
    n = buf.shape[0]
    nt = 0
    nl = 0
    i = 0
    while i < n:
        c = buf[i]
        if c == 32:
            i += 1
            continue
        if c == 10:
            line_ends[nl] = nt
            nl += 1
            i += 1
            continue
        s = i
        h = HASH_SEED
        first = np.uint64(0)
        while True:
            word = word_at(buf, i, n)
            stops = _zero_bytes(word ^ _SPACES) | _zero_bytes(word ^ _NEWLINES)
            count = 8 if stops == 0 else np.int64(trailing_zeros(stops) >> np.uint64(3))
            if count < 8:
                word &= (np.uint64(1) << np.uint64(8 * count)) - np.uint64(1)
            if i == s:
                first = word
            if count:
                h = mix(h, word)
                i += count
            if count < 8:
                break
        e = i
        if buf[e] == 10 and buf[e - 1] == 13:
            e = _token_end(buf, s)
            if e == s:
                continue
            h, first = token_hash(buf, s, e), word_at(buf, s, e)
        else:
            h = finish(h, e - s)
        ids[nt] = find(table, offsets, data, h, first, buf, s, e)
        starts[nt] = s
        nt += 1
    return nt, nl


@njit(cache=True, nogil=True)
def token_strings(buf, starts):
    """Offsets and bytes of the tokens starting at ``starts`` (as ``scan_tokens`` found them)."""
    ends = np.empty_like(starts)
    offsets = np.zeros(starts.shape[0] + 1, np.int64)
    for t in range(starts.shape[0]):
        ends[t] = _token_end(buf, starts[t])
        offsets[t + 1] = offsets[t] + ends[t] - starts[t]
    data = np.empty(offsets[-1], np.uint8)
    for t in range(starts.shape[0]):
        data[offsets[t] : offsets[t + 1]] = buf[starts[t] : ends[t]]
    return offsets, data

