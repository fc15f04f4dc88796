"""Text inputs to index arrays: a compiled parser for id lines, vectorised tokenising and vocabulary mapping.

Both produce *ragged* sequences: flat ``values`` and ``offsets`` (one sequence per line, a blank line is an empty
sequence), with positions reported as file line and column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from .codegen import load_word, trailing_zeros
from .errors import InputFormatError, InvalidArgumentError
from .writers import from_numpy, string_array, strings

OOV_POLICIES = ("error", "unk", "padding", "skip", "zero")
TOKENIZERS = ("space", "whitespace", "chars")
UNK_TOKENS = ("<unk>", "[UNK]")
_MAX_DIGITS = 18  # an id of more digits would overflow int64: reported as not a valid id


_ZEROS = np.uint64(0x3030303030303030)  # '0' in each byte
_HIGH_BITS = np.uint64(0x8080808080808080)
_ABOVE_NINE = np.uint64(0x7676767676767676)  # added to a byte's digit value, sets its high bit when it exceeds 9


@njit(cache=True, nogil=True)
def _is_space(c):
    return c == 32 or c == 10 or c == 9 or c == 13 or c == 11 or c == 12


@njit(cache=True, nogil=True)
def _digits_value(word, count):
    """The number written by the first ``count`` (1-7) bytes of ``word``, digit values (``byte - '0'``) in little-endian
    order: shifted so they are the top bytes (zeros below act as leading zeros), then combined pairwise, SWAR."""
    word <<= np.uint64(64 - 8 * count)
    word = (word & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561) >> np.uint64(8)
    word = (word & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601) >> np.uint64(16)
    return np.int64((word & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _parse_ids(buf, values, line_ends):
    """Parse ASCII-whitespace separated integers, one sequence per ``\\n``-terminated line.

    ``buf`` ends with a newline (chunks are whole lines), which ends every number without a bounds check. A number
    of up to 7 digits is read in one step: its 8 bytes as a word, the first non-digit found by bit tricks, the digits
    combined in parallel; longer ones and signed ones digit by digit. Fills ``values`` and ``line_ends`` (the count
    of values after each line). Returns ``(n_values, n_lines, bad)`` where ``bad`` is the byte offset of the first
    token that is not an integer id (-1 if none).
    """
    n = buf.shape[0]
    nv = 0
    nl = 0
    i = 0
    while i < n:
        c = buf[i]
        if np.uint64(np.int64(c) - 48) <= np.uint64(9) and i + 8 <= n:
            digits = load_word(buf, i) - _ZEROS
            count = np.int64(trailing_zeros(((digits + _ABOVE_NINE) | digits) & _HIGH_BITS) >> np.uint64(3))
            if count < 8:
                if not _is_space(buf[i + count]):
                    return nv, nl, i
                values[nv] = _digits_value(digits, count)
                nv += 1
                i += count
                continue
        if c == 10:
            line_ends[nl] = nv
            nl += 1
            i += 1
        elif _is_space(c):
            i += 1
        else:  # a sign, a long number, one near the end of the chunk, or not a number
            start = i
            negative = c == 45
            if c == 45 or c == 43:
                i += 1
            digits_start = i
            value = np.int64(0)
            d = np.int64(buf[i]) - 48
            while np.uint64(d) <= np.uint64(9):
                value = value * 10 + d
                i += 1
                d = np.int64(buf[i]) - 48
            count = i - digits_start
            if count == 0 or count > _MAX_DIGITS or not _is_space(buf[i]):
                return nv, nl, start
            values[nv] = -value if negative else value
            nv += 1
    return nv, nl, -1


def parse_id_lines(chunk: bytes, first_line: int):
    """Parse a chunk of complete lines of ids; returns ``(values int64, offsets int64)``.

    Errors name the line and column (the token's number in its line, from 1) and the offending text.
    """
    chunk = chunk if chunk.endswith(b"\n") else chunk + b"\n"  # the parser's end marker
    buf = np.frombuffer(chunk, np.uint8)
    values = np.empty(len(chunk) // 2 + 1, np.int64)
    line_ends = np.empty(len(chunk) + 1, np.int64)  # at most a line per byte; pages never written cost nothing
    nv, nl, bad = _parse_ids(buf, values, line_ends)
    if bad >= 0:
        line_start = chunk.rfind(b"\n", 0, bad) + 1
        line_no = first_line + chunk.count(b"\n", 0, bad)
        column = len(chunk[line_start:bad].split()) + 1
        token = chunk[bad:].split(maxsplit=1)[0].decode("utf-8", "replace")
        raise InputFormatError(f"{token!r} at line {line_no}, column {column} is not an integer id")
    offsets = np.zeros(nl + 1, np.int64)
    offsets[1:] = line_ends[:nl]
    return values[:nv], offsets


def split_lines(chunk: bytes, first_line: int) -> pa.StringArray:
    """The lines of a UTF-8 chunk of complete lines (``\\r\\n`` or ``\\n``), without their terminators.

    Invalid UTF-8 is an error naming the line.
    """
    ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + 1
    lines = string_array(chunk, np.concatenate([[0], ends]))
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            line = first_line + chunk.count(b"\n", 0, e.start)
            raise InputFormatError(f"line {line}: invalid UTF-8 ({e.reason})") from None
        raise
    return pc.utf8_rtrim(lines, characters="\r\n")


def tokenize(lines: pa.Array, tokenizer: str) -> tuple[pa.Array, np.ndarray]:
    """Split lines into tokens; returns flat tokens and int64 offsets (rows + 1). Empty tokens are dropped."""
    if tokenizer == "chars":
        return _characters(lines)
    split = pc.utf8_split_whitespace(lines) if tokenizer == "whitespace" else pc.split_pattern(lines, " ")
    tokens = split.flatten()
    keep = pc.greater(pc.binary_length(tokens), 0)
    if pc.all(keep).as_py() is not False:
        return tokens, split.offsets.to_numpy().astype(np.int64)
    kept_before = np.zeros(len(tokens) + 1, np.int64)
    np.cumsum(keep.to_numpy(zero_copy_only=False), out=kept_before[1:])
    return tokens.filter(keep), kept_before[split.offsets.to_numpy()]


def _characters(lines: pa.StringArray) -> tuple[pa.Array, np.ndarray]:
    """Every character of every line as a token: UTF-8 lead bytes mark where characters start."""
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    byte_offsets = np.frombuffer(lines.buffers()[1], width)[lines.offset : lines.offset + len(lines) + 1]
    byte_offsets = byte_offsets.astype(np.int64)
    data = np.frombuffer(lines.buffers()[2] or b"", np.uint8)[: byte_offsets[-1]]
    first = byte_offsets[0]
    starts = first + np.flatnonzero((data[first:] & 0xC0) != 0x80)
    char_offsets = np.searchsorted(starts, byte_offsets).astype(np.int64)
    bounds = np.append(starts, byte_offsets[-1]).astype(width)
    string_type = pa.large_string() if width is np.int64 else pa.string()
    tokens = pa.Array.from_buffers(string_type, len(starts), [None, pa.py_buffer(bounds), pa.py_buffer(data)])
    return tokens, char_offsets - char_offsets[0]


@dataclass
class TokenMapper:
    """Maps tokens to row ids through a vocabulary, applying the OOV policy and counting OOV tokens.

    Policies: ``error`` (stop, naming the token and its place), ``unk`` (the unknown token's row), ``padding``
    (the padding row), ``skip`` (drop the token), ``zero`` (embed it as zeros). ``lowercase_fallback`` retries an
    OOV token in lower case before the policy applies.
    """

    vectors: object
    policy: str
    unk_id: int = -1
    padding_idx: int | None = None
    lowercase_fallback: bool = False
    oov_tokens: int = 0
    counts: Counter = field(default_factory=Counter)

    @classmethod
    def create(cls, vectors, oov=None, unk_token=None, padding_idx=None, lowercase_fallback=False):
        """Resolve the defaults: the unknown token is ``<unk>`` or ``[UNK]`` when the vocab has one, and the
        policy is ``unk`` when there is an unknown token, otherwise ``error``."""
        if oov is not None and oov not in OOV_POLICIES:
            raise InvalidArgumentError(f"unknown OOV policy {oov!r}; choose one of {', '.join(OOV_POLICIES)}")
        candidates = [unk_token] if unk_token is not None else list(UNK_TOKENS)
        found = vectors.token_ids(strings(candidates))
        unk_id = next((int(i) for i in found if i >= 0), -1)
        if unk_token is not None and unk_id < 0:
            raise InvalidArgumentError(f"--unk-token {unk_token!r} is not in the vocabulary")
        policy = oov or ("unk" if unk_id >= 0 else "error")
        if policy == "unk" and unk_id < 0:
            raise InvalidArgumentError("--oov unk needs an unknown token: the vocabulary has neither <unk> nor [UNK]; "
                                       "name one with --unk-token")
        if policy == "padding" and padding_idx is None:
            raise InvalidArgumentError("--oov padding needs --padding-idx")
        return cls(vectors, policy, unk_id, padding_idx, lowercase_fallback)

    def map(self, tokens: pa.Array, offsets: np.ndarray, where) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(ids, offsets, zero_positions)`` for flat ``tokens``; ``where(flat)`` names a token's place."""
        ids = self.vectors.token_ids(tokens)
        missing = np.flatnonzero(ids < 0)
        if missing.size and self.lowercase_fallback:
            lowered = self.vectors.token_ids(pc.utf8_lower(tokens.take(from_numpy(missing))))
            ids[missing] = lowered
            missing = missing[lowered < 0]
        if missing.size == 0:
            return ids, offsets, None
        oov = tokens.take(from_numpy(missing))
        if self.policy == "error":
            raise InputFormatError(
                f"token {oov[0].as_py()!r} at {where(int(missing[0]))} is not in the vocabulary "
                f"(choose an --oov policy: {', '.join(OOV_POLICIES)})"
            )
        self.oov_tokens += int(missing.size)
        counted = pc.value_counts(oov)
        self.counts.update(dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())))
        if self.policy == "unk":
            ids[missing] = self.unk_id
        elif self.policy == "padding":
            ids[missing] = self.padding_idx
        elif self.policy == "zero":
            ids[missing] = 0
            return ids, offsets, missing
        else:  # skip
            keep = np.ones(ids.shape[0], np.bool_)
            keep[missing] = False
            kept_before = np.zeros(ids.shape[0] + 1, np.int64)
            np.cumsum(keep, out=kept_before[1:])
            return ids[keep], kept_before[offsets], None
        return ids, offsets, None

    def report(self, top: int = 10) -> str:
        """One line for stderr: how many tokens were OOV and the most frequent ones."""
        common = ", ".join(f"{token!r} ({count})" for token, count in self.counts.most_common(top))
        return f"{self.oov_tokens:,} OOV tokens ({self.policy})" + (f"; most frequent: {common}" if common else "")
