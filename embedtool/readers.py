"""Inputs of ``embed`` and ``bag``: every kind of file becomes a ``Source``, a stream of ``Batch`` es of row ids.

Kinds: ``.npy`` arrays (memory-mapped), text files of ids or tokens (one sequence per line), Arrow IPC files and
streams, Parquet, directories of shards (one ``Source`` per file), raw fixed-width token-id files (``.bin``), and
stdin (text, or an Arrow IPC stream recognised by its first bytes). Every batch carries a ``where`` that names a
position in the user's terms (line and column, row and list position, array position).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import pyarrow as pa

from . import core, small
from .errors import InputFormatError, InvalidArgumentError, in_file

if TYPE_CHECKING:  # tokens compiles numba kernels: imported where text or tokens are read, not for ids in arrays
    from .tokens import TokenMapper

RAW_FORMATS = {"u16": np.uint16, "u32": np.uint32, "i32": np.int32, "i64": np.int64}
INPUT_FORMATS = ("ids", "tokens", *RAW_FORMATS)
ARROW_SUFFIXES = {".arrow": "ipc", ".feather": "ipc", ".ipc": "ipc", ".arrows": "stream", ".parquet": "parquet"}
_IPC_STREAM_MAGIC = b"\xff\xff\xff\xff"
#: The longest text input line read by default (``--max-line-bytes``): a line is one row, held whole in memory.
MAX_LINE_BYTES = 64 << 20


@dataclass
class Batch:
    """Row ids of a batch of input rows.

    Fixed-shape rows: ``ids`` has shape ``(rows, *inner)`` and ``offsets`` is None. Ragged rows (sequences):
    ``ids`` is flat and ``offsets`` (rows + 1, int64) delimits each row. ``zero`` lists flat positions that embed
    to zeros (OOV tokens under ``--oov zero``); ``keep`` are columns carried to the output row by row;
    ``weights`` are per-sample weights (``--weights-column``), flat and aligned with ``ids``, or None. ``table``:
    the batch's own weight table, which ``ids`` index (a fastText model's words, ``TokenMapper.local_table``),
    with ``padding_idx`` the padding row's place in it (None: not in it).
    """

    ids: np.ndarray
    offsets: np.ndarray | None
    where: core.Where
    keep: list = field(default_factory=list)
    weights: np.ndarray | None = None
    zero: np.ndarray | None = None
    size: int = 0  # progress units (bytes or rows) this batch accounts for
    oov: int = 0  # OOV tokens in this batch
    table: np.ndarray | None = None
    padding_idx: int | None = None

    @property
    def rows(self) -> int:
        return self.ids.shape[0] if self.offsets is None else self.offsets.shape[0] - 1


@dataclass
class Source:
    """One input: its name, the shape of its rows and its batches (a one-shot iterator)."""

    name: str
    ragged: bool
    row_shape: tuple  # fixed rows: the inner shape of a row's ids (() for one id per row)
    batches: Iterator[Batch]
    keep_fields: list = field(default_factory=list)
    total: int | None = None  # progress total, in ``unit``
    unit: str = "rows"
    input_shape: tuple | None = None
    notes: list = field(default_factory=list)


@dataclass
class ReadOptions:
    """How inputs are read: format overrides, columns, tokenising and the OOV mapping."""

    input_format: str | None = None
    column: str | None = None
    keep: tuple = ()
    weights_column: str | None = None
    tokenizer: str = "space"
    seq_len: int | None = None
    batch_rows: int | None = None
    chunk_bytes: int = 1 << 20
    max_ids: int = 1 << 20  # ids per batch of an Arrow input (about 32 MB of output)
    max_line_bytes: int | None = None  # a longer text line is refused (None: MAX_LINE_BYTES)
    mapper: TokenMapper | None = None  # set when tokens are mapped through a vocabulary
    make_mapper: Callable | None = None  # builds ``mapper`` when a source turns out to need one


def ragged_where(offsets: np.ndarray, first_row: int, row_word: str, col_word: str, base: int) -> core.Where:
    """Describe a flat position of ragged ``ids`` as ``line 3, column 2`` (or ``row 3, position 1``)."""

    def where(flat: int) -> str:
        row = int(np.searchsorted(offsets, flat, side="right")) - 1
        return f"{row_word} {first_row + row}, {col_word} {flat - int(offsets[row]) + base}"

    return where


def open_sources(path: str, options: ReadOptions) -> list[Source]:
    """The sources of ``path``: one for a file or stdin (``-``), one per shard for a directory, in name order."""
    if options.input_format is not None and options.input_format not in INPUT_FORMATS:
        raise InvalidArgumentError(f"unknown --input-format {options.input_format!r}; choose one of {', '.join(INPUT_FORMATS)}")
    if options.tokenizer != "space":
        from .tokens import TOKENIZERS

        if options.tokenizer not in TOKENIZERS and not Path(options.tokenizer).is_file():
            raise InvalidArgumentError(f"unknown --tokenizer {options.tokenizer!r}; choose one of "
                                       f"{', '.join(TOKENIZERS)} or give a tokenizer.json file")
    if options.seq_len is not None and options.input_format not in RAW_FORMATS:
        raise InvalidArgumentError("--seq-len applies to raw token-id input (--input-format u16, u32, i32 or i64)")
    if path == "-":
        return [_stdin_source(options)]
    if Path(path).is_dir():
        return [open_file(str(f), options) for f in shard_files(path)]
    return [open_file(path, options)]


def shard_files(directory) -> list[Path]:
    """The input shards of a directory: its files, in name order, except hidden ones (``.x``, ``_x``)."""
    p = Path(directory)
    shards = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith((".", "_")))
    if not shards:
        raise InputFormatError(f"{p}: the directory holds no input files")
    return shards


def open_file(path: str, options: ReadOptions) -> Source:
    """The source of one file, by ``--input-format``, else its suffix, else its first bytes."""
    p = Path(path)
    if not p.exists():
        raise InputFormatError(f"{p}: no such file")
    fmt = options.input_format
    if fmt in RAW_FORMATS:
        return _raw_source(p, RAW_FORMATS[fmt], options)
    if fmt not in ("ids", "tokens"):
        with open(p, "rb") as f:
            head = f.read(8)
        suffix = p.suffix.lower()
        if suffix == ".npy" or head.startswith(b"\x93NUMPY"):
            return _npy_source(p, options)
        if suffix in ARROW_SUFFIXES or head.startswith((b"ARROW1", b"PAR1", _IPC_STREAM_MAGIC)):
            return _arrow_source(p, _arrow_kind(suffix, head), options)
        if suffix == ".bin":
            raise InvalidArgumentError(f"{p.name}: a raw token-id file needs --input-format u16, u32, i32 or i64")
    return _text_source(p.name, lambda: open(p, "rb"), p.stat().st_size, options)


def _arrow_kind(suffix: str, head: bytes) -> str:
    if head.startswith(b"ARROW1"):
        return "ipc"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(_IPC_STREAM_MAGIC):
        return "stream"
    return ARROW_SUFFIXES[suffix]


# ---- .npy and raw token-id files: fixed-shape rows, memory-mapped.


def _npy_source(p: Path, options: ReadOptions) -> Source:
    try:
        ids = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputFormatError(f"{p}: not a readable .npy file ({e})") from None
    if ids.dtype.kind not in "iuf":
        raise InputFormatError(f"{p}: indices must be integers, got dtype {ids.dtype}")
    _no_columns(p, options)
    shape = ids.shape
    rows = ids.reshape(1) if ids.ndim == 0 else ids
    where = (lambda start: core.array_position(shape, offset=start)) if ids.ndim else (lambda start: core.array_position(()))
    return Source(p.name, False, rows.shape[1:], _array_batches(rows, where, options), total=rows.shape[0],
                  input_shape=shape)


def _raw_source(p: Path, dtype, options: ReadOptions) -> Source:
    _no_columns(p, options)
    itemsize = np.dtype(dtype).itemsize
    size = p.stat().st_size
    if size % itemsize:
        raise InputFormatError(f"{p}: size {size} bytes is not a multiple of {itemsize} ({np.dtype(dtype).name} ids)")
    tokens = np.memmap(p, dtype=dtype, mode="r") if size else np.empty(0, dtype)
    notes = []
    if options.seq_len:
        rows = tokens.shape[0] // options.seq_len
        tail = tokens.shape[0] - rows * options.seq_len
        if tail:
            notes.append(f"{p.name}: the last {tail} tokens do not fill a row of --seq-len {options.seq_len} "
                         "and were left out")
        tokens = tokens[: rows * options.seq_len].reshape(rows, options.seq_len)

    def where(start):
        def describe(flat: int) -> str:
            token = start * (options.seq_len or 1) + flat
            return f"token {token}" + (f" (row {token // options.seq_len}, position {token % options.seq_len})"
                                       if options.seq_len else "")
        return describe

    return Source(p.name, False, tokens.shape[1:], _array_batches(tokens, where, options), total=tokens.shape[0],
                  input_shape=tokens.shape, notes=notes)


def _array_batches(rows: np.ndarray, where, options: ReadOptions) -> Iterator[Batch]:
    step = options.batch_rows or max(1, (4 << 20) // max(1, int(np.prod(rows.shape[1:], dtype=np.int64))))
    for start in range(0, rows.shape[0], step):
        chunk = np.asarray(rows[start : start + step])
        yield Batch(chunk, None, where(start), size=chunk.shape[0])


def _no_columns(p, options: ReadOptions) -> None:
    """Refuse the options that name columns (rather than ignore them) for an input without columns."""
    for option, given in (("--column", options.column), ("--keep", options.keep),
                          ("--weights-column", options.weights_column)):
        if given:
            raise InvalidArgumentError(f"{p}: {option} needs an Arrow or Parquet input (this input has no columns)")


# ---- text: ids or tokens, one sequence per line, read in chunks of whole lines.


def _text_source(name: str, open_stream, total: int | None, options: ReadOptions) -> Source:
    """Text lines of ids or tokens; ``open_stream()`` gives the binary stream, opened (and closed) only once the
    batches are read, so that a run stopped before then leaves no file open."""
    _no_columns(name, options)
    as_tokens = options.input_format == "tokens" or (options.input_format is None and options.make_mapper is not None)
    if not as_tokens and options.tokenizer != "space":
        raise InvalidArgumentError(f"{name}: --tokenizer applies to tokens; this input is read as ids")
    if as_tokens and options.mapper is None:
        if options.make_mapper is None:
            raise InvalidArgumentError(f"{name}: reading tokens needs weights with a vocabulary")
        options.mapper = options.make_mapper()
    return Source(name, True, (), _text_batches(name, open_stream, as_tokens, options), total=total, unit="bytes")


def _line_chunks(stream, chunk_bytes: int, max_line_bytes: int, name: str) -> Iterator[tuple[bytes, int]]:
    """Chunks of whole lines (the last line gets its missing newline) and their first line numbers.

    A line longer than a chunk is gathered piece by piece (joined once: linear time) and refused once it exceeds
    ``max_line_bytes``: a line is one row, held whole, so the limit bounds the memory a line can take."""
    first_line = 1
    pending: list[bytes] = []  # the pieces of the line not finished yet
    pending_bytes = 0
    bom = True
    while True:
        data = stream.read(chunk_bytes)
        if bom:
            data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
            bom = False
        if not data:
            break
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        if ends.size == 0:
            pending.append(data)
            pending_bytes += len(data)
            _line_fits(pending_bytes, first_line, max_line_bytes, name)
            continue
        lengths = np.diff(ends, prepend=-1 - pending_bytes) - 1
        longest = int(np.argmax(lengths))
        _line_fits(int(lengths[longest]), first_line + longest, max_line_bytes, name)
        cut = int(ends[-1]) + 1
        yield b"".join([*pending, data[:cut]]) if pending else data[:cut], first_line
        first_line += ends.size
        pending = [data[cut:]] if cut < len(data) else []
        pending_bytes = len(data) - cut
    if pending:
        yield b"".join(pending) + b"\n", first_line


def _line_fits(length: int, line: int, max_line_bytes: int, name: str) -> None:
    if length > max_line_bytes:
        raise InputFormatError(f"{name}: line {line} is longer than {max_line_bytes:,} bytes (a line is one row, "
                               "held whole in memory; --max-line-bytes raises the limit)")


def _text_batches(name, open_stream, as_tokens: bool, options: ReadOptions) -> Iterator[Batch]:
    with open_stream() as stream:
        for chunk, first_line in _line_chunks(stream, options.chunk_bytes,
                                                 options.max_line_bytes or MAX_LINE_BYTES, name):
            with in_file(name):
                if as_tokens:
                    yield from _token_batches(chunk, first_line, options)
                else:
                    parsed = small.id_lines(chunk)
                    if parsed is None:
                        from .tokens import parse_id_lines

                        parsed = parse_id_lines(chunk, first_line)
                    ids, offsets = parsed
                    batch = Batch(ids, offsets, ragged_where(offsets, first_line, "line", "column", 1), size=len(chunk))
                    yield from _split_rows(batch, options.batch_rows)


def _token_batches(chunk: bytes, first_line: int, options: ReadOptions) -> Iterator[Batch]:
    """A chunk of token lines as batches of at most ``batch_rows`` lines. The default tokenizer splits and looks up
    in one compiled pass (``scan_space_tokens``); the others, and small chunks, split with pyarrow compute, then look
    up."""
    from .tokens import scan_space_tokens, split_lines, taking, tokenize

    index = options.mapper.vectors.token_index
    if options.mapper.split is not None:  # the word tokenizer, a tokenizer.json, a static model's own tokenizer
        ids, offsets, tokens_at = options.mapper.split(split_lines(chunk, first_line))
    elif options.tokenizer == "space" and not (len(chunk) <= small.SMALL_TEXT and isinstance(index, small.TokenIndex)):
        ids, offsets, tokens_at = scan_space_tokens(chunk, first_line, index)
    else:  # other tokenizers, and a small chunk against a small vocabulary (no kernel to compile)
        lines = split_lines(chunk, first_line)
        tokens, offsets = tokenize(lines, options.tokenizer)
        ids, tokens_at = options.mapper.vectors.token_ids(tokens), taking(tokens)
    rows = len(offsets) - 1
    step = options.batch_rows or max(1, rows)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        lo, hi = int(offsets[start]), int(offsets[stop])
        batch = _mapped(ids[lo:hi], offsets[start : stop + 1] - lo, lambda p, lo=lo: tokens_at(p + lo),
                        first_line + start, "line", "column", 1, options.mapper)
        batch.size = len(chunk) * (stop - start) // rows
        yield batch


def _mapped(ids, offsets, tokens_at, first_row: int, row_word: str, col_word: str, base: int,
            mapper: TokenMapper, weights: np.ndarray | None = None) -> Batch:
    """A batch of token sequences mapped to ids (looked up already, -1 for OOV); ``oov`` counts its OOV tokens.
    Per-sample ``weights`` of skipped tokens are dropped with them."""
    before = mapper.oov_tokens
    ids, mapped_offsets, zero, kept, words = mapper.map(ids, offsets, ragged_where(offsets, first_row, row_word,
                                                                                   col_word, base), tokens_at)
    if weights is not None and kept is not None:
        weights = weights[kept]
    where = ragged_where(mapped_offsets, first_row, row_word, col_word, base)
    return _local(Batch(ids, mapped_offsets, where, zero=zero, oov=mapper.oov_tokens - before, weights=weights),
                  mapper, words)


def _local(batch: Batch, mapper: TokenMapper, words) -> Batch:
    """The batch with its own table when the weights are a fastText model (``TokenMapper.local_table``)."""
    if mapper.vectors.subwords:
        batch.ids, batch.table, batch.padding_idx = mapper.local_table(batch.ids, words)
    return batch


def _split_rows(batch: Batch, max_rows: int | None) -> Iterator[Batch]:
    """Split a ragged batch of ids into batches of at most ``max_rows`` rows (positions keep their line numbers)."""
    if not max_rows or batch.rows <= max_rows:
        yield batch
        return
    offsets = batch.offsets
    for start in range(0, batch.rows, max_rows):
        stop = min(batch.rows, start + max_rows)
        lo, hi = int(offsets[start]), int(offsets[stop])
        yield Batch(batch.ids[lo:hi], offsets[start : stop + 1] - lo, _shifted(batch.where, lo),
                    size=batch.size * (stop - start) // batch.rows)


def _shifted(where, by: int):
    return lambda flat: where(flat + by)


# ---- stdin: an Arrow IPC stream (by its first bytes) or text.


class _Prefixed:
    """A read-only binary stream that first returns bytes already read from ``stream``."""

    def __init__(self, head: bytes, stream):
        self._head, self._stream = head, stream
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data + (self._stream.read(n - len(data)) if n > len(data) else b"")
        return self._stream.read(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _stdin_source(options: ReadOptions) -> Source:
    stdin = sys.stdin.buffer
    head = stdin.read(4)
    stream = _Prefixed(head, stdin)
    if head == _IPC_STREAM_MAGIC:
        _check_arrow_options("stdin", options)
        try:
            reader = pa.ipc.open_stream(pa.PythonFile(stream, mode="r"))
            reader.schema.names  # decoded now: a name of invalid UTF-8 is a damaged stream
        except _ARROW_ERRORS as e:
            raise InputFormatError(f"stdin: not a readable Arrow IPC stream ({one_line(e)})") from None
        return _record_batch_source("stdin", reader.schema, lambda wanted: reader, None, options)
    if options.input_format in RAW_FORMATS:
        raise InvalidArgumentError("stdin: raw token-id input must be a file (it is memory-mapped)")
    return _text_source("stdin", lambda: stream, None, options)


def _check_arrow_options(name, options):
    if options.input_format is not None:
        raise InvalidArgumentError(f"{name}: --input-format {options.input_format} does not apply to Arrow input")
    if options.tokenizer in ("whitespace", "chars"):
        raise InvalidArgumentError(f"{name}: --tokenizer applies to text input (an Arrow column's lists are its "
                                   "tokens); only word or a tokenizer.json split a column of text")


# ---- Arrow IPC files and streams, Parquet: a column of ids or tokens, flat or lists.


def _arrow_source(p: Path, kind: str, options: ReadOptions) -> Source:
    """An Arrow IPC file or stream, or a Parquet file. Only opening is tried here; the batches are read (and
    checked) as the run goes."""
    _check_arrow_options(p.name, options)
    try:
        if kind == "stream":
            reader = pa.ipc.open_stream(pa.memory_map(str(p)))
            schema, read, total = reader.schema, lambda wanted: reader, None
        elif kind == "ipc":
            reader = pa.ipc.open_file(pa.memory_map(str(p)))
            schema, total = reader.schema, reader.count_rows()
            read = lambda wanted: (reader.get_batch(i) for i in range(reader.num_record_batches))  # noqa: E731
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(str(p))
            schema, total = parquet.schema_arrow, parquet.metadata.num_rows
            read = lambda wanted: parquet.iter_batches(batch_size=options.batch_rows or 65536,  # noqa: E731
                                                       columns=wanted)
        schema.names  # decoded now: a name of invalid UTF-8 is a damaged file
    except _ARROW_ERRORS as e:
        raise InputFormatError(f"{p.name}: not a readable {kind} file ({one_line(e)})") from None
    return _record_batch_source(p.name, schema, read, total, options)


#: What pyarrow raises on a damaged file: its own errors, I/O errors, and undecodable names in a schema.
_ARROW_ERRORS = (pa.ArrowException, OSError, ValueError)


def one_line(error: Exception) -> str:
    """An error's message on one line (pyarrow's Parquet errors span several)."""
    return " ".join(str(error).split())


def _wanted(column: str, options: ReadOptions) -> list[str]:
    """The columns read from an Arrow input: the ids, then ``--keep`` and ``--weights-column``."""
    return [c for c in dict.fromkeys((column, *options.keep, options.weights_column)) if c is not None]


def _checked(name, read, wanted: list[str]) -> Iterator[pa.RecordBatch]:
    """The ``wanted`` columns of each record batch, fully validated before any kernel reads them: a damaged file
    (offsets past the data, lengths that disagree, invalid UTF-8) must raise here, not crash a kernel or abort in
    Arrow. Full validation reads every byte of those columns once, as the lookup does anyway. Read errors (a
    truncated stream, a corrupt page) become one line naming the file and the batch."""
    index = row = 0
    try:
        batches = iter(read(wanted))
    except _ARROW_ERRORS as e:
        raise InputFormatError(f"{name}: cannot read the input ({one_line(e)})") from None
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            batch = batch.select(wanted)
            batch.validate(full=True)
        except _ARROW_ERRORS as e:
            raise InputFormatError(f"{name}: cannot read record batch {index} (from row {row}): "
                                   f"{one_line(e)}") from None
        yield batch
        index, row = index + 1, row + batch.num_rows


def _value_kind(t: pa.DataType) -> str | None:
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "ids"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "tokens"
    return None


def column_kind(t: pa.DataType) -> tuple[str, str] | None:
    """``(layout, values)``: layout ``flat``, ``list`` or ``fixed``; values ``ids`` or ``tokens``; None if unusable."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        values = _value_kind(t.value_type)
        return ("list", values) if values else None
    if pa.types.is_fixed_size_list(t):
        return ("fixed", "ids") if _value_kind(t.value_type) == "ids" else None
    values = _value_kind(t)
    return ("flat", values) if values else None


