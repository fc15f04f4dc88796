"""Binary and columnar weight formats: the Arrow store, Parquet, ``.npy`` and safetensors (readers and writers).

Readers return ``(matrix, tokens or None, stored metadata)`` without copying what can be mapped: the store's matrix
is a zero-copy view of the memory-mapped IPC file, ``.npy`` and safetensors tensors are ``np.memmap``s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from .arrays import numpy_view
from .errors import InputFormatError, InvalidArgumentError
from .writers import vectors_array

FLOAT_TYPES = {pa.float16(): np.float16, pa.float32(): np.float32, pa.float64(): np.float64}
#: Schema metadata keys of a store (and of a Parquet file written by embedtool), values JSON-encoded.
META_KEYS = ("source", "source_format", "dtype", "rows", "dim")
SAFETENSORS_DTYPES = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
SAFETENSORS_CODES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


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


def _reason(error: Exception) -> str:
    """An exception's message on one line (Arrow's may span several)."""
    return " ".join(str(error).split()) or type(error).__name__


def _validated(table: pa.Table, path, what: str) -> pa.Table:
    """``table`` after Arrow's full validation: offsets in range and non-decreasing, UTF-8 tokens, lengths that
    match, so that no kernel reads outside a buffer of an untrusted file. Linear in the rows and token bytes, not
    in the floats: 8 ms for a store of 400,000 rows x 300."""
    try:
        table.validate(full=True)
    except pa.ArrowException as e:
        raise InputFormatError(f"{path}: not a valid {what} file ({_reason(e)})") from None
    return table


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
    except (pa.ArrowException, OSError) as e:
        raise InputFormatError(f"{path}: not a readable Arrow IPC file ({_reason(e)})") from None
    matrix, tokens = from_table(_validated(table, path, "Arrow IPC"), path)
    return matrix, tokens, stored_metadata(table.schema)


def read_parquet(path) -> tuple[np.ndarray, pa.Array | None, dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path), memory_map=True)
    except (pa.ArrowException, OSError) as e:
        raise InputFormatError(f"{path}: not a readable Parquet file ({_reason(e)})") from None
    matrix, tokens = from_table(_validated(table, path, "Parquet"), path)
    return matrix, tokens, stored_metadata(table.schema)


def npy_header(path) -> tuple[tuple[int, int], np.dtype, bool, int]:
    """(shape, dtype, Fortran order, data offset) of a ``.npy`` file, checked: 2-D, float16/32/64 of either byte
    order, the data inside the file. Reads only the header."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except (ValueError, EOFError, SyntaxError, TypeError) as e:
            raise InputFormatError(f"{path}: not a readable .npy file ({_reason(e)})") from None
        start = f.tell()
    if len(shape) != 2:
        raise InputFormatError(f"{path}: weight must be 2-D [num_embeddings, embedding_dim], got {len(shape)}-D "
                               f"with shape {shape}")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise InputFormatError(f"{path}: bad shape {shape} in the .npy header")
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise InputFormatError(f"{path}: weight dtype must be float16, float32 or float64, got {dtype}")
    if start + shape[0] * shape[1] * dtype.itemsize > size:
        raise InputFormatError(f"{path}: {shape[0]:,} x {shape[1]:,} {dtype} does not fit the file (truncated?)")
    return (shape[0], shape[1]), dtype, fortran, start


def read_npy(path) -> tuple[np.ndarray, None, dict]:
    """A ``.npy`` matrix, memory-mapped. A big-endian (non-native) one is converted to native order, in memory:
    the kernels and the Arrow writers read native values, and a byte-swapped table must never be misread."""
    shape, dtype, fortran, start = npy_header(path)
    order = "F" if fortran else "C"
    if shape[0] * shape[1] == 0:
        matrix = np.empty(shape, dtype, order)
    else:
        matrix = np.memmap(path, dtype, mode="r", offset=start, shape=shape, order=order)
    if not dtype.isnative:
        matrix = matrix.astype(dtype.newbyteorder("="))
    return matrix, None, {}


#: Bytes per element of the safetensors dtypes (the spec's list); other dtype strings are checked as strings only.
SAFETENSORS_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                     "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
#: The safetensors spec's limit on the header's size.
SAFETENSORS_MAX_HEADER = 100 << 20


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def safetensors_header(path) -> tuple[dict, int]:
    """The JSON header of a safetensors file and the offset where its data starts, every entry checked against the
    spec (an untrusted header must not make us read outside the data): ``__metadata__`` maps str to str; each
    tensor is an object with a string ``dtype``, a ``shape`` of ints >= 0 and ``data_offsets`` [begin, end] inside
    the data, spanning exactly the shape's bytes."""
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(size - 8, SAFETENSORS_MAX_HEADER):
            raise InputFormatError(f"{path}: not a safetensors file (no header)")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError) as e:
            raise InputFormatError(f"{path}: not a safetensors file (bad header: {e})") from None
        except RecursionError:
            raise InputFormatError(f"{path}: not a safetensors file (the header nests too deeply)") from None
    if not isinstance(header, dict):
        raise InputFormatError(f"{path}: not a safetensors file (the header is not a JSON object)")
    data_size = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise InputFormatError(f"{path}: bad safetensors header: __metadata__ must map strings to strings")
            continue
        where = f"{path}: bad safetensors header: tensor {name!r}"
        if not isinstance(entry, dict):
            raise InputFormatError(f"{where} is {type(entry).__name__}, not an object")
        code, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(code, str):
            raise InputFormatError(f"{where} has dtype {code!r}, not a string")
        if not isinstance(shape, list) or not all(_is_int(k) and k >= 0 for k in shape):
            raise InputFormatError(f"{where} has shape {shape!r}, not a list of integers >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))
                and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise InputFormatError(f"{where} has data_offsets {offsets!r}, not [begin, end] within the "
                                   f"{data_size:,} bytes of data (truncated file?)")
        if code in SAFETENSORS_SIZES and offsets[1] - offsets[0] != math.prod(shape) * SAFETENSORS_SIZES[code]:
            raise InputFormatError(f"{where}: data_offsets {offsets} do not span its shape {shape} of {code}")
    return header, 8 + n


def read_safetensors(path, tensor: str | None = None) -> tuple[np.ndarray, None, dict]:
    """A 2-D tensor of a safetensors file, memory-mapped (bfloat16 is widened to float32, which copies it).

    ``tensor`` names it; by default the file's only 2-D tensor.
    """
    header, start = safetensors_header(path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if tensor is None:
        flat = [k for k, v in tensors.items() if len(v["shape"]) == 2]
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
