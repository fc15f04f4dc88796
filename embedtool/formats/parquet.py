"""Parquet tables of vectors: a token column and a list column or one column per dimension."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputFormatError
from .arrow import from_table, stored_metadata, table_of, validated
from .base import LoadOptions, ReadResult, SaveOptions, WeightFormat, one_line


def read(path, compression: str | None = None, options: LoadOptions = LoadOptions()) -> ReadResult:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path), memory_map=True)
    except (pa.ArrowException, OSError) as e:
        raise InputFormatError(f"{path}: not a readable Parquet file ({one_line(e)})") from None
    matrix, tokens = from_table(validated(table, path, "Parquet"), path)
    return ReadResult(matrix, tokens, stored_metadata(table.schema))


def write(f, matrix: np.ndarray, tokens, meta: dict, options: SaveOptions = SaveOptions()) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table_of(matrix, tokens, meta), f)


FORMAT = WeightFormat("parquet", (".parquet",), read, write, signature=lambda path, head: head.startswith(b"PAR1"))
