"""Decimal to float16/32/64, rounded exactly, in numba kernels (Clinger's fast path, Eisel-Lemire), and the same rule in Python."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
from numba import njit

# Number parse results: 0 the nearest float64; _BAD not a number; _SLOW left to Python (over 19 significant digits,
# a float64 subnormal, a decimal exponent beyond the table, or Eisel-Lemire's rare undecided case).
_BAD, _SLOW = 1, 2
# Output kinds (the kernels write float64, float32, or float16 as its uint16 bits).
_F64, _F32, _F16 = 0, 1, 2
TARGETS = {np.dtype(np.float64): _F64, np.dtype(np.float32): _F32, np.dtype(np.float16): _F16}
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
def store_value(x, k, target, allow_nonfinite, row):
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


NUMBER = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:nan|inf|infinity))")


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
