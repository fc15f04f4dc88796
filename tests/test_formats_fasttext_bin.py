"""fastText .bin models: every in-vocabulary and OOV vector equals the real fastText bindings' ``get_word_vector``,
the matrix stays memory-mapped, and truncated or garbled files give one-line errors."""

import random
import struct

import numpy as np
import pyarrow as pa
import pytest

from embedtool.errors import InputFormatError
from embedtool.formats.fasttext_bin import MAGIC, load_fasttext_bin

fasttext = pytest.importorskip("fasttext")

from model_files import ALPHABET, fit, train  # noqa: E402

QUERIES = ["", "a", "<", ">", "</s>", "<a>", "zz", "été!", "日本", "x" * 40, "e\u0301", "a b", "😀😀", "straße"]


# maxn=0 alone makes fastText drop the bucket (bucket=0), and the bindings fail to train such a model ("Encountered
# NaN" every time); wordNgrams=2 keeps the bucket, as in a model trained with word n-grams and no subwords.
@pytest.fixture(
    scope="module",
    params=[(3, 6, 1), (1, 3, 1), (2, 2, 1), (1, 1, 1), (0, 0, 2), (5, 3, 1)],
    ids=lambda p: f"minn{p[0]}-maxn{p[1]}",
)
def trained(request, tmp_path_factory):
    minn, maxn, word_ngrams = request.param
    return train(tmp_path_factory.mktemp("ft"), "m.bin", minn=minn, maxn=maxn, wordNgrams=word_ngrams)


def test_every_vector_equals_fasttext_get_word_vector(trained):
    path, model = trained
    opened = load_fasttext_bin(path)
    assert opened.tokens.to_pylist() == model.words
    assert opened.dim == 8 and opened.bucket == 2000
    words = model.words + QUERIES + [w + "x" for w in model.words[:50]]
    expected = np.array([model.get_word_vector(w) for w in words])
    got = opened.word_vectors(words)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    assert np.array_equal(got, expected)  # same float32 sums in the same order: bit for bit


def test_vocabulary_vectors_are_what_the_vec_file_holds(trained, tmp_path):
    path, model = trained
    opened = load_fasttext_bin(path)
    expected = np.array([model.get_word_vector(w) for w in model.words])
    np.testing.assert_allclose(opened.vocabulary_vectors(), expected, rtol=1e-6, atol=0)
    ids = opened.word_ids(pa.array(model.words[:5] + ["not-a-word-here"]))
    assert ids.tolist() == [0, 1, 2, 3, 4, -1]


def test_the_matrix_is_memory_mapped_not_read(trained):
    path, _ = trained
    opened = load_fasttext_bin(path)
    assert isinstance(opened.matrix, np.memmap) and not opened.matrix.flags.writeable
    assert opened.matrix.shape == (opened.nwords + 2000, 8)


def test_null_words_are_the_empty_word(trained):
    path, model = trained
    opened = load_fasttext_bin(path)
    got = opened.word_vectors(pa.array([None, "ab"]))
    np.testing.assert_array_equal(got[0], model.get_word_vector(""))


# --------------------------------------------------------------------------------------------------------------
# Quantized models (.ftz): fastText quantizes supervised models only


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sup")
    rng = random.Random(1)
    words = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))) for _ in range(300)]
    text = tmp / "train.txt"
    text.write_text("\n".join(f"__label__{rng.randint(0, 3)} " + " ".join(rng.choice(words) for _ in range(12))
                              for _ in range(1000)) + "\n")
    fit(text, tmp / "m.bin", "train_supervised", dim=8, bucket=2000, minCount=1, minn=2, maxn=4, epoch=1, thread=1,
        verbose=0, lr=0.1)  # see train()
    return text, fasttext.load_model(str(tmp / "m.bin"))


@pytest.mark.parametrize(
    "qnorm, cutoff, dsub", [(True, 500, 3), (False, 500, 2), (True, 0, 2), (False, 0, 8)],
    ids=["qnorm-pruned-dsub3", "pruned-dsub2", "qnorm-unpruned", "unpruned-dsub8"],
)
def test_quantized_vectors_equal_fasttext(supervised, tmp_path, qnorm, cutoff, dsub):
    text, model = supervised
    path = tmp_path / "m.bin"
    model.save_model(str(path))  # quantize changes the model in place: keep the trained one
    model = fasttext.load_model(str(path))
    model.quantize(input=str(text), qnorm=qnorm, retrain=False, cutoff=cutoff, dsub=dsub)
    model.save_model(str(tmp_path / "m.ftz"))
    opened = load_fasttext_bin(tmp_path / "m.ftz")
    assert opened.quantizer is not None and opened.pruned == (cutoff > 0) and opened.matrix.shape == (0, 8)
    assert opened.tokens.to_pylist() == model.words
    words = model.words + QUERIES  # labels are not words here (fastText would read an n-gram row for them)
    expected = np.array([model.get_word_vector(w) for w in words])
    assert np.array_equal(opened.word_vectors(words), expected)
    if qnorm and cutoff:  # a file cut anywhere before its small output matrix is one line
        content = (tmp_path / "m.ftz").read_bytes()
        for cut in range(0, len(content) - 200, 37):
            error(tmp_path, content[:cut])


# --------------------------------------------------------------------------------------------------------------
# Untrusted files: every malformed file is one InputFormatError naming the file and the value


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    path, _ = train(tmp_path_factory.mktemp("ftbad"), "m.bin", minn=2, maxn=4)
    return path.read_bytes()


