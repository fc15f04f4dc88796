"""Models through the library API: a fastText .bin read by load_vectors gives every word fastText's
get_word_vector (vectors_of, embed_path, embed_table in every mode) without computing the vocabulary's vectors, a
static model directory gives model2vec's encode (Vectors.encode, bag over text files and Arrow/Parquet columns), and
the word and tokenizer.json tokenizers split raw text for word-vector tables."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedtool.errors import InputFormatError, InvalidArgumentError, MissingExtraError
from embedtool.formats.fasttext_bin import FastTextModel
from embedtool.pipeline import embed_path, embed_table
from embedtool.vectors import Vectors, load_vectors, save_vectors

fasttext = pytest.importorskip("fasttext")
model2vec = pytest.importorskip("model2vec")
tokenizers = pytest.importorskip("tokenizers")

from model_files import make_model, sentences, train, wordpiece_tokenizer  # noqa: E402

OOV = ["qqzx", "été", "日本語x", "a", ""]


@pytest.fixture(scope="module", params=[(3, 6), (1, 3)], ids=lambda p: f"minn{p[0]}-maxn{p[1]}")
def ft(request, tmp_path_factory):
    """(path, the real fastText model, the word lines embedded: vocabulary words mixed with OOV words)."""
    minn, maxn = request.param
    path, model = train(tmp_path_factory.mktemp("ft"), "m.bin", minn=minn, maxn=maxn)
    words = model.get_words()[:60]
    lines = [words[6 * k : 6 * k + 6] + [OOV[k % 4]] * (k % 3) for k in range(10)] + [[]]
    return path, model, lines


def reference(model, words) -> np.ndarray:
    return np.stack([model.get_word_vector(w) for w in words]) if words else np.zeros((0, model.get_dimension()))


@pytest.fixture
def no_matrix(monkeypatch):
    """The vocabulary's vectors must not be computed (a multi-GB model would take minutes)."""
    def refuse(self):
        raise AssertionError("the vocabulary's vectors were computed")

    monkeypatch.setattr(FastTextModel, "vocabulary_vectors", refuse)


def test_a_fasttext_bin_opens_as_vectors_without_computing_them(ft, no_matrix):
    path, model, _ = ft
    vectors = load_vectors(path)
    assert (len(vectors), vectors.dim, vectors.dtype, vectors.subwords) == (len(model.get_words()),
                                                                          model.get_dimension(), np.float32, True)
    assert vectors.tokens.to_pylist() == model.get_words()
    assert vectors.metadata["source_format"] == "fasttext-bin"


def test_vectors_of_is_get_word_vector_in_and_out_of_the_vocabulary(ft, no_matrix):
    path, model, _ = ft
    words = model.get_words()[:20] + OOV
    np.testing.assert_allclose(load_vectors(path).vectors_of(words), reference(model, words), rtol=1e-6)


def test_matrix_is_the_vocabulary_vectors(ft):
    path, model, _ = ft
    np.testing.assert_allclose(load_vectors(path).matrix, reference(model, model.get_words()), rtol=1e-6)


def embedded(path) -> list:
    return pa.ipc.open_file(str(path)).read_all().column("embedding").to_pylist()


@pytest.mark.parametrize("mode", [None, "sum", "mean", "max"])
def test_embed_and_bag_fill_oov_words_by_subwords(ft, tmp_path, mode, no_matrix, both_paths):
    path, model, lines = ft
    source = tmp_path / "in.txt"
    source.write_text("".join(" ".join(line) + "\n" for line in lines))
    summary = embed_path(path, source, tmp_path / "out.arrow", mode=mode)
    assert "filled by subwords" in summary.oov
    for line, got in zip(lines, embedded(tmp_path / "out.arrow"), strict=True):
        expected = reference(model, line)
        if mode is not None:
            expected = getattr(expected, mode)(0) if line else np.zeros(model.get_dimension())
        np.testing.assert_allclose(np.array(got, np.float32).reshape(expected.shape), expected, rtol=1e-6)


