"""Arrow output: embedding columns and record-batch writers for IPC file, IPC stream, Parquet and stdout.

Output contract (see README): a 1-D input gives one row per index, column ``embedding`` of type
``fixed_size_list<dtype>[D]``; a k-D input of shape ``(d0, d1, ...)`` gives d0 rows of the canonical extension type
``arrow.fixed_shape_tensor`` with shape ``[d1, ..., D]``; ragged sequences give ``list<fixed_size_list<dtype>[D]>``;
pooled rows (``bag``) give ``fixed_size_list<dtype>[D]``. With ``vector_type="list"`` every fixed-size level is a
``list`` instead (vectors ``list<dtype>``, tensors nested lists, sequences ``list<list<dtype>>``), the types Spark and
loaders without ``fixed_size_list`` take; the values are the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from .arrays import from_numpy
from .atomic import is_stream
from .errors import InvalidArgumentError

IPC_FILE_SUFFIXES = {".arrow", ".feather", ".ipc"}


VECTOR_TYPES = ("fixed", "list")
INT32_MAX = 2**31 - 1


def embedding_type(dtype, row_shape: tuple[int, ...], vector_type: str = "fixed") -> pa.DataType:
    """The ``embedding`` column's type for fixed rows of shape ``row_shape`` (``(D,)`` or ``(d1, ..., D)``)."""
    value = pa.from_numpy_dtype(dtype)
    if vector_type == "list":
        for _ in row_shape:
            value = pa.list_(value)
        return value
    if len(row_shape) == 1:
        return pa.list_(value, row_shape[0])
    return pa.fixed_shape_tensor(value, list(row_shape))


def ragged_type(dtype, dim: int, vector_type: str = "fixed") -> pa.DataType:
    return pa.list_(embedding_type(dtype, (dim,), vector_type))


def vectors_array(values: np.ndarray, vector_type: str = "fixed") -> pa.Array:
    """A ``(rows, D)`` array as ``fixed_size_list<dtype>[D]`` (or ``list<dtype>``), without copying the values."""
    return embedding_array(values, vector_type)


def embedding_array(values: np.ndarray, vector_type: str = "fixed") -> pa.Array:
    """The ``embedding`` column for fixed rows of shape ``(rows, *inner, D)``, without copying the values.

    ``list``: each level wraps the flat values with computed offsets, so the values buffer is shared, not copied.
    """
    flat = from_numpy(values.reshape(-1))
    if vector_type == "list":
        if values.size > INT32_MAX:
            raise InvalidArgumentError(f"a batch of {values.size:,} values is too large for vector_type='list' "
                                       f"(32-bit offsets: at most {INT32_MAX:,}); pass smaller batches")
        for level in range(values.ndim - 1, 0, -1):
            lists = int(np.prod(values.shape[:level]))
            flat = pa.ListArray.from_arrays(from_numpy(np.arange(lists + 1, dtype=np.int32) * values.shape[level]), flat)
        return flat
    width = int(np.prod(values.shape[1:]))
    if width == 0:
        storage = pa.array([[]] * values.shape[0], type=pa.list_(flat.type, 0))
    else:
        storage = pa.FixedSizeListArray.from_arrays(flat, width)
    if values.ndim == 2:
        return storage
    return pa.ExtensionArray.from_storage(embedding_type(values.dtype, values.shape[1:]), storage)


def ragged_array(values: np.ndarray, offsets: np.ndarray, vector_type: str = "fixed") -> pa.ListArray:
    """Ragged sequences: ``values`` ``(total, D)`` split by ``offsets`` (rows + 1) into ``list<fixed_size_list>``
    (``list<list>``)."""
    return pa.ListArray.from_arrays(from_numpy(offsets.astype(np.int32, copy=False)), vectors_array(values, vector_type))


def output_kind(path: str) -> str:
    """``ipc-file``, ``ipc-stream`` or ``parquet`` from the output path's suffix; ``-``, a device (``/dev/null``)
    or a pipe without one is an IPC stream."""
    if path == "-":
        return "ipc-stream"
    suffix = Path(path).suffix.lower()
    if suffix in IPC_FILE_SUFFIXES:
        return "ipc-file"
    if suffix == ".arrows":
        return "ipc-stream"
    if suffix == ".parquet":
        return "parquet"
    if is_stream(path):
        return "ipc-stream"
    raise InvalidArgumentError(
        f"{path}: unknown output format {suffix or '(no suffix)'!r}; use .arrow, .feather, .arrows or .parquet"
    )


class BatchWriter:
    """Writes record batches as ``fmt`` to ``sink`` (a path or a binary file object).

    ``write(batch, metadata)`` attaches per-batch custom metadata (IPC); ``close(metadata)`` adds key-value metadata
    known only at the end to the Parquet footer.
    """

    def __init__(self, sink, schema: pa.Schema, fmt: str):
        self.fmt = fmt
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(sink, schema)
        elif fmt == "ipc-file":
            self._writer = pa.ipc.new_file(sink, schema)
        else:
            self._writer = pa.ipc.new_stream(sink, schema)

    def write(self, batch: pa.RecordBatch, metadata: dict | None = None) -> None:
        if metadata and self.fmt != "parquet":
            self._writer.write_batch(batch, custom_metadata=metadata)
        else:
            self._writer.write_batch(batch)

    def close(self, metadata: dict | None = None) -> None:
        if metadata and self.fmt == "parquet":
            self._writer.add_key_value_metadata(metadata)
        self._writer.close()


def stdout_sink():
    """The binary stdout, for ``-o -``."""
    return sys.stdout.buffer
