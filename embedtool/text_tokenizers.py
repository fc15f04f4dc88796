"""Tokenizers for raw text: a word tokenizer for word-vector tables and Hugging Face ``tokenizer.json`` files.

``word_tokens`` splits on whitespace and punctuation, each punctuation character a token of its own, exactly as
Hugging Face's ``pre_tokenizers.Sequence([WhitespaceSplit(), Punctuation()])``, so ``he,`` is ``he`` and ``,``
(GloVe and word2vec vocabularies hold punctuation as tokens). It runs as a few vectorised Arrow kernels over a
whole batch (regex replaces that make whitespace one space and put spaces around punctuation, then a split),
without a Python step per line (four times faster than the pre-tokenizer called line by line), and needs no extra
library.

``tokenizer.json`` files need the ``tokenizers`` library (the optional extra ``embedtool[text]``); it is imported
only when one is loaded. ``encode_ids`` encodes a batch with ``encode_batch_fast``, which runs on all cores, and
for the tokenizers that encode each space-separated word on its own (``_encodes_words_alone``) it encodes each
distinct word once and assembles the texts from them: the Rust tokenizer spends microseconds per character
normalising and splitting, and real text repeats its words.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import as_strings
from .errors import InputFormatError, MissingExtraError

# Hugging Face's Punctuation pre-tokenizer: ASCII punctuation (Rust's is_ascii_punctuation, which takes symbols
# such as $ + < = > ^ ` | ~) or any character of a Unicode punctuation category (P*).
_PUNCTUATION = r"([!-/:-@\[-`{-~\p{P}])"
# Its WhitespaceSplit: Rust's char::is_whitespace, the Unicode White_Space property (Arrow's own whitespace split
# also takes the separators U+001C..U+001F).
_WHITESPACE = "[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"


def word_tokens(lines, lowercase: bool = False) -> tuple[pa.Array, np.ndarray]:
    """Split each line into words and punctuation: (the tokens of all lines, int64 offsets with one per line + 1).

    Line ``i``'s tokens are ``tokens[offsets[i]:offsets[i + 1]]``; a null line has none. ``lowercase`` lowers
    the text first (Unicode lower case).
    """
    lines = as_strings(lines)
    if lowercase:
        lines = pc.utf8_lower(lines)
    spaced = pc.replace_substring_regex(pc.replace_substring_regex(lines, _WHITESPACE, " "), _PUNCTUATION, r" \1 ")
    spaced = pc.utf8_trim(spaced, " ")
    spaced = pc.if_else(pc.equal(pc.binary_length(spaced), 0), pa.scalar(None, spaced.type), spaced)  # no tokens
    split = pc.split_pattern_regex(spaced, " +")
    if split.null_count:
        split = split.fill_null(pa.scalar([], split.type))
    offsets = split.offsets.to_numpy().astype(np.int64)
    return split.values.slice(offsets[0], offsets[-1] - offsets[0]), offsets - offsets[0]


def tokenizers_module():
    """The ``tokenizers`` module, or a one-line error naming the extra that installs it."""
    try:
        import tokenizers
    except ImportError:
        raise MissingExtraError(
            "tokenizer.json files need the Hugging Face tokenizers library: pip install 'embedtool[text]'"
        ) from None
    return tokenizers


def load_tokenizer(path):
    """A Hugging Face ``Tokenizer`` from a ``tokenizer.json`` file, without padding or truncation."""
    tokenizers = tokenizers_module()
    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises plain Exceptions for missing and malformed files
        raise InputFormatError(f"{path}: not a readable tokenizer.json ({str(e).splitlines()[0] if str(e) else e})")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def encode_ids(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of each text without special tokens, truncated as the tokenizer truncates: (int64 ids of all
    texts, int64 offsets, one per text + 1)."""
    return encode_ids_with(tokenizer, texts, {})


#: ``encode_ids_with`` empties a ``known`` dict holding more words than this before it adds a batch's, so that a
#: stream's memory stays bounded (a word and its ids: about 200 bytes, so some 200 MB at most).
KNOWN_WORDS = 1_000_000


def encode_ids_with(tokenizer, texts: list[str], known: dict) -> tuple[np.ndarray, np.ndarray]:
    """``encode_ids``, reusing and filling ``known`` (a word's ids, for one tokenizer and truncation) when the
    tokenizer encodes words alone: a caller encoding many batches passes the same dict and encodes each word once
    (until the dict passes ``KNOWN_WORDS`` and starts over)."""
    if _encodes_words_alone(tokenizer):
        if len(known) > KNOWN_WORDS:
            known.clear()
        return _encode_distinct_words(tokenizer, texts, known)
    return _ragged([e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)])


