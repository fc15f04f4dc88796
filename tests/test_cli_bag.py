"""``embedtool bag``: every input kind pools to one vector per row, equal to the NumPy reference."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import naive
from embedtool.pipeline import embed_path
from embedtool_cli.app import app

runner = CliRunner()
EMBEDTOOL = str(Path(sys.executable).with_name("embedtool"))
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat"]


@pytest.fixture
def weight(tmp_path):
    w = np.random.default_rng(11).standard_normal((30, 4)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    return w


def pooled(path) -> np.ndarray:
    table = pq.read_table(path) if str(path).endswith(".parquet") else pa.ipc.open_file(str(path)).read_all()
    column = table.column("embedding").combine_chunks()
    assert column.type == pa.list_(pa.float32(), 4)
    return column.flatten().to_numpy().reshape(len(column), 4)


def reference(sequences, weight, mode, padding_idx=None):
    flat = np.array([i for s in sequences for i in s], np.int64)
    offsets = np.cumsum([0] + [len(s) for s in sequences])[:-1]
    return naive.embedding_bag(flat, weight, offsets=offsets, mode=mode, padding_idx=padding_idx)


def run(*args):
    result = runner.invoke(app, ["bag", *map(str, args), "-q"])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_text_ids(tmp_path, weight, mode):
    sequences = [[1, 2, 3], [], [0, 0], [29, 4, 4, 0]]
    (tmp_path / "ids.txt").write_text("".join(" ".join(map(str, s)) + "\n" for s in sequences))
    run(tmp_path / "w.npy", tmp_path / "ids.txt", "-o", tmp_path / "o.arrow", "--mode", mode,
        "--padding-idx", "0")
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), reference(sequences, weight, mode, 0), rtol=1e-6)


def test_npy_rows_are_bags(tmp_path, weight):
    ids = np.random.default_rng(1).integers(0, 30, size=(6, 5)).astype(np.uint8)
    np.save(tmp_path / "ids.npy", ids)
    run(tmp_path / "w.npy", tmp_path / "ids.npy", "-o", tmp_path / "o.parquet", "--mode", "max")
    np.testing.assert_array_equal(pooled(tmp_path / "o.parquet"), naive.embedding_bag(ids, weight, mode="max"))


def test_big_endian_weights(tmp_path, weight):
    sequences = [[1, 2], [3]]
    np.save(tmp_path / "wbe.npy", weight.astype(">f4"))
    (tmp_path / "ids.txt").write_text("1 2\n3\n")
    run(tmp_path / "wbe.npy", tmp_path / "ids.txt", "-o", tmp_path / "o.arrow", "--mode", "mean")
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), reference(sequences, weight, "mean"), rtol=1e-6)


def test_parquet_lists_with_keep_and_max_norm(tmp_path, weight):
    sequences = [[5, 6], [7], [], [8, 9, 10]]
    pq.write_table(pa.table({"doc": ["a", "b", "c", "d"], "ids": sequences}), tmp_path / "in.parquet")
    run(tmp_path / "w.npy", tmp_path / "in.parquet", "-o", tmp_path / "o.arrow", "--column", "ids", "--keep", "doc",
        "--max-norm", "0.5")
    table = pa.ipc.open_file(str(tmp_path / "o.arrow")).read_all()
    assert table.column("doc").to_pylist() == ["a", "b", "c", "d"]
    flat = np.array([i for s in sequences for i in s])
    expected = naive.embedding_bag(flat, weight, offsets=[0, 2, 3, 3], mode="mean", max_norm=0.5)
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), expected, rtol=1e-5)


def test_tokens_with_oov_skip(tmp_path):
    w = np.random.default_rng(3).standard_normal((len(WORDS), 4)).astype(np.float32)
    with open(tmp_path / "glove.txt", "w") as f:
        for word, row in zip(WORDS, w):
            f.write(word + " " + " ".join(repr(float(x)) for x in row) + "\n")
    (tmp_path / "t.txt").write_text("the cat sat\nzebra\non the mat\n")
    args = ["bag", str(tmp_path / "glove.txt"), str(tmp_path / "t.txt"), "-o", str(tmp_path / "o.arrow"), "--oov", "skip"]
    result = runner.invoke(app, args)  # not -q, which silences the OOV report
    assert result.exit_code == 0, result.output
    assert "1 OOV tokens (skip); most frequent: 'zebra' (1)" in result.output
    got = pooled(tmp_path / "o.arrow")
    np.testing.assert_allclose(got[0], w[[1, 2, 3]].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.zeros(4))  # every token skipped: an empty bag
    np.testing.assert_allclose(got[2], w[[4, 1, 5]].mean(axis=0), rtol=1e-6)
    result = runner.invoke(app, ["bag", str(tmp_path / "glove.txt"), str(tmp_path / "t.txt"), "-o",
                                 str(tmp_path / "z.arrow"), "--oov", "zero"])
    assert result.exit_code == 1
    assert result.output == "Error: --oov zero applies to embed; with bag use skip, unk or padding\n"
    assert not (tmp_path / "z.arrow").exists()


def test_stdin_arrow_stream_to_stdout(tmp_path, weight):
    sink = pa.BufferOutputStream()
    table = pa.table({"ids": pa.array([[1, 2], [3]])})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    proc = subprocess.run([EMBEDTOOL, "bag", "w.npy", "-", "-o", "-", "--mode", "sum", "-q"], cwd=tmp_path,
                          input=sink.getvalue().to_pybytes(), capture_output=True, check=True)
    column = pa.ipc.open_stream(proc.stdout).read_all().column("embedding").combine_chunks()
    got = column.flatten().to_numpy().reshape(2, 4)
    np.testing.assert_allclose(got, reference([[1, 2], [3]], weight, "sum"), rtol=1e-6)


def test_raw_token_ids_rows_are_bags(tmp_path, weight):
    tokens = np.random.default_rng(4).integers(0, 30, size=23).astype(np.uint16)
    tokens.tofile(tmp_path / "train.bin")
    result = run(tmp_path / "w.npy", tmp_path / "train.bin", "-o", tmp_path / "o.arrow", "--input-format", "u16",
                 "--seq-len", "5", "--mode", "mean")
    assert "the last 3 tokens do not fill a row of --seq-len 5" in result.output
    expected = naive.embedding_bag(tokens[:20].reshape(4, 5), weight, mode="mean")
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), expected, rtol=1e-6)


def test_directory_of_shards(tmp_path, weight):
    (tmp_path / "in").mkdir()
    shards = {"a.txt": [[1, 2], [3]], "b.parquet": [[4, 5, 6], []]}
    (tmp_path / "in" / "a.txt").write_text("1 2\n3\n")
    pq.write_table(pa.table({"ids": shards["b.parquet"]}), tmp_path / "in" / "b.parquet")
    run(tmp_path / "w.npy", tmp_path / "in", "-o", tmp_path / "out", "--mode", "sum")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.arrow", "b.parquet"]
    for name, out in (("a.txt", "a.arrow"), ("b.parquet", "b.parquet")):
        np.testing.assert_allclose(pooled(tmp_path / "out" / out), reference(shards[name], weight, "sum"), rtol=1e-6)


def test_stdin_text_in_a_real_process(tmp_path, weight):
    proc = subprocess.run([EMBEDTOOL, "bag", "w.npy", "-", "-o", "o.parquet", "--mode", "max", "--padding-idx", "0",
                           "-q"], cwd=tmp_path, input=b"0 4 9\n\n7\n", capture_output=True, check=True)
    assert proc.stdout == b"" and proc.stderr == b""
    expected = reference([[0, 4, 9], [], [7]], weight, "max", padding_idx=0)
    np.testing.assert_array_equal(pooled(tmp_path / "o.parquet"), expected)


def write_table(path, table):
    if str(path).endswith(".parquet"):
        pq.write_table(table, path)
    else:
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table)


SEQUENCES = [[5, 6, 0], [7], [], [8, 9, 10, 29], [3, 3]]
SAMPLE_WEIGHTS = [[0.5, -2.0, 9.0], [3.0], [], [1.0, 0.25, -1.5, 2.0], [1.0, 1.0]]


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
@pytest.mark.parametrize("weights_type", [pa.float32(), pa.float64(), pa.float16(), pa.int32()])
def test_weights_column_scales_each_entry(tmp_path, weight, suffix, weights_type):
    """``--weights-column`` is torch's per_sample_weights: lists aligned with the ids, over batch boundaries."""
    sample_weights = [[int(x) if pa.types.is_integer(weights_type) else x for x in row] for row in SAMPLE_WEIGHTS]
    table = pa.table({"doc": list("abcde"), "ids": SEQUENCES,
                      "tfidf": pa.array(sample_weights, pa.list_(weights_type))})
    write_table(tmp_path / f"in{suffix}", table)
    run(tmp_path / "w.npy", tmp_path / f"in{suffix}", "-o", tmp_path / "o.arrow", "--mode", "sum", "--column", "ids",
        "--weights-column", "tfidf", "--keep", "doc", "--padding-idx", "0", "--max-norm", "1.5", "--batch-rows", "2")
    flat = np.array([i for s in SEQUENCES for i in s])
    psw = np.array([w for row in sample_weights for w in row], np.float64)
    offsets = np.cumsum([0] + [len(s) for s in SEQUENCES])[:-1]
    expected = naive.embedding_bag(flat, weight, offsets, "sum", psw, padding_idx=0, max_norm=1.5)
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), expected, rtol=1e-5, atol=1e-6)
    out = pa.ipc.open_file(str(tmp_path / "o.arrow")).read_all()
    assert out.column("doc").to_pylist() == list("abcde")
    assert out.schema.metadata[b"embedtool.weights_column"] == b'"tfidf"'


