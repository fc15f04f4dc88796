"""The store (formats/arrow.py): memory-mapped reading, schema and metadata, damaged token offsets and metadata;
and Arrow and Parquet tables of vectors written by others."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedtool.errors import InputFormatError
from embedtool.vectors import Vectors, load_vectors, save_vectors
from helpers import TOKENS, WEIGHT, assert_clean_failure, run, same_bits, subprocess_run, table

on_both_paths = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


@on_both_paths
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


@on_both_paths
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


@on_both_paths
def test_store_without_tokens(tmp_path):
    matrix = np.arange(6, dtype=np.float64).reshape(3, 2)
    path = save_vectors(matrix, tmp_path / "v.arrow")
    v = load_vectors(path)
    assert v.tokens is None and not v.has_vocab
    same_bits(v.matrix, matrix)


@on_both_paths
def test_list_vector_column(tmp_path):
    t = pa.table({"word": ["a", "b"], "embedding": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32()))})
    pq.write_table(t, tmp_path / "t.parquet")
    v = load_vectors(tmp_path / "t.parquet")
    assert v.tokens.to_pylist() == ["a", "b"] and v.matrix.dtype == np.float32
    np.testing.assert_array_equal(v.matrix, [[1, 2], [3, 4]])


@on_both_paths
def test_one_column_per_dimension(tmp_path):
    t = pa.table({"token": ["a", "b"], "d0": [1.0, 3.0], "d1": [2.0, 4.0], "d2": [0.5, 0.25]})
    with pa.ipc.new_file(tmp_path / "t.arrow", t.schema) as w:  # two batches: read with a copy
        w.write_table(t, max_chunksize=1)
    v = load_vectors(tmp_path / "t.arrow")
    np.testing.assert_array_equal(v.matrix, [[1, 2, 0.5], [3, 4, 0.25]])
    assert v.matrix.dtype == np.float64


@on_both_paths
def test_arrow_stream_file(tmp_path):
    t = pa.table({"token": ["a"], "vector": pa.array([[1.0, 2.0]], pa.list_(pa.float16(), 2))})
    with pa.ipc.new_stream(tmp_path / "t.arrows", t.schema) as w:
        w.write_table(t)
    v = load_vectors(tmp_path / "t.arrows")
    assert v.matrix.dtype == np.float16 and v.tokens.to_pylist() == ["a"]


@on_both_paths
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


def store_with_offsets(path: Path, offsets: list[int]) -> Path:
    """A store of WEIGHT and TOKENS whose token offsets are replaced by ``offsets`` (7 int32)."""
    save_vectors(Vectors(WEIGHT, TOKENS), path)
    raw = path.read_bytes()
    good = np.array([0, 1, 3, 6, 10, 15, 21], np.int32).tobytes()
    assert raw.count(good) == 1
    path.write_bytes(raw.replace(good, np.array(offsets, np.int32).tobytes()))
    return path


@pytest.mark.parametrize("offsets", [[-64, 1, 3, 6, 10, 15, 21], [0, 1, 3, 6, 10, 15, 1 << 30],
                                     [0, 1, 3, 60000, 10, 15, 21]])
@pytest.mark.parametrize("command", [["info"], ["lookup", "{w}", "a"], ["convert", "{w}", "{out}"],
                                     ["embed", "{w}", "{ids}", "-o", "{out}"]])
def test_store_with_bad_token_offsets_fails_cleanly_in_a_process(tmp_path, offsets, command):
    weights = store_with_offsets(tmp_path / "w.arrow", offsets)
    (tmp_path / "ids.txt").write_text("a bb\n")
    names = {"w": weights, "out": tmp_path / "out.arrow", "ids": tmp_path / "ids.txt"}
    argv = [command[0], weights] if command == ["info"] else [arg.format(**names) for arg in command]
    result = subprocess_run(*argv)
    assert_clean_failure(result)
    assert "w.arrow: not a valid Arrow IPC file" in result.stderr
    assert not (tmp_path / "out.arrow").exists()


META_KEYS = ("embedtool.source", "embedtool.source_format", "embedtool.dtype", "embedtool.rows", "embedtool.dim")


@pytest.mark.parametrize("metadata", [{"embedtool.source": '"x.txt"'},  # no source_format
                                      {k: b"{not json" for k in META_KEYS}], ids=["missing-keys", "not-json"])
def test_store_with_partial_or_bad_metadata_reads_as_a_plain_arrow_file(tmp_path, metadata):
    table = pa.table({"token": TOKENS, "vector": pa.FixedSizeListArray.from_arrays(pa.array(WEIGHT.reshape(-1)), 4)})
    with pa.ipc.new_file(str(tmp_path / "w.arrow"), table.schema.with_metadata(metadata)) as writer:
        writer.write_table(table.replace_schema_metadata(metadata))
    result = run("lookup", tmp_path / "w.arrow", "ccc")
    assert result.exit_code == 0, result.output
    assert [float(x) for x in result.stdout.split("\t")[2].split()] == pytest.approx(WEIGHT[2].tolist())
