"""Text inputs to index arrays: compiled parsers for id lines and for space-separated tokens (fused with the
vocabulary lookup), pyarrow tokenising for the other tokenizers, and the OOV policies.

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
from .vocab import HASH_SEED, find, finish, mix, token_hash, word_at
from .arrays import from_numpy, numpy_view, string_array, strings

OOV_POLICIES = ("error", "unk", "padding", "skip", "zero", "subword")
TOKENIZERS = ("space", "whitespace", "chars", "word")  # or the path of a tokenizer.json
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
        column = _tokens_in(buf[line_start:bad]) + 1
        token = bytes(buf[bad : bad + 100]).split(maxsplit=1)[0].decode("utf-8", "replace")
        raise InputFormatError(f"{token!r} at line {line_no}, column {column} is not an integer id")
    offsets = np.zeros(nl + 1, np.int64)
    offsets[1:] = line_ends[:nl]
    return values[:nv], offsets


def _tokens_in(seg: np.ndarray) -> int:
    """The whitespace-separated tokens in the bytes ``seg``, counted without making them (a line may be 64 MiB)."""
    text = ~np.isin(seg, np.frombuffer(b" \t\n\r\x0b\x0c", np.uint8))
    return int(np.count_nonzero(text[1:] & ~text[:-1])) + int(text[:1].sum())


_ONES = np.uint64(0x0101010101010101)
_SPACES = np.uint64(0x2020202020202020)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)


@njit(cache=True, nogil=True)
def _zero_bytes(x):
    """The high bit of each zero byte of ``x``: exact for the lowest one (higher ones may be false)."""
    return (x - _ONES) & ~x & _HIGH_BITS


@njit(cache=True, nogil=True)
def _token_end(buf, i):
    """Where the token starting at ``i`` ends: at the next space or newline, before a line's trailing ``\\r``s."""
    e = i
    while buf[e] != 32 and buf[e] != 10:
        e += 1
    if buf[e] == 10:
        while e > i and buf[e - 1] == 13:
            e -= 1
    return e


@njit(cache=True, nogil=True)
def _scan_space_tokens(buf, table, offsets, data, ids, starts, line_ends):
    """The space tokenizer fused with the vocabulary lookup, over ``\\n``-terminated lines (``vocab.TokenIndex``'s
    arrays). No token string is made: eight bytes at a time, one load finds where the token ends (bit tricks, as in
    ``_parse_ids``) and feeds its hash, and the token is probed at once. Tokens are the runs of bytes other than
    space and newline, a line's trailing ``\\r``s not included (as ``split_lines`` then ``tokenize``). Fills ``ids``
    (-1 for an OOV token), ``starts`` (each token's first byte) and ``line_ends`` (the count of tokens after each
    line); returns ``(n_tokens, n_lines)``.
    """
    n = buf.shape[0]
    nt = 0
    nl = 0
    i = 0
    while i < n:
        c = buf[i]
        if c == 32:
            i += 1
            continue
        if c == 10:
            line_ends[nl] = nt
            nl += 1
            i += 1
            continue
        s = i
        h = HASH_SEED
        first = np.uint64(0)
        while True:
            word = word_at(buf, i, n)
            stops = _zero_bytes(word ^ _SPACES) | _zero_bytes(word ^ _NEWLINES)
            count = 8 if stops == 0 else np.int64(trailing_zeros(stops) >> np.uint64(3))
            if count < 8:
                word &= (np.uint64(1) << np.uint64(8 * count)) - np.uint64(1)
            if i == s:
                first = word
            if count:
                h = mix(h, word)
                i += count
            if count < 8:
                break
        e = i
        if buf[e] == 10 and buf[e - 1] == 13:
            e = _token_end(buf, s)
            if e == s:
                continue
            h, first = token_hash(buf, s, e), word_at(buf, s, e)
        else:
            h = finish(h, e - s)
        ids[nt] = find(table, offsets, data, h, first, buf, s, e)
        starts[nt] = s
        nt += 1
    return nt, nl


@njit(cache=True, nogil=True)
def _token_strings(buf, starts):
    """Offsets and bytes of the tokens starting at ``starts`` (as ``_scan_space_tokens`` found them)."""
    ends = np.empty_like(starts)
    offsets = np.zeros(starts.shape[0] + 1, np.int64)
    for t in range(starts.shape[0]):
        ends[t] = _token_end(buf, starts[t])
        offsets[t + 1] = offsets[t] + ends[t] - starts[t]
    data = np.empty(offsets[-1], np.uint8)
    for t in range(starts.shape[0]):
        data[offsets[t] : offsets[t + 1]] = buf[starts[t] : ends[t]]
    return offsets, data