def test_weights_column_for_fixed_size_and_flat_ids(tmp_path, weight):
    ids = np.random.default_rng(2).integers(0, 30, size=(4, 3))
    psw = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    table = pa.table({"ids": pa.FixedSizeListArray.from_arrays(ids.reshape(-1), 3),
                      "w": pa.FixedSizeListArray.from_arrays(psw.reshape(-1), 3)})
    write_table(tmp_path / "fixed.arrow", table)
    run(tmp_path / "w.npy", tmp_path / "fixed.arrow", "-o", tmp_path / "o.arrow", "--mode", "sum", "--column", "ids",
        "--weights-column", "w")
    expected = naive.embedding_bag(ids, weight, mode="sum", per_sample_weights=psw)
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), expected, rtol=1e-5, atol=1e-6)
    write_table(tmp_path / "flat.parquet", pa.table({"id": ids[:, 0], "w": psw[:, 0]}))
    run(tmp_path / "w.npy", tmp_path / "flat.parquet", "-o", tmp_path / "o.arrow", "--mode", "sum", "--column", "id",
        "--weights-column", "w")
    np.testing.assert_allclose(pooled(tmp_path / "o.arrow"), weight[ids[:, 0]] * psw[:, :1], rtol=1e-6)


def test_weights_of_skipped_tokens_are_dropped_with_them(tmp_path):
    w = np.random.default_rng(3).standard_normal((len(WORDS), 4)).astype(np.float32)
    with open(tmp_path / "glove.txt", "w") as f:
        for word, row in zip(WORDS, w):
            f.write(word + " " + " ".join(repr(float(x)) for x in row) + "\n")
    tokens = [["the", "zebra", "cat"], ["okapi"], ["mat", "sat"]]
    write_table(tmp_path / "t.parquet", pa.table({"tokens": tokens, "w": [[1.0, 100.0, 2.0], [5.0], [3.0, 4.0]]}))
    run(tmp_path / "glove.txt", tmp_path / "t.parquet", "-o", tmp_path / "o.arrow", "--mode", "sum", "--oov", "skip",
        "--weights-column", "w")
    got = pooled(tmp_path / "o.arrow")
    np.testing.assert_allclose(got[0], w[1] + 2 * w[2], rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.zeros(4))
    np.testing.assert_allclose(got[2], 3 * w[5] + 4 * w[3], rtol=1e-6)


