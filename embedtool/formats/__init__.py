"""The weight-format registry: every format embedtool reads and writes, how a file's format is found, and by which
module it is read and written.

==================  ===========================  ========================================================
format              suffixes                     holds
==================  ===========================  ========================================================
``arrow``           .arrow .feather .ipc         the store: ``token`` + ``vector`` fixed_size_list, mapped
``parquet``         .parquet                     token + vector (list) column, or one column per dimension
``npy``             .npy                         the matrix, mapped; tokens from a sidecar vocab file
``safetensors``     .safetensors                 a 2-D tensor (``tensor=``), mapped; sidecar vocab file
``glove``           .txt                         text rows ``token v1 ... vD``
``word2vec``        .vec                         the same after an ``N D`` header line (fastText too)
``word2vec-binary`` .bin                         ``N D`` line, then token, space, D float32 per row
``fasttext-bin``    .ftz (.bin: by its magic)    a fastText model: vocabulary, subword n-grams (read only)
``static-model``    a directory                  model2vec / StaticEmbedding: tensors, tokenizer (read only)
==================  ===========================  ========================================================

A file's format is found in this order: the first bytes that prove one (``signature``), the suffix, the content that
suggests one (``guess``), and else GloVe text, whose reader then names what is wrong. Text and word2vec binary files
may be compressed (.gz, .bz2, .xz): they are streamed. A new format is one module with a ``FORMAT`` added to
``REGISTRY``; format modules must not import numba at module level (the registry is imported by the CLI's light paths).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFormatError, InvalidArgumentError
from . import arrow, fasttext_bin, npy, parquet, safetensors, static_model, text, word2vec_binary
from .base import COMPRESSION_MAGIC, COMPRESSIONS, WeightFormat, open_compressed

REGISTRY = (arrow.FORMAT, parquet.FORMAT, npy.FORMAT, safetensors.FORMAT, text.GLOVE, text.WORD2VEC,
            word2vec_binary.FORMAT, fasttext_bin.FORMAT, static_model.FORMAT)
NAMES = tuple(f.name for f in REGISTRY)
WRITABLE = tuple(f.name for f in REGISTRY if f.write is not None)  # the others are models, read only
DEFAULT = text.GLOVE
_SUFFIXES = {suffix: f for f in REGISTRY for suffix in f.suffixes}
_OUTPUT_SUFFIXES = ", ".join(suffix for suffix, f in _SUFFIXES.items() if f.write is not None)


def get(name: str) -> WeightFormat:
    """The format called ``name`` (one of ``NAMES``)."""
    for f in REGISTRY:
        if f.name == name:
            return f
    raise InvalidArgumentError(f"format must be one of {', '.join(NAMES)}; got {name!r}")


def detect(path, format: str | None = None) -> tuple[WeightFormat, str | None]:
    """(format, compression or None) of a file to read: its first bytes where they tell, else its suffix, else
    whether its content looks like text. ``format`` overrides the format (compression is always sniffed)."""
    path = Path(path)
    if path.is_dir():
        if format not in (None, static_model.FORMAT.name) or not static_model.is_model_directory(path):
            raise InputFormatError(f"{path}: is a directory, not a weight file nor a static model directory "
                                   "(model.safetensors with tokenizer.json)")
        return static_model.FORMAT, None
    with open(path, "rb") as f:
        head = f.read(4096)
    compression = next((c for magic, c in COMPRESSION_MAGIC if head.startswith(magic)), None)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    if compression is not None:
        try:
            with open(path, "rb") as raw, open_compressed(raw, compression, "rb") as f:
                head = f.read(4096)
        except (OSError, EOFError, ValueError) as e:
            raise InputFormatError(f"{path}: cannot decompress ({e})") from None
    fmt = get(format) if format is not None else _sniff(path, head, suffixes[-1] if suffixes else "")
    if compression is not None and not fmt.compressible:
        raise InputFormatError(f"{path}: a compressed {fmt.name} file cannot be read; decompress it first")
    return fmt, compression


def _sniff(path: Path, head: bytes, suffix: str) -> WeightFormat:
    for f in REGISTRY:
        if f.signature is not None and f.signature(path, head):
            return f
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    for f in REGISTRY:
        if f.guess is not None and f.guess(head):
            return f
    return DEFAULT


def for_output(path, format: str | None = None) -> tuple[WeightFormat, str | None]:
    """(format, compression) of a file to write: ``format``, else the suffix (text may end in .gz, .bz2, .xz)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes.pop()
    if format is None:
        fmt = _SUFFIXES.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise InvalidArgumentError(
                f"{path}: cannot tell the format from the suffix; use one of {_OUTPUT_SUFFIXES} or name the format"
            )
    else:
        fmt = get(format)
    if fmt.write is None:
        raise InvalidArgumentError(f"{path}: {fmt.name} models cannot be written; write the table to one of "
                                   f"{_OUTPUT_SUFFIXES}")
    if compression and not fmt.compressible:
        raise InvalidArgumentError(f"{path}: only text and word2vec binary files can be written compressed")
    return fmt, compression