def test_embed_table_of_a_list_column_and_a_padding_token(ft, no_matrix):
    path, model, lines = ft
    vectors = load_vectors(path)
    pad = model.get_words()[0]
    rows = [line + [pad] for line in lines]
    got = embed_table(pa.table({"tokens": rows}), vectors, mode="sum", padding_idx=0).column("embedding")
    for line, row in zip(lines, got.to_pylist(), strict=True):
        kept = [w for w in line if w != pad]  # padding entries are skipped
        expected = reference(model, kept).sum(0) if kept else np.zeros(model.get_dimension())
        np.testing.assert_allclose(row, expected, rtol=1e-6, atol=1e-6)


def test_ids_index_a_fasttext_models_vocabulary(ft):
    path, model, _ = ft
    got = embed_table(pa.table({"ids": [[0, 2], [1]]}), load_vectors(path)).column("embedding").to_pylist()
    words = model.get_words()
    for ids, rows in zip([[0, 2], [1]], got):
        np.testing.assert_allclose(rows, reference(model, [words[i] for i in ids]), rtol=1e-6)


def test_other_oov_policies_still_apply(ft, no_matrix):
    path, model, lines = ft
    vectors = load_vectors(path)
    rows = [line for line in lines if line]
    got = embed_table(pa.table({"tokens": rows}), vectors, mode="mean", oov="skip").column("embedding").to_pylist()
    for line, row in zip(rows, got):
        known = [w for w in line if w in set(model.get_words())]
        np.testing.assert_allclose(row, reference(model, known).mean(0), rtol=1e-6)
    with pytest.raises(InputFormatError, match="'été' at row 1, position 6 is not in the vocabulary"):
        embed_table(pa.table({"tokens": rows}), vectors, mode="mean", oov="error")


def test_subword_policy_needs_a_subword_model():
    with pytest.raises(InvalidArgumentError, match="--oov subword needs a model with subword vectors"):
        embed_table(pa.table({"tokens": [["a"]]}), Vectors(np.ones((1, 2), np.float32), ["a"]), oov="subword")


def test_a_model_cannot_be_written_as_one(ft, tmp_path):
    with pytest.raises(InvalidArgumentError, match="fasttext-bin models cannot be written"):
        save_vectors(load_vectors(ft[0]), tmp_path / "copy.ftz")


def test_model_options_are_refused_for_tables_and_table_options_for_models(ft, tmp_path):
    table = save_vectors(Vectors(np.ones((1, 2), np.float32), ["a"]), tmp_path / "t.arrow")
    with pytest.raises(InvalidArgumentError, match="normalize only apply to static model directories"):
        load_vectors(table, normalize=True)
    with pytest.raises(InvalidArgumentError, match="limit do not apply to a fasttext-bin model"):
        load_vectors(ft[0], limit=3)
    with pytest.raises(InvalidArgumentError, match="has no tokenizer: encode needs a static model directory"):
        load_vectors(table).encode(["a"])


def test_a_truncated_bin_is_one_line(ft, tmp_path):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(ft[0].read_bytes()[:300])
    with pytest.raises(InputFormatError, match="cut.bin: not a readable fastText .bin model") as e:
        load_vectors(cut)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------------------------------------
# Static model directories


@pytest.fixture(scope="module")
def texts():
    return sentences(200, seed=1)


@pytest.fixture(scope="module")
def wordpiece():
    return wordpiece_tokenizer(sentences(200))


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_encode_and_bag_equal_model2vec(tmp_path, texts, wordpiece, dtype, normalize):
    path = make_model(tmp_path / "m", wordpiece, dtype, normalize, weighted=dtype == "float16")
    expected = model2vec.StaticModel.from_pretrained(str(path)).encode(texts)
    vectors = load_vectors(path)
    np.testing.assert_allclose(vectors.encode(texts), expected, rtol=1e-5, atol=1e-7)
    source = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": range(len(texts)), "text": texts}), source)
    embed_path(path, source, tmp_path / "out.arrow", mode="mean", column="text", keep=["id"])
    got = pa.ipc.open_file(str(tmp_path / "out.arrow")).read_all()
    assert got.column("id").to_pylist() == list(range(len(texts)))
    assert got.schema.field("embedding").type.value_type == pa.from_numpy_dtype(expected.dtype)
    np.testing.assert_allclose(np.array(got.column("embedding").to_pylist(), expected.dtype), expected, rtol=1e-5,
                               atol=1e-7)