def pick_column(name: str, schema: pa.Schema, column: str | None, exclude=(), tokens: bool = True) -> str:
    """The ``--column`` given, else the only column of a usable type (not kept, not strings without a vocab)."""
    if column is not None:
        if column not in schema.names:
            raise InvalidArgumentError(f"{name}: no column {column!r} (columns: {', '.join(schema.names)})")
        if column_kind(schema.field(column).type) is None:
            raise InputFormatError(
                f"{name}: column {column!r} has type {schema.field(column).type}; expected integers, strings, "
                "or lists of them"
            )
        return column
    usable = [
        f.name for f in schema
        if f.name not in exclude and column_kind(f.type) is not None and (tokens or column_kind(f.type)[1] == "ids")
    ]
    if len(usable) != 1:
        found = ", ".join(f"{f.name} ({f.type})" for f in schema)
        raise InvalidArgumentError(f"{name}: say which column holds the ids or tokens with --column (columns: {found})")
    return usable[0]


def check_columns(name, schema: pa.Schema, options: ReadOptions, tokens: bool) -> str:
    """The ids column (``pick_column``), once ``--keep`` and ``--weights-column`` are checked against the schema
    and each other."""
    listed = ", ".join(schema.names)
    for k in options.keep:
        if k not in schema.names:
            raise InvalidArgumentError(f"{name}: no column {k!r} to --keep (columns: {listed})")
        if k == "embedding":
            raise InvalidArgumentError(f"{name}: --keep embedding would clash with the output column 'embedding'")
        if options.keep.count(k) > 1:
            raise InvalidArgumentError(f"{name}: --keep {k} is given twice")
    weights = options.weights_column
    if weights is not None:
        if weights not in schema.names:
            raise InvalidArgumentError(f"{name}: no column {weights!r} for --weights-column (columns: {listed})")
        if not _numeric_kind(schema.field(weights).type):
            raise InputFormatError(f"{name}: --weights-column {weights!r} has type {schema.field(weights).type}; "
                                   "expected numbers or lists of numbers")
    exclude = (*options.keep, *([weights] if weights else []))
    column = pick_column(name, schema, options.column, exclude, tokens)
    if column == weights:
        raise InvalidArgumentError(f"{name}: column {column!r} cannot be both the ids and the --weights-column")
    return column


