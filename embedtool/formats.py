"""Binary and columnar weight formats: the Arrow store, Parquet, ``.npy`` and safetensors (readers and writers).

Readers return ``(matrix, tokens or None, stored metadata)`` without copying what can be mapped: the store's matrix
is a zero-copy view of the memory-mapped IPC file, ``.npy`` and safetensors tensors are ``np.memmap``s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from .errors import InputFormatError, InvalidArgumentError
from .writers import numpy_view, vectors_array

FLOAT_TYPES = {pa.float16(): np.float16, pa.float32(): np.float32, pa.float64(): np.float64}
#: Schema metadata keys of a store (and of a Parquet file written by embedtool), values JSON-encoded.
META_KEYS = ("source", "source_format", "dtype", "rows", "dim")
SAFETENSORS_DTYPES = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
SAFETENSORS_CODES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


def stored_metadata(schema: pa.Schema) -> dict:
    """The embedtool keys of a schema's metadata (empty for files embedtool did not write)."""
    meta = schema.metadata or {}
    return {k: json.loads(meta[f"embedtool.{k}".encode()]) for k in META_KEYS if f"embedtool.{k}".encode() in meta}


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    if col.num_chunks == 1:
        return col.chunk(0)
    return col.combine_chunks() if col.num_chunks else pa.array([], col.type)


def _pick(candidates: list[str], preferred: tuple[str, ...], what: str, path) -> str | None:
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    for name in preferred:
        if name in candidates:
            return name
    raise InputFormatError(f"{path}: several {what} columns ({', '.join(candidates)}); name one {preferred[0]!r}")


def _float_matrix(values: pa.Array, rows: int, dim: int, path, column: str) -> np.ndarray:
    if values.type not in FLOAT_TYPES:
        raise InputFormatError(f"{path}: column {column!r} holds {values.type}, expected float16, float32 or float64")
    if values.null_count:
        raise InputFormatError(f"{path}: column {column!r} holds null values")
    return numpy_view(values).reshape(rows, dim)


def from_table(table: pa.Table, path) -> tuple[np.ndarray, pa.Array | None]:
    """The matrix and tokens of an Arrow table: a string token column (optional) and either one vector column
    (``fixed_size_list`` or ``list`` of floats) or one numeric column per dimension, in order."""
    fields = table.schema
    strings = [f.name for f in fields if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
               or (pa.types.is_dictionary(f.type) and pa.types.is_string(f.type.value_type))]
    lists = [f.name for f in fields if pa.types.is_fixed_size_list(f.type) or pa.types.is_list(f.type)
             or pa.types.is_large_list(f.type)]
    token_name = _pick(strings, ("token", "word"), "string", path)
    tokens = None
    if token_name is not None:
        tokens = _column(table, token_name)
        if pa.types.is_dictionary(tokens.type):
            tokens = tokens.dictionary_decode()
        if tokens.null_count:
            row = int(np.flatnonzero(tokens.is_null().to_numpy(False))[0])
            raise InputFormatError(f"{path}: row {row} has a null token")
    vector_name = _pick(lists, ("vector", "embedding"), "list", path)
    rows = table.num_rows
    if vector_name is not None:
        col = _column(table, vector_name)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(False))[0])
            raise InputFormatError(f"{path}: row {row} has a null vector")
        if pa.types.is_fixed_size_list(col.type):
            dim = col.type.list_size
        else:
            import pyarrow.compute as pc

            lengths = pc.list_value_length(col).to_numpy(False)
            dim = int(lengths[0]) if rows else 0
            if rows and (lengths != dim).any():
                row = int(np.flatnonzero(lengths != dim)[0])
                raise InputFormatError(f"{path}: row {row} has {lengths[row]} values, row 0 has {dim}")
        return _float_matrix(col.flatten(), rows, dim, path, vector_name), tokens
    numeric = [f.name for f in fields if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)]
    if not numeric:
        raise InputFormatError(f"{path}: no vector column (a list of floats, or one numeric column per dimension)")
    columns = [_column(table, name) for name in numeric]
    for name, col in zip(numeric, columns):
        if col.null_count:
            raise InputFormatError(f"{path}: column {name!r} holds null values")
    columns = [col.to_numpy(zero_copy_only=False) for col in columns]
    dtype = np.result_type(*columns)
    return np.column_stack(columns).astype(dtype if dtype.kind == "f" else np.float32, copy=False), tokens


def read_arrow(path) -> tuple[np.ndarray, pa.Array | None, dict]:
    """An Arrow IPC file (or stream), memory-mapped: a single record batch (a store) is read without copying."""
    try:
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
            batches = [reader.get_batch(0)] if reader.num_record_batches == 1 else None
            table = pa.Table.from_batches(batches) if batches else reader.read_all()
        except pa.ArrowInvalid:
            table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise InputFormatError(f"{path}: not a readable Arrow IPC file ({e})") from None
    matrix, tokens = from_table(table, path)
    return matrix, tokens, stored_metadata(table.schema)


