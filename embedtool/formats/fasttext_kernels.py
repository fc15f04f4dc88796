"""The compiled kernels of fastText ``.bin`` models (``fasttext_bin`` imports them when it first needs one, so that
the format registry loads without numba): the dictionary walk and the subword vectors. See ``fasttext_bin`` for the
layout and the rules these follow."""

from __future__ import annotations

import numpy as np
from numba import njit, prange



@njit(cache=True, nogil=True)
def scan_entries(buf, pos, size):
    """Walk ``size`` dictionary entries from ``pos``: (word starts, word ends, end position), end -1 if truncated."""
    starts = np.empty(size, np.int64)
    ends = np.empty(size, np.int64)
    n = buf.shape[0]
    for i in range(size):
        starts[i] = pos
        while pos < n and buf[pos] != 0:
            pos += 1
        if pos + 10 > n:  # the NUL, the int64 count and the int8 type must all be in the file
            return starts, ends, -1 - i
        ends[i] = pos
        pos += 10
    return starts, ends, pos


@njit(cache=True, nogil=True)
def gather_words(buf, starts, ends, offsets, data, counts, types):
    """Copy the words into one contiguous string buffer and read each entry's count and type."""
    at = 0
    for i in range(starts.shape[0]):
        offsets[i] = at
        for k in range(starts[i], ends[i]):
            data[at] = buf[k]
            at += 1
        c = np.int64(0)
        for b in range(8):
            c |= np.int64(buf[ends[i] + 1 + b]) << (8 * b)
        counts[i] = c
        types[i] = np.int8(buf[ends[i] + 9])
    offsets[starts.shape[0]] = at


@njit(cache=True, nogil=True, inline="always")
def _continuation(x):
    """Whether the sign-extended byte ``x`` is a UTF-8 continuation byte (0b10xxxxxx)."""
    return (x & 0xFFFFFFC0) == 0xFFFFFF80


@njit(cache=True, nogil=True, inline="always")
def bucket_of(h, bucket, inverse):
    """``h % bucket`` for ``0 <= h < 2**32`` and ``inverse = 1.0 / bucket``, without an integer division (the
    hashing's slowest step): ``h * inverse`` in float64 is within one of the quotient, so one correction is exact."""
    b = h - np.int64(np.float64(h) * inverse) * bucket
    if b < 0:
        b += bucket
    elif b >= bucket:
        b -= bucket
    return b


@njit(cache=True, nogil=True, inline="always")
def _rows_of_word(data, s, e, row, nwords, bucket, inverse, minn, maxn, pruned, kept, kept_rows, chars, rows):
    """The matrix rows fastText's ``getWordVector`` averages for the word ``data[s:e]`` (``row`` its id or -1),
    in fastText's order, written to ``rows``; returns how many. With ``pruned``, an n-gram's bucket must be one of
    ``kept`` (sorted), and its row is ``nwords`` + the matching ``kept_rows``; others add nothing.

    ``chars`` (room for the word + 2) receives ``<word>``'s bytes sign-extended to 32 bits, as FNV-1a xors them in.
    """
    count = 0
    if row >= 0:
        rows[0] = row
        count = 1
    if e - s == 4 and data[s] == 60 and data[s + 1] == 47 and data[s + 2] == 115 and data[s + 3] == 62:
        return count  # </s> has no n-grams
    length = e - s + 2
    chars[0] = 60
    for j in range(e - s):
        c = np.int64(data[s + j])
        chars[j + 1] = (c | 0xFFFFFF00) if c >= 128 else c  # int8(byte) sign-extended
    chars[length - 1] = 62
    for i in range(length):
        if _continuation(chars[i]):
            continue
        h = np.int64(2166136261)
        j = i
        for n in range(1, maxn + 1):
            if j >= length:
                break
            h = ((h ^ chars[j]) * 16777619) & 0xFFFFFFFF  # one character: its first byte, then its continuation bytes
            j += 1
            while j < length and _continuation(chars[j]):
                h = ((h ^ chars[j]) * 16777619) & 0xFFFFFFFF
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == length)):
                b = bucket_of(h, bucket, inverse)
                if pruned:
                    at = np.searchsorted(kept, b)
                    if at == kept.shape[0] or kept[at] != b:
                        continue
                    b = kept_rows[at]
                rows[count] = nwords + b
                count += 1
    return count


