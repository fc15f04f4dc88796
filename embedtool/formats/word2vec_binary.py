"""word2vec's binary format: a 'rows dim' line, then a token, a space and dim float32 per row."""

from __future__ import annotations

from .base import LoadOptions, ReadResult, SaveOptions, WeightFormat
from .text_rows import text_options

_CONTROL = bytes(range(9)) + bytes(range(14, 32))


def looks_binary(head: bytes) -> bool:
    """A first line of digits (the ``rows dim`` header), then control bytes: float32 values, not text."""
    first, _, rest = head.partition(b"\n")
    return first.strip().replace(b" ", b"").isdigit() and any(b in _CONTROL for b in rest)


def read(path, compression: str | None, options: LoadOptions) -> ReadResult:
    from .text_blocks import read_word2vec_binary

    return read_word2vec_binary(path, compression, text_options(options), options.progress)


def write(f, matrix, tokens, meta: dict, options: SaveOptions) -> None:
    """float32 records (float64 is rounded to it)."""
    from .text_write import write_word2vec_binary

    write_word2vec_binary(f, matrix, tokens, options.progress)


FORMAT = WeightFormat("word2vec-binary", (".bin",), read, write, guess=looks_binary, compressible=True)