def test_bag_of_a_text_file_follows_normalize_and_max_length(tmp_path, texts, wordpiece):
    path = make_model(tmp_path / "m", wordpiece, "float32", True, False)
    reference_model = model2vec.StaticModel.from_pretrained(str(path))
    one_line_texts = [t for t in texts if "\n" not in t and t.strip() == t]  # a text file's lines are its texts
    source = tmp_path / "docs.txt"
    source.write_text("".join(t + "\n" for t in one_line_texts))
    options = {"normalize": False, "max_length": 5}
    embed_path(path, source, tmp_path / "out.arrow", mode="mean", weight_options=options)
    got = np.array(embedded(tmp_path / "out.arrow"), np.float32)
    np.testing.assert_allclose(got, reference_model.encode(one_line_texts, **options), rtol=1e-5, atol=1e-7)


def test_embed_gives_each_token_its_row(tmp_path, wordpiece):
    path = make_model(tmp_path / "m", wordpiece, "float32", True, False)
    vectors = load_vectors(path)
    lines = ["the cat runs", "", "☃"]
    got = embed_table(pa.table({"text": lines}), vectors).column("embedding").to_pylist()
    for line, rows in zip(lines, got, strict=True):
        ids, _ = vectors.model.tokenize([line])
        np.testing.assert_array_equal(np.array(rows, np.float32).reshape(len(ids), vectors.dim), vectors.matrix[ids])


def test_a_directory_without_its_tokenizer_is_one_line(tmp_path, wordpiece):
    path = make_model(tmp_path / "m", wordpiece, "float32", False, False)
    (path / "tokenizer.json").unlink()
    with pytest.raises(InputFormatError, match="is a directory, not a weight file nor a static model directory"):
        load_vectors(path)


# --------------------------------------------------------------------------------------------------------------
# Raw text for word-vector tables


@pytest.fixture
def glove(tmp_path):
    words = ["the", "world", ",", "said", "he", "was", "not", "his", "."]
    return Vectors(np.arange(len(words) * 2, dtype=np.float32).reshape(-1, 2), words)


def test_the_word_tokenizer_finds_words_before_punctuation(glove):
    table = pa.table({"text": ["The world, said he, was not his."]})
    got = embed_table(table, glove, tokenizer="word", lowercase=True).column("embedding").to_pylist()[0]
    words = ["the", "world", ",", "said", "he", ",", "was", "not", "his", "."]
    np.testing.assert_array_equal(got, glove.matrix[glove.ids(words)])
    with pytest.raises(InputFormatError, match="'The' at row 0, token 0 is not in the vocabulary"):
        embed_table(table, glove, tokenizer="word")


def test_a_tokenizer_json_splits_text_into_vocabulary_tokens(glove, tmp_path, wordpiece):
    wordpiece.save(str(tmp_path / "tokenizer.json"))
    lines = ["the world said he", "his world"]
    expected = [wordpiece.encode(line, add_special_tokens=False).tokens for line in lines]
    vocab = sorted({t for tokens in expected for t in tokens})
    table = Vectors(np.arange(len(vocab) * 2, dtype=np.float32).reshape(-1, 2), vocab)
    got = embed_table(pa.table({"text": lines}), table, tokenizer=str(tmp_path / "tokenizer.json"))
    for tokens, rows in zip(expected, got.column("embedding").to_pylist(), strict=True):
        np.testing.assert_array_equal(rows, table.matrix[table.ids(tokens)])


def test_lowercase_is_for_the_word_tokenizer(glove):
    with pytest.raises(InvalidArgumentError, match="--lowercase applies to --tokenizer word"):
        embed_table(pa.table({"text": ["a"]}), glove, lowercase=True)


def test_a_tokenizer_json_without_the_extra_names_it(glove, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_tokenizers(name, *args, **kwargs):
        if name == "tokenizers":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tokenizers)
    with pytest.raises(MissingExtraError, match=r"pip install 'embedtool\[text\]'"):
        embed_table(pa.table({"text": ["a"]}), glove, tokenizer=str(tmp_path / "tokenizer.json"))
