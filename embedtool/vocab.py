"""Vocabularies: a hash index from token to row id, dropping duplicates, and the ``vocab.txt`` sidecar.

``pyarrow.compute.index_in`` rebuilds its hash table on every call (about 50 ms per call for a 400,000-token
vocabulary, whatever the batch size), so the index is our own: built once per table, an open-addressing table over
the token bytes of the Arrow array, probed in parallel by each batch of queries, or token by token as
``tokens.scan_space_tokens`` splits a text chunk. Its kernels are in ``vocab_kernels``, imported on first use: a
small vocabulary is indexed in a dict instead (``small.TokenIndex``), and this module loads without numba.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from .arrays import as_strings, string_buffers
from .errors import InputFormatError, InvalidArgumentError

MAX_ROWS = (1 << 32) - 1  # a row id fills a slot's low 32 bits; all ones marks an empty slot


class TokenIndex:
    """Row id of each distinct token of a string array, built once; ``lookup`` is vectorised and parallel.

    ``first[i]`` is the first row holding row ``i``'s token (``i`` itself unless the token is a duplicate);
    lookups return that first row.
    """

    def __init__(self, tokens: pa.Array):
        self.tokens = tokens
        self.offsets, self.data = string_buffers(tokens)
        n = len(tokens)
        if n > MAX_ROWS:
            raise InvalidArgumentError(f"a vocabulary of {n:,} tokens is more than the index holds ({MAX_ROWS:,})")
        from .vocab_kernels import EMPTY, build

        self.table = np.full((1 << max(4, int(2 * n).bit_length()), 2), EMPTY, np.uint64)  # at most half full
        self.first = np.empty(n, np.int64)
        build(self.offsets, self.data, self.table, self.first)

    def lookup(self, queries) -> np.ndarray:
        """The row of each query token (int64), -1 for a token not in the table or a null."""
        from .vocab_kernels import probe

        queries = as_strings(queries)
        q_offsets, q_data = string_buffers(queries)
        valid = np.ones(len(queries), np.bool_) if queries.null_count == 0 else queries.is_valid().to_numpy(False)
        out = np.empty(len(queries), np.int64)
        probe(self.table, self.offsets, self.data, q_offsets, q_data, valid, out)
        return out


def compact_rows(matrix: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``matrix[keep]`` (``keep`` increasing) made in place, without a second matrix: the first ``len(keep)`` rows."""
    from .vocab_kernels import compact

    compact(matrix.view(f"u{matrix.dtype.itemsize}"), keep)
    return matrix[: len(keep)]


def keep_unique(first: np.ndarray, policy: str) -> np.ndarray:
    """Indices of the rows to keep: the first or the last row of each token (``first`` from ``TokenIndex``)."""
    rows = np.arange(len(first))
    if policy == "first":
        return rows[first == rows]
    last = np.full(len(first), -1, np.int64)
    np.maximum.at(last, first, rows)
    return rows[last[first] == rows]


def read_vocab(path, encoding: str = "utf-8", errors: str = "strict") -> pa.Array:
    """Tokens of a vocab file: one per line (without its ``\\n`` or ``\\r\\n``), the id of a token is its line - 1."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        token = raw[raw.rfind(b"\n", 0, e.start) + 1 :].split(b"\n", 1)[0]
        raise InputFormatError(
            f"{path}:{line}: token {token!r} is not valid {encoding} "
            f"(use --errors replace or --errors ignore, or --encoding)"
        ) from None
    except LookupError:
        raise InvalidArgumentError(f"unknown encoding {encoding!r}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return pa.array([line[:-1] if line.endswith("\r") else line for line in lines], pa.string())


def write_vocab(f, tokens: pa.Array) -> None:
    """Write one token per line to the binary file ``f``."""
    import pyarrow.compute as pc

    bad = pc.match_substring_regex(tokens, r"[\n\r]")
    if pc.any(bad).as_py():
        i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise InvalidArgumentError(f"token {tokens[i].as_py()!r} (row {i}) cannot be written to a vocab file")
    if len(tokens):
        lines = pc.binary_join_element_wise(tokens, "", "\n")
        offsets, data = string_buffers(lines)
        f.write(data.data)