def _numeric_kind(t: pa.DataType) -> bool:
    """Whether a column holds numbers, or lists of numbers (per-sample weights)."""
    t = t.value_type if _is_list(t) else t
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _record_batch_source(name, schema, read, total, options: ReadOptions) -> Source:
    """The source of an Arrow input; ``read(wanted)`` gives its record batches (at least the ``wanted`` columns)."""
    column = check_columns(name, schema, options, options.make_mapper is not None)
    layout, values = column_kind(schema.field(column).type)
    if values == "tokens" and options.mapper is None:
        if options.make_mapper is None:
            raise InvalidArgumentError(f"{name}: column {column!r} holds tokens, which need weights with a vocabulary")
        options.mapper = options.make_mapper()
    if layout == "flat" and values == "tokens" and options.mapper.split is not None:
        layout = "text"
    if layout == "flat" and values == "tokens" and options.mapper.policy == "skip":
        raise InvalidArgumentError(f"{name}: --oov skip needs sequences; column {column!r} has one token per row")
    row_shape = (schema.field(column).type.list_size,) if layout == "fixed" else ()
    keep_fields = [schema.field(k) for k in options.keep]
    return Source(name, layout in ("list", "text"), row_shape,
                  _arrow_batches(name, _checked(name, read, _wanted(column, options)), column, layout, values,
                                 options), keep_fields, total)


