"""The compiled kernel of ``info --stats`` (``info.table_stats`` imports it for chunks larger than
``small.SMALL_WORK`` elements, so that a small table loads no numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import codegen  # noqa: F401 - compiles of this kernel are timed and announced (kernel_cache)


@njit(parallel=True, cache=True, nogil=True)
def row_stats(rows, norms, zero, nonfinite):
    """Per row: L2 norm (float64 accumulation), all-zero flag, has-NaN-or-inf flag."""
    n, dim = rows.shape
    for k in prange(n):
        acc = 0.0
        is_zero = True
        bad = False
        for j in range(dim):
            x = np.float64(rows[k, j])
            acc += x * x
            if x != 0.0:
                is_zero = False
            if not np.isfinite(x):
                bad = True
        norms[k] = np.sqrt(acc)
        zero[k] = is_zero
        nonfinite[k] = bad
