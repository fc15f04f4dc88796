"""Validation and preparation shared by every path (CPU, GPU, CLI), per docs/semantics.md §1-§2.

Nothing here imports numba: the index scan is passed in by the caller, so the checks stay importable for the
lightweight parts of the CLI and for the GPU path alike.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .errors import BadIndexError, InvalidArgumentError

WEIGHT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

#: Unsigned integers of the same width as each float dtype: kernels copy rows as bits, so one compiled gather
#: serves every dtype of that width (float16 included, which numba cannot compute with) and stays bit-exact.
BITS_DTYPE = {2: np.dtype(np.uint16), 4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}

#: ``where(flat_position) -> str`` describes a bad index's place in the caller's terms.
Where = Callable[[int], str]


def check_weight(weight) -> np.ndarray:
    """Return ``weight`` as a 2-D float16/32/64 ndarray without copying it (memory maps stay maps)."""
    weight = weight if isinstance(weight, np.ndarray) else np.asarray(weight)
    if weight.ndim != 2:
        raise InvalidArgumentError(
            f"weight must be 2-D [num_embeddings, embedding_dim], got {weight.ndim}-D with shape {weight.shape}"
        )
    if weight.dtype.newbyteorder("=") not in WEIGHT_DTYPES:
        raise InvalidArgumentError(f"weight dtype must be float16, float32 or float64, got {weight.dtype}")
    return weight


def normalize_padding_idx(padding_idx, num_embeddings: int) -> int:
    """Return padding_idx as a row number in ``0..N-1``, or -1 for none (indices are never negative)."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
        raise InvalidArgumentError(f"padding_idx must be an integer, got {padding_idx!r}")
    p = int(padding_idx)
    if not -num_embeddings <= p < num_embeddings:
        raise InvalidArgumentError(
            f"padding_idx {p} is out of range for a table of {num_embeddings} rows "
            f"(valid: {-num_embeddings}..{num_embeddings - 1})"
        )
    return p + num_embeddings if p < 0 else p


def check_max_norm(max_norm, norm_type) -> tuple[float | None, float]:
    """Validate ``max_norm`` (finite, > 0, or None) and ``norm_type`` (> 0 or inf); return them as floats."""
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"norm_type must be a number, got {norm_type!r}") from None
    if not (p > 0 or p == -math.inf):
        raise InvalidArgumentError(f"norm_type must be > 0, inf or -inf, got {norm_type!r}")
    if max_norm is None:
        return None, p
    try:
        m = float(max_norm)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"max_norm must be a number, got {max_norm!r}") from None
    if not (math.isfinite(m) and m > 0):
        raise InvalidArgumentError(f"max_norm must be a finite number > 0, got {max_norm!r}")
    return m, p


def array_position(shape: tuple[int, ...], offset: int = 0) -> Where:
    """Describe a flat position as the multi-dimensional one (1-D: a plain number); ``offset`` shifts axis 0."""

    def where(flat: int) -> str:
        if len(shape) == 0:
            return "position ()"
        pos = list(np.unravel_index(flat, shape))
        pos[0] += offset
        if len(shape) == 1:
            return f"position {int(pos[0])}"
        return f"position ({', '.join(str(int(x)) for x in pos)})"

    return where


def index_array(input) -> np.ndarray:
    """``input`` as an ndarray (not copied if it is one). A ragged nested list is a clear error, not NumPy's."""
    if isinstance(input, np.ndarray):
        return input
    try:
        return np.asarray(input)
    except ValueError:
        raise InvalidArgumentError("indices must be a rectangular array, got a ragged sequence; for bags of "
                                   "different sizes pass flat indices with offsets") from None


def as_indices(input, num_embeddings: int, min_max: Callable, where: Where | None = None) -> np.ndarray:
    """Return ``input`` as a native-endian integer ndarray whose values all lie in ``0..N-1``.

    Integer arrays are not copied. Integral floats become int64. ``min_max(flat) -> (lo, hi)`` is the caller's
    (parallel) scan; only when it finds a value out of range is the first offender looked up, so the happy path
    costs one read of the indices. Raises ``BadIndexError`` naming the value, its position and N.
    """
    idx = index_array(input)
    where = where or array_position(idx.shape)
    kind = idx.dtype.kind
    if kind == "b":
        raise InvalidArgumentError("indices must be integers, got a bool array")
    if kind not in "iuf":
        raise InvalidArgumentError(f"indices must be integers, got dtype {idx.dtype}")
    if not idx.dtype.isnative:
        idx = idx.astype(idx.dtype.newbyteorder("="))
    if idx.size == 0:
        return idx if kind != "f" else idx.astype(np.int64)
    flat = idx.reshape(-1)
    if kind == "f":
        return _integral_floats(idx, num_embeddings, where)
    lo, hi = min_max(flat)
    if lo < 0 or hi >= num_embeddings:
        bad = int(np.flatnonzero((flat < 0) | (flat >= num_embeddings))[0])
        raise BadIndexError(int(flat[bad]), where(bad), num_embeddings)
    return idx