def _arrow_batches(name, batches, column, layout, values, options: ReadOptions) -> Iterator[Batch]:
    first_row = 0
    for record_batch in batches:
        for piece in _row_slices(record_batch.column(column), options):
            with in_file(name):
                weights = (record_batch.column(options.weights_column).slice(*piece)
                           if options.weights_column else None)
                batch = column_batch(record_batch.column(column).slice(*piece), layout, values, first_row,
                                     options.mapper, weights)
            batch.keep = [record_batch.column(k).slice(*piece) for k in options.keep]
            batch.size = piece[1]
            first_row += piece[1]
            yield batch


def _row_slices(array: pa.Array, options: ReadOptions) -> list[tuple[int, int]]:
    """``(offset, length)`` pieces of a column chunk of at most ``batch_rows`` rows and about ``max_ids`` ids."""
    rows = len(array)
    ids_before = _list_offsets(array)
    cuts = np.searchsorted(ids_before, np.arange(options.max_ids, int(ids_before[-1]), options.max_ids))
    cuts = np.unique(np.concatenate([[0], np.clip(cuts, 1, rows), [rows]]))
    if options.batch_rows:
        cuts = np.unique(np.concatenate([cuts, np.arange(0, rows, options.batch_rows)]))
    return [(int(a), int(b - a)) for a, b in zip(cuts[:-1], cuts[1:])]


