"""Text embedding formats: GloVe and word2vec/fastText text, word2vec binary. Compiled readers and the writers.

Reading is two-tiered. Numba kernels parse the bytes in parallel, one line-aligned chunk of a block per thread, and
settle every ordinary row; a row they cannot settle (blank or malformed, a number they cannot round exactly, a token
that is not plain UTF-8 or holds runs of spaces) is flagged, and ``parse_line``/``decode_token``, the plain-Python
statement of the rules, settle it and word its error. Tests hold the kernels to those functions.

Numbers are rounded exactly: Clinger's fast path or Eisel-Lemire give the float64 nearest the decimal, and
narrowing it to float32 or float16 is exact unless it lies exactly halfway between two values of the target, a
case left to Python's exact arithmetic.

The file is memory-mapped and read in blocks of ``BLOCK_BYTES``: a first pass counts the lines (so the matrix is
allocated once, at its final size), a second parses them into it; the pages of a finished block are dropped from
the process's memory, so the peak is the matrix and tokens plus about one block. Compressed files (.gz, .bz2, .xz)
stream through the same block parser, each block into its own array, joined at the end.

Text rules: UTF-8 (or ``encoding``), a leading BOM, ``\\r\\n`` and trailing spaces are stripped; fields are split on
the ASCII space only; the vector is the LAST ``dim`` fields and the token is everything before them, runs of
spaces joined to one. The dimension comes from an ``N D`` header, or from the rows themselves.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import lzma
import math
import mmap
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import numba
from numba import njit, prange

from . import small
from .arrays import string_buffers, strings
from .errors import InputFormatError, InvalidArgumentError
from .progress import progress_bar
from .vocab import compact_rows

#: Bytes parsed per step (and the most of a memory-mapped file held in memory at once).
BLOCK_BYTES = 16 << 20
#: Bytes per chunk inside a block (and at least 8 chunks per thread), so that threads share uneven lines.
CHUNK_BYTES = 1 << 20
#: The longest line read (a row is a token and its numbers: 64 MiB holds millions): a longer one is an error, so
#: that a file without line ends cannot take memory without bound.
MAX_LINE_BYTES = 64 << 20
#: Lines looked at to find the header and the dimension.
SAMPLE_LINES = 100

BOM = b"\xef\xbb\xbf"

# Row status set by the kernels: settled, token to be decoded in Python, whole row to be parsed in Python.
_OK, _TOKEN, _ROW = 0, 1, 2
# Number parse results: 0 the nearest float64; _BAD not a number; _SLOW left to Python (over 19 significant digits,
# a float64 subnormal, a decimal exponent beyond the table, or Eisel-Lemire's rare undecided case).
_BAD, _SLOW = 1, 2
# Output kinds (the kernels write float64, float32, or float16 as its uint16 bits).
_F64, _F32, _F16 = 0, 1, 2
_TARGETS = {np.dtype(np.float64): _F64, np.dtype(np.float32): _F32, np.dtype(np.float16): _F16}

_POW10 = np.array([10.0**k for k in range(23)])
_U = np.uint64
_MANTISSA_MAX = _U(1 << 53)
_LOW32, _LOW52, _LOW9 = _U(0xFFFFFFFF), _U((1 << 52) - 1), _U(0x1FF)


def _powers_of_ten(lo: int, hi: int) -> np.ndarray:
    """10**e for e in [lo, hi] as 128-bit mantissas rounded down, top bit set: rows of (low 64 bits, high 64 bits)."""
    rows = []
    for e in range(lo, hi + 1):
        if e >= 0:
            v = 10**e
            t = v >> (v.bit_length() - 128) if v.bit_length() > 128 else v << (128 - v.bit_length())
        else:
            d = 10**-e
            t = (1 << (d.bit_length() + 127)) // d
        rows.append((t & (2**64 - 1), t >> 64))
    return np.array(rows, np.uint64)


_POW10_MIN, _POW10_MAX = -348, 347
_POW10_128 = _powers_of_ten(_POW10_MIN, _POW10_MAX)
_F32_LOW_BITS, _F32_HALF = _U((1 << 29) - 1), _U(1 << 28)
_F16_LOW_BITS, _F16_HALF = _U((1 << 42) - 1), _U(1 << 41)


def open_compressed(raw, compression: str, mode: str):
    """A (de)compressing file object over the binary file ``raw``: compression "gzip", "bz2" or "xz"."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode=mode)
    return (bz2.BZ2File if compression == "bz2" else lzma.LZMAFile)(raw, mode)


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


