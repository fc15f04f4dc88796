"""Reading text and word2vec binary files in blocks: memory-mapped or streamed windows, line-aligned chunks in parallel, rows into one matrix.

Files of up to ``small.SMALL_TEXT`` bytes are read whole in Python (``text_rows.read_small``), without this module
and its kernels. Larger ones are read in two tiers. Numba kernels (``text_kernels``) parse the bytes in parallel, one
line-aligned chunk of a block per thread, and settle every ordinary row; a row they cannot settle (blank or
malformed, a number they cannot round exactly, a token that is not plain UTF-8 or holds runs of spaces) is flagged,
and ``parse_line``/``decode_token``, the plain-Python statement of the rules, settle it and word its error. Tests
hold the kernels to those functions.

Numbers are rounded exactly (``text_numbers``): Clinger's fast path or Eisel-Lemire give the float64 nearest the
decimal, and narrowing it to float32 or float16 is exact unless it lies exactly halfway between two values of the
target, a case left to Python's exact arithmetic.

The file is memory-mapped and read in blocks of ``BLOCK_BYTES``: a first pass counts the lines (so the matrix is
allocated once, at its final size), a second parses them into it; the pages of a finished block are dropped from
the process's memory, so the peak is the matrix and tokens plus about one block. Compressed files (.gz, .bz2, .xz)
stream through the same block parser, each block into its own array, joined at the end.

Text rules: UTF-8 (or ``encoding``), a leading BOM, ``\\r\\n`` and trailing spaces are stripped; fields are split on
the ASCII space only; the vector is the LAST ``dim`` fields and the token is everything before them, runs of
spaces joined to one. The dimension comes from an ``N D`` header, or from the rows themselves.
"""

from __future__ import annotations

import lzma
import mmap
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa

from ..errors import InputFormatError
from ..progress import progress_bar
from ..vocab import compact_rows
from .base import ReadResult, open_compressed
from .text_kernels import after_lines, gather_bytes, last_line_end, line_chunks, parse_chunks, scan_records
from .text_numbers import TARGETS
from .text_rows import (BOM, HEADER, ROW, SAMPLE_LINES, BadRow, TextOptions, check_count, decode_token, detect_layout,
                        parse_line, shown)

#: Bytes parsed per step (and the most of a memory-mapped file held in memory at once).
BLOCK_BYTES = 16 << 20
#: Bytes per chunk inside a block (and at least 8 chunks per thread), so that threads share uneven lines.
CHUNK_BYTES = 1 << 20
#: The longest line read (a row is a token and its numbers: 64 MiB holds millions): a longer one is an error, so
#: that a file without line ends cannot take memory without bound.
MAX_ROW_BYTES = 64 << 20


