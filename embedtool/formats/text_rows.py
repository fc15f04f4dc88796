"""One text row: the plain-Python rules that settle and word the rows the kernels of ``text_kernels`` leave
(``parse_line``, ``decode_token``), that read a small file whole, and that find a file's layout (``detect_layout``)."""

from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arrays import strings
from ..errors import InputFormatError
from .base import LoadOptions, ReadResult
from .text_numbers import NUMBER, exact_value

# Row status set by the kernels: settled, token to be decoded in Python, whole row to be parsed in Python.
OK, TOKEN, ROW = 0, 1, 2
#: Lines looked at to find the header and the dimension.
SAMPLE_LINES = 100
BOM = b"\xef\xbb\xbf"


class BadRow(ValueError):
    """A text row that breaks the rules; the message says why (the caller adds file:line)."""


@dataclass(frozen=True)
class TextOptions:
    """How to read a text or word2vec binary file (see ``load_vectors``)."""

    dtype: np.dtype = np.dtype(np.float32)
    limit: int | None = None
    on_bad_row: str = "error"
    errors: str = "strict"
    encoding: str = "utf-8"
    allow_nonfinite: bool = False

    @property
    def utf8(self) -> bool:
        return self.encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig")


def text_options(options: LoadOptions) -> TextOptions:
    """The parser's options from load_vectors' (the matrix is float32 unless a dtype is asked for)."""
    return TextOptions(np.dtype(options.dtype or np.float32), options.limit, options.on_bad_row, options.errors,
                       options.encoding, options.allow_nonfinite)


HEADER = re.compile(rb"(\d+) +(\d+)")


def decode_token(raw: bytes, encoding: str = "utf-8", errors: str = "strict") -> str:
    """A token's text: decoded, runs of ASCII spaces joined to one. Raises ``BadRow`` when it does not decode."""
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        raise BadRow(
            f"token {raw!r} is not valid {encoding}: byte 0x{raw[e.start]:02x} at position {e.start} "
            f"(use --errors replace or --errors ignore, or --encoding)"
        ) from None
    return " ".join(part for part in text.split(" ") if part)


def shown(raw: bytes, limit: int = 60) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[:limit] + "..."


def parse_line(line: bytes, dim: int, opts: TextOptions = TextOptions()) -> tuple[str, np.ndarray]:
    """One text row (without its newline) by the rules: (token, vector). Raises ``BadRow`` saying what is wrong."""
    text = line.rstrip(b" \r")
    tabs = " (fields are separated by spaces, this line has tabs)" if b"\t" in text else ""
    fields = [f for f in text.split(b" ") if f]
    if not fields:
        raise BadRow("blank line")
    if len(fields) < dim + 1:
        found = f"{len(fields)} field{'s' if len(fields) > 1 else ''}"
        raise BadRow(f"token {shown(fields[0])!r}: expected a token and {dim} values, found {found}{tabs}")
    raw_token = b" ".join(fields[:-dim])
    values = np.empty(dim, opts.dtype)
    for k, field in enumerate(fields[-dim:]):
        if not NUMBER.fullmatch(field):
            raise BadRow(f"token {shown(raw_token)!r}: value {k + 1} of {dim} is not a number: {shown(field)!r}{tabs}")
        values[k] = exact_value(field.decode("ascii"), opts.dtype)
    if not opts.allow_nonfinite and not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        field = fields[len(fields) - dim + k].decode("ascii")
        problem = f"overflows {opts.dtype.name}" if math.isfinite(float(field)) else "is not finite"
        raise BadRow(f"token {shown(raw_token)!r}: value {k + 1} of {dim} {problem}: {field!r} "
                     "(use --allow-nonfinite to keep it)")
    return decode_token(raw_token, opts.encoding, opts.errors), values


def _estimate_dim(line: bytes) -> int | None:
    """The dimension a row suggests: its trailing numeric fields (all but the first if every field is numeric)."""
    fields = [f for f in line.rstrip(b" \r").split(b" ") if f]
    numeric = 0
    for field in reversed(fields):
        if not NUMBER.fullmatch(field):
            break
        numeric += 1
    if numeric == len(fields):
        numeric -= 1
    return numeric if numeric > 0 else None


def _fits(line: bytes, dim: int) -> bool:
    fields = [f for f in line.rstrip(b" \r").split(b" ") if f]
    return len(fields) > dim and all(NUMBER.fullmatch(f) for f in fields[-dim:])


def _most_common(dims: list) -> int | None:
    """The most common dimension; of equally common ones, the first row's."""
    counts = collections.Counter(d for d in dims if d is not None)
    return counts.most_common(1)[0][0] if counts else None


def detect_layout(lines: list[bytes], path) -> tuple[int | None, int]:
    """(header row count or None, dimension) from the first lines of a text file.

    A header is a first line of exactly two integers ``N D`` where the rows after it hold D values. Without one, D is
    the dimension most of the first rows suggest (normally every row's: a token followed by D numbers), the first
    row's in a tie.
    """
    header = HEADER.fullmatch(lines[0].rstrip(b" \r"))
    if header:
        count, dim = int(header[1]), int(header[2])
        rest = [line for line in lines[1:] if line.strip(b" \r")]
        if not rest or 2 * sum(_fits(line, dim) for line in rest) >= len(rest):
            if dim < 1:
                raise InputFormatError(f"{path}:1: header says {dim} values per row")
            return count, dim
        found = _most_common([_estimate_dim(line) for line in rest])
        if found != 1:
            raise InputFormatError(
                f"{path}:1: header {lines[0].decode('ascii')!r} says {dim} values per row, "
                f"but the rows after it have {found or 'no'} values"
            )
    dim = _most_common([_estimate_dim(line) for line in lines])
    if dim is None:
        raise InputFormatError(f"{path}:1: no vector found: expected a token followed by numbers on each line")
    return None, dim


def read_small(path: Path, opts: TextOptions) -> ReadResult:
    """A small uncompressed text file read whole in Python, no kernel to load: every row is settled as the kernels
    leave their flagged rows to be settled (``parse_line``), so the result is ``text_blocks.read_text``'s."""
    data = path.read_bytes()
    if not data:
        raise InputFormatError(f"{path}: empty file")
    lines = data[3 if opts.utf8 and data.startswith(BOM) else 0 :].split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":  # the last line's newline
        lines.pop()
    count, dim = detect_layout(lines[:SAMPLE_LINES], path)
    first_line = 2 if count is not None else 1
    lines = lines[first_line - 1 :][: opts.limit]
    check_count(path, count, len(lines), opts.limit)
    matrix = np.empty((len(lines), dim), opts.dtype)
    tokens, kept = [], []
    for i, line in enumerate(lines):
        try:
            token, matrix[len(tokens)] = parse_line(line, dim, opts)
        except BadRow as e:
            if opts.on_bad_row == "error":
                raise InputFormatError(f"{path}:{first_line + i}: {e}") from None
            continue
        tokens.append(token)
        kept.append(first_line + i)
    return ReadResult(matrix[: len(tokens)], strings(tokens), lines=np.array(kept, np.int64),
                      skipped=len(lines) - len(tokens))


def check_count(path, count: int | None, found: int, limit: int | None) -> None:
    """A header's row count against the rows found (fewer are fine where ``limit`` stopped the reading)."""
    if count is not None and count != found and (limit is None or found < limit):
        raise InputFormatError(f"{path}:1: header says {count} rows but the file has {found}")
