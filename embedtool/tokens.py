"""Text inputs to index arrays: compiled parsers for id lines and for space-separated tokens (fused with the
vocabulary lookup; their kernels are in ``token_kernels``, imported on first use), pyarrow tokenising for the other
tokenizers, and the OOV policies.

Both produce *ragged* sequences: flat ``values`` and ``offsets`` (one sequence per line, a blank line is an empty
sequence), with positions reported as file line and column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import from_numpy, numpy_view, string_array, strings
from .errors import InputFormatError, InvalidArgumentError

OOV_POLICIES = ("error", "unk", "padding", "skip", "zero", "subword")
TOKENIZERS = ("space", "whitespace", "chars", "word")  # or the path of a tokenizer.json
UNK_TOKENS = ("<unk>", "[UNK]")


def parse_id_lines(chunk: bytes, first_line: int):
    """Parse a chunk of complete lines of ids; returns ``(values int64, offsets int64)``.

    Errors name the line and column (the token's number in its line, from 1) and the offending text.
    """
    from .token_kernels import parse_ids

    chunk = chunk if chunk.endswith(b"\n") else chunk + b"\n"  # the parser's end marker
    buf = np.frombuffer(chunk, np.uint8)
    values = np.empty(len(chunk) // 2 + 1, np.int64)
    line_ends = np.empty(len(chunk) + 1, np.int64)  # at most a line per byte; pages never written cost nothing
    nv, nl, bad = parse_ids(buf, values, line_ends)
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


def scan_space_tokens(chunk: bytes, first_line: int, index) -> tuple[np.ndarray, np.ndarray, object]:
    """Split a chunk of complete lines on spaces and look every token up in ``index`` (a ``vocab.TokenIndex``), in
    one compiled pass. Returns ``(ids, offsets, tokens_at)``: ids (-1 for OOV), line offsets, and the
    ``tokens_at`` of ``TokenMapper.map``, which makes token strings only for the positions asked (the OOV ones).
    Invalid UTF-8 can only be in an OOV token (the vocabulary's are valid), so it is found there, naming its line.
    """
    from .token_kernels import scan_tokens, token_strings

    buf = np.frombuffer(chunk, np.uint8)
    ids = np.empty(len(chunk) // 2 + 1, np.int64)
    starts = np.empty(len(chunk) // 2 + 1, np.int64)
    line_ends = np.empty(len(chunk) + 1, np.int64)
    nt, nl = scan_tokens(buf, index.table, index.offsets, index.data, ids, starts, line_ends)
    offsets = np.zeros(nl + 1, np.int64)
    offsets[1:] = line_ends[:nl]

    def tokens_at(positions):
        token_offsets, data = token_strings(buf, starts[positions])
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
    unknown tokens dropped, truncated: ``StaticModel.tokenize``, each distinct word once a run), ``word``
    (``text_tokenizers.word_tokens``, ``lowercase`` first) or a tokenizer.json's tokens, looked up in the
    vocabulary."""
    from .formats.static_model import StaticModel
    from .text_tokenizers import load_tokenizer, tokenizer_tokens, word_tokens

    if lowercase and tokenizer != "word":
        raise InvalidArgumentError("--lowercase applies to --tokenizer word")
    if isinstance(vectors.model, StaticModel):
        if tokenizer != "space":
            raise InvalidArgumentError(f"{vectors.metadata.get('source', 'the model')}: a static model splits text "
                                       "with its own tokenizer; leave --tokenizer out")
        known = {}  # the words this run has tokenized, for every batch after the first
        return lambda lines: (*vectors.model.tokenize(lines, known=known), None)
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