# --------------------------------------------------------------------------------------------------------------
# Kernels


@njit(cache=True, nogil=True)
def _special(buf, i, j, neg):
    """``nan``, ``inf`` or ``infinity`` (any case) at ``buf[i:j]``: (value, 0), else (0, _BAD)."""
    n = j - i
    if n == 3:
        a, b, c = buf[i] | 32, buf[i + 1] | 32, buf[i + 2] | 32
        if a == 110 and b == 97 and c == 110:  # nan
            return np.nan, 0
        if a == 105 and b == 110 and c == 102:  # inf
            return -np.inf if neg else np.inf, 0
    elif n == 8:
        word = "infinity"
        for k in range(8):
            if buf[i + k] | 32 != ord(word[k]):
                return 0.0, _BAD
        return -np.inf if neg else np.inf, 0
    return 0.0, _BAD


@njit(cache=True, nogil=True, error_model="numpy")
def _scan_number(buf, i, e):
    """The number that starts at ``buf[i]``: (the float64 nearest to it, the position after it, code). It ends at
    the first byte that cannot continue it: the caller checks what follows. Code _BAD: not a number (Python's float()
    syntax without underscores); _SLOW: left to Python. Clinger's fast path (a mantissa up to 2**53 times an exact
    power of ten) covers most numbers, Eisel-Lemire the rest."""
    neg = False
    c = buf[i]
    if c == 45 or c == 43:  # - +
        neg = c == 45
        i += 1
    start = i
    mant = _U(0)
    while i < e:
        d = _U(buf[i]) - _U(48)  # wraps below '0': one comparison tells a digit
        if d > _U(9):
            break
        mant = mant * _U(10) + d
        i += 1
    digits = i - start
    frac = 0
    if i < e and buf[i] == 46:  # .
        i += 1
        f = i
        while i < e:
            d = _U(buf[i]) - _U(48)
            if d > _U(9):
                break
            mant = mant * _U(10) + d
            i += 1
        frac = i - f
        digits += frac
    if digits == 0:  # nan, inf, infinity, or not a number
        j = start
        while j < e and buf[j] != 32 and buf[j] != 10 and buf[j] != 13:
            j += 1
        x, code = _special(buf, start, j, neg)
        return x, j, code
    exp = 0
    if i < e and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        eneg = False
        if i < e and (buf[i] == 45 or buf[i] == 43):
            eneg = buf[i] == 45
            i += 1
        first = i
        while i < e:
            d = np.int64(buf[i]) - 48
            if d < 0 or d > 9:
                break
            if exp < 100000:
                exp = exp * 10 + d
            i += 1
        if i == first:
            return 0.0, i, _BAD
        exp = -exp if eneg else exp
    if digits > 19 and digits - _leading_zeros(buf, start, i) > 19:  # the mantissa wrapped
        return 0.0, i, _SLOW
    if mant == 0:
        return -0.0 if neg else 0.0, i, 0
    exp -= frac
    if mant <= _MANTISSA_MAX and -22 <= exp <= 22:
        v = np.float64(mant)
        v = v * _POW10[exp] if exp >= 0 else v / _POW10[-exp]
        return -v if neg else v, i, 0
    v, ok = _eisel_lemire(mant, exp)
    return -v if neg else v, i, 0 if ok else _SLOW


@njit(cache=True, nogil=True)
def _mul128(a, b):
    """The 128-bit product of two uint64: (high, low)."""
    a0, a1, b0, b1 = a & _LOW32, a >> _U(32), b & _LOW32, b >> _U(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _U(32)) + (p01 & _LOW32) + (p10 & _LOW32)
    return p11 + (p01 >> _U(32)) + (p10 >> _U(32)) + (mid >> _U(32)), (p00 & _LOW32) | (mid << _U(32))


@njit(cache=True, nogil=True)
def _leading_zeros64(x):
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if x >> _U(64 - shift) == _U(0):
            n += shift
            x <<= _U(shift)
    return n


