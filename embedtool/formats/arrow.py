"""The store: an Arrow IPC file of token + vector columns, read memory-mapped without a copy; any Arrow table of vectors is read too."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from ..arrays import numpy_view
from ..errors import InputFormatError
from ..writers import vectors_array
from .base import META_KEYS, LoadOptions, ReadResult, SaveOptions, WeightFormat, one_line

FLOAT_TYPES = {pa.float16(): np.float16, pa.float32(): np.float32, pa.float64(): np.float64}


def stored_metadata(schema: pa.Schema) -> dict:
    """The embedtool keys of a schema's metadata: all of them, or none for a file embedtool did not write (or whose
    keys are missing, not JSON or of the wrong type: it is then read as any Arrow file)."""
    meta = schema.metadata or {}
    try:
        stored = {k: json.loads(meta[f"embedtool.{k}".encode()]) for k in META_KEYS}
    except (KeyError, ValueError, RecursionError):
        return {}
    kinds = {"source": str, "source_format": str, "dtype": str, "rows": int, "dim": int}
    return stored if all(isinstance(stored[k], kinds[k]) for k in META_KEYS) else {}


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
        # The values as a slice of the child array, and the lengths from the offsets (no nulls: checked above):
        # pyarrow's flatten and list_value_length would load pyarrow.compute (0.06 s) for a small store.
        if pa.types.is_fixed_size_list(col.type):
            dim = col.type.list_size
            values = col.values.slice(col.offset * dim, rows * dim)
        else:
            offsets = numpy_view(col.offsets)
            lengths = np.diff(offsets)
            dim = int(lengths[0]) if rows else 0
            if rows and (lengths != dim).any():
                row = int(np.flatnonzero(lengths != dim)[0])
                raise InputFormatError(f"{path}: row {row} has {lengths[row]} values, row 0 has {dim}")
            values = col.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        return _float_matrix(values, rows, dim, path, vector_name), tokens
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


def validated(table: pa.Table, path, what: str) -> pa.Table:
    """``table`` after Arrow's full validation: offsets in range and non-decreasing, UTF-8 tokens, lengths that
    match, so that no kernel reads outside a buffer of an untrusted file. Linear in the rows and token bytes, not
    in the floats: 8 ms for a store of 400,000 rows x 300."""
    try:
        table.validate(full=True)
    except pa.ArrowException as e:
        raise InputFormatError(f"{path}: not a valid {what} file ({one_line(e)})") from None
    return table


def read(path, compression: str | None = None, options: LoadOptions = LoadOptions()) -> ReadResult:
    """An Arrow IPC file (or stream), memory-mapped: a single record batch (a store) is read without copying."""
    try:
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
            batches = [reader.get_batch(0)] if reader.num_record_batches == 1 else None
            table = pa.Table.from_batches(batches) if batches else reader.read_all()
        except pa.ArrowInvalid:
            table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    except (pa.ArrowException, OSError) as e:
        raise InputFormatError(f"{path}: not a readable Arrow IPC file ({one_line(e)})") from None
    matrix, tokens = from_table(validated(table, path, "Arrow IPC"), path)
    return ReadResult(matrix, tokens, stored_metadata(table.schema))


def _schema_metadata(meta: dict) -> dict:
    return {f"embedtool.{k}": json.dumps(meta[k]) for k in META_KEYS}


def table_of(matrix: np.ndarray, tokens, meta: dict) -> pa.Table:
    columns = {"token": tokens} if tokens is not None else {}
    columns["vector"] = vectors_array(matrix)
    return pa.table(columns).replace_schema_metadata(_schema_metadata(meta))


def write(f, matrix: np.ndarray, tokens, meta: dict, options: SaveOptions = SaveOptions()) -> None:
    """The store: an uncompressed Arrow IPC file of one record batch, so that it maps back without a copy."""
    table = table_of(matrix, tokens, meta)
    with pa.ipc.new_file(f, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))


FORMAT = WeightFormat("arrow", (".arrow", ".feather", ".ipc"), read, write,
                      signature=lambda path, head: head.startswith((b"ARROW1", b"\xff\xff\xff\xff")))
