"""What every format module shares: the WeightFormat record the registry lists, load and save options, the read result,
gzip/bz2/xz streams."""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import pyarrow as pa


def open_compressed(raw, compression: str, mode: str):
    """A (de)compressing file object over the binary file ``raw``: compression "gzip", "bz2" or "xz"."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode=mode)
    return (bz2.BZ2File if compression == "bz2" else lzma.LZMAFile)(raw, mode)


COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


@dataclass(frozen=True)
class LoadOptions:
    """load_vectors' options that reach a format's reader (format, vocab and duplicates are load_vectors' own)."""

    dtype: np.dtype | None = None  # None: the file's own (text and word2vec binary: float32)
    limit: int | None = None
    on_bad_row: str = "error"  # "error" | "skip" (text)
    errors: str = "strict"  # "strict" | "replace" | "ignore" (tokens of text and word2vec binary)
    encoding: str = "utf-8"
    allow_nonfinite: bool = False  # (text)
    tensor: str | None = None  # (safetensors)
    progress: bool | None = None  # (text, word2vec binary)
    model: dict = field(default_factory=dict)  # (static-model) normalize=, max_length=


@dataclass(frozen=True)
class SaveOptions:
    """save_vectors' options that reach a format's writer."""

    tensor: str = "weight"  # (safetensors)
    progress: bool | None = None  # (text, word2vec binary)


@dataclass
class ReadResult:
    """A file read: its matrix, tokens (None: none in the file), what an embedtool-written file stored about itself
    (META_KEYS, or {"tensor": name}), each row's 1-based text line (None where rows are not lines: word2vec binary
    and the binary formats, whose places are row ids), rows skipped, and the model it is (fastText .bin, static
    model directory), whose matrix may be None: computed when first needed."""

    matrix: np.ndarray | None
    tokens: pa.Array | None
    stored: dict = field(default_factory=dict)
    lines: np.ndarray | None = None
    skipped: int = 0
    model: object = None


@dataclass(frozen=True)
class WeightFormat:
    """One weight format as the registry sees it. A new format is a module that defines one of these (FORMAT) and
    adds it to formats.REGISTRY; it must not import numba at module level (do that inside read/write)."""

    name: str  # format= / --from / --to
    suffixes: tuple[str, ...]  # lower-case, with the dot; the first is the canonical one
    read: Callable[[Path, str | None, LoadOptions], ReadResult]
    write: Callable[[BinaryIO, np.ndarray, pa.Array | None, dict, SaveOptions], None] | None  # None: read only
    signature: Callable[[Path, bytes], bool] | None = None  # the first bytes (b"" for a directory) prove it
    guess: Callable[[bytes], bool] | None = None  # content that suggests it, when nothing else decided
    compressible: bool = False  # read and written through .gz/.bz2/.xz
    sidecar_vocab: bool = False  # tokens live in <name>.vocab.txt beside it


#: Schema metadata keys of a store (and of a Parquet file written by embedtool), values JSON-encoded.
META_KEYS = ("source", "source_format", "dtype", "rows", "dim")


def one_line(error: Exception) -> str:
    """An exception's message on one line (Arrow's may span several)."""
    return " ".join(str(error).split()) or type(error).__name__