@njit(cache=True, nogil=True)
def _eisel_lemire(mant, exp10):
    """The float64 nearest ``mant * 10**exp10`` (mant > 0): (value, True), or (0, False) where the algorithm cannot
    decide (rare) or the result is subnormal, infinite or beyond the table. Lemire, "Number Parsing at a Gigabyte
    per Second" (2021), as Go's strconv writes it."""
    if exp10 < _POW10_MIN or exp10 > _POW10_MAX:
        return 0.0, False
    clz = _leading_zeros64(mant)
    mant <<= _U(clz)
    exp2 = ((217706 * exp10) >> 16) + 64 + 1023 - clz
    row = exp10 - _POW10_MIN
    hi, lo = _mul128(mant, _POW10_128[row, 1])
    if (hi & _LOW9) == _LOW9 and lo + mant < mant:  # the truncated power may matter: use its low 64 bits too
        y_hi, y_lo = _mul128(mant, _POW10_128[row, 0])
        merged_lo = lo + y_hi
        merged_hi = hi + _U(1) if merged_lo < lo else hi
        if (merged_hi & _LOW9) == _LOW9 and merged_lo + _U(1) == _U(0) and y_lo + mant < mant:
            return 0.0, False
        hi, lo = merged_hi, merged_lo
    msb = np.int64(hi >> _U(63))
    m = hi >> _U(msb + 9)
    exp2 -= 1 ^ msb
    if lo == _U(0) and (hi & _LOW9) == _U(0) and (m & _U(3)) == _U(1):  # halfway between two float64
        return 0.0, False
    m = (m + (m & _U(1))) >> _U(1)
    if m >> _U(53) > _U(0):
        m >>= _U(1)
        exp2 += 1
    if exp2 <= 0 or exp2 >= 0x7FF:
        return 0.0, False
    return np.uint64((_U(exp2) << _U(52)) | (m & _LOW52)).view(np.float64), True


@njit(cache=True, nogil=True)
def _leading_zeros(buf, i, e):
    """Zeros before the first significant digit of the digits (and point) at ``buf[i:e]``."""
    n = 0
    while i < e and (buf[i] == 48 or buf[i] == 46):
        n += buf[i] == 48
        i += 1
    return n


@njit(cache=True, nogil=True)
def _halfway(v, target):
    """True when ``v`` lies exactly halfway between two values of ``target``: the decimal it came from may lie on
    either side, so only an exact parse can round it."""
    if target == _F64 or v == 0 or not np.isfinite(v):
        return False
    a = abs(v)
    bits = np.float64(v).view(np.uint64)
    if target == _F32:
        if a >= 2.0**-126:
            return (bits & _F32_LOW_BITS) == _F32_HALF
        x = a * 2.0**149
    else:
        if a >= 2.0**-14:
            return (bits & _F16_LOW_BITS) == _F16_HALF
        x = a * 2.0**24
    return x - np.floor(x) == 0.5


@njit(cache=True, nogil=True)
def _to_half(v):
    """The float16 nearest ``v`` (ties to even), as its uint16 bits."""
    bits = np.float64(v).view(np.uint64)
    sign = np.uint16((bits >> _U(48)) & _U(0x8000))
    if v != v:
        return sign | np.uint16(0x7E00)
    a = abs(v)
    if a >= 65520.0:  # halfway between 65504 and 65536 and above: inf
        return sign | np.uint16(0x7C00)
    if a < 2.0**-14:  # subnormal: a multiple of 2**-24
        return sign | np.uint16(np.rint(a * 2.0**24))
    e = np.int64((bits >> _U(52)) & _U(0x7FF)) - 1023
    m = bits & _U((1 << 52) - 1)
    keep = np.int64(m >> _U(42))
    rest = m & _F16_LOW_BITS
    if rest > _F16_HALF or (rest == _F16_HALF and keep & 1):
        keep += 1  # a carry out of the mantissa bumps the exponent, as it should
    return sign | np.uint16(((e + 15) << 10) + keep)


@njit(cache=True, nogil=True)
def _token_status(buf, s, e, utf8):
    """_TOKEN if ``buf[s:e]`` needs Python to become a token (runs of spaces, bytes that are not plain UTF-8 or, for
    another encoding, not ASCII), else _OK."""
    i = s
    while i < e:
        c = buf[i]
        if c < 128:
            if c == 32 and buf[i + 1] == 32:
                return _TOKEN
            i += 1
            continue
        if not utf8:
            return _TOKEN
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
            return _TOKEN
        if i + n >= e or not lo <= buf[i + 1] <= hi:
            return _TOKEN
        for k in range(2, n + 1):
            if not 0x80 <= buf[i + k] <= 0xBF:
                return _TOKEN
        i += n + 1
    return _OK


