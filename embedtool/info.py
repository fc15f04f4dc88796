"""What a weight table holds: ``describe`` (from the header, reading no row) and ``table_stats`` (zero rows,
non-finite rows, row norms: a pass over the whole table, with a progress bar; a small table's in NumPy, a large one's
in the kernel of ``info_kernels``)."""

from __future__ import annotations

import numpy as np

from . import small
from .progress import progress_bar

_CHUNK_ROWS = 1 << 16


def describe(vectors) -> dict:
    """Format, shape, dtype, bytes and whether it has a vocabulary: what loading found, no row read (nor a fastText
    model's vectors computed), so that ``info`` answers at once whatever the table's size; and a model's settings.
    A fastText model's bytes are its input matrix's (words and n-gram buckets, or their codes when quantized)."""
    model = vectors.model
    found = {
        "format": vectors.metadata.get("source_format"),
        "rows": len(vectors),
        "dim": vectors.dim,
        "dtype": str(vectors.dtype),
        "bytes": int(model.matrix.nbytes + (model.quantizer.codes.nbytes if model.quantizer else 0)
                     if vectors.subwords else vectors.matrix.nbytes),
        "vocab": vectors.has_vocab,
    }
    if vectors.subwords:
        found.update(buckets=model.bucket, minn=model.minn, maxn=model.maxn, quantized=model.quantizer is not None)
    elif model is not None:
        found.update(tokenizer=type(model.tokenizer.model).__name__, normalize=model.normalize,
                     max_length=model.max_length)
    return found


def table_stats(matrix: np.ndarray, progress: bool | None = None) -> dict:
    """Statistics of a ``[N, D]`` table, read in chunks of rows so a memory-mapped table is never loaded whole;
    a progress bar by rows on stderr (``progress=None``: when it is a terminal).

    Norms are L2; their min/mean/max skip rows with NaN or inf.
    """
    num_rows = matrix.shape[0]
    zero_rows = nonfinite_rows = 0
    norm_min, norm_max, norm_sum, finite_rows = np.inf, -np.inf, 0.0, 0
    with progress_bar("reading", num_rows, "rows", progress) as bar:
        for start in range(0, num_rows, _CHUNK_ROWS):
            chunk = np.asarray(matrix[start : start + _CHUNK_ROWS])
            if chunk.dtype not in (np.float32, np.float64) or not chunk.dtype.isnative:
                chunk = chunk.astype(np.float32 if chunk.dtype.itemsize <= 4 else np.float64)
            n = chunk.shape[0]
            if chunk.size <= small.SMALL_WORK:
                norms, zero, bad = small.row_stats(chunk)
            else:
                from .info_kernels import row_stats

                norms, zero, bad = np.empty(n), np.empty(n, np.bool_), np.empty(n, np.bool_)
                row_stats(chunk, norms, zero, bad)
            zero_rows += int(zero.sum())
            nonfinite_rows += int(bad.sum())
            good = norms[~bad]
            if good.size:
                norm_min = min(norm_min, float(good.min()))
                norm_max = max(norm_max, float(good.max()))
                norm_sum += float(good.sum())
                finite_rows += good.size
            bar.advance(n)
    return {
        "zero_rows": zero_rows,
        "nonfinite_rows": nonfinite_rows,
        "norm_min": norm_min if finite_rows else None,
        "norm_mean": norm_sum / finite_rows if finite_rows else None,
        "norm_max": norm_max if finite_rows else None,
    }