def test_weights_column_from_stdin_stream(tmp_path, weight):
    sink = pa.BufferOutputStream()
    table = pa.table({"ids": pa.array([[1, 2], [3]]), "w": pa.array([[2.0, -1.0], [0.5]])})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    proc = subprocess.run([EMBEDTOOL, "bag", "w.npy", "-", "-o", "-", "--mode", "sum", "--column", "ids",
                           "--weights-column", "w", "-q"], cwd=tmp_path, input=sink.getvalue().to_pybytes(),
                          capture_output=True, check=True)
    column = pa.ipc.open_stream(proc.stdout).read_all().column("embedding").combine_chunks()
    expected = np.stack([2 * weight[1] - weight[2], 0.5 * weight[3]])
    np.testing.assert_allclose(column.flatten().to_numpy().reshape(2, 4), expected, rtol=1e-6)


@pytest.mark.parametrize("weights, args, message", [
    ([[1.0, 2.0], [3.0]], [], "in.parquet: row 1: 1 weights in --weights-column for 2 ids"),
    ([[1.0, 2.0], [3.0, None]], [], "in.parquet: row 1, position 1: the --weights-column value is null"),
    ([[1.0, 2.0], None], [], "in.parquet: row 1: the --weights-column value is null"),
    ([["a", "b"], ["c", "d"]], [], "in.parquet: --weights-column 'w' has type list<element: string>; expected "
                                   "numbers or lists of numbers"),
    ([[1.0, 2.0], [3.0, 4.0]], ["--mode", "mean"], "--weights-column needs bag --mode sum (per-sample weights "
                                                   "scale the rows of a sum, as in torch)"),
    ([[1.0, 2.0], [3.0, 4.0]], ["--weights-column", "x"], "in.parquet: no column 'x' for --weights-column "
                                                          "(columns: ids, w)"),
    ([[1.0, 2.0], [3.0, 4.0]], ["--weights-column", "ids"], "in.parquet: column 'ids' cannot be both the ids and "
                                                            "the --weights-column"),
])
def test_weights_column_errors(tmp_path, weight, weights, args, message):
    write_table(tmp_path / "in.parquet", pa.table({"ids": [[1, 2], [3, 4]], "w": weights}))
    result = runner.invoke(app, ["bag", str(tmp_path / "w.npy"), str(tmp_path / "in.parquet"), "-o",
                                 str(tmp_path / "o.arrow"), "--mode", "sum", "--column", "ids",
                                 "--weights-column", "w", *args])
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "w.npy"]  # no output, no temporary file