def column_batch(array: pa.Array, layout: str, values: str, first_row: int, mapper: TokenMapper | None,
                 weights: pa.Array | None = None) -> Batch:
    """A ``Batch`` from one Arrow column chunk (rows numbered from ``first_row``), with the per-sample ``weights``
    of its rows (a column of the same rows: one number per id, or a list as long as each row's list)."""
    if array.null_count:
        row = first_row + int(np.flatnonzero(~np.asarray(array.is_valid()))[0])
        raise InputFormatError(f"row {row} is null")
    offsets = _list_offsets(array)
    psw = None if weights is None else _sample_weights(weights, offsets, first_row)
    if layout == "text":  # a string per row, split by the mapper's tokenizer
        if psw is not None:
            raise InvalidArgumentError("--weights-column needs lists of tokens or ids, not text that a tokenizer "
                                       "splits")
        ids, offsets, tokens_at = mapper.split(array)
        return _mapped(ids, offsets, tokens_at, first_row, "row", "token", 0, mapper, psw)
    if layout == "flat":
        where = lambda flat: f"row {first_row + flat}"  # noqa: E731
        if values == "tokens":
            from .tokens import taking

            before = mapper.oov_tokens
            ids, _, zero, _, words = mapper.map(mapper.vectors.token_ids(array), offsets, where, taking(array))
            return _local(Batch(ids, None, where, zero=zero, oov=mapper.oov_tokens - before, weights=psw), mapper,
                          words)
        return Batch(array.to_numpy(zero_copy_only=False), None, where, weights=psw)
    if layout == "fixed":
        size = array.type.list_size
        flat = array.flatten()
        _no_null_items(flat, offsets, first_row, " is null")
        where = lambda flat_pos: f"row {first_row + flat_pos // size}, position {flat_pos % size}"  # noqa: E731
        return Batch(flat.to_numpy(zero_copy_only=False).reshape(len(array), size), None, where, weights=psw)
    items = array.flatten()
    _no_null_items(items, offsets, first_row, " is null")
    if values == "tokens":
        from .tokens import taking

        return _mapped(mapper.vectors.token_ids(items), offsets, taking(items), first_row, "row", "position", 0,
                       mapper, psw)
    return Batch(items.to_numpy(zero_copy_only=False), offsets, ragged_where(offsets, first_row, "row", "position", 0),
                 weights=psw)


