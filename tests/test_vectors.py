"""``Vectors``, ``load_vectors`` and ``save_vectors``: round trips between every pair of formats, ``Vectors``'s own
checks and ``ids``, detection, and option checks. Each format's own rules are in test_formats_<format>.py, the token
index and vocab files in test_vocab.py."""

import itertools

import numpy as np
import pyarrow as pa
import pytest

import embedtool
from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.formats import WRITABLE
from embedtool.vectors import Vectors, load_vectors, save_vectors
from helpers import DTYPES, same_bits, table

SUFFIX = {"arrow": ".arrow", "parquet": ".parquet", "npy": ".npy", "safetensors": ".safetensors", "glove": ".txt",
          "word2vec": ".vec", "word2vec-binary": ".bin"}


pytestmark = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("first,second", list(itertools.product(WRITABLE, WRITABLE)))
def test_round_trip_between_every_pair_of_formats(tmp_path, first, second, dtype):
    binary = "word2vec-binary" in (first, second)
    original = table(dtype, spaces=not binary)
    a, b = tmp_path / f"a{SUFFIX[first]}", tmp_path / f"b{SUFFIX[second]}"
    save_vectors(original, a)
    save_vectors(load_vectors(a, dtype=dtype), b)
    back = load_vectors(b, dtype=dtype)
    expected = original.matrix.astype(np.float32).astype(dtype) if binary else original.matrix  # binary is float32
    assert back.matrix.dtype == dtype
    same_bits(back.matrix, expected)
    assert back.tokens.to_pylist() == original.tokens.to_pylist()


@pytest.mark.parametrize("fmt", WRITABLE)
def test_each_format_keeps_its_dtype_by_default(tmp_path, fmt):
    path = tmp_path / f"v{SUFFIX[fmt]}"
    save_vectors(table(np.float64, spaces=False), path)
    expected = np.float64 if fmt in ("arrow", "parquet", "npy", "safetensors") else np.float32
    assert load_vectors(path).matrix.dtype == expected


def test_empty_table_round_trips(tmp_path):
    for fmt in WRITABLE:
        path = save_vectors(Vectors(np.empty((0, 4), np.float32), []), tmp_path / f"e{SUFFIX[fmt]}")
        if fmt == "glove":  # no header, no rows: nothing tells the dimension
            assert path.read_bytes() == b""
            continue
        v = load_vectors(path)
        assert v.matrix.shape == (0, 4) and len(v) == 0, fmt


# --------------------------------------------------------------------------------------------------------------
# Vectors


def test_ids_raise_on_the_first_unknown_token_or_substitute_a_row():
    v = Vectors(np.zeros((3, 2), np.float32), ["a", "b", "c"])
    with pytest.raises(InputFormatError) as e:
        v.ids(["a", "zz", "yy"])
    assert str(e.value) == "token 'zz' is not in the vocabulary (2 of 3 tokens are not)"
    with pytest.raises(InputFormatError, match=r"^token 'zz' is not in the vocabulary$"):
        v.ids(["zz"])
    assert v.ids(["a", "zz", "c"], oov=1).tolist() == [0, 1, 2]
    for bad in ("skip", 3, -1, True):
        with pytest.raises(InvalidArgumentError, match="oov must be 'error' or a row id"):
            v.ids(["zz"], oov=bad)


def test_table_without_vocab():
    v = Vectors(np.zeros((3, 2), np.float32))
    assert not v.has_vocab and v.dim == 2 and len(v) == 3
    with pytest.raises(InvalidArgumentError, match="has no vocabulary"):
        v.token_ids(["a"])


def test_vectors_checks_its_parts():
    with pytest.raises(InvalidArgumentError, match="2 tokens for a table of 3 rows"):
        Vectors(np.zeros((3, 2), np.float32), ["a", "b"])
    with pytest.raises(InvalidArgumentError, match="tokens must be strings"):
        Vectors(np.zeros((1, 2), np.float32), pa.array([1]))
    with pytest.raises(InvalidArgumentError, match="weight must be 2-D"):
        Vectors(np.zeros(3, np.float32))
    assert embedtool.Vectors is Vectors and embedtool.load_vectors is load_vectors


# --------------------------------------------------------------------------------------------------------------
# Detection


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFormatError, match=r"nope\.txt: no such file$"):
        load_vectors(tmp_path / "nope.txt")
    with pytest.raises(InputFormatError, match="is a directory"):
        load_vectors(tmp_path)


# --------------------------------------------------------------------------------------------------------------
# Loading options


def test_limit_and_dtype_on_mapped_formats(tmp_path):
    save_vectors(table(np.float32), tmp_path / "w.npy")
    v = load_vectors(tmp_path / "w.npy", limit=2, dtype="float64")
    assert v.matrix.dtype == np.float64 and v.tokens.to_pylist() == ["a", "b c"]
    same_bits(v.matrix, table(np.float32).matrix[:2].astype(np.float64))


# --------------------------------------------------------------------------------------------------------------
# Saving and options


def test_save_refuses_duplicate_tokens_and_leaves_nothing(tmp_path):
    with pytest.raises(InvalidArgumentError) as e:
        save_vectors(Vectors(np.zeros((3, 2), np.float32), ["a", "b", "a"]), tmp_path / "v.arrow")
    assert str(e.value) == "token 'a' is in rows 0 and 2; a table's tokens must be unique"
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_no_file_and_keeps_an_existing_one(tmp_path):
    (tmp_path / "v.txt").write_text("old")
    with pytest.raises(InvalidArgumentError):
        save_vectors(Vectors(np.zeros((2, 2), np.float32), ["a", "b\nc"]), tmp_path / "v.txt")
    assert [p.name for p in tmp_path.iterdir()] == ["v.txt"] and (tmp_path / "v.txt").read_text() == "old"
    with pytest.raises(InvalidArgumentError, match="GloVe text needs tokens, and this table has none"):
        save_vectors(np.zeros((2, 2), np.float32), tmp_path / "w.txt")
    assert not (tmp_path / "w.txt").exists()


@pytest.mark.parametrize("options,message", [
    ({"duplicates": "any"}, "duplicates must be one of first, last, error; got 'any'"),
    ({"on_bad_row": "warn"}, "on_bad_row must be one of error, skip; got 'warn'"),
    ({"errors": "surrogateescape"}, "errors must be one of strict, replace, ignore; got 'surrogateescape'"),
    ({"format": "csv"}, "format must be one of arrow, parquet, npy, safetensors, glove, word2vec, word2vec-binary, "
                        "fasttext-bin, static-model; got 'csv'"),
    ({"encoding": "nope"}, "unknown encoding 'nope'"),
    ({"encoding": "utf-16"}, "encoding 'utf-16' is not ASCII-compatible; convert the file to UTF-8 first"),
    ({"limit": -1}, "limit must be an integer >= 0, got -1"),
    ({"dtype": "int32"}, "dtype must be float16, float32 or float64; got int32"),
    ({"dtype": "bf16"}, "dtype must be float16, float32 or float64; got bf16"),
])
def test_bad_options_are_errors(tmp_path, options, message):
    (tmp_path / "v.txt").write_text("a 1 2\n")
    with pytest.raises(InvalidArgumentError) as e:
        load_vectors(tmp_path / "v.txt", **options)
    assert str(e.value) == message