def scan_space_tokens(chunk: bytes, first_line: int, index) -> tuple[np.ndarray, np.ndarray, object]:
    """Split a chunk of complete lines on spaces and look every token up in ``index`` (a ``vocab.TokenIndex``), in
    one compiled pass. Returns ``(ids, offsets, tokens_at)``: ids (-1 for OOV), line offsets, and the
    ``tokens_at`` of ``TokenMapper.map``, which makes token strings only for the positions asked (the OOV ones).
    Invalid UTF-8 can only be in an OOV token (the vocabulary's are valid), so it is found there, naming its line.
    """
    buf = np.frombuffer(chunk, np.uint8)
    ids = np.empty(len(chunk) // 2 + 1, np.int64)
    starts = np.empty(len(chunk) // 2 + 1, np.int64)
    line_ends = np.empty(len(chunk) + 1, np.int64)
    nt, nl = _scan_space_tokens(buf, index.table, index.offsets, index.data, ids, starts, line_ends)
    offsets = np.zeros(nl + 1, np.int64)
    offsets[1:] = line_ends[:nl]

    def tokens_at(positions):
        token_offsets, data = _token_strings(buf, starts[positions])
        tokens = pa.Array.from_buffers(pa.large_string(), len(positions),
                                       [None, pa.py_buffer(token_offsets), pa.py_buffer(data)])
        try:
            tokens.validate(full=True)
        except pa.ArrowInvalid:
            split_lines(chunk, first_line)  # raises, naming the line
            raise
        return tokens

    return ids[:nt], offsets, tokens_at


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
    """Split lines into tokens with pyarrow compute, for the ``whitespace`` (any Unicode whitespace) and ``chars``
    tokenizers, and ``space`` (the ASCII space only, as ``scan_space_tokens`` splits large chunks); returns flat
    tokens and int64 offsets (rows + 1). Empty tokens are dropped."""
    if tokenizer == "chars":
        return _characters(lines)
    split = pc.split_pattern(lines, " ") if tokenizer == "space" else pc.utf8_split_whitespace(lines)
    tokens = split.flatten()
    keep = numpy_view(pc.binary_length(tokens)) > 0  # in NumPy: pyarrow's conversions import pandas (0.4 s)
    offsets = numpy_view(split.offsets).astype(np.int64)
    if keep.all():
        return tokens, offsets
    kept_before = np.zeros(len(tokens) + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    return tokens.take(from_numpy(np.flatnonzero(keep))), kept_before[offsets]


def text_splitter(vectors, tokenizer: str, lowercase: bool = False):
    """``TokenMapper.split`` (text lines to ``(ids, offsets, tokens_at)``) for the tokenizers that are not a plain
    split, or None for ``space``, ``whitespace`` and ``chars``: a static model's own tokenizer (its ids directly,
    unknown tokens dropped, truncated: ``StaticModel.tokenize``), ``word`` (``text_tokenizers.word_tokens``,
    ``lowercase`` first) or a tokenizer.json's tokens, looked up in the vocabulary."""
    from .formats.static_model import StaticModel
    from .text_tokenizers import load_tokenizer, tokenizer_tokens, word_tokens

    if lowercase and tokenizer != "word":
        raise InvalidArgumentError("--lowercase applies to --tokenizer word")
    if isinstance(vectors.model, StaticModel):
        if tokenizer != "space":
            raise InvalidArgumentError(f"{vectors.metadata.get('source', 'the model')}: a static model splits text "
                                       "with its own tokenizer; leave --tokenizer out")
        return lambda lines: (*vectors.model.tokenize(lines), None)
    if tokenizer == "word":
        split = lambda lines: word_tokens(lines, lowercase)  # noqa: E731
    elif tokenizer in TOKENIZERS:
        return None
    else:
        hf = load_tokenizer(tokenizer)
        split = lambda lines: tokenizer_tokens(hf, lines)  # noqa: E731

    def ids(lines):
        tokens, offsets = split(lines)
        return vectors.token_ids(tokens), offsets, taking(tokens)

    return ids


def taking(tokens: pa.Array):
    """``tokens_at`` for ``TokenMapper.map`` over a string array: the tokens at some flat positions."""
    return lambda positions: tokens.take(from_numpy(positions))


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
    (the padding row), ``skip`` (drop the token), ``zero`` (embed it as zeros), ``subword`` (a fastText model: its
    vector from its character n-grams; the default there). ``lowercase_fallback`` retries an OOV token in lower case
    before the policy applies. ``split`` turns text lines into ``(ids, offsets, tokens_at)`` for the tokenizers that
    are not a plain split (``text_splitter``).

    Over a fastText model every batch gets its own table (``local_table``): the vectors of the distinct words it
    holds, so that the vocabulary's vectors are never all computed.
    """

    vectors: object
    policy: str
    unk_id: int = -1
    padding_idx: int | None = None
    lowercase_fallback: bool = False
    split: object = None
    oov_tokens: int = 0
    counts: Counter = field(default_factory=Counter)

    @classmethod
    def create(cls, vectors, oov=None, unk_token=None, padding_idx=None, lowercase_fallback=False, split=None):
        """Resolve the defaults: the unknown token is ``<unk>`` or ``[UNK]`` when the vocab has one, and the
        policy is ``subword`` for a fastText model, else ``unk`` when there is an unknown token, else ``error``."""
        if oov is not None and oov not in OOV_POLICIES:
            raise InvalidArgumentError(f"unknown OOV policy {oov!r}; choose one of {', '.join(OOV_POLICIES)}")
        if oov == "subword" and not vectors.subwords:
            raise InvalidArgumentError("--oov subword needs a model with subword vectors (a fastText .bin)")
        if oov is None and vectors.subwords:
            oov = "subword"
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
        return cls(vectors, policy, unk_id, padding_idx, lowercase_fallback, split)

    def map(self, ids: np.ndarray, offsets: np.ndarray, where,
            tokens_at) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, pa.Array | None]:
        """Apply the lower-case fallback and the OOV policy to ``ids`` looked up already (-1 where a token is OOV).

        ``tokens_at(positions)`` gives the tokens at flat positions as a string array (asked only for OOV tokens),
        ``where(flat)`` names a token's place. Returns ``(ids, offsets, zero_positions, kept, words)``: ``kept`` is
        the mask of the positions left when ``skip`` dropped some (None when all are left); under ``subword`` the
        distinct OOV ``words`` get the ids ``len(vocabulary) + i``, rows of the batch's table (``local_table``).
        """
        missing = np.flatnonzero(ids < 0)
        if missing.size == 0:
            return ids, offsets, None, None, None
        oov = tokens_at(missing)
        if self.lowercase_fallback:
            lowered = self.vectors.token_ids(pc.utf8_lower(oov))
            ids[missing] = lowered
            still = np.flatnonzero(lowered < 0)
            missing, oov = missing[still], oov.take(from_numpy(still))
            if missing.size == 0:
                return ids, offsets, None, None, None
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
            return ids, offsets, missing, None, None
        elif self.policy == "subword":
            words = pc.unique(oov)
            ids[missing] = len(self.vectors) + numpy_view(pc.index_in(oov, words)).astype(np.int64)
            return ids, offsets, None, None, words
        else:  # skip
            keep = np.ones(ids.shape[0], np.bool_)
            keep[missing] = False
            kept_before = np.zeros(ids.shape[0] + 1, np.int64)
            np.cumsum(keep, out=kept_before[1:])
            return ids[keep], kept_before[offsets], None, keep, None
        return ids, offsets, None, None, None

    def local_table(self, ids: np.ndarray, words: pa.Array | None) -> tuple[np.ndarray, np.ndarray, int | None]:
        """Over a fastText model: ``(ids remapped, table, padding_idx remapped or None)``, the table holding the
        vectors (``model.word_vectors``, fastText's ``get_word_vector``) of the distinct words of a batch, its
        vocabulary ids and the OOV ``words`` that ``map`` numbered after the vocabulary."""
        vocab = len(self.vectors)
        unique, inverse = np.unique(ids, return_inverse=True)
        known = unique[unique < vocab]
        names = self.vectors.tokens.take(from_numpy(known))
        if words is not None and len(words):
            names = pa.concat_arrays([names, words.cast(names.type)])
        table = self.vectors.model.word_vectors(names, np.concatenate([known, np.full(len(names) - len(known), -1)]))
        padding = None
        if self.padding_idx is not None:
            at = int(np.searchsorted(unique, self.padding_idx))
            padding = at if at < len(unique) and unique[at] == self.padding_idx else None
        return inverse.reshape(ids.shape).astype(np.int64), table, padding

    def report(self, top: int = 10) -> str:
        """One line for stderr: how many tokens were OOV and the most frequent ones."""
        common = ", ".join(f"{token!r} ({count})" for token, count in self.counts.most_common(top))
        how = "filled by subwords" if self.policy == "subword" else self.policy
        return f"{self.oov_tokens:,} OOV tokens ({how})" + (f"; most frequent: {common}" if common else "")
