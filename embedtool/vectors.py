"""Weight tables: ``Vectors`` (a matrix and an optional vocabulary), ``load_vectors`` and ``save_vectors``.

Formats (``format=`` names; read from a file's first bytes, else its suffix):

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
==================  ===========================  ========================================================

Text and word2vec binary files may be compressed (.gz, .bz2, .xz): they are streamed. The sidecar vocab of a table
without tokens is ``vocab=``, else ``<name>.vocab.txt`` or ``vocab.txt`` beside it: one token per line, id = line - 1.
"""

from __future__ import annotations

import codecs
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .arrays import as_strings
from .core import WEIGHT_DTYPES, check_weight
from .errors import EmbedtoolError, InputFormatError, InvalidArgumentError

FORMATS = ("arrow", "parquet", "npy", "safetensors", "glove", "word2vec", "word2vec-binary")
TEXT_FORMATS = ("glove", "word2vec")
SUFFIXES = {
    ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow", ".parquet": "parquet", ".npy": "npy",
    ".safetensors": "safetensors", ".txt": "glove", ".vec": "word2vec", ".bin": "word2vec-binary",
}
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # the int32 that starts a fastText .bin model
_FORMAT_MAGIC = ((b"\x93NUMPY", "npy"), (b"PAR1", "parquet"), (b"ARROW1", "arrow"), (b"\xff\xff\xff\xff", "arrow"))


@dataclass
class Vectors:
    """An embedding table: ``matrix`` ``[N, D]`` (possibly memory-mapped) and, when known, its ``tokens``.

    ``tokens`` is a pyarrow string array (any sequence of str is converted), row ``i`` being token ``i``'s vector.
    Token lookups use a hash index built on first use and kept.
    """

    matrix: np.ndarray
    tokens: object = None
    metadata: dict = field(default_factory=dict)
    _index: object = field(default=None, init=False, repr=False, compare=False)
    _norms: object = field(default=None, init=False, repr=False, compare=False)  # similarity.row_norms keeps them

    def __post_init__(self):
        self.matrix = check_weight(self.matrix)
        if self.tokens is not None:
            self.tokens = as_strings(self.tokens)
            if len(self.tokens) != self.matrix.shape[0]:
                raise InvalidArgumentError(f"{len(self.tokens)} tokens for a table of {self.matrix.shape[0]} rows")

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def has_vocab(self) -> bool:
        return self.tokens is not None

    def token_ids(self, tokens) -> np.ndarray:
        """The row of each token (a pyarrow string array or a sequence of str) as int64, -1 where it is unknown.

        Vectorised: the batch is hashed and probed in parallel against the table's index (built once).
        """
        return self.token_index.lookup(tokens)

    @property
    def token_index(self):
        """The vocabulary's hash index (``vocab.TokenIndex``), built on first use."""
        if self.tokens is None:
            source = self.metadata.get("source", "this table")
            raise InvalidArgumentError(f"{source} has no vocabulary: give a vocab file, or look rows up by id")
        if self._index is None:
            from .small import token_index

            self._index = token_index(self.tokens)
        return self._index

    def ids(self, tokens, oov="error") -> np.ndarray:
        """The row of each token (int64). ``oov`` says what an unknown token gets: ``"error"`` raises
        ``InputFormatError`` naming the first one; an int (a row id, e.g. of ``<unk>`` or padding) is used for it."""
        ids = self.token_ids(tokens)
        missing = ids < 0
        if not missing.any():
            return ids
        if isinstance(oov, str):
            if oov != "error":
                raise InvalidArgumentError(f"oov must be 'error' or a row id, got {oov!r}")
            first = int(np.flatnonzero(missing)[0])
            token = as_strings(tokens)[first].as_py()
            count = int(missing.sum())
            raise InputFormatError(
                f"token {token!r} is not in the vocabulary" + (f" ({count} of {len(ids)} tokens are not)" if count > 1 else "")
            )
        if isinstance(oov, (bool, np.bool_)) or not isinstance(oov, (int, np.integer)) or not 0 <= oov < len(self):
            raise InvalidArgumentError(f"oov must be 'error' or a row id 0..{len(self) - 1}, got {oov!r}")
        ids[missing] = oov
        return ids

    # Similarity (embedtool/similarity.py does the work; numba loads on first call).
    def most_similar(self, queries, k=10, metric="cosine", against=None):
        """The ``k`` nearest rows to each query (tokens, ids or vectors): ``similarity.most_similar``."""
        from .similarity import most_similar

        return most_similar(self, queries, k, metric, against)

    def analogy(self, a, b, c, k=10, method="add"):
        """``a`` is to ``b`` as ``c`` is to ? (3CosAdd or 3CosMul): ``similarity.analogy``."""
        from .similarity import analogy

        return analogy(self, a, b, c, k, method)

    def evaluate_analogies(self, path, **options):
        """Accuracy on a questions-words file, as gensim's: ``similarity.evaluate_analogies``."""
        from .similarity import evaluate_analogies

        return evaluate_analogies(self, path, **options)

    def evaluate_pairs(self, path, **options):
        """Pearson, Spearman and OOV ratio on a word-pair file, as gensim's: ``similarity.evaluate_pairs``."""
        from .similarity import evaluate_pairs

        return evaluate_pairs(self, path, **options)