@njit(cache=True, nogil=True)
def _store(x, k, target, allow_nonfinite, row):
    """Write ``x`` to ``row[k]`` in the target type: False if the value needs Python (non-finite and not allowed,
    or halfway between two target values)."""
    if target == _F16:
        h = _to_half(x)
        finite = (h & 0x7C00) != 0x7C00
        row[k] = h
    else:
        finite = np.isfinite(np.float32(x)) if target == _F32 else np.isfinite(x)
        row[k] = x
    return (finite or allow_nonfinite) and not _halfway(x, target)


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
        x, i, code = _scan_number(buf, i, stop)
        if code != 0 or not _store(x, k, target, allow_nonfinite, row):
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
        x, i, code = _scan_number(buf, i, e)
        if code != 0 or (i < e and buf[i] != 32) or not _store(x, k, target, allow_nonfinite, row):
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
        return _ROW
    bounds[0] = s
    bounds[1] = t
    return _token_status(buf, s, t, utf8)


@njit(parallel=True, cache=True, nogil=True)
def _parse_chunks(buf, starts, stops, rows, dim, target, utf8, allow_nonfinite, out, bounds, status):
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
def _line_boundary(buf, p):
    """The first line start at or after ``p`` (or the end of ``buf``)."""
    n = buf.shape[0]
    if p <= 0:
        return 0
    while p < n and buf[p - 1] != 10:
        p += 1
    return min(p, n)


@njit(cache=True, nogil=True)
def _newlines(seg):
    """Newlines in ``seg`` (a loop over a whole array, which LLVM vectorises)."""
    count = 0
    for i in range(seg.shape[0]):
        count += seg[i] == 10
    return count


@njit(parallel=True, cache=True, nogil=True)
def _split_lines(buf, nchunks):
    """Cut ``buf`` into ``nchunks`` line-aligned chunks of about equal size: their starts, stops and line counts."""
    n = buf.shape[0]
    size = (n + nchunks - 1) // nchunks
    starts = np.empty(nchunks, np.int64)
    stops = np.empty(nchunks, np.int64)
    counts = np.empty(nchunks, np.int64)
    for c in prange(nchunks):
        s = _line_boundary(buf, c * size)
        e = _line_boundary(buf, (c + 1) * size)
        count = _newlines(buf[s:e])
        if e > s and buf[e - 1] != 10:
            count += 1
        starts[c] = s
        stops[c] = e
        counts[c] = count
    return starts, stops, counts


@njit(cache=True, nogil=True)
def _after_lines(buf, p, k):
    """The position just after the ``k``-th line starting at ``p``."""
    n = buf.shape[0]
    while k > 0 and p < n:
        while p < n and buf[p] != 10:
            p += 1
        p += 1
        k -= 1
    return min(p, n)


@njit(cache=True, nogil=True)
def _last_line_end(buf):
    """The position after the last newline in ``buf`` (0 if there is none)."""
    p = buf.shape[0]
    while p > 0 and buf[p - 1] != 10:
        p -= 1
    return p


@njit(cache=True, nogil=True)
def _gather_bytes(buf, bounds, offsets, data):
    """Concatenate the byte ranges ``buf[bounds[r, 0]:bounds[r, 1]]`` into ``data`` at ``offsets[r]``."""
    for r in range(bounds.shape[0]):
        o = offsets[r]
        s = bounds[r, 0]
        for k in range(bounds[r, 1] - s):
            data[o + k] = buf[s + k]


@njit(cache=True, nogil=True)
def _scan_records(buf, width, max_rows, utf8, out, bounds, status):
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


@njit(parallel=True, cache=True, nogil=True)
def _pack_records(tokens, token_offsets, vectors, record_offsets, out):
    """word2vec binary records: token bytes, a space, the row's bytes, a newline."""
    width = vectors.shape[1]
    for r in prange(vectors.shape[0]):
        o = record_offsets[r]
        s = token_offsets[r]
        n = token_offsets[r + 1] - s
        for k in range(n):
            out[o + k] = tokens[s + k]
        o += n
        out[o] = 32
        for k in range(width):
            out[o + 1 + k] = vectors[r, k]
        out[o + 1 + width] = 10


