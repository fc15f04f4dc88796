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