# --------------------------------------------------------------------------------------------------------------
# Detection


def detect_format(path, format: str | None = None) -> tuple[str, str | None]:
    """(format, compression or None) of a file to read: its first bytes where they tell, else its suffix, else
    whether its content looks like text. ``format`` overrides the format (compression is always sniffed)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(_FASTTEXT_MAGIC):
        raise InputFormatError(f"{path}: a fastText .bin model, not supported yet: read its .vec file (or write one "
                               "with fastText's print-word-vectors)")
    compression = next((c for magic, c in _COMPRESSION_MAGIC if head.startswith(magic)), None)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    if compression is not None:
        try:
            from .formats.base import open_compressed

            with open(path, "rb") as raw, open_compressed(raw, compression, "rb") as f:
                head = f.read(4096)
        except (OSError, EOFError, ValueError) as e:
            raise InputFormatError(f"{path}: cannot decompress ({e})") from None
    fmt = format or _sniff(head, suffixes[-1] if suffixes else "")
    if compression is not None and fmt not in TEXT_FORMATS + ("word2vec-binary",):
        raise InputFormatError(f"{path}: a compressed {fmt} file cannot be read; decompress it first")
    return fmt, compression


def _sniff(head: bytes, suffix: str) -> str:
    for magic, fmt in _FORMAT_MAGIC:
        if head.startswith(magic):
            return fmt
    if len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        return "safetensors"
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    first, _, rest = head.partition(b"\n")
    control = bytes(range(9)) + bytes(range(14, 32))
    if first.strip().replace(b" ", b"").isdigit() and any(b in control for b in rest):
        return "word2vec-binary"
    return "glove"


# --------------------------------------------------------------------------------------------------------------
# Loading


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidArgumentError(f"unknown encoding {encoding!r}") from None
    probe = "0123456789 .+-eE\n"
    if probe.encode(encoding, "replace").lstrip(codecs.BOM_UTF8) != probe.encode("ascii"):
        raise InvalidArgumentError(f"encoding {encoding!r} is not ASCII-compatible; convert the file to UTF-8 first")


def _sidecar(path: Path) -> Path | None:
    for candidate in (path.with_suffix(".vocab.txt"), path.with_name("vocab.txt")):
        if candidate.is_file():
            return candidate
    return None


def load_vectors(
    path,
    *,
    format=None,
    tensor=None,
    vocab=None,
    dtype=None,
    limit=None,
    duplicates="first",
    on_bad_row="error",
    errors="strict",
    encoding="utf-8",
    allow_nonfinite=False,
    progress=None,
) -> Vectors:
    """Open a weight table in any supported format (see the module docstring).

    Parameters
    ----------
    path : path-like
        The file. Its format is detected from its first bytes and suffix unless ``format`` names it.
    format : str, optional
        One of ``FORMATS``.
    tensor : str, optional
        The safetensors tensor to read (default: the file's only 2-D tensor).
    vocab : path-like, optional
        Tokens, one per line, for a table that has none (default: a ``<name>.vocab.txt`` or ``vocab.txt`` beside it).
    dtype : float16, float32 or float64, optional
        The matrix's dtype (default: the file's; float32 for text and bfloat16). Text is parsed straight to it.
    limit : int, optional
        Read only the first ``limit`` rows (data lines of a text file).
    duplicates : "first", "last" or "error"
        Which row a repeated token keeps; the other rows are dropped (``metadata["duplicates"]`` counts them).
    on_bad_row : "error" or "skip"
        Text rows that break the rules: stop with an error naming file:line and the token, or skip them
        (``metadata["skipped_rows"]`` counts them).
    errors : "strict", "replace" or "ignore"
        Tokens that do not decode with ``encoding``.
    encoding : str
        Of the tokens of text, word2vec binary and vocab files (ASCII-compatible).
    allow_nonfinite : bool
        Accept NaN and inf values in text instead of stopping at them.
    progress : bool, optional
        A progress bar (by bytes read) for text and word2vec binary; None: when stderr is a terminal.

    Returns
    -------
    Vectors, whose ``metadata`` holds ``source``, ``source_format``, ``dtype``, ``rows`` and ``dim`` (and, for a
    store, the ``converted_from`` file and its ``converted_from_format``).
    """
    path = Path(path)
    if format is not None:
        _choice("format", format, FORMATS)
    _choice("duplicates", duplicates, ("first", "last", "error"))
    _choice("on_bad_row", on_bad_row, ("error", "skip"))
    _choice("errors", errors, ("strict", "replace", "ignore"))
    _check_encoding(encoding)
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            dtype = str(dtype)
        if dtype not in WEIGHT_DTYPES:
            raise InvalidArgumentError(f"dtype must be float16, float32 or float64; got {dtype}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
        raise InvalidArgumentError(f"limit must be an integer >= 0, got {limit!r}")
    if not path.exists():
        raise InputFormatError(f"{path}: no such file")
    if path.is_dir():
        raise InputFormatError(f"{path}: is a directory, not a weight file")
    fmt, compression = detect_format(path, format)
    notes: dict = {}
    lines = None
    stored: dict = {}
    if fmt in TEXT_FORMATS or fmt == "word2vec-binary":
        from .formats import text_blocks, text_rows

        opts = text_rows.TextOptions(
            np.dtype(dtype or np.float32), limit, on_bad_row, errors, encoding, allow_nonfinite
        )
        read = text_blocks.read_text if fmt in TEXT_FORMATS else text_blocks.read_word2vec_binary
        result = read(path, compression, opts, progress)
        matrix, tokens, lines = result.matrix, result.tokens, result.lines
        if result.skipped:
            notes["skipped_rows"] = result.skipped
    else:
        from .formats import arrow, npy, parquet, safetensors

        if fmt == "safetensors":
            matrix, tokens, stored = safetensors.read(path, tensor)
        else:
            matrix, tokens, stored = {"arrow": arrow.read, "parquet": parquet.read, "npy": npy.read}[fmt](path)
        try:
            matrix = check_weight(matrix)
        except EmbedtoolError as e:
            raise InputFormatError(f"{path}: {e}") from None
    if tokens is None:
        vocab_path = Path(vocab) if vocab is not None else _sidecar(path)
        if vocab_path is not None:
            tokens = _read_sidecar(vocab_path, matrix.shape[0], encoding, errors)
    elif vocab is not None:
        raise InvalidArgumentError(f"{path} has its own tokens; a vocab file is only for tables without them")
    if limit is not None and lines is None:
        matrix = matrix[:limit]
        tokens = tokens[:limit] if tokens is not None else None
    if tokens is not None and "rows" not in stored:  # a file embedtool wrote holds unique tokens
        matrix, tokens, dropped = _deduplicate(path, matrix, tokens, duplicates, lines)
        if dropped:
            notes["duplicates"] = dropped
    if dtype is not None and matrix.dtype != dtype:
        matrix = matrix.astype(dtype)
    metadata = {"source": str(path), "source_format": fmt, "dtype": str(matrix.dtype),
                "rows": matrix.shape[0], "dim": matrix.shape[1], **notes}
    if "source" in stored:
        metadata["converted_from"] = stored["source"]
        metadata["converted_from_format"] = stored["source_format"]
    if "tensor" in stored:
        metadata["tensor"] = stored["tensor"]
    return Vectors(matrix, tokens, metadata)


def _read_sidecar(path: Path, rows: int, encoding: str, errors: str) -> pa.Array:
    from .vocab import read_vocab

    if not path.is_file():
        raise InputFormatError(f"{path}: no such vocab file")
    tokens = read_vocab(path, encoding, errors)
    if len(tokens) != rows:
        raise InputFormatError(f"{path}: the vocab file has {len(tokens)} tokens but the table has {rows} rows")
    return tokens


def _deduplicate(path, matrix, tokens, policy: str, lines):
    """Drop the rows of repeated tokens, keeping each token's first or last row; or raise for ``"error"``."""
    from .small import token_index

    first = token_index(tokens).first
    repeated = first != np.arange(len(first))
    if not repeated.any():
        return matrix, tokens, 0
    if policy == "error":
        i = int(np.flatnonzero(repeated)[0])
        token = tokens[i].as_py()
        if lines is not None:
            raise InputFormatError(f"{path}:{lines[i]}: duplicate token {token!r} (first at line {lines[first[i]]})")
        raise InputFormatError(f"{path}: row {i}: duplicate token {token!r} (first at row {first[i]})")
    from .vocab import compact_rows, keep_unique

    keep = keep_unique(first, policy)
    # In place when the matrix is ours (parsed text): it may be most of memory.
    matrix = compact_rows(matrix, keep) if matrix.flags.writeable and matrix.flags.c_contiguous else matrix[keep]
    return matrix, tokens.take(pa.array(keep)), len(first) - len(keep)