# --------------------------------------------------------------------------------------------------------------
# The rules in plain Python: the rows the kernels flag, and the tests' reference

NUMBER = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:nan|inf|infinity))")
_HEADER = re.compile(rb"(\d+) +(\d+)")


def exact_value(text: str, dtype: np.dtype):
    """The ``dtype`` value nearest the decimal ``text``, ties to even (past the largest value: inf, as IEEE has it).

    ``float()`` rounds to float64 correctly; narrowing that is exact unless the float64 lies halfway between two
    ``dtype`` values, where the decimal itself breaks the tie.
    """
    d = float(text)
    if dtype == np.float64:
        return np.float64(d)
    with np.errstate(over="ignore"):
        t = dtype.type(d)
        if not math.isfinite(d) or float(t) == d:
            return t
        g = np.nextafter(t, dtype.type(math.copysign(math.inf, d - float(t) if math.isfinite(t) else -t)))
    top = 2.0 ** np.finfo(dtype).maxexp  # where inf sits for rounding
    tv, gv = (float(x) if math.isfinite(x) else math.copysign(top, x) for x in (t, g))
    if (tv + gv) / 2 != d:
        return t
    exact, mid = Fraction(text), Fraction(d)
    if exact == mid:
        return t
    return g if (exact > mid) == (gv > tv) else t


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


