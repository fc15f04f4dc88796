"""Weight tables: ``Vectors`` (a matrix and an optional vocabulary), ``load_vectors`` and ``save_vectors``.

The formats, their suffixes and how a file's format is found: ``embedtool.formats``.

The sidecar vocab of a table
without tokens is ``vocab=``, else ``<name>.vocab.txt`` or ``vocab.txt`` beside it: one token per line, id = line - 1.
"""

from __future__ import annotations

import codecs
import contextlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import formats
from .arrays import as_strings, strings
from .core import WEIGHT_DTYPES, check_weight
from .errors import EmbedtoolError, InputFormatError, InvalidArgumentError
from .formats.base import LoadOptions, SaveOptions, open_compressed
from .formats.fasttext_bin import FastTextModel
from .formats.static_model import StaticModel


class Vectors:
    """An embedding table: ``matrix`` ``[N, D]`` (possibly memory-mapped) and, when known, its ``tokens``.

    ``tokens`` is a pyarrow string array (any sequence of str is converted), row ``i`` being token ``i``'s vector.
    Token lookups use a hash index built on first use and kept.

    ``model`` is the model a table was read from, when it is one (docs/semantics.md §7): a fastText ``.bin``
    (``FastTextModel``: ``tokens`` its vocabulary, ``matrix`` their word vectors, computed on first access only,
    ``vectors_of`` fills OOV words from their subwords) or a static model directory (``StaticModel``: ``matrix``
    its table, ``tokens`` its tokenizer's vocabulary, ``encode`` embeds texts). Callers that need the shape only use
    ``shape``, ``len``, ``dim`` and ``dtype``, which never compute the matrix.
    """

    def __init__(self, matrix=None, tokens=None, metadata=None, model=None):
        self.model = model
        self.metadata = {} if metadata is None else metadata
        self._matrix = None if matrix is None else check_weight(matrix)
        if self._matrix is None and not self.subwords:
            raise InvalidArgumentError("a table needs its matrix (only a fastText model computes it)")
        self._index = None
        self._norms = None  # similarity.row_norms keeps them
        self.tokens = None if tokens is None else as_strings(tokens)
        if self.tokens is not None and len(self.tokens) != len(self):
            raise InvalidArgumentError(f"{len(self.tokens)} tokens for a table of {len(self)} rows")

    def __repr__(self) -> str:
        return f"Vectors({self.metadata.get('source', 'matrix')}: {len(self)} x {self.dim} {self.dtype})"

    @property
    def subwords(self) -> bool:
        """Whether OOV tokens get vectors from their character n-grams (a fastText model)."""
        return isinstance(self.model, FastTextModel)

    @property
    def matrix(self) -> np.ndarray:
        """``[N, D]``; a fastText model's vocabulary vectors are computed here, on the first access."""
        if self._matrix is None:
            self._matrix = self.model.vocabulary_vectors()
        return self._matrix

    @property
    def shape(self) -> tuple[int, int]:
        if self._matrix is None:
            return (self.model.nwords, self.model.dim)
        return self._matrix.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self._matrix is None else self._matrix.dtype

    @property
    def dim(self) -> int:
        return self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def has_vocab(self) -> bool:
        return self.tokens is not None

    FEW_TOKENS = 8  # lookups of at most this many tokens scan the vocabulary while it has no index

    def token_ids(self, tokens) -> np.ndarray:
        """The row of each token (a pyarrow string array or a sequence of str) as int64, -1 where it is unknown.

        Vectorised: the batch is hashed and probed in parallel against the table's index (built once). A few
        tokens (a list of str, as a command line gives them) before the index is built are found by a scan instead
        (pyarrow's ``index``, about 1 ms per token for 400,000 tokens; building the index loads numba, about 1 s).
        """
        if self._index is None and self.tokens is not None and isinstance(tokens, (list, tuple)) and \
                len(tokens) <= self.FEW_TOKENS and all(isinstance(t, str) and t for t in tokens):  # "": a null's bytes
            import pyarrow.compute as pc  # here: 40-100 ms that calls without tokens (embed ids.npy) do not pay

            values = strings(tokens).cast(self.tokens.type)  # (not pa.scalar: it imports pandas, 0.4 s)
            return np.array([pc.index(self.tokens, value).as_py() for value in values], np.int64)
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

    def vectors_of(self, tokens, oov="error") -> np.ndarray:
        """The vector of each token, ``[n, D]``. A fastText model gives every token one, OOV tokens from their
        subwords (fastText's ``get_word_vector``); other tables give the rows of ``ids(tokens, oov)``."""
        if self.subwords:
            return self.model.word_vectors(tokens)
        return np.asarray(self.matrix[self.ids(tokens, oov)])

    def encode(self, texts, *, normalize: bool | None = None) -> np.ndarray:
        """One vector per text, as the static model's ``encode`` (model2vec): tokenized by the model's tokenizer,
        averaged, L2-normalised when the model says so (``normalize`` overrides)."""
        if not isinstance(self.model, StaticModel):
            source = self.metadata.get("source", "this table")
            raise InvalidArgumentError(f"{source} has no tokenizer: encode needs a static model directory")
        return self.model.encode(texts, normalize=normalize)

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
# Loading


