"""Decimal to float16/32/64, rounded exactly: the rule in Python (``exact_value``), which the kernels of
``text_kernels`` (Clinger's fast path, Eisel-Lemire) follow for the numbers they settle."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np

# Output kinds (the kernels write float64, float32, or float16 as its uint16 bits).
F64, F32, F16 = 0, 1, 2
TARGETS = {np.dtype(np.float64): F64, np.dtype(np.float32): F32, np.dtype(np.float16): F16}


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