def test_weights_column_needs_columns(tmp_path, weight):
    (tmp_path / "ids.txt").write_text("1 2\n")
    result = runner.invoke(app, ["bag", str(tmp_path / "w.npy"), str(tmp_path / "ids.txt"), "-o",
                                 str(tmp_path / "o.arrow"), "--mode", "sum", "--weights-column", "w"])
    assert result.exit_code == 1
    assert result.output == "Error: ids.txt: --weights-column needs an Arrow or Parquet input (this input has no columns)\n"


def test_bad_mode(tmp_path, weight):
    (tmp_path / "ids.txt").write_text("1\n")
    result = runner.invoke(app, ["bag", str(tmp_path / "w.npy"), str(tmp_path / "ids.txt"), "-o",
                                 str(tmp_path / "o.arrow"), "--mode", "median"])
    assert result.exit_code == 1 and result.output == "Error: unknown mode 'median'; choose one of sum, mean, max\n"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 29), max_size=6), max_size=8), st.none() | st.integers(0, 29))
def test_bag_sum_equals_summed_embed(tmp_path_factory, sequences, padding_idx):
    """``bag --mode sum`` equals summing ``embed``'s output per row (padding rows embed to zeros)."""
    tmp = tmp_path_factory.mktemp("prop")
    weight = np.random.default_rng(5).standard_normal((30, 4)).astype(np.float32)
    (tmp / "ids.txt").write_text("".join(" ".join(map(str, s)) + "\n" for s in sequences))
    embed_path(weight_vectors(weight), tmp / "ids.txt", tmp / "e.arrow", padding_idx=padding_idx, progress=False)
    embed_path(weight_vectors(weight), tmp / "ids.txt", tmp / "b.arrow", mode="sum", padding_idx=padding_idx,
               progress=False)
    embedded = pa.ipc.open_file(str(tmp / "e.arrow")).read_all().column("embedding").to_pylist()
    summed = np.array([np.sum(np.array(row, np.float64).reshape(-1, 4), axis=0) for row in embedded]).reshape(-1, 4)
    np.testing.assert_allclose(pooled(tmp / "b.arrow"), summed.astype(np.float32), rtol=1e-6, atol=1e-6)


def weight_vectors(weight):
    from embedtool.vectors import Vectors

    return Vectors(weight)