def _ragged(id_lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, offsets) of lists of ids."""
    offsets = np.zeros(len(id_lists) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, id_lists), np.int64, len(id_lists)), out=offsets[1:])
    ids = np.fromiter(itertools.chain.from_iterable(id_lists), np.int64, int(offsets[-1]))
    return ids, offsets


# Tokenizer parts that never join or change characters across a space (U+0020), so that a text's tokens are its
# space-separated words' tokens one after the other. Normalizers act on each character (Unicode normalization
# never composes across a space, a starter); these pre-tokenizers drop whitespace and never make a piece that spans
# it; these models tokenize each piece alone; these post-processors add nothing without special tokens.
_WORDWISE_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents"}
_SPLITTING_PRE_TOKENIZERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
_WORDWISE_PRE_TOKENIZERS = _SPLITTING_PRE_TOKENIZERS | {"Digits", "Punctuation"}
_WORDWISE_MODELS = {"WordPiece", "WordLevel", "Unigram", "BPE"}
_EMPTY_POST_PROCESSORS = {"BertProcessing", "RobertaProcessing", "TemplateProcessing", "ByteLevel"}


def _encodes_words_alone(tokenizer) -> bool:
    """Whether encoding a text gives the same ids as encoding its space-separated words one by one (then truncating
    the whole): checked on the tokenizer's configuration, each part against the lists above."""
    def parts(component, key):
        if component is None:
            return []
        state = json.loads(component.__getstate__())
        return state[key] if state["type"] == "Sequence" else [state]

    normalizers = parts(tokenizer.normalizer, "normalizers")
    pre_tokenizers = parts(tokenizer.pre_tokenizer, "pretokenizers")
    post = tokenizer.post_processor
    truncation = tokenizer.truncation
    return (
        all(n["type"] in _WORDWISE_NORMALIZERS for n in normalizers)
        and any(p["type"] in _SPLITTING_PRE_TOKENIZERS for p in pre_tokenizers)
        and all(p["type"] in _WORDWISE_PRE_TOKENIZERS and p.get("behavior", "Isolated") == "Isolated"
                for p in pre_tokenizers)
        and type(tokenizer.model).__name__ in _WORDWISE_MODELS
        and getattr(tokenizer.model, "dropout", None) is None
        and (post is None or json.loads(post.__getstate__())["type"] in _EMPTY_POST_PROCESSORS)
        and tokenizer.padding is None
        and (truncation is None or (truncation["stride"] == 0 and truncation["direction"] == "right"))
        and not any(_has_space(t.content) for t in tokenizer.get_added_tokens_decoder().values())
    )


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


def _encode_distinct_words(tokenizer, texts: list[str], known: dict) -> tuple[np.ndarray, np.ndarray]:
    """``encode_ids`` for a tokenizer that ``_encodes_words_alone``: the texts are split at spaces by Arrow, each
    distinct word not in ``known`` is encoded once, and each text's ids are its words' ids, cut to the truncation's
    ``max_length`` (a word's own ids may be cut to it too, which leaves the texts' first ``max_length`` the same)."""
    split = pc.split_pattern(pa.array(texts, pa.large_string()), " ")
    words = pc.dictionary_encode(split.flatten())
    codes = words.indices.to_numpy().astype(np.int64)
    distinct = words.dictionary.to_pylist()
    new = [w for w in distinct if w not in known]
    known.update(zip(new, (e.ids for e in tokenizer.encode_batch_fast(new, add_special_tokens=False))))
    word_ids, word_offsets = _ragged([known[w] for w in distinct])
    lengths = np.diff(word_offsets)[codes]  # tokens of each word of the texts, in order
    ends = np.cumsum(lengths)
    token_word = np.repeat(np.arange(len(codes)), lengths)
    ids = word_ids[(word_offsets[codes] - (ends - lengths))[token_word] + np.arange(len(token_word))]
    word_bounds = split.offsets.to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], ends])[word_bounds - word_bounds[0]]
    truncation = tokenizer.truncation
    if truncation is not None:  # keep the first max_length tokens of each text
        counts = np.diff(offsets)
        position = np.arange(len(ids)) - np.repeat(offsets[:-1], counts)
        ids = ids[position < truncation["max_length"]]
        offsets = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(np.minimum(counts, truncation["max_length"]), out=offsets[1:])
    return ids, offsets


def tokenizer_tokens(tokenizer, lines) -> tuple[pa.Array, np.ndarray]:
    """The tokens of each line as a ``tokenizer.json`` splits them, without special tokens: (the tokens of all
    lines, int64 offsets with one per line + 1); a null line is the empty text. For looking tokens up in a table's
    vocabulary; ``encode_ids`` gives the tokenizer's own ids."""
    texts = ["" if t is None else t for t in as_strings(lines).to_pylist()]
    token_lists = [e.tokens for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    offsets = np.zeros(len(token_lists) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, token_lists), np.int64, len(token_lists)), out=offsets[1:])
    return pa.array(list(itertools.chain.from_iterable(token_lists)), pa.string()), offsets
