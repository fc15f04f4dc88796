"""Writing GloVe and word2vec text with the shortest digits that read back exactly (pyarrow's casts: no kernel), and
word2vec binary (records packed by ``text_kernels.pack_records``)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrays import string_buffers
from ..errors import InvalidArgumentError
from ..progress import progress_bar


#: Tokens that cannot be written as text rows (they would not read back the same) and as word2vec binary.
_UNWRITABLE_TEXT = r"^$|^ | $|  |[\n\r]"
_UNWRITABLE_BINARY = r"[ \n]"


def _check_tokens(tokens, pattern: str, fmt: str) -> None:
    if tokens is None:
        raise InvalidArgumentError(f"{fmt} needs tokens, and this table has none (give it a vocab)")
    bad = pc.match_substring_regex(tokens, pattern)
    if pc.any(bad).as_py():
        i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise InvalidArgumentError(f"token {tokens[i].as_py()!r} (row {i}) cannot be written as {fmt}")


def _value_strings(values: np.ndarray) -> pa.Array:
    """Each value as the shortest text that reads back to it (float16 via float32, which holds it exactly)."""
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    return pa.array(np.ascontiguousarray(values).reshape(-1)).cast(pa.string())


def _chunk_rows(dim: int) -> int:
    return max(1, (1 << 22) // max(dim, 1))


def write_text(f, matrix: np.ndarray, tokens, header: bool, progress: bool | None = None) -> None:
    """Write GloVe text (``header=False``) or word2vec text (a ``rows dim`` first line) to the binary file ``f``."""
    fmt = "word2vec text" if header else "GloVe text"
    _check_tokens(tokens, _UNWRITABLE_TEXT, fmt)
    n, dim = matrix.shape
    if n and not header and tokens[0].as_py().startswith("\ufeff"):
        raise InvalidArgumentError(f"token {tokens[0].as_py()!r} (row 0) cannot be written as {fmt}: it would read as a BOM")
    if header:
        f.write(f"{n} {dim}\n".encode())
    step = _chunk_rows(dim)
    with progress_bar("writing", n, "rows", progress) as bar:
        for start in range(0, n, step):
            stop = min(n, start + step)
            rows = pa.ListArray.from_arrays(np.arange(0, (stop - start) * dim + 1, dim, dtype=np.int32),
                                            _value_strings(matrix[start:stop]))
            line = pc.binary_join_element_wise(tokens[start:stop], pc.binary_join(rows, " "), " ")
            line = pc.binary_join_element_wise(line, "", "\n")
            offsets = np.frombuffer(line.buffers()[1], np.int32)[line.offset : line.offset + len(line) + 1]
            f.write(memoryview(line.buffers()[2])[offsets[0] : offsets[-1]])
            bar.advance(stop - start)


def write_word2vec_binary(f, matrix: np.ndarray, tokens, progress: bool | None = None) -> None:
    """Write word2vec binary: a ``rows dim`` line, then per row the token, a space, dim little-endian float32 and a
    newline. The format holds float32: float64 values are rounded to it."""
    from .text_kernels import pack_records

    _check_tokens(tokens, _UNWRITABLE_BINARY, "word2vec binary")
    n, dim = matrix.shape
    f.write(f"{n} {dim}\n".encode())
    step = _chunk_rows(dim)
    with progress_bar("writing", n, "rows", progress) as bar:
        for start in range(0, n, step):
            stop = min(n, start + step)
            offsets, data = string_buffers(tokens.slice(start, stop - start))
            with np.errstate(over="ignore"):
                values = np.ascontiguousarray(matrix[start:stop], "<f4")
            overflow = np.isinf(values) & np.isfinite(matrix[start:stop])
            if overflow.any():
                row, col = np.argwhere(overflow)[0]
                raise InvalidArgumentError(
                    f"value {float(matrix[start + row, col])!r} (row {start + row}) is too large for word2vec binary, "
                    "which holds float32"
                )
            values = values.view(np.uint8)
            records = np.zeros(stop - start + 1, np.int64)
            np.cumsum(np.diff(offsets) + values.shape[1] + 2, out=records[1:])
            out = np.empty(int(records[-1]), np.uint8)
            pack_records(data, offsets, values, records, out)
            f.write(out.data)
            bar.advance(stop - start)