_UNSET = object()  # max_length not given (None is a value: no limit)


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
    normalize=None,
    max_length=_UNSET,
) -> Vectors:
    """Open a weight table in any supported format (see the module docstring).

    Parameters
    ----------
    path : path-like
        The file. Its format is detected from its first bytes and suffix unless ``format`` names it.
    format : str, optional
        One of ``formats.NAMES``.
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
    normalize : bool, optional
        A static model directory's L2 normalisation of pooled vectors (default: its config.json's).
    max_length : int or None, optional
        A static model directory's token limit per text (default: its config's, else 512; None: no limit).

    Returns
    -------
    Vectors, whose ``metadata`` holds ``source``, ``source_format``, ``dtype``, ``rows`` and ``dim`` (and, for a
    store, the ``converted_from`` file and its ``converted_from_format``).
    """
    path = Path(path)
    if format is not None:
        _choice("format", format, formats.NAMES)
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
    model_options = {} if normalize is None else {"normalize": normalize}
    if max_length is not _UNSET:
        model_options["max_length"] = max_length
    options = LoadOptions(dtype, limit, on_bad_row, errors, encoding, allow_nonfinite, tensor, progress,
                          model_options)
    fmt, compression = formats.detect(path, format)
    if fmt.name != "static-model" and model_options:
        raise InvalidArgumentError(f"{path}: {' and '.join(model_options)} only apply to static model directories")
    result = fmt.read(path, compression, options)
    if result.model is not None:
        return _model_vectors(path, fmt, result, vocab=vocab, dtype=dtype, limit=limit)
    try:
        matrix = check_weight(result.matrix)
    except EmbedtoolError as e:
        raise InputFormatError(f"{path}: {e}") from None
    tokens, lines, stored = result.tokens, result.lines, result.stored
    notes = {"skipped_rows": result.skipped} if result.skipped else {}
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
    metadata = {"source": str(path), "source_format": fmt.name, "dtype": str(matrix.dtype),
                "rows": matrix.shape[0], "dim": matrix.shape[1], **notes}
    if "source" in stored:
        metadata["converted_from"] = stored["source"]
        metadata["converted_from_format"] = stored["source_format"]
    if "tensor" in stored:
        metadata["tensor"] = stored["tensor"]
    return Vectors(matrix, tokens, metadata)


def _model_vectors(path: Path, fmt, result, **table_options) -> Vectors:
    """The ``Vectors`` of a model (fastText .bin, static model directory): its vocabulary and its matrix, lazy for
    fastText. The options that reshape a table's rows do not apply to a model's vocabulary."""
    given = [name for name, value in table_options.items() if value is not None]
    if given:
        raise InvalidArgumentError(f"{path}: {', '.join(given)} do not apply to a {fmt.name} model")
    model = result.model
    dtype = np.dtype(np.float32) if result.matrix is None else result.matrix.dtype
    metadata = {"source": str(path), "source_format": fmt.name, "dtype": str(dtype), "rows": len(result.tokens),
                "dim": model.dim if result.matrix is None else result.matrix.shape[1]}
    try:
        return Vectors(result.matrix, result.tokens, metadata, model)
    except EmbedtoolError as e:
        raise InputFormatError(f"{path}: {e}") from None


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
    from . import small

    first = small.token_index(tokens).first
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
    # In place when the matrix is ours (parsed text) and large: it may be most of memory (a small one is copied in
    # NumPy, no kernel to load).
    in_place = matrix.flags.writeable and matrix.flags.c_contiguous and matrix.size > small.SMALL_WORK
    matrix = compact_rows(matrix, keep) if in_place else matrix[keep]
    return matrix, tokens.take(pa.array(keep)), len(first) - len(keep)


# --------------------------------------------------------------------------------------------------------------
# Saving


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
    if formats.for_output(path, format)[0].sidecar_vocab:
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

    vectors = vectors if isinstance(vectors, Vectors) else Vectors(vectors)
    path = Path(path)
    source = vectors.metadata.get("source")
    check_destination(path, format, weight_files(source, what="source") if source else None)
    fmt, compression = formats.for_output(path, format)
    matrix, tokens = vectors.matrix, vectors.tokens
    if tokens is not None:
        _check_unique(tokens)
    meta = {
        "source": vectors.metadata.get("converted_from", vectors.metadata.get("source", "")),
        "source_format": vectors.metadata.get("converted_from_format", vectors.metadata.get("source_format", "")),
        "dtype": str(matrix.dtype), "rows": matrix.shape[0], "dim": matrix.shape[1],
    }
    options = SaveOptions(tensor, progress)
    with contextlib.ExitStack() as stack:
        if fmt.sidecar_vocab and tokens is not None:
            from .vocab import write_vocab

            sidecar = stack.enter_context(atomic_path(path.with_suffix(".vocab.txt")))
            with open(sidecar, "wb") as f:
                write_vocab(f, tokens)
        tmp = stack.enter_context(atomic_path(path))
        with open(tmp, "wb") as raw:
            if compression is None:
                fmt.write(raw, matrix, tokens, meta, options)
            else:
                with open_compressed(raw, compression, "wb") as f:
                    fmt.write(f, matrix, tokens, meta, options)
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