def read_parquet(path) -> tuple[np.ndarray, pa.Array | None, dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path), memory_map=True)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputFormatError(f"{path}: not a readable Parquet file ({e})") from None
    matrix, tokens = from_table(table, path)
    return matrix, tokens, stored_metadata(table.schema)


def read_npy(path) -> tuple[np.ndarray, None, dict]:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False), None, {}
    except (ValueError, OSError) as e:
        raise InputFormatError(f"{path}: not a readable .npy file ({e})") from None


def safetensors_header(path) -> tuple[dict, int]:
    """The JSON header of a safetensors file and the offset where its data starts."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= size - 8:
            raise InputFormatError(f"{path}: not a safetensors file (no header)")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError) as e:
            raise InputFormatError(f"{path}: not a safetensors file (bad header: {e})") from None
    if not isinstance(header, dict):
        raise InputFormatError(f"{path}: not a safetensors file (bad header)")
    return header, 8 + n


def read_safetensors(path, tensor: str | None = None) -> tuple[np.ndarray, None, dict]:
    """A 2-D tensor of a safetensors file, memory-mapped (bfloat16 is widened to float32, which copies it).

    ``tensor`` names it; by default the file's only 2-D tensor.
    """
    header, start = safetensors_header(path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if tensor is None:
        flat = [k for k, v in tensors.items() if len(v.get("shape", ())) == 2]
        if len(flat) != 1:
            names = ", ".join(flat[:10]) + (", ..." if len(flat) > 10 else "")
            raise InvalidArgumentError(
                f"{path} holds {len(flat)} 2-D tensors; pick one with --tensor" + (f": {names}" if flat else "")
            )
        tensor = flat[0]
    if tensor not in tensors:
        raise InvalidArgumentError(f"{path} has no tensor {tensor!r}; it has: {', '.join(list(tensors)[:10])}")
    info = tensors[tensor]
    code, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
    if code not in SAFETENSORS_DTYPES:
        raise InputFormatError(f"{path}: tensor {tensor!r} is {code}; expected F16, BF16, F32 or F64")
    if len(shape) != 2:
        raise InputFormatError(f"{path}: tensor {tensor!r} has shape {list(shape)}, expected [rows, dim]")
    dtype = np.dtype(SAFETENSORS_DTYPES[code])
    if end - begin != shape[0] * shape[1] * dtype.itemsize or start + end > Path(path).stat().st_size:
        raise InputFormatError(f"{path}: tensor {tensor!r} does not fit its data offsets (truncated file?)")
    if shape[0] * shape[1] == 0:
        matrix = np.empty(shape, dtype)
    else:
        matrix = np.memmap(path, dtype, mode="r", offset=start + begin, shape=shape)
    if code == "BF16":
        matrix = (matrix.astype(np.uint32) << 16).view(np.float32)
    return matrix, None, {"tensor": tensor}


def _schema_metadata(meta: dict) -> dict:
    return {f"embedtool.{k}": json.dumps(meta[k]) for k in META_KEYS}


def _table(matrix: np.ndarray, tokens, meta: dict) -> pa.Table:
    columns = {"token": tokens} if tokens is not None else {}
    columns["vector"] = vectors_array(matrix)
    return pa.table(columns).replace_schema_metadata(_schema_metadata(meta))


def write_arrow(f, matrix: np.ndarray, tokens, meta: dict) -> None:
    """The store: an uncompressed Arrow IPC file of one record batch, so that it maps back without a copy."""
    table = _table(matrix, tokens, meta)
    with pa.ipc.new_file(f, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))


def write_parquet(f, matrix: np.ndarray, tokens, meta: dict) -> None:
    import pyarrow.parquet as pq

    pq.write_table(_table(matrix, tokens, meta), f)


def write_npy(f, matrix: np.ndarray) -> None:
    np.lib.format.write_array(f, np.asarray(matrix), allow_pickle=False)


def write_safetensors(f, matrix: np.ndarray, tensor: str, meta: dict) -> None:
    """One tensor ``[rows, dim]`` (F16, F32 or F64, little-endian), the header padded to 8 bytes."""
    dtype = matrix.dtype.newbyteorder("<")
    nbytes = matrix.size * dtype.itemsize
    header = {
        "__metadata__": {k: str(meta[k]) for k in META_KEYS},
        tensor: {"dtype": SAFETENSORS_CODES[np.dtype(matrix.dtype.type)], "shape": list(matrix.shape),
                 "data_offsets": [0, nbytes]},
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    step = max(1, (64 << 20) // max(1, matrix.shape[1] * dtype.itemsize))
    for start in range(0, matrix.shape[0], step):
        f.write(np.ascontiguousarray(matrix[start : start + step], dtype).data)
