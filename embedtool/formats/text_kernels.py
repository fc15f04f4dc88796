"""The compiled kernels of the text formats (``text_blocks`` and ``text_write`` import them; a small file is read
and written without them, so without numba): numbers rounded exactly (Clinger's fast path, Eisel-Lemire; the rule in
Python is ``text_numbers.exact_value``), the rows they settle (the rest are flagged for ``text_rows``' plain-Python
rules), line-aligned chunks of a block, and word2vec binary records."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import codegen  # noqa: F401 - compiles of these kernels are timed and announced (kernel_cache)
from .text_numbers import F16, F32, F64
from .text_rows import OK, ROW, TOKEN

# Number parse results: 0 the nearest float64; _BAD not a number; _SLOW left to Python (over 19 significant digits,
# a float64 subnormal, a decimal exponent beyond the table, or Eisel-Lemire's rare undecided case).
_BAD, _SLOW = 1, 2

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
def scan_number(buf, i, e):
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
    if target == F64 or v == 0 or not np.isfinite(v):
        return False
    a = abs(v)
    bits = np.float64(v).view(np.uint64)
    if target == F32:
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
def store_value(x, k, target, allow_nonfinite, row):
    """Write ``x`` to ``row[k]`` in the target type: False if the value needs Python (non-finite and not allowed,
    or halfway between two target values)."""
    if target == F16:
        h = _to_half(x)
        finite = (h & 0x7C00) != 0x7C00
        row[k] = h
    else:
        finite = np.isfinite(np.float32(x)) if target == F32 else np.isfinite(x)
        row[k] = x
    return (finite or allow_nonfinite) and not _halfway(x, target)


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
def line_chunks(buf, nchunks):
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
def after_lines(buf, p, k):
    """The position just after the ``k``-th line starting at ``p``."""
    n = buf.shape[0]
    while k > 0 and p < n:
        while p < n and buf[p] != 10:
            p += 1
        p += 1
        k -= 1
    return min(p, n)


@njit(cache=True, nogil=True)
def last_line_end(buf):
    """The position after the last newline in ``buf`` (0 if there is none)."""
    p = buf.shape[0]
    while p > 0 and buf[p - 1] != 10:
        p -= 1
    return p


@njit(cache=True, nogil=True)
def gather_bytes(buf, bounds, offsets, data):
    """Concatenate the byte ranges ``buf[bounds[r, 0]:bounds[r, 1]]`` into ``data`` at ``offsets[r]``."""
    for r in range(bounds.shape[0]):
        o = offsets[r]
        s = bounds[r, 0]
        for k in range(bounds[r, 1] - s):
            data[o + k] = buf[s + k]


@njit(parallel=True, cache=True, nogil=True)
def pack_records(tokens, token_offsets, vectors, record_offsets, out):
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
