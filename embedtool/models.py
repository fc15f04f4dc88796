"""Models that compute a token's vector rather than store one: fastText ``.bin`` and static model directories.

``load_model`` is the one entry point that the weight-format registry and the command line call: it tells the two
kinds apart by what is on disk (a directory holding a tokenizer and a tensor file, or a file that starts with
fastText's magic number).
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputFormatError
from .formats.fasttext_bin import FastTextModel, is_fasttext_bin, load_fasttext_bin
from .formats.static_model import StaticModel, is_model_directory, load_static_model


def is_model(path) -> bool:
    """Whether ``path`` is a fastText ``.bin`` or a static model directory."""
    return is_model_directory(path) or (Path(path).is_file() and is_fasttext_bin(path))


def load_model(path, **options) -> FastTextModel | StaticModel:
    """Open a fastText ``.bin`` (no options) or a static model directory (``normalize=``, ``max_length=``)."""
    path = Path(path)
    if is_model_directory(path):
        return load_static_model(path, **options)
    if path.is_file() and is_fasttext_bin(path):
        if options:
            raise InputFormatError(f"{path}: {', '.join(options)} apply to model directories, not fastText models")
        return load_fasttext_bin(path)
    raise InputFormatError(f"{path}: neither a fastText .bin model nor a static model directory (model.safetensors "
                           "with tokenizer.json)")
