"""Weight tables: ``Vectors`` (a matrix and an optional vocabulary) and ``load_vectors``.

This is the weight side of embedtool; readers for every format plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import check_weight
from .errors import EmbedtoolError, InputFormatError


@dataclass
class Vectors:
    """An embedding table: ``matrix`` ``[N, D]`` (possibly memory-mapped) and, when known, its ``tokens``."""

    matrix: np.ndarray
    tokens: object = None
    metadata: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        return self.matrix.shape[0]


def load_vectors(path) -> Vectors:
    """Open a weight table. ``.npy`` files are memory-mapped: opening costs no load time and no copy."""
    path = Path(path)
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputFormatError(f"{path}: not a readable .npy file ({e})") from None
    try:
        check_weight(matrix)
    except EmbedtoolError as e:
        raise InputFormatError(f"{path}: {e}") from None
    return Vectors(matrix, metadata={"source": str(path), "source_format": "npy"})
