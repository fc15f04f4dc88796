"""Static models (model2vec, sentence-transformers StaticEmbedding): embedtool's encode equals the real model2vec's
``StaticModel.encode`` for float32/float16/int8 tables, with and without normalisation, weights and mapping, on
sentences that are empty, all-unknown and over-long; malformed directories give one line."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.formats.static_model import is_model_directory, load_static_model

model2vec = pytest.importorskip("model2vec")
tokenizers = pytest.importorskip("tokenizers")

from model_files import make_model, sentences, unigram_tokenizer, wordpiece_tokenizer  # noqa: E402

@pytest.fixture(scope="module")
def texts():
    return sentences()


@pytest.fixture(scope="module")
def wordpiece(texts):
    return wordpiece_tokenizer(texts[:200])


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights-mapping"])
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_encode_equals_model2vec(tmp_path, texts, wordpiece, dtype, normalize, weighted):
    path = make_model(tmp_path / "m", wordpiece, dtype, normalize, weighted)
    reference = model2vec.StaticModel.from_pretrained(str(path))
    assert reference.embedding.dtype == np.dtype(dtype)  # saved and read back in that dtype
    model = load_static_model(path)
    expected = reference.encode(texts)
    got = model.encode(texts)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert not got[len(texts) - 8].any()  # the empty sentence
    assert not got[len(texts) - 6].any()  # all unknown
    np.testing.assert_allclose(model.encode(texts, normalize=not normalize),
                               reference.encode(texts, normalize=not normalize), rtol=1e-5, atol=1e-7)


def test_max_length_is_config_or_override(tmp_path, texts, wordpiece):
    path = make_model(tmp_path / "m", wordpiece, "float32", False, False)
    config = json.loads((path / "config.json").read_text())
    config["max_length"] = 7
    (path / "config.json").write_text(json.dumps(config))
    reference = model2vec.StaticModel.from_pretrained(str(path))
    np.testing.assert_allclose(load_static_model(path).encode(texts), reference.encode(texts), rtol=1e-5, atol=1e-7)
    for max_length in (None, 3):
        np.testing.assert_allclose(load_static_model(path, max_length=max_length).encode(texts),
                                   reference.encode(texts, max_length=max_length), rtol=1e-5, atol=1e-7)


def test_unigram_unknown_id_is_dropped(tmp_path, texts):
    path = make_model(tmp_path / "m", unigram_tokenizer(texts[:200]), "float32", True, False)
    reference = model2vec.StaticModel.from_pretrained(str(path))
    model = load_static_model(path)
    assert model.unk_id == reference.unk_token_id == 0
    np.testing.assert_allclose(model.encode(texts), reference.encode(texts), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("nested", [False, True], ids=["model.safetensors", "0_StaticEmbedding"])
def test_sentence_transformers_layouts(tmp_path, texts, wordpiece, nested):
    source = make_model(tmp_path / "m2v", wordpiece, "float32", False, False)
    reference = model2vec.StaticModel.from_pretrained(str(source))
    path = tmp_path / "st"
    inner = path / "0_StaticEmbedding" if nested else path
    inner.mkdir(parents=True)
    save_file({"embedding.weight": np.ascontiguousarray(reference.embedding)}, str(inner / "model.safetensors"))
    (inner / "tokenizer.json").write_text((source / "tokenizer.json").read_text())
    (path / "config_sentence_transformers.json").write_text("{}")
    assert is_model_directory(path)
    np.testing.assert_allclose(load_static_model(path).encode(texts),
                               model2vec.StaticModel.from_pretrained(str(path)).encode(texts), rtol=1e-5, atol=1e-7)


def test_table_stays_memory_mapped(tmp_path, wordpiece):
    model = load_static_model(make_model(tmp_path / "m", wordpiece, "float16", False, False))
    assert isinstance(model.table, np.memmap)
    assert model.tokens.to_pylist() == [t for t, _ in sorted(wordpiece.get_vocab().items(), key=lambda x: x[1])]


def test_tokenize_gives_ids_and_offsets(tmp_path, wordpiece):
    model = load_static_model(make_model(tmp_path / "m", wordpiece, "float32", False, False))
    ids, offsets = model.tokenize(["the cat", "", "☃"])
    assert offsets.tolist() == [0, len(ids), len(ids), len(ids)]
    assert [model.tokens[i].as_py() for i in ids] == [t for t in wordpiece.encode("the cat").tokens]


# --------------------------------------------------------------------------------------------------------------
# Malformed directories: one line naming the file and the value


def one_line(path, **options) -> str:
    with pytest.raises(InputFormatError) as e:
        load_static_model(path, **options)
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.fixture
def saved(tmp_path, wordpiece):
    return make_model(tmp_path / "m", wordpiece, "float32", False, False)


def test_not_a_model_directory(tmp_path):
    assert "not a static model directory" in one_line(tmp_path)
    assert not is_model_directory(tmp_path)


def test_bad_config(saved):
    (saved / "config.json").write_text('{"normalize": "yes"}')
    assert "config.json: normalize is 'yes'" in one_line(saved)
    (saved / "config.json").write_text("{oops")
    assert "config.json: not valid JSON" in one_line(saved)


def test_bad_max_length(saved):
    (saved / "config.json").write_text('{"max_length": 0}')
    assert "config.json: max_length is 0, expected 1 or more" in one_line(saved)
    with pytest.raises(InvalidArgumentError, match="max_length must be an integer of 1 or more, or None; got -3"):
        load_static_model(saved, max_length=-3)


def test_truncated_tensor_file(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) - 10])
    assert ("model.safetensors: bad safetensors header: tensor 'embeddings' has data_offsets [0, "
            in one_line(saved))


def test_rows_must_match_the_tokenizer(saved):
    save_file({"embeddings": np.zeros((5, 4), np.float32)}, str(saved / "model.safetensors"))
    assert "tensor of 5 rows for a tokenizer of" in one_line(saved)


def test_mapping_out_of_range(saved, wordpiece):
    vocab = wordpiece.get_vocab_size()
    mapping = np.zeros(vocab, np.int64)
    mapping[3] = 99
    save_file({"embeddings": np.zeros((5, 4), np.float32), "mapping": mapping}, str(saved / "model.safetensors"))
    assert "mapping[3] is 99, outside the 5 rows" in one_line(saved)


def test_bad_tokenizer(saved):
    (saved / "tokenizer.json").write_text("[]")
    assert "tokenizer.json: not a readable tokenizer.json" in one_line(saved)


def test_small_batches_reuse_words_tokenized_before(tmp_path, texts, wordpiece):
    """encode tokenizes each distinct word once across its batches: any batch size and max_length give model2vec's
    vectors (words seen in an earlier batch come from that batch's tokenization)."""
    path = make_model(tmp_path / "m", wordpiece, "float32", True, False)
    reference = model2vec.StaticModel.from_pretrained(str(path))
    model = load_static_model(path)
    for max_length in (None, 3, 512):
        expected = reference.encode(texts, max_length=max_length)
        for batch_size in (1, 7, 1000):
            np.testing.assert_allclose(model.encode(texts, max_length=max_length, batch_size=batch_size), expected,
                                       rtol=1e-5, atol=1e-7)