def _integral_floats(idx: np.ndarray, num_embeddings: int, where: Where) -> np.ndarray:
    """Accept a float index array only if every value is integral and in range (embedtool rule)."""
    flat = idx.reshape(-1)
    with np.errstate(invalid="ignore"):
        non_integral = ~np.isfinite(flat) | (flat != np.trunc(flat))
    if non_integral.any():
        bad = int(np.flatnonzero(non_integral)[0])
        raise BadIndexError(_float_text(flat[bad]), where(bad), num_embeddings, reason="not an integer")
    out_of_range = (flat < 0) | (flat >= num_embeddings)
    if out_of_range.any():
        bad = int(np.flatnonzero(out_of_range)[0])
        raise BadIndexError(_float_text(flat[bad]), where(bad), num_embeddings)
    return idx.astype(np.int64)


def _float_text(value) -> str:
    v = float(value)
    return str(int(v)) if math.isfinite(v) and v == int(v) else repr(v)


def output_array(shape: tuple[int, ...], dtype: np.dtype, out) -> np.ndarray:
    """Return a fresh C-contiguous output array, or check the caller's ``out`` (reused to avoid page faults)."""
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise InvalidArgumentError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise InvalidArgumentError(f"out must have shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidArgumentError("out must be a writeable C-contiguous array")
    return out


# ---- embedding_bag's arguments, shared by the CPU and GPU paths.

BAG_MODES = ("sum", "mean", "max")


def check_bag_mode(mode) -> None:
    if mode not in BAG_MODES:
        raise InvalidArgumentError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")


def bag_offsets(shape, offsets, include_last_offset) -> np.ndarray | None:
    """The checked arguments of a bag layout: ``offsets`` as a 1-D integer array (empty ones may have any dtype), or
    None for 2-D input (each row a bag). Their values are checked by ``bag_bounds`` (or ``bag._layout``)."""
    if len(shape) == 2:
        if offsets is not None:
            raise InvalidArgumentError("offsets must be None for 2-D input, where each row is a bag")
        return None
    if len(shape) != 1:
        raise InvalidArgumentError(f"input must be 2-D, or 1-D with offsets, got {len(shape)}-D with shape {shape}")
    if offsets is None:
        raise InvalidArgumentError("offsets are required with 1-D input (or pass a 2-D input, one bag per row)")
    offs = offsets if isinstance(offsets, np.ndarray) else np.asarray(offsets)
    if offs.ndim != 1:
        raise InvalidArgumentError(f"offsets must be 1-D, got shape {offs.shape}")
    if offs.size == 0 and include_last_offset:
        raise InvalidArgumentError(f"include_last_offset needs at least one offset, the input length {shape[0]}")
    if offs.size and offs.dtype.kind not in "iu":
        raise InvalidArgumentError(f"offsets must be integers, got dtype {offs.dtype}")
    return offs


def bag_bounds(shape, offsets, include_last_offset) -> np.ndarray:
    """Where the bags start and end in the flat input: bag ``b`` is ``bounds[b]:bounds[b + 1]`` (int64, B + 1)."""
    offs = bag_offsets(shape, offsets, include_last_offset)
    if offs is None:
        return np.arange(shape[0] + 1, dtype=np.int64) * shape[1]
    n = shape[0]
    if offs.size == 0:
        return np.array([n], np.int64)  # no bags
    bounds = np.empty(offs.size + (not include_last_offset), np.int64)
    bounds[: offs.size] = offs
    if not include_last_offset:
        bounds[-1] = n
    if bounds[0] != 0 or bounds[-1] != n or np.any(bounds[1:] < bounds[:-1]):
        raise _offsets_error(offs, n)
    return bounds


def _offsets_error(offs, n) -> InvalidArgumentError:
    """Name the first offset that breaks the rules (only called once one does)."""
    if offs[0] != 0:
        return InvalidArgumentError(f"offset {offs[0]} at position 0 must be 0: the first bag starts the input")
    for i in range(1, offs.size):
        if offs[i] > n:
            return InvalidArgumentError(f"offset {offs[i]} at position {i} is past the end of the input (length {n})")
        if offs[i] < offs[i - 1]:
            return InvalidArgumentError(
                f"offset {offs[i]} at position {i} is smaller than the one before it, {offs[i - 1]}: "
                "offsets must not decrease"
            )
    return InvalidArgumentError(
        f"offset {offs[-1]} at position {offs.size - 1} must equal the input length {n}, "
        "the end of the last bag, with include_last_offset"
    )


def sample_weights(per_sample_weights, shape, mode, dtype) -> np.ndarray | None:
    """The per-sample weights, checked against the input, as a flat array of the accumulator's dtype (None: none)."""
    if per_sample_weights is None:
        return None
    if mode != "sum":
        raise InvalidArgumentError(f"per_sample_weights only works with mode='sum' (as in torch), got mode={mode!r}")
    psw = per_sample_weights if isinstance(per_sample_weights, np.ndarray) else np.asarray(per_sample_weights)
    if psw.dtype.kind not in "iuf":
        raise InvalidArgumentError(f"per_sample_weights must be numbers, got dtype {psw.dtype}")
    if psw.shape != shape:
        raise InvalidArgumentError(f"per_sample_weights must have the input's shape {shape}, got {psw.shape}")
    return np.ascontiguousarray(psw.reshape(-1), dtype=dtype)
