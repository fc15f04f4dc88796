"""Arrow arrays from NumPy buffers and back, and string-array helpers, without a copy and without importing pandas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .errors import InputFormatError, InvalidArgumentError


def from_numpy(values: np.ndarray) -> pa.Array:
    """A 1-D numeric array as an Arrow array without a copy (``pa.array`` would import pandas: 0.4 s per run)."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def numpy_view(values: pa.Array) -> np.ndarray:
    """A fixed-width Arrow array without nulls as a read-only NumPy view (``to_numpy`` would import pandas)."""
    dtype = values.type.to_pandas_dtype()
    return np.frombuffer(values.buffers()[1], dtype)[values.offset : values.offset + len(values)]


def string_array(data: bytes, offsets: np.ndarray) -> pa.StringArray:
    """Strings from UTF-8 ``data`` cut at ``offsets`` (n + 1), without a copy. Not validated."""
    offsets = np.ascontiguousarray(offsets, np.int32)
    return pa.Array.from_buffers(pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def strings(values: list[str]) -> pa.StringArray:
    """A few Python strings as an Arrow array (``pa.array`` would import pandas)."""
    encoded = [v.encode("utf-8") for v in values]
    return string_array(b"".join(encoded), np.cumsum([0] + [len(e) for e in encoded]))


def as_strings(tokens) -> pa.Array:
    """A pyarrow string array from an Arrow (chunked) string array, or any sequence of str."""
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks() if tokens.num_chunks != 1 else tokens.chunk(0)
    if not isinstance(tokens, pa.Array):
        try:
            tokens = pa.array(tokens if isinstance(tokens, (list, tuple)) else list(tokens), pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
            raise InvalidArgumentError(f"tokens must be strings ({e})") from None
    if pa.types.is_dictionary(tokens.type):
        tokens = tokens.dictionary_decode()
    if not (pa.types.is_string(tokens.type) or pa.types.is_large_string(tokens.type)):
        raise InvalidArgumentError(f"tokens must be strings, got an Arrow array of {tokens.type}")
    return tokens


def string_buffers(tokens: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array as numpy views: token ``i`` is ``data[offsets[i]:offsets[i + 1]]``."""
    kind = np.int64 if pa.types.is_large_string(tokens.type) else np.int32
    buffers = tokens.buffers()
    offsets = np.frombuffer(buffers[1], kind)[tokens.offset : tokens.offset + len(tokens) + 1] if len(tokens) else (
        np.zeros(1, kind)
    )
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    # The kernels read data[offsets[i]:offsets[i + 1]] unchecked: offsets from an untrusted file must not point
    # outside it. One vectorised pass, about 1 ms per million tokens.
    if offsets[0] < 0 or offsets[-1] > data.shape[0] or (offsets[1:] < offsets[:-1]).any():
        raise InputFormatError("corrupt string column: its offsets decrease or point outside its data")
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]
