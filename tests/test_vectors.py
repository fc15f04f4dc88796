"""``Vectors``, ``load_vectors`` and ``save_vectors``: round trips between every pair of formats, the store, token
lookups, sidecar vocabularies, safetensors, generic Arrow/Parquet tables and option checks."""

import itertools
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embedtool
from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.formats import WRITABLE
from embedtool.vectors import Vectors, load_vectors, save_vectors

SUFFIX = {"arrow": ".arrow", "parquet": ".parquet", "npy": ".npy", "safetensors": ".safetensors", "glove": ".txt",
          "word2vec": ".vec", "word2vec-binary": ".bin"}
DTYPES = [np.float16, np.float32, np.float64]


pytestmark = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


def table(dtype, spaces=True):
    """Five rows with awkward values (subnormals, negative zero, wide exponents) and awkward tokens; without spaces
    in tokens and within float32's range for word2vec binary."""
    rng = np.random.default_rng(7)
    reach = {np.float16: 4, np.float32: 30, np.float64: 200 if spaces else 30}[dtype]
    values = rng.standard_normal((5, 3)) * 10.0 ** rng.integers(-reach, reach, (5, 3))
    matrix = values.astype(dtype)
    matrix[0, 0] = -0.0
    matrix[0, 1] = np.finfo(dtype).smallest_subnormal
    words = ["a", "b c" if spaces else "bc", "é", "x\u00a0y", "日本"]
    return Vectors(matrix, words)


def same_bits(a, b):
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


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


# --------------------------------------------------------------------------------------------------------------
# The store


def test_store_is_memory_mapped_without_a_copy(tmp_path):
    original = table(np.float32)
    path = save_vectors(original, tmp_path / "v.arrow")
    v = load_vectors(path)
    assert not v.matrix.flags.writeable and not v.matrix.flags.owndata
    data = path.read_bytes()
    offset = data.index(original.matrix.tobytes())
    with open(path, "r+b") as f:  # change the file under the map: the matrix sees it
        f.seek(offset)
        f.write(np.float32(42).tobytes())
    assert v.matrix[0, 0] == 42


def test_store_schema_and_metadata(tmp_path):
    src = tmp_path / "v.txt"
    save_vectors(table(np.float32), src)
    store = save_vectors(load_vectors(src), tmp_path / "v.feather")
    schema = pa.ipc.open_file(pa.memory_map(str(store))).schema
    assert schema.field("token").type == pa.string()
    assert schema.field("vector").type == pa.list_(pa.float32(), 3)
    meta = {k.decode(): json.loads(v) for k, v in schema.metadata.items()}
    assert meta == {"embedtool.source": str(src), "embedtool.source_format": "glove", "embedtool.dtype": "float32",
                    "embedtool.rows": 5, "embedtool.dim": 3}
    loaded = load_vectors(store).metadata
    assert loaded == {"source": str(store), "source_format": "arrow", "dtype": "float32", "rows": 5, "dim": 3,
                      "converted_from": str(src), "converted_from_format": "glove"}


def test_store_without_tokens(tmp_path):
    matrix = np.arange(6, dtype=np.float64).reshape(3, 2)
    path = save_vectors(matrix, tmp_path / "v.arrow")
    v = load_vectors(path)
    assert v.tokens is None and not v.has_vocab
    same_bits(v.matrix, matrix)


def test_empty_table_round_trips(tmp_path):
    for fmt in WRITABLE:
        path = save_vectors(Vectors(np.empty((0, 4), np.float32), []), tmp_path / f"e{SUFFIX[fmt]}")
        if fmt == "glove":  # no header, no rows: nothing tells the dimension
            assert path.read_bytes() == b""
            continue
        v = load_vectors(path)
        assert v.matrix.shape == (0, 4) and len(v) == 0, fmt


# --------------------------------------------------------------------------------------------------------------
# Token lookups


def test_token_ids_are_vectorised_and_minus_one_when_unknown():
    words = [f"w{i}" for i in range(5000)] + ["", "日本", "a b"]
    v = Vectors(np.zeros((len(words), 2), np.float32), words)
    queries = words[::-7] + ["nope", "w5000", "W1"]
    expected = [words.index(q) if q in words else -1 for q in queries]
    ids = v.token_ids(queries)
    assert ids.dtype == np.int64 and ids.tolist() == expected
    assert v.token_ids(pa.array(queries, pa.large_string())).tolist() == expected
    assert v.token_ids(pa.chunked_array([queries[:3], queries[3:]])).tolist() == expected
    assert v.token_ids(pa.array(["x"] + queries).slice(1)).tolist() == expected
    assert v.token_ids(pa.array(["w3", None, "w4"])).tolist() == [3, -1, 4]
    assert v.token_ids([]).tolist() == []