# --------------------------------------------------------------------------------------------------------------
# Saving


def output_format(path, format: str | None = None) -> tuple[str, str | None]:
    """(format, compression) of a file to write: ``format``, else the suffix (text may end in .gz, .bz2, .xz)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes.pop()
    fmt = format
    if fmt is None:
        fmt = SUFFIXES.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise InvalidArgumentError(
                f"{path}: cannot tell the format from the suffix; use one of {', '.join(SUFFIXES)} or name the format"
            )
    _choice("format", fmt, FORMATS)
    if compression and fmt not in TEXT_FORMATS + ("word2vec-binary",):
        raise InvalidArgumentError(f"{path}: only text and word2vec binary files can be written compressed")
    return fmt, compression


def weight_files(path, vocab=None, what="weights") -> dict:
    """The files a table at ``path`` is read from, which no output may overwrite: ``{path: what}``, and its
    vocabulary (``vocab``, else a sidecar beside it)."""
    path = Path(path)
    vocab = Path(vocab) if vocab is not None else _sidecar(path)
    return {path: what} if vocab is None else {path: what, vocab: "vocabulary"}


def check_destination(path, format=None, reads: dict | None = None) -> None:
    """Fail before any work if ``save_vectors(..., path, format)`` could not write its files (the table, and the
    vocabulary beside an npy or safetensors table) or would overwrite one of ``reads`` (``weight_files``)."""
    from .atomic import check_target, refuse_aliases

    path = Path(path)
    files = [path]
    if output_format(path, format)[0] in ("npy", "safetensors"):
        files.append(path.with_suffix(".vocab.txt"))
    refuse_aliases(files, reads or {})
    for file in files:
        check_target(file)


def save_vectors(vectors, path, format=None, *, tensor="weight", progress=None) -> Path:
    """Write a table (``Vectors`` or a 2-D array) to ``path`` atomically; returns the path. Its own source file is
    never overwritten (``check_destination``).

    The format comes from ``format`` or the suffix (see the module docstring). ``npy`` and ``safetensors`` write the
    tokens to a ``<name>.vocab.txt`` beside the file. Text is written with the fewest digits that read back exactly;
    word2vec binary holds float32 (float64 is rounded to it). ``tensor`` names the safetensors tensor.
    """
    from .atomic import atomic_path
    from .formats import arrow, npy, parquet, safetensors, text_write
    from .formats.base import open_compressed

    vectors = vectors if isinstance(vectors, Vectors) else Vectors(vectors)
    path = Path(path)
    source = vectors.metadata.get("source")
    check_destination(path, format, weight_files(source, what="source") if source else None)
    fmt, compression = output_format(path, format)
    matrix, tokens = vectors.matrix, vectors.tokens
    if tokens is not None:
        _check_unique(tokens)
    meta = {
        "source": vectors.metadata.get("converted_from", vectors.metadata.get("source", "")),
        "source_format": vectors.metadata.get("converted_from_format", vectors.metadata.get("source_format", "")),
        "dtype": str(matrix.dtype), "rows": matrix.shape[0], "dim": matrix.shape[1],
    }
    writers = {
        "arrow": lambda f: arrow.write(f, matrix, tokens, meta),
        "parquet": lambda f: parquet.write(f, matrix, tokens, meta),
        "npy": lambda f: npy.write(f, matrix),
        "safetensors": lambda f: safetensors.write(f, matrix, tensor, meta),
        "glove": lambda f: text_write.write_text(f, matrix, tokens, False, progress),
        "word2vec": lambda f: text_write.write_text(f, matrix, tokens, True, progress),
        "word2vec-binary": lambda f: text_write.write_word2vec_binary(f, matrix, tokens, progress),
    }
    with contextlib.ExitStack() as stack:
        if fmt in ("npy", "safetensors") and tokens is not None:
            from .vocab import write_vocab

            sidecar = stack.enter_context(atomic_path(path.with_suffix(".vocab.txt")))
            with open(sidecar, "wb") as f:
                write_vocab(f, tokens)
        tmp = stack.enter_context(atomic_path(path))
        with open(tmp, "wb") as raw:
            if compression is None:
                writers[fmt](raw)
            else:
                with open_compressed(raw, compression, "wb") as f:
                    writers[fmt](f)
    return path


def _check_unique(tokens) -> None:
    from .small import token_index

    first = token_index(tokens).first
    repeated = np.flatnonzero(first != np.arange(len(first)))
    if repeated.size:
        i = int(repeated[0])
        raise InvalidArgumentError(
            f"token {tokens[i].as_py()!r} is in rows {first[i]} and {i}; a table's tokens must be unique"
        )
