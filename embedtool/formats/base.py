"""What every format module shares: the read result, gzip/bz2/xz streams, the stored metadata keys, one-line reasons."""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


def open_compressed(raw, compression: str, mode: str):
    """A (de)compressing file object over the binary file ``raw``: compression "gzip", "bz2" or "xz"."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode=mode)
    return (bz2.BZ2File if compression == "bz2" else lzma.LZMAFile)(raw, mode)


@dataclass
class ReadResult:
    """A parsed file: the matrix, its tokens, where each row came from and how many rows were skipped.

    ``lines`` holds each row's 1-based line in a text file; None for word2vec binary, whose places are row ids.
    """

    matrix: np.ndarray
    tokens: pa.Array
    lines: np.ndarray | None
    skipped: int


#: Schema metadata keys of a store (and of a Parquet file written by embedtool), values JSON-encoded.
META_KEYS = ("source", "source_format", "dtype", "rows", "dim")


def one_line(error: Exception) -> str:
    """An exception's message on one line (Arrow's may span several)."""
    return " ".join(str(error).split()) or type(error).__name__