def test_token_ids_tell_apart_tokens_that_share_a_slot_key():
    """Among 600,000 tokens of one length a probe meets some that share the hash's top 16 bits: short ones must
    differ in their first eight bytes, long ones (all the same there) in the rest. Trailing NULs and prefixes
    differ from the token by length alone."""
    words = [f"abcdefgh{i:06d}" for i in range(300_000)] + [f"{i:07d}" for i in range(300_000)]
    words += ["abc", "abc\x00", "abcdefgh", "abcdefgh\x00", "x" * 70_000, "x" * 70_001]  # lengths past 16 bits
    v = Vectors(np.zeros((len(words), 1), np.float32), words)
    unknown = [f"abcdefgh{i:06d}" for i in range(300_000, 600_000)] + [f"{i:07d}" for i in range(300_000, 600_000)]
    unknown += ["abc\x00\x00", "abcdefg", "x" * 70_002, "x" * 69_999 + "y"]
    assert v.token_ids(words[::-1] + unknown).tolist() == list(range(len(words)))[::-1] + [-1] * len(unknown)


def test_token_index_is_built_once():
    v = Vectors(np.zeros((3, 2), np.float32), ["a", "b", "c"])
    v.token_ids(["a"])
    index = v._index
    assert v.token_ids(["c", "b"]).tolist() == [2, 1] and v._index is index


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
# .npy and the sidecar vocab


def test_npy_writes_and_finds_its_vocab(tmp_path):
    save_vectors(table(np.float32), tmp_path / "glove.6B.npy")
    assert (tmp_path / "glove.6B.vocab.txt").read_text() == "a\nb c\né\nx\u00a0y\n日本\n"
    v = load_vectors(tmp_path / "glove.6B.npy")
    assert isinstance(v.matrix, np.memmap)
    assert v.tokens.to_pylist() == table(np.float32).tokens.to_pylist()


def test_vocab_txt_beside_the_table_and_explicit_vocab(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((3, 2), np.float32))
    (tmp_path / "vocab.txt").write_bytes(b"\xef\xbb\xbf[PAD]\r\nhello\r\n##lo\r\n")
    assert load_vectors(tmp_path / "w.npy").tokens.to_pylist() == ["[PAD]", "hello", "##lo"]
    (tmp_path / "other.txt").write_text("x\ny\nz")
    assert load_vectors(tmp_path / "w.npy", vocab=tmp_path / "other.txt").tokens.to_pylist() == ["x", "y", "z"]


def test_vocab_size_must_match(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((4, 2), np.float32))
    (tmp_path / "w.vocab.txt").write_text("a\nb\nc\n")
    with pytest.raises(InputFormatError) as e:
        load_vectors(tmp_path / "w.npy")
    assert str(e.value) == f"{tmp_path}/w.vocab.txt: the vocab file has 3 tokens but the table has 4 rows"


def test_vocab_errors(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((2, 2), np.float32))
    (tmp_path / "w.vocab.txt").write_bytes(b"ok\ncaf\xe9\n")
    with pytest.raises(InputFormatError) as e:
        load_vectors(tmp_path / "w.npy")
    assert str(e.value) == (f"{tmp_path}/w.vocab.txt:2: token b'caf\\xe9' is not valid utf-8 "
                            "(use --errors replace or --errors ignore, or --encoding)")
    assert load_vectors(tmp_path / "w.npy", errors="replace").tokens.to_pylist() == ["ok", "caf\ufffd"]
    save_vectors(table(np.float32), tmp_path / "t.arrow")
    with pytest.raises(InvalidArgumentError, match="has its own tokens"):
        load_vectors(tmp_path / "t.arrow", vocab=tmp_path / "w.vocab.txt")
    with pytest.raises(InputFormatError, match="no such vocab file"):
        load_vectors(tmp_path / "w.npy", vocab=tmp_path / "missing.txt")


