"""A .npy matrix, memory-mapped, with its tokens in a vocab file beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputFormatError
from .base import LoadOptions, ReadResult, SaveOptions, WeightFormat, one_line


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
            raise InputFormatError(f"{path}: not a readable .npy file ({one_line(e)})") from None
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


def read(path, compression: str | None = None, options: LoadOptions = LoadOptions()) -> ReadResult:
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
    return ReadResult(matrix, None)


def write(f, matrix: np.ndarray, tokens=None, meta: dict | None = None, options: SaveOptions = SaveOptions()) -> None:
    """The matrix alone: save_vectors writes the tokens to the sidecar vocab file."""
    np.lib.format.write_array(f, np.asarray(matrix), allow_pickle=False)


FORMAT = WeightFormat("npy", (".npy",), read, write, signature=lambda path, head: head.startswith(b"\x93NUMPY"),
                      sidecar_vocab=True)
