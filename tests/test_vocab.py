"""Vocabularies: the compiled token index behind ``Vectors.token_ids``, duplicate tokens, and the ``vocab.txt``
sidecar of a table without tokens."""

import numpy as np
import pyarrow as pa
import pytest

from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.vectors import Vectors, load_vectors, save_vectors
from helpers import table

pytestmark = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


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