def test_duplicates_in_a_vocab_are_handled_like_text(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    (tmp_path / "w.vocab.txt").write_text("a\nb\na\n")
    v = load_vectors(tmp_path / "w.npy", duplicates="last")
    assert v.tokens.to_pylist() == ["b", "a"]
    np.testing.assert_array_equal(v.matrix, [[2, 3], [4, 5]])
    with pytest.raises(InputFormatError) as e:
        load_vectors(tmp_path / "w.npy", duplicates="error")
    assert str(e.value) == f"{tmp_path}/w.npy: row 2: duplicate token 'a' (first at row 0)"


def test_limit_and_dtype_on_mapped_formats(tmp_path):
    save_vectors(table(np.float32), tmp_path / "w.npy")
    v = load_vectors(tmp_path / "w.npy", limit=2, dtype="float64")
    assert v.matrix.dtype == np.float64 and v.tokens.to_pylist() == ["a", "b c"]
    same_bits(v.matrix, table(np.float32).matrix[:2].astype(np.float64))


# --------------------------------------------------------------------------------------------------------------
# safetensors


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_safetensors_written_by_the_package(tmp_path, dtype):
    from safetensors.numpy import save_file

    matrix = table(dtype).matrix
    save_file({"emb": matrix, "bias": np.ones(3, dtype)}, tmp_path / "m.safetensors")
    v = load_vectors(tmp_path / "m.safetensors")
    assert isinstance(v.matrix, np.memmap) and v.metadata["tensor"] == "emb"
    same_bits(v.matrix, matrix)


def test_safetensors_bfloat16_is_widened_to_float32(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    weight = torch.randn(6, 4).to(torch.bfloat16)
    save_file({"w": weight}, tmp_path / "m.safetensors")
    v = load_vectors(tmp_path / "m.safetensors")
    assert v.matrix.dtype == np.float32
    np.testing.assert_array_equal(v.matrix, weight.float().numpy())


def test_safetensors_written_by_embedtool_read_by_the_package(tmp_path):
    from safetensors import safe_open

    save_vectors(table(np.float16), tmp_path / "m.safetensors", tensor="embeddings.weight")
    with safe_open(str(tmp_path / "m.safetensors"), "np") as f:
        same_bits(f.get_tensor("embeddings.weight"), table(np.float16).matrix)
        assert f.metadata()["rows"] == "5"


def test_safetensors_tensor_choice(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    save_file({"b": np.ones((2, 2), np.float32), "a": np.zeros((3, 2), np.float32), "c": np.ones(2, np.int32)}, path)
    with pytest.raises(InvalidArgumentError) as e:
        load_vectors(path)
    assert str(e.value) == f"{path} holds 2 2-D tensors; pick one with --tensor: a, b"
    assert load_vectors(path, tensor="a").matrix.shape == (3, 2)
    with pytest.raises(InvalidArgumentError, match=r"has no tensor 'z'; it has: a, b, c"):
        load_vectors(path, tensor="z")
    with pytest.raises(InputFormatError, match=r"tensor 'c' is I32; expected F16, BF16, F32 or F64"):
        load_vectors(path, tensor="c")


def test_truncated_safetensors_is_an_error(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones((10, 4), np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(InputFormatError, match=r"tensor 'w' has data_offsets \[0, 160\], not \[begin, end\] within the 152 bytes of data \(truncated file\?\)"):
        load_vectors(path)
    path.write_bytes(b"\x05\x00")
    with pytest.raises(InputFormatError, match="not a safetensors file"):
        load_vectors(path, format="safetensors")


# --------------------------------------------------------------------------------------------------------------
# Arrow and Parquet tables written by others


def test_list_vector_column(tmp_path):
    t = pa.table({"word": ["a", "b"], "embedding": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32()))})
    pq.write_table(t, tmp_path / "t.parquet")
    v = load_vectors(tmp_path / "t.parquet")
    assert v.tokens.to_pylist() == ["a", "b"] and v.matrix.dtype == np.float32
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4]])


def test_one_column_per_dimension(tmp_path):
    t = pa.table({"token": ["a", "b"], "d0": [1.0, 3.0], "d1": [2.0, 4.0], "d2": [0.5, 0.25]})
    with pa.ipc.new_file(tmp_path / "t.arrow", t.schema) as w:  # two batches: read with a copy
        w.write_table(t, max_chunksize=1)
    v = load_vectors(tmp_path / "t.arrow")
    np.testing.assert_array_equal(v.matrix, [[1, 2, 0.5], [3, 4, 0.25]])
    assert v.matrix.dtype == np.float64


def test_arrow_stream_file(tmp_path):
    t = pa.table({"token": ["a"], "vector": pa.array([[1.0, 2.0]], pa.list_(pa.float16(), 2))})
    with pa.ipc.new_stream(tmp_path / "t.arrows", t.schema) as w:
        w.write_table(t)
    v = load_vectors(tmp_path / "t.arrows")
    assert v.matrix.dtype == np.float16 and v.tokens.to_pylist() == ["a"]


@pytest.mark.parametrize("columns,message", [
    ({"token": ["a", "b"], "vector": pa.array([[1.0, 2.0], [3.0]])}, "row 1 has 1 values, row 0 has 2"),
    ({"token": ["a", "b"], "vector": pa.array([[1.0], None])}, "row 1 has a null vector"),
    ({"token": ["a", None], "vector": pa.array([[1.0], [2.0]])}, "row 1 has a null token"),
    ({"s": ["a"], "t": ["b"], "vector": pa.array([[1.0]])}, "several string columns (s, t); name one 'token'"),
    ({"token": ["a"]}, "no vector column (a list of floats, or one numeric column per dimension)"),
    ({"token": ["a"], "vector": pa.array([[1]], pa.list_(pa.int32()))},
     "column 'vector' holds int32, expected float16, float32 or float64"),
    ({"token": ["a"], "d0": pa.array([None], pa.float32())}, "column 'd0' holds null values"),
])
def test_unusable_tables_are_errors_naming_the_problem(tmp_path, columns, message):
    pq.write_table(pa.table(columns), tmp_path / "t.parquet")
    with pytest.raises(InputFormatError) as e:
        load_vectors(tmp_path / "t.parquet")
    assert str(e.value) == f"{tmp_path}/t.parquet: {message}"


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