@njit(cache=True, nogil=True, inline="always")
def _longest(offsets):
    """The longest word's length in bytes."""
    longest = 0
    for i in range(offsets.shape[0] - 1):
        longest = max(longest, offsets[i + 1] - offsets[i])
    return longest


@njit(parallel=True, cache=True, nogil=True)
def quantized_vectors(quantizer, offsets, data, ids, nwords, bucket, minn, maxn, pruned, most, out):
    """``out[i]`` = the vector of word ``i`` (``data[offsets[i]:offsets[i+1]]``) of a quantized model (``.ftz``),
    words in parallel: its rows (``_rows_of_word``, at most ``most``) decoded and summed as ``_sum_quantized``."""
    n = offsets.shape[0] - 1
    inverse = 1.0 / bucket
    kept, kept_rows = quantizer[7], quantizer[8]
    longest = _longest(offsets)
    ntasks = 256
    chunk = (n + ntasks - 1) // ntasks
    for t in prange(ntasks):
        acc = np.empty(out.shape[1], np.float32)
        chars = np.empty(longest + 2, np.int64)
        rows = np.empty(most, np.int64)
        for i in range(t * chunk, min(n, (t + 1) * chunk)):
            count = _rows_of_word(data, offsets[i], offsets[i + 1], ids[i], nwords, bucket, inverse, minn, maxn,
                                  pruned, kept, kept_rows, chars, rows)
            _sum_quantized(quantizer, rows, count, acc, out[i])


@njit(cache=True, nogil=True, inline="always")
def _sum_quantized(quantizer, rows, count, acc, out):
    """``out`` = the mean of a quantized matrix's rows ``rows[:count]``, as fastText's ``QuantMatrix::addRowToVector``
    and ``ProductQuantizer::addcode`` sum them in float32, in order (zeros for none)."""
    codes, centroids, nsubq, dsub, lastdsub, norm_codes, norm_centroids, kept, kept_rows = quantizer
    acc[:] = 0
    for r in range(count):
        row = rows[r]
        alpha = norm_centroids[norm_codes[row]] if norm_codes.shape[0] else np.float32(1)
        for m in range(nsubq):
            code = np.int64(codes[row, m])
            base, d = (m * 256 * dsub + code * lastdsub, lastdsub) if m == nsubq - 1 else (
                (m * 256 + code) * dsub, dsub)
            for k in range(d):
                acc[m * dsub + k] += alpha * centroids[base + k]
    scale = np.float32(1.0 / count) if count else np.float32(0)
    for k in range(acc.shape[0]):
        out[k] = acc[k] * scale


@njit(parallel=True, cache=True, nogil=True)
def word_rows(offsets, data, ids, nwords, bucket, minn, maxn, starts, flat, counts):
    """The rows of each word of a dense model (``_rows_of_word``), hashed in parallel: word ``i``'s into
    ``flat[starts[i]:]`` (room enough), their number into ``counts[i]``."""
    n = offsets.shape[0] - 1
    inverse = 1.0 / bucket
    none = np.zeros(0, np.int64)
    longest = _longest(offsets)
    ntasks = 256
    chunk = (n + ntasks - 1) // ntasks
    for t in prange(ntasks):
        chars = np.empty(longest + 2, np.int64)
        for i in range(t * chunk, min(n, (t + 1) * chunk)):
            counts[i] = _rows_of_word(data, offsets[i], offsets[i + 1], ids[i], nwords, bucket, inverse, minn, maxn,
                                      False, none, none, chars, flat[starts[i]:])


@njit(parallel=True, cache=True, nogil=True)
def packed_rows(flat, starts, counts, bounds, packed):
    """``packed[bounds[i]:bounds[i + 1]]`` = ``flat[starts[i]:][:counts[i]]``: the rows of all words, back to back."""
    for i in prange(counts.shape[0]):
        at, start = bounds[i], starts[i]
        for r in range(counts[i]):
            packed[at + r] = flat[start + r]
