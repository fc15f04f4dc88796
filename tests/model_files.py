"""Real models for the tests, made by the libraries embedtool must agree with: fastText models trained on generated
text (in fresh processes: the bindings' training gives NaN at random on small corpora) and model2vec models with
seeded vectors over tokenizers trained with Hugging Face ``tokenizers``. Each library is imported where it is used,
so a test file that skips without it can still import this module."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

ALPHABET = "abcdefghijklmnopqrstuvwxyzéßñ日本語😀"


def train(tmp_path, name, **args):
    """A model trained on generated text with non-ASCII words, saved as .bin; and the fastText model itself."""
    rng = random.Random(0)
    words = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))) for _ in range(300)]
    text = tmp_path / "train.txt"
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(1000)) + "\n")
    path = tmp_path / name
    fit(text, path, "train_unsupervised", dim=8, bucket=2000, minCount=1, epoch=1, thread=1, verbose=0, lr=0.01, **args)
    import fasttext

    return path, fasttext.load_model(str(path))


# The bindings raise "Encountered NaN" at random when training on a corpus this small: 1 to 4 trainings in 10 succeed
# in a fresh process, and in a process that has run many other tests, one configuration failed 300 times in a row.
FIT = """
import json, sys, fasttext
text, path, how, args = sys.argv[1:]
for _ in range(200):
    try:
        model = getattr(fasttext, how)(text, **json.loads(args))
    except RuntimeError as e:
        assert "NaN" in str(e)
    else:
        model.save_model(path)
        break
"""


def fit(text, path, how, **args) -> None:
    """Train in fresh processes until one training succeeds, and save the model at ``path``."""
    for _ in range(5):
        subprocess.run([sys.executable, "-c", FIT, str(text), str(path), how, json.dumps(args)], check=True,
                       timeout=300)
        if path.exists():
            return
    pytest.fail("fastText's bindings gave NaN in every training")


WORDS = "the a world said he was not his cat dog runs running ran quickly over lazy fox jumps été straße 日本".split()


def sentences(n=300, seed=0):
    """Sentences of known words and word pieces, with empty, all-unknown, punctuation-only and over-long ones."""
    rng = random.Random(seed)
    out = [" ".join(rng.choice(WORDS) + rng.choice(["", "s", "ed", "!", ","]) for _ in range(rng.randint(1, 20)))
           for _ in range(n)]
    out += ["", "   ", "☃☃☃ ✈✈", "☃", "\u200b", " ".join(rng.choice(WORDS) for _ in range(900)),
            "running" * 400, "The World Said"]
    return out


def wordpiece_tokenizer(texts):
    import tokenizers

    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    trainer = tokenizers.trainers.WordPieceTrainer(vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]"])
    tok.train_from_iterator(texts, trainer)
    return tok


def unigram_tokenizer(texts):
    import tokenizers

    tok = tokenizers.Tokenizer(tokenizers.models.Unigram())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    trainer = tokenizers.trainers.UnigramTrainer(vocab_size=80, special_tokens=["<unk>"], unk_token="<unk>")
    tok.train_from_iterator(texts, trainer)
    return tok


def make_model(path, tokenizer, dtype, normalize, weighted, seed=0):
    """Save a model2vec model with seeded vectors; ``weighted`` adds weights and a mapping onto fewer rows."""
    import model2vec
    import model2vec.quantization

    rng = np.random.default_rng(seed)
    vocab = tokenizer.get_vocab_size()
    weights = mapping = None
    rows = vocab
    if weighted:
        rows = vocab // 3
        mapping = rng.integers(0, rows, vocab).astype(np.int64)
        weights = rng.uniform(0.1, 2.0, vocab).astype(np.float32)
    vectors = rng.standard_normal((rows, 16)).astype(np.float32)
    if dtype == "int8":
        vectors = model2vec.quantization.quantize_embeddings(vectors, model2vec.quantization.DType.Int8)
    else:
        vectors = vectors.astype(dtype)
    model = model2vec.StaticModel(vectors=vectors, tokenizer=tokenizer, config={}, normalize=normalize,
                                  weights=weights, token_mapping=mapping)
    model.save_pretrained(str(path))
    return path
