"""GloVe and word2vec/fastText text: detection and entries. The rules are in text_numbers and text_rows; the
compiled reader in text_blocks, imported for files larger than ``small.SMALL_TEXT`` (its kernels load numba); the
writer in text_write."""

from __future__ import annotations

from pathlib import Path

from .. import small
from .base import LoadOptions, ReadResult, SaveOptions, WeightFormat
from .text_rows import read_small, text_options


def read(path, compression: str | None, options: LoadOptions) -> ReadResult:
    """Rows ``token v1 ... vD``, after an ``N D`` header line or not (the header is found in the file)."""
    path = Path(path)
    if compression is None and path.is_file() and path.stat().st_size <= small.SMALL_TEXT:
        return read_small(path, text_options(options))
    from .text_blocks import read_text

    return read_text(path, compression, text_options(options), options.progress)


def _write_glove(f, matrix, tokens, meta: dict, options: SaveOptions) -> None:
    from .text_write import write_text

    write_text(f, matrix, tokens, False, options.progress)


def _write_word2vec(f, matrix, tokens, meta: dict, options: SaveOptions) -> None:
    from .text_write import write_text

    write_text(f, matrix, tokens, True, options.progress)


GLOVE = WeightFormat("glove", (".txt",), read, _write_glove, compressible=True)
WORD2VEC = WeightFormat("word2vec", (".vec",), read, _write_word2vec, compressible=True)