def _list_offsets(array: pa.Array) -> np.ndarray:
    """Where each row's items start and end in ``array.flatten()`` (one item per row for a flat column)."""
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        offsets = np.asarray(array.offsets, dtype=np.int64)
        return offsets - offsets[0]
    size = array.type.list_size if pa.types.is_fixed_size_list(array.type) else 1
    return np.arange(len(array) + 1, dtype=np.int64) * size


def _sample_weights(weights: pa.Array, offsets: np.ndarray, first_row: int) -> np.ndarray:
    """The ``--weights-column`` values of a chunk, flat, after checking that each row has one weight per id."""
    if weights.null_count:
        row = first_row + int(np.flatnonzero(~np.asarray(weights.is_valid()))[0])
        raise InputFormatError(f"row {row}: the --weights-column value is null")
    found = _list_offsets(weights)
    if not np.array_equal(found, offsets):
        row = int(np.flatnonzero(np.diff(found) != np.diff(offsets))[0])
        raise InputFormatError(f"row {first_row + row}: {found[row + 1] - found[row]} weights in --weights-column "
                               f"for {offsets[row + 1] - offsets[row]} ids")
    items = weights.flatten() if _is_list(weights.type) else weights
    _no_null_items(items, offsets, first_row, ": the --weights-column value is null")
    return items.to_numpy(zero_copy_only=False)


def _no_null_items(items: pa.Array, offsets: np.ndarray, first_row: int, what: str) -> None:
    """Raise, naming the row and position of the first null among a chunk's list ``items`` (then ``what``)."""
    if items.null_count:
        bad = int(np.flatnonzero(~np.asarray(items.is_valid()))[0])
        row = int(np.searchsorted(offsets, bad, side="right")) - 1
        raise InputFormatError(f"row {first_row + row}, position {bad - offsets[row]}{what}")