def error(tmp_path, content: bytes) -> str:
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(InputFormatError) as e:
        load_fasttext_bin(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message.replace(f"{path}: ", "")


def patched(content: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(content)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def matrix_header(content: bytes) -> int:
    """The offset of the quantized flag before the input matrix."""
    rows = struct.unpack_from("<i", content, 68)[0] + 2000
    return content.index(struct.pack("<?2q", False, rows, 8))


def test_every_truncation_before_the_matrix_ends_is_one_line(good_bytes, tmp_path):
    at = matrix_header(good_bytes)
    end = at + 17 + (struct.unpack_from("<i", good_bytes, 68)[0] + 2000) * 8 * 4
    for cut in sorted({0, 3, 4, 8, 20, 63, 64, 91, 92, 93, at, at + 1, at + 16, at + 17, end - 1}
                      | set(range(92, end, 211))):
        error(tmp_path, good_bytes[:cut])


def test_a_file_cut_inside_the_matrix_names_it(good_bytes, tmp_path):
    assert "ends inside its input matrix" in error(tmp_path, good_bytes[: len(good_bytes) // 2])


def test_not_fasttext(tmp_path):
    assert "not a fastText .bin model" in error(tmp_path, b"3 2\nthe 0.1 0.2\n")


@pytest.mark.parametrize(
    "offset, fmt, value, says",
    [
        (4, "<i", 13, "file format version 13"),
        (8, "<i", 0, "dim 0"),
        (8, "<i", 2**30, "dim 1073741824"),
        (92 + 4 + 1 + 8, "<b", 1, "entry types out of order (words then labels), first bad entry 1"),
        (8 + 4 * 8, "<i", -1, "bucket -1"),
        (8 + 4 * 9, "<i", -2, "minn -2"),
        (64, "<i", 2**31 - 1, "dictionary size 2147483647"),
        (64, "<i", -5, "dictionary size -5"),
        (68, "<i", 10**6, "word count 1000000"),
        (72, "<i", 3, "label count 3"),
        (84, "<q", 0, "pruned dictionary without quantization (fastText refuses these too), pruned n-grams: 0"),
        (84, "<q", -7, "pruned n-gram count -7"),
    ],
)
def test_garbled_header_values_are_named(good_bytes, tmp_path, offset, fmt, value, says):
    assert says in error(tmp_path, patched(good_bytes, offset, fmt, value))


def test_a_huge_maxn_costs_what_the_words_need(good_bytes, tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(patched(good_bytes, 8 + 4 * 10, "<i", 2**31 - 1))  # every n-gram of at least minn characters
    vectors = load_fasttext_bin(path).word_vectors(["abcdef", "x" * 1000])
    assert vectors.shape == (2, 8) and np.isfinite(vectors).all()


def test_garbled_matrix_shape_is_named(good_bytes, tmp_path):
    at = matrix_header(good_bytes)
    assert "input matrix rows 7" in error(tmp_path, patched(good_bytes, at + 1, "<q", 7))
    assert "input matrix columns 9" in error(tmp_path, patched(good_bytes, at + 9, "<q", 9))
    assert "quantized matrix" in error(tmp_path, patched(good_bytes, at, "<?", True))


def test_an_entry_that_is_not_utf8_is_named(good_bytes, tmp_path):
    start = 92  # the first entry's word
    garbled = good_bytes[:start] + b"\xff" + good_bytes[start + 1 :]
    assert "not UTF-8, number 1" in error(tmp_path, garbled)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(InputFormatError, match="cannot read it"):
        load_fasttext_bin(tmp_path / "nope.bin")


def test_magic_constant_is_fasttexts(good_bytes):
    assert struct.unpack_from("<i", good_bytes, 0)[0] == MAGIC


def test_bucket_of_is_the_integer_remainder_for_every_32_bit_hash():
    from numba import njit

    from embedtool.formats.fasttext_kernels import bucket_of

    @njit
    def remainders(hashes, bucket):
        return np.array([bucket_of(h, bucket, 1.0 / bucket) for h in hashes])

    rng = np.random.default_rng(0)
    edges = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1], np.int64)
    for bucket in (1, 2, 3, 2000, 2_000_000, 10_000_019, 2**31 - 1):
        near = np.clip(np.arange(1, 2**32 // bucket + 1, max(1, 2**32 // bucket // 1000)) * bucket, 0, 2**32 - 1)
        hashes = np.concatenate([edges, near - 1, near, rng.integers(0, 2**32, 10000)]).clip(0, 2**32 - 1)
        np.testing.assert_array_equal(remainders(hashes, bucket), hashes % bucket)


@pytest.mark.parametrize("path_taken", ["bag kernel", "numpy bags", "words too long for one bag"])
def test_many_words_equal_fasttext_on_every_path(trained, monkeypatch, path_taken):
    """Thousands of words, bit for bit, however they are summed: the bag kernel (the rows of a block of words hashed
    in parallel, summed by embedding_bag's kernel), small blocks in NumPy, and a block with a word longer than one
    bag may be (summed by small.embedding_bag's fold)."""
    from embedtool import bag, small

    path, model = trained
    rng = random.Random(2)
    words = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14))) for _ in range(5000)]
    monkeypatch.setattr(small, "SMALL_WORK", -1 if path_taken == "bag kernel" else 1 << 40)
    if path_taken == "words too long for one bag":
        monkeypatch.setattr(bag, "WHOLE_BAG", 0)
    expected = np.array([model.get_word_vector(w) for w in words])
    assert np.array_equal(load_fasttext_bin(path).word_vectors(words), expected)
