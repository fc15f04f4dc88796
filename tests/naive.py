"""Plain NumPy references of docs/semantics.md §1-§2, for clarity, not speed: every kernel is tested against these."""

import math

import numpy as np


def row_norm(row: np.ndarray, p: float) -> float:
    """``vector_norm(row, p)`` accumulated in float32 (float64 for float64 rows), rounded to the row's dtype."""
    acc = np.float64 if row.dtype == np.float64 else np.float32
    x = np.abs(row.astype(acc))
    if p == math.inf:
        norm = x.max(initial=0)
    elif p == -math.inf:
        norm = x.min(initial=np.inf)
    elif p == 1:
        norm = x.sum(dtype=acc)
    elif p == 2:
        norm = np.sqrt((x * x).sum(dtype=acc))
    else:
        norm = (x.astype(np.float64) ** p).sum() ** (1 / p)
    with np.errstate(over="ignore"):
        return float(np.asarray(norm).astype(row.dtype))


def renorm(row: np.ndarray, max_norm: float, p: float) -> np.ndarray:
    """torch's ``embedding_renorm_`` for one row, on a copy."""
    norm = row_norm(row, p)
    if norm > max_norm:
        scale = row.dtype.type(max_norm / (norm + 1e-7))
        with np.errstate(over="ignore", invalid="ignore"):
            return (row * scale).astype(row.dtype)
    return row.copy()


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0):
    """docs/semantics.md §1 by a loop over positions."""
    idx = np.asarray(input)
    n, dim = weight.shape
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    out = np.zeros(idx.shape + (dim,), weight.dtype)
    for pos in np.ndindex(*idx.shape):
        i = int(idx[pos])
        assert 0 <= i < n
        if i == padding_idx:
            continue
        row = weight[i]
        out[pos] = renorm(row, max_norm, norm_type) if max_norm is not None else row
    return out


def embedding_bag(
    input,
    weight,
    offsets=None,
    mode="mean",
    per_sample_weights=None,
    padding_idx=None,
    include_last_offset=False,
    max_norm=None,
    norm_type=2.0,
):
    """docs/semantics.md §2 by a loop over bags and entries, accumulating in float64."""
    idx = np.asarray(input)
    n, dim = weight.shape
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    psw = None if per_sample_weights is None else np.asarray(per_sample_weights)
    if idx.ndim == 2:
        length = idx.shape[1]
        bags = [(b * length, (b + 1) * length) for b in range(idx.shape[0])]
        idx = idx.reshape(-1)
        psw = None if psw is None else psw.reshape(-1)
    else:
        offs = [int(o) for o in offsets]
        if not include_last_offset:
            offs = offs + [len(idx)]
        bags = list(zip(offs[:-1], offs[1:]))
    out = np.zeros((len(bags), dim), weight.dtype)
    for b, (start, stop) in enumerate(bags):
        rows = []
        for k in range(start, stop):
            i = int(idx[k])
            if i == padding_idx:
                continue
            row = weight[i]
            if max_norm is not None:
                row = renorm(row, max_norm, norm_type)
            row = row.astype(np.float64)
            if psw is not None:
                row = row * float(psw[k])
            rows.append(row)
        if not rows:
            continue
        if mode == "sum":
            out[b] = np.sum(rows, axis=0)
        elif mode == "mean":
            out[b] = np.sum(rows, axis=0) / len(rows)
        else:
            best = rows[0].copy()
            for row in rows[1:]:
                best = np.where(row > best, row, best)
            out[b] = best
    return out
