"""The word tokenizer for raw text splits exactly as Hugging Face's WhitespaceSplit + Punctuation pre-tokenizers,
and tokenizer.json files load (or fail) in one line."""

import random

import numpy as np
import pytest

from embedtool.errors import InputFormatError, MissingExtraError
from embedtool.text_tokenizers import encode_ids, load_tokenizer, tokenizers_module, word_tokens

tokenizers = pytest.importorskip("tokenizers")

# Whitespace of every kind (with the separators U+001C..U+001F, which Arrow would split on and Rust does not),
# ASCII and Unicode punctuation, symbols, letters of several scripts, zero-width characters.
CHARS = list(
    "abc XYZ,.;:!?'\"()[]{}<>$%&*+-=/\\|~^`@#_\t\n\r\x0b\x0c\x1c\x1f\u00a0\u1680\u2000\u200a\u202f\u205f\u3000"
    "\u2028\u2029\u0085\u200b\u180e\ufefféß日本«»—–…‘’“”¿¡·€£§"
)


def split(tokens, offsets):
    words = tokens.to_pylist()
    return [words[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def test_the_issue_sentence_finds_he_and_his():
    tokens, offsets = word_tokens(["The world, said he, was not his."])
    assert split(tokens, offsets) == [["The", "world", ",", "said", "he", ",", "was", "not", "his", "."]]


def test_words_split_as_hugging_face_pre_tokenizers():
    pre = tokenizers.pre_tokenizers.Sequence(
        [tokenizers.pre_tokenizers.WhitespaceSplit(), tokenizers.pre_tokenizers.Punctuation()]
    )
    rng = random.Random(1)
    lines = ["".join(rng.choice(CHARS) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    lines += ["", " ", "\t\n", "...", "a...b", "don't"]
    got = split(*word_tokens(lines))
    assert got == [[w for w, _ in pre.pre_tokenize_str(line)] for line in lines]


def test_nulls_have_no_tokens_and_lowercase_lowers():
    tokens, offsets = word_tokens([None, "Été, ÉCOLE", None], lowercase=True)
    assert offsets.dtype == np.int64
    assert split(tokens, offsets) == [[], ["été", ",", "école"], []]


def test_encode_ids_has_no_special_tokens(tmp_path):
    model = tokenizers.models.WordLevel({"[UNK]": 0, "[CLS]": 1, "a": 2, "b": 3}, unk_token="[UNK]")
    tok = tokenizers.Tokenizer(model)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", 1)])
    tok.save(str(tmp_path / "tokenizer.json"))
    ids, offsets = encode_ids(load_tokenizer(tmp_path / "tokenizer.json"), ["a b", "", "b z"])
    assert ids.tolist() == [2, 3, 3, 0] and offsets.tolist() == [0, 2, 2, 4]


def test_a_bad_tokenizer_json_is_one_line(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(InputFormatError, match="tokenizer.json: not a readable tokenizer.json") as e:
        load_tokenizer(tmp_path / "tokenizer.json")
    assert "\n" not in str(e.value)


def test_without_tokenizers_the_error_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'embedtool\[text\]'"):
        tokenizers_module()


def trained_tokenizer(model, trainer, normalizer, pre_tokenizer, lines):
    tok = tokenizers.Tokenizer(model)
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.train_from_iterator(lines, trainer)
    return tok


def wordwise_tokenizers(lines):
    """Tokenizers of every part ``encode_ids`` encodes word by word: each model, normalizer and pre-tokenizer."""
    n, p, m, t = tokenizers.normalizers, tokenizers.pre_tokenizers, tokenizers.models, tokenizers.trainers
    specials = ["[UNK]", "[CLS]", "[SEP]"]
    bert = trained_tokenizer(m.WordPiece(unk_token="[UNK]"),
                             t.WordPieceTrainer(vocab_size=200, special_tokens=specials),
                             n.BertNormalizer(lowercase=True), p.BertPreTokenizer(), lines)
    bert.post_processor = tokenizers.processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    bpe = trained_tokenizer(m.BPE(unk_token="[UNK]"), t.BpeTrainer(vocab_size=150, special_tokens=specials),
                            n.Sequence([n.NFKC(), n.Lowercase()]),
                            p.Sequence([p.WhitespaceSplit(), p.Punctuation(), p.Digits(individual_digits=True)]), lines)
    unigram = trained_tokenizer(m.Unigram(), t.UnigramTrainer(vocab_size=120, special_tokens=["<unk>"],
                                                               unk_token="<unk>"),
                                n.Sequence([n.NFD(), n.StripAccents()]), p.Whitespace(), lines)
    level = trained_tokenizer(m.WordLevel(unk_token="[UNK]"),
                              t.WordLevelTrainer(vocab_size=60, special_tokens=specials), None,
                              p.WhitespaceSplit(), lines)
    level.add_tokens(["ab<c>", "xyz"])
    return {"bert-wordpiece": bert, "nfkc-bpe": bpe, "nfd-unigram": unigram, "wordlevel-added": level}


def test_encoding_distinct_words_gives_the_tokenizers_own_ids():
    """encode_ids encodes each distinct space-separated word once: the ids equal encoding each text whole, with and
    without truncation, on text of every kind of whitespace, punctuation, digits, accents, CJK and added tokens."""
    from embedtool.text_tokenizers import _encodes_words_alone

    rng = random.Random(2)
    chars = CHARS + list("0123456789 \u0301\u0327") + ["ab<c>", "xyz", " "] * 3
    lines = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    lines += ["", " ", "  a  ", "ab<c>xyz", "e\u0301 \u0301e", "日本語 日本", "x" * 300, "1 2 3 " * 100]
    for name, tok in wordwise_tokenizers(lines).items():
        assert _encodes_words_alone(tok), name
        for max_length in (None, 1, 7, 512):
            if max_length is None:
                tok.no_truncation()
            else:
                tok.enable_truncation(max_length)
            encodings = tok.encode_batch(lines, add_special_tokens=False)
            ids, offsets = encode_ids(tok, lines)
            assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(lines))] == [e.ids for e in encodings]


def test_tokenizers_that_join_words_are_encoded_text_by_text():
    """Parts that carry a space into a token, sample, pad, or truncate from the left are not encoded word by word."""
    from embedtool.text_tokenizers import _encodes_words_alone

    n, p, m = tokenizers.normalizers, tokenizers.pre_tokenizers, tokenizers.models
    vocab = {"[UNK]": 0, "a": 1, "b": 2, "▁a": 3, "Ġa": 4}

    def make(model=None, normalizer=None, pre_tokenizer=p.Whitespace(), **settings):
        tok = tokenizers.Tokenizer(model or m.WordLevel(vocab, unk_token="[UNK]"))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
        if settings.get("added"):
            tok.add_tokens([settings["added"]])
        if settings.get("pad"):
            tok.enable_padding()
        if settings.get("left"):
            tok.enable_truncation(3, direction="left")
        return tok

    assert _encodes_words_alone(make())
    for tok in (make(pre_tokenizer=p.Metaspace()), make(pre_tokenizer=p.ByteLevel()), make(pre_tokenizer=None),
                make(pre_tokenizer=p.Punctuation()), make(normalizer=n.Replace(" ", "_")),
                make(model=m.BPE(dropout=0.5)), make(added="a b"), make(pad=True), make(left=True),
                make(pre_tokenizer=p.Sequence([p.Whitespace(), p.Punctuation(behavior="merged_with_next")]))):
        assert not _encodes_words_alone(tok)
    tok = make(pre_tokenizer=p.Metaspace())
    ids, offsets = encode_ids(tok, ["a a", "b"])
    assert ids.tolist() == [3, 3, 0] and offsets.tolist() == [0, 2, 3]  # "▁a", "▁a", "▁b" unknown


def test_encode_ids_of_no_texts():
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    ids, offsets = encode_ids(tok, [])
    assert ids.dtype == offsets.dtype == np.int64 and ids.tolist() == [] and offsets.tolist() == [0]