class WindowReader:
    """A file's (decompressed) bytes, read forward in windows: views of a memory map, or chunks of a stream."""

    def __init__(self, path: Path, compression: str | None):
        self.path = path
        self.raw = open(path, "rb")
        self.size = Path(path).stat().st_size
        if compression is None:
            self._map = mmap.mmap(self.raw.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
            self._array = np.frombuffer(self._map, np.uint8) if self.size else np.empty(0, np.uint8)
            self.stream = None
        else:
            self.stream = open_compressed(self.raw, compression, "rb")
            self._data, self._base, self._eof = b"", 0, False

    def window(self, pos: int, size: int) -> np.ndarray:
        """Bytes ``[pos, pos + size)``, fewer at the end of the file only. A stream only moves forward: ``pos`` never
        goes back before the previous window's."""
        if self.stream is None:
            return self._array[pos : pos + size]
        if pos + size > self._base + len(self._data) and not self._eof:
            want = max(size, BLOCK_BYTES)
            try:
                more = self.stream.read(want)  # all of it unless the stream ends
            except (OSError, EOFError, lzma.LZMAError) as e:
                raise InputFormatError(f"{self.path}: cannot decompress ({e})") from None
            self._eof = len(more) < want
            self._data = self._data[pos - self._base :] + more
            self._base = pos
        start = pos - self._base
        return np.frombuffer(self._data, np.uint8)[start : start + size]

    def release(self, start: int, stop: int) -> None:
        """Bytes ``[start, stop)`` are done with: drop their pages from this process's memory (they stay in the
        page cache). Memory-mapped files only: a stream forgets what it has passed anyway."""
        if self.stream is None and self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            page = mmap.PAGESIZE
            first, last = -(-start // page) * page, stop // page * page
            if last > first:
                self._map.madvise(mmap.MADV_DONTNEED, first, last - first)

    def done(self, pos: int) -> int:
        """Bytes of the file on disk behind the (decompressed) position ``pos``: what a progress bar counts."""
        return self.raw.tell() if self.stream is not None else pos

    def close(self) -> None:
        """Close the file. A map is left to the garbage collector: views of it may still be in use."""
        if self.stream is not None:
            self.stream.close()
        self._map = self._array = None
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class _Block:
    """A run of whole lines: its bytes, line-aligned chunks, and the lines in each chunk."""

    data: np.ndarray
    pos: int
    starts: np.ndarray
    stops: np.ndarray
    counts: np.ndarray

    @property
    def lines(self) -> int:
        return int(self.counts.sum())


def _cut(data: np.ndarray, pos: int, max_lines: int | None) -> _Block:
    """A block of ``data`` (whole lines at ``pos``), at most ``max_lines`` of them."""
    nchunks = max(8 * numba.get_num_threads(), data.shape[0] // CHUNK_BYTES)
    starts, stops, counts = line_chunks(data, nchunks)
    if max_lines is not None and counts.sum() > max_lines:
        return _cut(data[: after_lines(data, 0, max_lines)], pos, None)
    return _Block(data, pos, starts, stops, counts)


def _blocks(src: WindowReader, pos: int, first_line: int, limit: int | None):
    """Blocks of whole lines from ``pos`` (line ``first_line``) to the end of the file (or the ``limit``-th line)."""
    size = BLOCK_BYTES
    lines = 0
    while limit is None or lines < limit:
        window = src.window(pos, size)
        if window.shape[0] == 0:
            return
        end = window.shape[0] if window.shape[0] < size else last_line_end(window)
        if end == 0:  # a line longer than the window: widen it
            size = _wider(src, size, first_line + lines)
            continue
        block = _cut(window[:end], pos, None if limit is None else limit - lines)
        yield block
        src.release(pos, pos + block.data.shape[0])
        lines += block.lines
        pos += block.data.shape[0]
        size = BLOCK_BYTES


def _tokens_array(data: np.ndarray, bounds: np.ndarray, texts: dict[int, str]) -> pa.Array:
    """Tokens from byte ranges of ``data``, with the rows in ``texts`` replaced by the given strings."""
    bounds = bounds.copy()
    lengths = bounds[:, 1] - bounds[:, 0]
    encoded = {i: s.encode("utf-8") for i, s in texts.items()}
    for i, b in encoded.items():
        lengths[i] = len(b)
        bounds[i, 1] = bounds[i, 0]
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.uint8)
    gather_bytes(data, bounds, offsets, out)
    for i, b in encoded.items():
        out[offsets[i] : offsets[i + 1]] = np.frombuffer(b, np.uint8)
    large = offsets[-1] >= 2**31
    kind = pa.large_string() if large else pa.string()
    offsets = offsets if large else offsets.astype(np.int32)
    return pa.Array.from_buffers(kind, len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(out)])


class _Rows:
    """Where parsed rows go: slices of one matrix allocated up front, or one array per block (streams).

    float16 rows are kept as their uint16 bits, which the kernels write.
    """

    def __init__(self, dtype: np.dtype, dim: int, total: int | None):
        self.dtype, self.dim = dtype, dim
        self.storage = np.dtype(np.uint16) if dtype == np.float16 else dtype
        self.matrix = np.empty((total, dim), self.storage) if total is not None else None
        self.parts: list[np.ndarray] = []
        self.count = 0

    def take(self, n: int) -> np.ndarray:
        """Room for the next ``n`` rows."""
        if self.matrix is not None:
            return self.matrix[self.count : self.count + n]
        self.parts.append(np.empty((n, self.dim), self.storage))
        return self.parts[-1]

    def keep(self, n: int) -> None:
        """The last ``take`` kept its first ``n`` rows."""
        if self.matrix is None:
            self.parts[-1] = self.parts[-1][:n]
        self.count += n

    def result(self) -> np.ndarray:
        if self.matrix is not None:
            matrix = self.matrix[: self.count]
        elif len(self.parts) == 1:
            matrix = self.parts[0]
        else:
            matrix = np.concatenate(self.parts) if self.parts else np.empty((0, self.dim), self.storage)
        return matrix.view(np.float16) if self.dtype == np.float16 else matrix


def _settle(path, first: int, data, bounds, status, rows, opts: TextOptions, dim: int | None):
    """Settle the rows the kernel flagged, in Python: fix them, or raise on / drop the bad ones.

    ``dim`` None means word2vec binary rows (only tokens are ever flagged; places are row ids, not lines).
    Returns (indices of the kept rows, {kept index: token text} for the rows whose token Python decoded).
    """
    texts: dict[int, str] = {}
    drop = []
    for i in np.flatnonzero(status):
        raw = bytes(data[bounds[i, 0] : bounds[i, 1]])
        try:
            if status[i] == ROW:
                texts[i], values = parse_line(raw, dim, opts)
                rows[i] = values.view(np.uint16) if opts.dtype == np.float16 else values
            else:
                texts[i] = decode_token(raw, opts.encoding, opts.errors)
        except BadRow as e:
            if opts.on_bad_row == "error":
                where = f"{path}: row {first + i}" if dim is None else f"{path}:{first + i}"
                raise InputFormatError(f"{where}: {e}") from None
            drop.append(i)
    keep = np.arange(len(status))
    if drop:
        keep = np.delete(keep, drop)
        compact_rows(rows, keep)
        texts = {int(np.searchsorted(keep, i)): s for i, s in texts.items()}
    return keep, texts


def _concat_tokens(parts: list[pa.Array]) -> pa.Array:
    if not parts:
        return pa.array([], pa.string())
    if len(parts) == 1:
        return parts[0]
    if sum(p.nbytes for p in parts) >= 2**31 or any(p.type == pa.large_string() for p in parts):
        parts = [p.cast(pa.large_string()) for p in parts]
    return pa.concat_arrays(parts)


class _Progress:
    """Moves a bytes progress bar along with the position in the source."""

    def __init__(self, bar, src: WindowReader):
        self.bar, self.src, self.seen = bar, src, 0

    def update(self, pos: int) -> None:
        now = self.src.done(pos)
        self.bar.advance(now - self.seen)
        self.seen = now


def _head(src: WindowReader) -> np.ndarray:
    """The start of the file: whole lines only (at least one), or the whole file."""
    size = BLOCK_BYTES
    while True:
        head = src.window(0, size)
        end = last_line_end(head)
        if head.shape[0] < size:
            return head
        if end > 0:
            return head[:end]
        size = _wider(src, size, 1)


def _wider(src: WindowReader, size: int, line: int) -> int:
    """The next window size for a line that does not end within ``size`` bytes; an error past MAX_ROW_BYTES."""
    if size >= MAX_ROW_BYTES:
        raise InputFormatError(f"{src.path}:{line}: line is longer than {MAX_ROW_BYTES:,} bytes (a row is a token "
                               "and its numbers; is this a text embedding file?)")
    return min(2 * size, MAX_ROW_BYTES)


def read_text(path, compression: str | None, opts: TextOptions, progress: bool | None = None) -> ReadResult:
    """Parse a GloVe or word2vec/fastText text file (header detected), compressed or not."""
    path = Path(path)
    target = TARGETS[opts.dtype]
    with WindowReader(path, compression) as src, progress_bar(f"reading {path.name}", src.size, "bytes", progress) as bar:
        head = _head(src)
        if head.shape[0] == 0:
            raise InputFormatError(f"{path}: empty file")
        start = 3 if opts.utf8 and bytes(head[:3]) == BOM else 0
        sample = bytes(head[start : after_lines(head, start, SAMPLE_LINES)]).split(b"\n")
        count, dim = detect_layout(sample[:-1] if len(sample) > 1 and sample[-1] == b"" else sample, path)
        if count is not None:
            start = after_lines(head, start, 1)
        first_line = 2 if count is not None else 1

        streamed = src.stream is not None
        blocks = _blocks(src, start, first_line, opts.limit)
        if not streamed:  # first pass: count the lines, so that the matrix is allocated once
            blocks = list(blocks)
            total = sum(b.lines for b in blocks)
            check_count(path, count, total, opts.limit)
        rows = _Rows(opts.dtype, dim, None if streamed else total)
        shown = _Progress(bar, src)
        tokens, lines, done = [], [], 0
        for block in blocks:
            n = block.lines
            out = rows.take(n)
            bounds = np.empty((n, 2), np.int64)
            status = np.empty(n, np.uint8)
            row0 = np.zeros(len(block.counts), np.int64)
            np.cumsum(block.counts[:-1], out=row0[1:])
            parse_chunks(
                block.data, block.starts, block.stops, row0, dim, target, opts.utf8, opts.allow_nonfinite,
                out, bounds, status,
            )
            keep, texts = _settle(path, first_line + done, block.data, bounds, status, out, opts, dim)
            rows.keep(len(keep))
            tokens.append(_tokens_array(block.data, bounds[keep], texts))
            lines.append(first_line + done + keep)
            done += n
            src.release(block.pos, block.pos + block.data.shape[0])
            shown.update(block.pos + block.data.shape[0])
        if streamed:
            check_count(path, count, done, opts.limit)
    lines = np.concatenate(lines) if lines else np.empty(0, np.int64)
    return ReadResult(rows.result(), _concat_tokens(tokens), lines=lines, skipped=done - rows.count)


def read_word2vec_binary(path, compression: str | None, opts: TextOptions, progress: bool | None = None) -> ReadResult:
    """Read word2vec's binary format: a ``rows dim`` line, then per row a token, a space and dim little-endian float32
    (and, in most files, a newline). Tokens are settled like text tokens; the values are taken as they are."""
    path = Path(path)
    with WindowReader(path, compression) as src, progress_bar(f"reading {path.name}", src.size, "bytes", progress) as bar:
        head = bytes(src.window(0, 4096))
        if not head:
            raise InputFormatError(f"{path}: empty file")
        header = HEADER.fullmatch(head.split(b"\n", 1)[0].rstrip(b" \r")) if b"\n" in head else None
        if not header:
            raise InputFormatError(f"{path}:1: not a word2vec binary file: the first line should be 'rows dim'")
        count, dim = int(header[1]), int(header[2])
        width = 4 * dim
        if width > MAX_ROW_BYTES:  # as a text row, a record is held whole: and no file holds such rows
            raise InputFormatError(f"{path}:1: a row of {dim:,} values is longer than {MAX_ROW_BYTES:,} bytes (is "
                                   "this a word2vec binary file?)")
        pos = head.index(b"\n") + 1
        total = count if opts.limit is None else min(count, opts.limit)
        fits = total if src.stream is not None else min(total, (src.size - pos) // (width + 1))
        rows = _Rows(np.dtype("<f4"), dim, None if src.stream is not None else fits)
        shown = _Progress(bar, src)
        tokens, size = [], BLOCK_BYTES
        while rows.count < total:
            window = src.window(pos, size)
            out = rows.take(min(total - rows.count, window.shape[0] // (width + 1)))
            n_max = out.shape[0]
            bounds = np.empty((n_max, 2), np.int64)
            status = np.empty(n_max, np.uint8)
            n, used = scan_records(window, width, n_max, opts.utf8, out.view(np.uint8), bounds, status)
            if n == 0:
                rows.keep(0)
                if window.shape[0] < size:
                    _truncated(path, count, rows.count, window)
                size *= 2
                continue
            keep, texts = _settle(path, rows.count, window, bounds[:n], status[:n], out, opts, None)
            tokens.append(_tokens_array(window, bounds[keep], texts))
            rows.keep(len(keep))
            src.release(pos, pos + used)
            pos += used
            shown.update(pos)
            size = BLOCK_BYTES
        matrix = rows.result()
    return ReadResult(matrix.astype(np.float32, copy=False), _concat_tokens(tokens), skipped=total - matrix.shape[0])


def _truncated(path, count: int, found: int, rest: np.ndarray):
    partial = bytes(rest).lstrip(b"\n").split(b" ", 1)
    inside = f", and ends inside the row of token {shown(partial[0])!r}" if len(partial) > 1 else ""
    raise InputFormatError(f"{path}: truncated: the header says {count} rows but the file holds {found}{inside}")
