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
def _byte(data, s, length, j):
    """Byte ``j`` of ``"<" + data[s:s + length - 2] + ">"``."""
    return 60 if j == 0 else (62 if j == length - 1 else data[s + j - 1])


@njit(cache=True, nogil=True)
def _rows_of_word(data, s, e, row, nwords, bucket, minn, maxn, pruned, kept, kept_rows, rows):
    """The matrix rows fastText's ``getWordVector`` averages for the word ``data[s:e]`` (``row`` its id or -1),
    in fastText's order, written to ``rows``; returns how many. With ``pruned``, an n-gram's bucket must be one of
    ``kept`` (sorted), and its row is ``nwords`` + the matching ``kept_rows``; others add nothing."""
    count = 0
    if row >= 0:
        rows[0] = row
        count = 1
    if e - s == 4 and data[s] == 60 and data[s + 1] == 47 and data[s + 2] == 115 and data[s + 3] == 62:
        return count  # </s> has no n-grams
    length = e - s + 2
    for i in range(length):
        if (_byte(data, s, length, i) & 0xC0) == 0x80:
            continue
        h = np.int64(2166136261)
        j = i
        for n in range(1, maxn + 1):
            if j >= length:
                break
            while True:  # one character: its first byte, then its continuation bytes
                c = np.int64(_byte(data, s, length, j))
                h = ((h ^ ((c | 0xFFFFFF00) if c >= 128 else c)) * 16777619) & 0xFFFFFFFF  # int8(byte) sign-extended
                j += 1
                if j >= length or (_byte(data, s, length, j) & 0xC0) != 0x80:
                    break
            if n >= minn and not (n == 1 and (i == 0 or j == length)):
                b = h % bucket
                if pruned:
                    at = np.searchsorted(kept, b)
                    if at == kept.shape[0] or kept[at] != b:
                        continue
                    b = kept_rows[at]
                rows[count] = nwords + b
                count += 1
    return count


@njit(parallel=True, cache=True, nogil=True)
def subword_vectors(matrix, quantizer, offsets, data, ids, nwords, bucket, minn, maxn, pruned, most, out):
    """``out[i]`` = the vector of word ``i`` (``data[offsets[i]:offsets[i+1]]``), words in parallel.

    The rows of a word are hashed first and summed after, so that their loads do not wait on the hashing; the sum
    runs in float32 in fastText's order and is scaled by ``float32(1 / count)`` as fastText's ``Vector::mul``.
    ``quantizer`` (a ``Quantizer``'s arrays) is used instead of ``matrix`` when it has codes.
    """
    codes, centroids, nsubq, dsub, lastdsub, norm_codes, norm_centroids, kept, kept_rows = quantizer
    quantized = codes.shape[0] > 0
    n = offsets.shape[0] - 1
    dim = out.shape[1]
    ntasks = 256
    chunk = (n + ntasks - 1) // ntasks
    for t in prange(ntasks):
        acc = np.empty(dim, np.float32)
        rows = np.empty(most, np.int64)
        for i in range(t * chunk, min(n, (t + 1) * chunk)):
            count = _rows_of_word(data, offsets[i], offsets[i + 1], ids[i], nwords, bucket, minn, maxn, pruned, kept,
                                  kept_rows, rows)
            acc[:] = 0
            for r in range(count):
                row = rows[r]
                if quantized:  # fastText's QuantMatrix::addRowToVector and ProductQuantizer::addcode
                    alpha = norm_centroids[norm_codes[row]] if norm_codes.shape[0] else np.float32(1)
                    for m in range(nsubq):
                        code = np.int64(codes[row, m])
                        base, d = (m * 256 * dsub + code * lastdsub, lastdsub) if m == nsubq - 1 else (
                            (m * 256 + code) * dsub, dsub)
                        for k in range(d):
                            acc[m * dsub + k] += alpha * centroids[base + k]
                else:
                    for k in range(dim):
                        acc[k] += matrix[row, k]
            scale = np.float32(1.0 / count) if count else np.float32(0)
            for k in range(dim):
                out[i, k] = acc[k] * scale
