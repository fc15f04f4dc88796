"""One text row or word2vec binary record: the numba kernels that settle ordinary rows, and the plain-Python rules that settle and word the rest."""

from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..errors import InputFormatError
from .text_numbers import NUMBER, exact_value, scan_number, store_value

# Row status set by the kernels: settled, token to be decoded in Python, whole row to be parsed in Python.
OK, TOKEN, ROW = 0, 1, 2


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


@njit(cache=True, nogil=True)
def _token_status(buf, s, e, utf8):
    """TOKEN if ``buf[s:e]`` needs Python to become a token (runs of spaces, bytes that are not plain UTF-8 or, for
    another encoding, not ASCII), else OK."""
    i = s
    while i < e:
        c = buf[i]
        if c < 128:
            if c == 32 and buf[i + 1] == 32:
                return TOKEN
            i += 1
            continue
        if not utf8:
            return TOKEN
        # One UTF-8 sequence: the lead byte fixes the length and the range of the second byte.
        lo, hi = 0x80, 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif c == 0xE0:
            n, lo = 2, 0xA0
        elif c == 0xED:
            n, hi = 2, 0x9F
        elif 0xE1 <= c <= 0xEF:
            n = 2
        elif c == 0xF0:
            n, lo = 3, 0x90
        elif 0xF1 <= c <= 0xF3:
            n = 3
        elif c == 0xF4:
            n, hi = 3, 0x8F
        else:
            return TOKEN
        if i + n >= e or not lo <= buf[i + 1] <= hi:
            return TOKEN
        for k in range(2, n + 1):
            if not 0x80 <= buf[i + k] <= 0xBF:
                return TOKEN
        i += n + 1
    return OK


@njit(cache=True, nogil=True)
def _parse_fast(buf, pos, stop, dim, target, allow_nonfinite, row, bounds):
    """The common row, in one pass: a token without spaces, then ``dim`` numbers, then the newline (maybe after
    spaces and ``\\r``). Returns the position of the line's end, with the token's range in ``bounds``; or -1 when the
    row is anything else."""
    t = pos
    while t < stop and buf[t] != 32 and buf[t] != 10:
        t += 1
    if t == pos:
        return -1
    i = t
    k = 0
    while True:
        while i < stop and buf[i] == 32:
            i += 1
        if i == stop or buf[i] == 10:
            break
        if buf[i] == 13:
            while i < stop and (buf[i] == 13 or buf[i] == 32):
                i += 1
            if i == stop or buf[i] == 10:
                break
            return -1
        if k == dim:
            return -1
        x, i, code = scan_number(buf, i, stop)
        if code != 0 or not store_value(x, k, target, allow_nonfinite, row):
            return -1
        k += 1
        if i < stop and buf[i] != 32 and buf[i] != 10 and buf[i] != 13:
            return -1
    if k != dim:
        return -1
    bounds[0] = pos
    bounds[1] = t
    return i


@njit(cache=True, nogil=True)
def _parse_values(buf, i, e, dim, target, allow_nonfinite, row):
    """Parse the space-separated fields of ``buf[i:e]`` into ``row``: True if they are exactly ``dim`` numbers that
    the kernel can settle."""
    k = 0
    while i < e:
        while buf[i] == 32:  # ``e`` follows a non-space, so the run ends before it
            i += 1
        if k == dim:
            return False
        x, i, code = scan_number(buf, i, e)
        if code != 0 or (i < e and buf[i] != 32) or not store_value(x, k, target, allow_nonfinite, row):
            return False
        k += 1
    return k == dim


@njit(cache=True, nogil=True)
def _parse_row(buf, a, b, dim, target, utf8, allow_nonfinite, row, bounds):
    """Any line ``buf[a:b]``: strip it, take the vector as its last ``dim`` fields, the token as what precedes them.
    ``bounds`` gets the token's byte range (the line's when the row is left to Python). Returns the row's status."""
    bounds[0] = a
    bounds[1] = b
    e = b
    while e > a and (buf[e - 1] == 32 or buf[e - 1] == 13):
        e -= 1
    s = a
    while s < e and buf[s] == 32:
        s += 1
    t = e
    k = 0
    while k < dim and t > s:
        while t > s and buf[t - 1] != 32:
            t -= 1
        while t > s and buf[t - 1] == 32:
            t -= 1
        k += 1
    if t == s or not _parse_values(buf, t, e, dim, target, allow_nonfinite, row):
        return ROW
    bounds[0] = s
    bounds[1] = t
    return _token_status(buf, s, t, utf8)


@njit(parallel=True, cache=True, nogil=True)
def parse_chunks(buf, starts, stops, rows, dim, target, utf8, allow_nonfinite, out, bounds, status):
    """Parse every line of every chunk ``buf[starts[c]:stops[c]]`` into ``out[rows[c] + k]``."""
    for c in prange(starts.shape[0]):
        pos = starts[c]
        stop = stops[c]
        r = rows[c]
        while pos < stop:
            end = _parse_fast(buf, pos, stop, dim, target, allow_nonfinite, out[r], bounds[r])
            if end >= 0:
                status[r] = _token_status(buf, bounds[r, 0], bounds[r, 1], utf8)
            else:
                end = pos
                while end < stop and buf[end] != 10:
                    end += 1
                status[r] = _parse_row(buf, pos, end, dim, target, utf8, allow_nonfinite, out[r], bounds[r])
            pos = end + 1
            r += 1


@njit(cache=True, nogil=True)
def scan_records(buf, width, max_rows, utf8, out, bounds, status):
    """Copy the complete word2vec binary records at the start of ``buf`` (newlines, token, space, ``width`` bytes of
    float32) into the byte rows of ``out``. Returns (records copied, position after them)."""
    n = buf.shape[0]
    pos = 0
    r = 0
    while r < max_rows:
        s = pos
        while s < n and buf[s] == 10:
            s += 1
        p = s
        while p < n and buf[p] != 32:
            p += 1
        if p + 1 + width > n:
            break
        bounds[r, 0] = s
        bounds[r, 1] = p
        status[r] = _token_status(buf, s, p, utf8)
        out[r, :] = buf[p + 1 : p + 1 + width]
        pos = p + 1 + width
        r += 1
    return r, pos


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
