"""The compiled parts of ``similarity.search`` and ``similarity.row_norms``: the top-k scans and the row norms.

They live apart from ``similarity.py`` so that a search of a few queries (``similarity.search_few``, NumPy alone:
the one-word ``embedtool similar``) never imports numba nor loads a kernel from its cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .codegen import any_scaled_above

_LANES = 32  # scores compared at once by the scan: two AVX-512 registers of float32


@njit(cache=True, inline="always")
def _offer(s, i, exclude, best_s, best_i):
    """Insert score s of row i into one query's sorted top-k if it beats the k-th and is not excluded."""
    k = best_s.shape[0]
    for e in range(exclude.shape[0]):
        if exclude[e] == i:
            return
    p = k - 1
    while p > 0 and best_s[p - 1] < s:  # strict: an equal score from an earlier (lower) id stays ahead
        best_s[p] = best_s[p - 1]
        best_i[p] = best_i[p - 1]
        p -= 1
    best_s[p] = s
    best_i[p] = i


@njit(parallel=True, cache=True)
def top_k_block(scores, scale, start, exclude, best_s, best_i):
    """Fold ``scores[q, j] * scale[j]`` (rows ``start + j``) into each query's running top-k ``best_s/best_i``."""
    nq, nb = scores.shape
    k = best_s.shape[1]
    whole = nb - nb % _LANES
    for q in prange(nq):
        row = scores[q]
        bs = best_s[q]
        bi = best_i[q]
        ex = exclude[q]
        for j0 in range(0, whole, _LANES):
            if any_scaled_above(row, scale, j0, _LANES, bs[k - 1]):
                for j in range(j0, j0 + _LANES):
                    s = row[j] * scale[j]
                    if s > bs[k - 1]:
                        _offer(s, start + j, ex, bs, bi)
        for j in range(whole, nb):
            s = row[j] * scale[j]
            if s > bs[k - 1]:
                _offer(s, start + j, ex, bs, bi)


@njit(parallel=True, cache=True)
def top_k_cosmul_block(scores, scale, start, exclude, best_s, best_i):
    """3CosMul: rows 3q, 3q+1, 3q+2 of ``scores`` are a, b, c of analogy q; its score for a row is
    ``cos'(b) cos'(c) / (cos'(a) + 1e-6)`` with ``cos' = (1 + cos) / 2`` (gensim's ``most_similar_cosmul``)."""
    nq = best_s.shape[0]
    nb = scores.shape[1]
    k = best_s.shape[1]
    for q in prange(nq):
        bs = best_s[q]
        bi = best_i[q]
        for j in range(nb):
            a = (1 + scores[3 * q, j] * scale[j]) / 2
            b = (1 + scores[3 * q + 1, j] * scale[j]) / 2
            c = (1 + scores[3 * q + 2, j] * scale[j]) / 2
            s = b * c / (a + np.float32(1e-6))
            if s > bs[k - 1]:
                _offer(s, start + j, exclude[q], bs, bi)


@njit(parallel=True, cache=True, fastmath=True)
def row_norms(matrix, out):
    """Row norms summed in float64 (in any order: fastmath lets the sum vectorise), rounded once to ``out``."""
    for i in prange(matrix.shape[0]):
        total = 0.0
        for j in range(matrix.shape[1]):
            x = np.float64(matrix[i, j])
            total += x * x
        out[i] = np.sqrt(total)
