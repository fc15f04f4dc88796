"""GloVe and word2vec/fastText text: detection and entries; the parsing is in text_numbers, text_rows, text_blocks and
text_write (imported when a file is read or written: they compile numba kernels)."""

from __future__ import annotations

from .base import LoadOptions, ReadResult, SaveOptions, WeightFormat


def read(path, compression: str | None, options: LoadOptions) -> ReadResult:
    """Rows ``token v1 ... vD``, after an ``N D`` header line or not (the header is found in the file)."""
    from .text_blocks import read_text, text_options

    return read_text(path, compression, text_options(options), options.progress)


def _write_glove(f, matrix, tokens, meta: dict, options: SaveOptions) -> None:
    from .text_write import write_text

    write_text(f, matrix, tokens, False, options.progress)


def _write_word2vec(f, matrix, tokens, meta: dict, options: SaveOptions) -> None:
    from .text_write import write_text

    write_text(f, matrix, tokens, True, options.progress)


GLOVE = WeightFormat("glove", (".txt",), read, _write_glove, compressible=True)
WORD2VEC = WeightFormat("word2vec", (".vec",), read, _write_word2vec, compressible=True)
