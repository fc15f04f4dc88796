"""A 2-D tensor of a safetensors file, memory-mapped, with its tokens in a vocab file beside it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import InputFormatError, InvalidArgumentError
from .base import META_KEYS, LoadOptions, ReadResult, SaveOptions, WeightFormat

SAFETENSORS_DTYPES = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
SAFETENSORS_CODES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}
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


def read(path, compression: str | None = None, options: LoadOptions = LoadOptions()) -> ReadResult:
    """A 2-D tensor of a safetensors file, memory-mapped (bfloat16 is widened to float32, which copies it).

    ``options.tensor`` names it; by default the file's only 2-D tensor.
    """
    tensor = options.tensor
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
    return ReadResult(matrix, None, {"tensor": tensor})


def write(f, matrix: np.ndarray, tokens, meta: dict, options: SaveOptions = SaveOptions()) -> None:
    """One tensor ``[rows, dim]`` named ``options.tensor`` (F16, F32 or F64, little-endian), the header padded to 8
    bytes; save_vectors writes the tokens to the sidecar vocab file."""
    tensor = options.tensor
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


def _signature(path, head: bytes) -> bool:
    """An 8-byte little-endian header length, then the JSON header's ``{``."""
    return len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30


FORMAT = WeightFormat("safetensors", (".safetensors",), read, write, signature=_signature, sidecar_vocab=True)