def _shown(raw: bytes, limit: int = 60) -> str:
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
        raise BadRow(f"token {_shown(fields[0])!r}: expected a token and {dim} values, found {found}{tabs}")
    raw_token = b" ".join(fields[:-dim])
    values = np.empty(dim, opts.dtype)
    for k, field in enumerate(fields[-dim:]):
        if not NUMBER.fullmatch(field):
            raise BadRow(f"token {_shown(raw_token)!r}: value {k + 1} of {dim} is not a number: {_shown(field)!r}{tabs}")
        values[k] = exact_value(field.decode("ascii"), opts.dtype)
    if not opts.allow_nonfinite and not np.isfinite(values).all():
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        field = fields[len(fields) - dim + k].decode("ascii")
        problem = f"overflows {opts.dtype.name}" if math.isfinite(float(field)) else "is not finite"
        raise BadRow(f"token {_shown(raw_token)!r}: value {k + 1} of {dim} {problem}: {field!r} "
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
    header = _HEADER.fullmatch(lines[0].rstrip(b" \r"))
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


# --------------------------------------------------------------------------------------------------------------
# Reading


class Source:
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
    starts, stops, counts = _split_lines(data, nchunks)
    if max_lines is not None and counts.sum() > max_lines:
        return _cut(data[: _after_lines(data, 0, max_lines)], pos, None)
    return _Block(data, pos, starts, stops, counts)


def _blocks(src: Source, pos: int, first_line: int, limit: int | None):
    """Blocks of whole lines from ``pos`` (line ``first_line``) to the end of the file (or the ``limit``-th line)."""
    size = BLOCK_BYTES
    lines = 0
    while limit is None or lines < limit:
        window = src.window(pos, size)
        if window.shape[0] == 0:
            return
        end = window.shape[0] if window.shape[0] < size else _last_line_end(window)
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
    _gather_bytes(data, bounds, offsets, out)
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
            if status[i] == _ROW:
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


@dataclass
class TextResult:
    """A parsed file: the matrix, its tokens, where each row came from and how many rows were skipped.

    ``lines`` holds each row's 1-based line in a text file; None for word2vec binary, whose places are row ids.
    """

    matrix: np.ndarray
    tokens: pa.Array
    lines: np.ndarray | None
    skipped: int


class _Progress:
    """Moves a bytes progress bar along with the position in the source."""

    def __init__(self, bar, src: Source):
        self.bar, self.src, self.seen = bar, src, 0

    def update(self, pos: int) -> None:
        now = self.src.done(pos)
        self.bar.advance(now - self.seen)
        self.seen = now


def _head(src: Source) -> np.ndarray:
    """The start of the file: whole lines only (at least one), or the whole file."""
    size = BLOCK_BYTES
    while True:
        head = src.window(0, size)
        end = _last_line_end(head)
        if head.shape[0] < size:
            return head
        if end > 0:
            return head[:end]
        size = _wider(src, size, 1)


def _wider(src: Source, size: int, line: int) -> int:
    """The next window size for a line that does not end within ``size`` bytes; an error past MAX_LINE_BYTES."""
    if size >= MAX_LINE_BYTES:
        raise InputFormatError(f"{src.path}:{line}: line is longer than {MAX_LINE_BYTES:,} bytes (a row is a token "
                               "and its numbers; is this a text embedding file?)")
    return min(2 * size, MAX_LINE_BYTES)


def read_text(path, compression: str | None, opts: TextOptions, progress: bool | None = None) -> TextResult:
    """Parse a GloVe or word2vec/fastText text file (header detected), compressed or not."""
    path = Path(path)
    if compression is None and path.is_file() and path.stat().st_size <= small.SMALL_TEXT:
        return _read_small(path, opts)
    target = _TARGETS[opts.dtype]
    with Source(path, compression) as src, progress_bar(f"reading {path.name}", src.size, "bytes", progress) as bar:
        head = _head(src)
        if head.shape[0] == 0:
            raise InputFormatError(f"{path}: empty file")
        start = 3 if opts.utf8 and bytes(head[:3]) == BOM else 0
        sample = bytes(head[start : _after_lines(head, start, SAMPLE_LINES)]).split(b"\n")
        count, dim = detect_layout(sample[:-1] if len(sample) > 1 and sample[-1] == b"" else sample, path)
        if count is not None:
            start = _after_lines(head, start, 1)
        first_line = 2 if count is not None else 1

        streamed = src.stream is not None
        blocks = _blocks(src, start, first_line, opts.limit)
        if not streamed:  # first pass: count the lines, so that the matrix is allocated once
            blocks = list(blocks)
            total = sum(b.lines for b in blocks)
            _check_count(path, count, total, opts.limit)
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
            _parse_chunks(
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
            _check_count(path, count, done, opts.limit)
    lines = np.concatenate(lines) if lines else np.empty(0, np.int64)
    return TextResult(rows.result(), _concat_tokens(tokens), lines, done - rows.count)


def _read_small(path: Path, opts: TextOptions) -> TextResult:
    """``read_text`` of a small uncompressed file in Python, no kernel to compile: every row is settled as the
    kernels leave their flagged rows to be settled (``parse_line``), so the result is the same."""
    data = path.read_bytes()
    if not data:
        raise InputFormatError(f"{path}: empty file")
    lines = data[3 if opts.utf8 and data.startswith(BOM) else 0 :].split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":  # the last line's newline
        lines.pop()
    count, dim = detect_layout(lines[:SAMPLE_LINES], path)
    first_line = 2 if count is not None else 1
    lines = lines[first_line - 1 :][: opts.limit]
    _check_count(path, count, len(lines), opts.limit)
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
    return TextResult(matrix[: len(tokens)], strings(tokens), np.array(kept, np.int64),
                      len(lines) - len(tokens))


def _check_count(path, count, found, limit) -> None:
    if count is not None and count != found and (limit is None or found < limit):
        raise InputFormatError(f"{path}:1: header says {count} rows but the file has {found}")


def read_word2vec_binary(path, compression: str | None, opts: TextOptions, progress: bool | None = None) -> TextResult:
    """Read word2vec's binary format: a ``rows dim`` line, then per row a token, a space and dim little-endian float32
    (and, in most files, a newline). Tokens are settled like text tokens; the values are taken as they are."""
    path = Path(path)
    with Source(path, compression) as src, progress_bar(f"reading {path.name}", src.size, "bytes", progress) as bar:
        head = bytes(src.window(0, 4096))
        if not head:
            raise InputFormatError(f"{path}: empty file")
        header = _HEADER.fullmatch(head.split(b"\n", 1)[0].rstrip(b" \r")) if b"\n" in head else None
        if not header:
            raise InputFormatError(f"{path}:1: not a word2vec binary file: the first line should be 'rows dim'")
        count, dim = int(header[1]), int(header[2])
        width = 4 * dim
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
            n, used = _scan_records(window, width, n_max, opts.utf8, out.view(np.uint8), bounds, status)
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
    return TextResult(matrix.astype(np.float32, copy=False), _concat_tokens(tokens), None, total - matrix.shape[0])


def _truncated(path, count: int, found: int, rest: np.ndarray):
    partial = bytes(rest).lstrip(b"\n").split(b" ", 1)
    inside = f", and ends inside the row of token {_shown(partial[0])!r}" if len(partial) > 1 else ""
    raise InputFormatError(f"{path}: truncated: the header says {count} rows but the file holds {found}{inside}")


# --------------------------------------------------------------------------------------------------------------
# Writing

#: Tokens that cannot be written as text rows (they would not read back the same) and as word2vec binary.
_UNWRITABLE_TEXT = r"^$|^ | $|  |[\n\r]"
_UNWRITABLE_BINARY = r"[ \n]"


def _check_tokens(tokens, pattern: str, fmt: str) -> None:
    if tokens is None:
        raise InvalidArgumentError(f"{fmt} needs tokens, and this table has none (give it a vocab)")
    bad = pc.match_substring_regex(tokens, pattern)
    if pc.any(bad).as_py():
        i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        raise InvalidArgumentError(f"token {tokens[i].as_py()!r} (row {i}) cannot be written as {fmt}")


def _value_strings(values: np.ndarray) -> pa.Array:
    """Each value as the shortest text that reads back to it (float16 via float32, which holds it exactly)."""
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    return pa.array(np.ascontiguousarray(values).reshape(-1)).cast(pa.string())


def _chunk_rows(dim: int) -> int:
    return max(1, (1 << 22) // max(dim, 1))


def write_text(f, matrix: np.ndarray, tokens, header: bool, progress: bool | None = None) -> None:
    """Write GloVe text (``header=False``) or word2vec text (a ``rows dim`` first line) to the binary file ``f``."""
    fmt = "word2vec text" if header else "GloVe text"
    _check_tokens(tokens, _UNWRITABLE_TEXT, fmt)
    n, dim = matrix.shape
    if n and not header and tokens[0].as_py().startswith("\ufeff"):
        raise InvalidArgumentError(f"token {tokens[0].as_py()!r} (row 0) cannot be written as {fmt}: it would read as a BOM")
    if header:
        f.write(f"{n} {dim}\n".encode())
    step = _chunk_rows(dim)
    with progress_bar("writing", n, "rows", progress) as bar:
        for start in range(0, n, step):
            stop = min(n, start + step)
            rows = pa.ListArray.from_arrays(np.arange(0, (stop - start) * dim + 1, dim, dtype=np.int32),
                                            _value_strings(matrix[start:stop]))
            line = pc.binary_join_element_wise(tokens[start:stop], pc.binary_join(rows, " "), " ")
            line = pc.binary_join_element_wise(line, "", "\n")
            offsets = np.frombuffer(line.buffers()[1], np.int32)[line.offset : line.offset + len(line) + 1]
            f.write(memoryview(line.buffers()[2])[offsets[0] : offsets[-1]])
            bar.advance(stop - start)


def write_word2vec_binary(f, matrix: np.ndarray, tokens, progress: bool | None = None) -> None:
    """Write word2vec binary: a ``rows dim`` line, then per row the token, a space, dim little-endian float32 and a
    newline. The format holds float32: float64 values are rounded to it."""
    _check_tokens(tokens, _UNWRITABLE_BINARY, "word2vec binary")
    n, dim = matrix.shape
    f.write(f"{n} {dim}\n".encode())
    step = _chunk_rows(dim)
    with progress_bar("writing", n, "rows", progress) as bar:
        for start in range(0, n, step):
            stop = min(n, start + step)
            offsets, data = string_buffers(tokens.slice(start, stop - start))
            with np.errstate(over="ignore"):
                values = np.ascontiguousarray(matrix[start:stop], "<f4")
            overflow = np.isinf(values) & np.isfinite(matrix[start:stop])
            if overflow.any():
                row, col = np.argwhere(overflow)[0]
                raise InvalidArgumentError(
                    f"value {float(matrix[start + row, col])!r} (row {start + row}) is too large for word2vec binary, "
                    "which holds float32"
                )
            values = values.view(np.uint8)
            records = np.zeros(stop - start + 1, np.int64)
            np.cumsum(np.diff(offsets) + values.shape[1] + 2, out=records[1:])
            out = np.empty(int(records[-1]), np.uint8)
            _pack_records(data, offsets, values, records, out)
            f.write(out.data)
            bar.advance(stop - start)
