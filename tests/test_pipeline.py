"""The batch pipeline: every input kind and output kind, OOV policies, errors, streaming and memory bounds."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import naive
from embedtool.pipeline import embed_path, embed_table
from embedtool.vectors import Vectors
from embedtool_cli.app import app

runner = CliRunner()
EMBEDTOOL = str(Path(sys.executable).with_name("embedtool"))
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat", "Dog", "1", "2", "a b"]


pytestmark = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


@pytest.fixture
def weight(tmp_path):
    w = np.random.default_rng(7).standard_normal((20, 3)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    return w


@pytest.fixture
def vocab(tmp_path):
    """A table with a vocabulary, as a GloVe text file (read by the weights loader) and as ``Vectors``."""
    w = np.random.default_rng(8).standard_normal((len(WORDS), 3)).astype(np.float32)
    with open(tmp_path / "glove.txt", "w") as f:
        for word, row in zip(WORDS, w):
            f.write(word + " " + " ".join(repr(float(x)) for x in row) + "\n")
    return w


def read(path) -> pa.Table:
    path = str(path)
    if path.endswith(".parquet"):
        return pq.read_table(path)
    with pa.memory_map(path) as source:
        if path.endswith(".arrows"):
            return pa.ipc.open_stream(source).read_all()
        return pa.ipc.open_file(source).read_all()


def ragged(table) -> list:
    """The ``embedding`` column of sequences as a list of (len, D) float arrays."""
    dim = table.schema.field("embedding").type.value_type.list_size
    return [np.array(row, np.float32).reshape(len(row), dim) for row in table.column("embedding").to_pylist()]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_failed(result, message, *absent):
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: " + message), result.output
    assert "Traceback" not in result.output
    for path in absent:
        assert not Path(path).exists()


def no_temp_files(directory):
    return [p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp")] == []


# ---- text inputs


def test_text_ids_are_ragged_rows(tmp_path, weight):
    (tmp_path / "ids.txt").write_bytes(b"1 2 3\n\n4\t5 \r\n  19  \n7")  # blank line, tab, CRLF, no final newline
    for suffix in (".arrow", ".arrows", ".parquet"):
        out = tmp_path / f"o{suffix}"
        assert invoke("embed", tmp_path / "w.npy", tmp_path / "ids.txt", "-o", out, "-q").exit_code == 0
        table = read(out)
        assert table.schema.field("embedding").type == pa.list_(pa.list_(pa.float32(), 3))
        rows = ragged(table)
        expected = [[1, 2, 3], [], [4, 5], [19], [7]]
        assert [len(r) for r in rows] == [len(e) for e in expected]
        for row, ids in zip(rows, expected):
            np.testing.assert_array_equal(row, weight[ids].reshape(len(ids), 3))


def test_text_ids_errors_name_line_and_column(tmp_path, weight):
    (tmp_path / "bad.txt").write_text("1 2\n3 4 x7 5\n")
    assert_failed(invoke("embed", tmp_path / "w.npy", tmp_path / "bad.txt", "-o", tmp_path / "o.arrow"),
                  "bad.txt: 'x7' at line 2, column 3 is not an integer id", tmp_path / "o.arrow")
    (tmp_path / "oob.txt").write_text("1 2\n\n3 4 5 20\n")
    assert_failed(invoke("embed", tmp_path / "w.npy", tmp_path / "oob.txt", "-o", tmp_path / "o.arrow"),
                  "oob.txt: index 20 at line 3, column 4 is out of range (the table has 20 rows", tmp_path / "o.arrow")
    (tmp_path / "neg.txt").write_text("1 -2\n")
    assert_failed(invoke("embed", tmp_path / "w.npy", tmp_path / "neg.txt", "-o", tmp_path / "o.arrow"),
                  "neg.txt: index -2 at line 1, column 2 is out of range")
    assert no_temp_files(tmp_path)


def test_invalid_utf8_in_a_token_file_names_the_line(tmp_path, vocab):
    (tmp_path / "t.txt").write_bytes(b"the cat\nthe caf\xe9 sat\n")
    assert_failed(invoke("embed", tmp_path / "glove.txt", tmp_path / "t.txt", "-o", tmp_path / "o.arrow"),
                  "t.txt: line 2: invalid UTF-8 (invalid continuation byte)", tmp_path / "o.arrow")


def test_error_in_a_late_batch_leaves_no_output(tmp_path, weight):
    lines = ["1 2 3"] * 5000 + ["1 99"]
    (tmp_path / "ids.txt").write_text("\n".join(lines) + "\n")
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "ids.txt", "-o", tmp_path / "o.parquet", "--batch-rows", "100")
    assert_failed(result, "ids.txt: index 99 at line 5001, column 2", tmp_path / "o.parquet")
    assert no_temp_files(tmp_path)


def test_empty_text_file_gives_zero_rows(tmp_path, weight):
    (tmp_path / "empty.txt").write_bytes(b"")
    assert invoke("embed", tmp_path / "w.npy", tmp_path / "empty.txt", "-o", tmp_path / "o.arrow", "-q").exit_code == 0
    assert read(tmp_path / "o.arrow").num_rows == 0


def test_token_file_policies(tmp_path, vocab):
    (tmp_path / "t.txt").write_text("the cat sat\n\ndog on the MAT zebra\n")
    glove = tmp_path / "glove.txt"
    out = tmp_path / "o.arrow"
    ids = {w: i for i, w in enumerate(WORDS)}

    # default policy: unk, since the vocabulary has <unk>; OOV report on stderr (not under -q)
    result = invoke("embed", glove, tmp_path / "t.txt", "-o", out)
    assert result.exit_code == 0, result.output
    assert "3 OOV tokens (unk); most frequent: 'dog' (1), 'MAT' (1), 'zebra' (1)" in result.output
    rows = ragged(read(out))
    np.testing.assert_array_equal(rows[0], vocab[[1, 2, 3]])
    assert rows[1].shape == (0, 3)
    np.testing.assert_array_equal(rows[2], vocab[[0, 4, 1, 0, 0]])
    assert json.loads(read(out).schema.metadata[b"embedtool.oov_policy"]) == "unk"

    result = invoke("embed", glove, tmp_path / "t.txt", "-o", out, "-q", "--oov", "skip", "--lowercase-fallback")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(ragged(read(out))[2], vocab[[ids["on"], ids["the"], ids["mat"]]])

    result = invoke("embed", glove, tmp_path / "t.txt", "-o", out, "-q", "--oov", "zero")
    np.testing.assert_array_equal(ragged(read(out))[2], np.vstack([np.zeros((1, 3)), vocab[[4, 1]], np.zeros((2, 3))]))

    result = invoke("embed", glove, tmp_path / "t.txt", "-o", out, "-q", "--oov", "padding", "--padding-idx", "2")
    np.testing.assert_array_equal(ragged(read(out))[2], np.vstack([np.zeros((1, 3)), vocab[[4, 1]], np.zeros((2, 3))]))

    out.unlink()
    assert_failed(invoke("embed", glove, tmp_path / "t.txt", "-o", out, "--oov", "error"),
                  "t.txt: token 'dog' at line 3, column 1 is not in the vocabulary", out)
    assert_failed(invoke("embed", glove, tmp_path / "t.txt", "-o", out, "--oov", "padding"),
                  "--oov padding needs --padding-idx", out)


def test_numerals_in_a_vocabulary_and_input_format(tmp_path, vocab):
    (tmp_path / "t.txt").write_text("1 2\n")
    glove = tmp_path / "glove.txt"
    out = tmp_path / "o.arrow"
    assert invoke("embed", glove, tmp_path / "t.txt", "-o", out, "-q").exit_code == 0  # tokens "1", "2"
    np.testing.assert_array_equal(ragged(read(out))[0], vocab[[7, 8]])
    assert invoke("embed", glove, tmp_path / "t.txt", "-o", out, "-q", "--input-format", "ids").exit_code == 0
    np.testing.assert_array_equal(ragged(read(out))[0], vocab[[1, 2]])


def test_tokenizers(tmp_path, vocab):
    vectors = Vectors(vocab, tokens=pa.array(WORDS, pa.string()))
    (tmp_path / "t.txt").write_text("the  cat\ta b\n")
    out = tmp_path / "o.arrow"
    embed_path(vectors, tmp_path / "t.txt", out, tokenizer="whitespace", oov="skip", progress=False)
    np.testing.assert_array_equal(ragged(read(out))[0], vocab[[1, 2]])  # "a" and "b" are not words
    (tmp_path / "c.txt").write_text("12\n")
    embed_path(vectors, tmp_path / "c.txt", out, tokenizer="chars", progress=False)
    np.testing.assert_array_equal(ragged(read(out))[0], vocab[[7, 8]])


# ---- Arrow and Parquet inputs


def test_arrow_columns_of_every_kind(tmp_path, weight, vocab):
    table = pa.table({
        "doc": ["a", "b", "c"],
        "id": pa.array([3, 0, 19], pa.uint16()),
        "ids": pa.array([[1, 2], [], [5, 6, 7]], pa.list_(pa.int32())),
        "fixed": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.int64(), 2)),
        "float_id": pa.array([1.0, 2.0, 3.0]),
    })
    pq.write_table(table, tmp_path / "in.parquet")
    base = ["embed", tmp_path / "w.npy", tmp_path / "in.parquet", "-q", "--keep", "doc"]

    assert invoke(*base, "-o", tmp_path / "a.arrow", "--column", "id").exit_code == 0
    out = read(tmp_path / "a.arrow")
    assert out.column_names == ["doc", "embedding"] and out.column("doc").to_pylist() == ["a", "b", "c"]
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    np.testing.assert_array_equal(np.array(out.column("embedding").to_pylist()), weight[[3, 0, 19]])

    assert invoke(*base, "-o", tmp_path / "b.arrow", "--column", "ids").exit_code == 0
    rows = ragged(read(tmp_path / "b.arrow"))
    for row, ids in zip(rows, [[1, 2], [], [5, 6, 7]]):
        np.testing.assert_array_equal(row, weight[ids].reshape(-1, 3))

    assert invoke(*base, "-o", tmp_path / "c.arrow", "--column", "fixed").exit_code == 0
    tensor = read(tmp_path / "c.arrow").column("embedding").combine_chunks()
    assert tensor.type == pa.fixed_shape_tensor(pa.float32(), [2, 3])
    np.testing.assert_array_equal(tensor.to_numpy_ndarray(), weight[[[1, 2], [3, 4], [5, 6]]])

    assert invoke(*base, "-o", tmp_path / "d.arrow", "--column", "float_id").exit_code == 0

    result = invoke(*base, "-o", tmp_path / "e.arrow")
    assert_failed(result, "in.parquet: say which column holds the ids or tokens with --column", tmp_path / "e.arrow")
    assert_failed(invoke(*base, "-o", tmp_path / "e.arrow", "--column", "nope"), "in.parquet: no column 'nope'")


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".arrows"])
def test_keep_mistakes_are_one_line_errors(tmp_path, weight, suffix):
    table = pa.table({"doc": ["a", "b"], "ids": [[1, 2], [3]], "embedding": [0.5, 1.5]})
    if suffix == ".parquet":
        pq.write_table(table, tmp_path / "in.parquet")
    else:
        with (pa.ipc.new_stream if suffix == ".arrows" else pa.ipc.new_file)(str(tmp_path / f"in{suffix}"),
                                                                             table.schema) as writer:
            writer.write_table(table)
    base = ["embed", tmp_path / "w.npy", tmp_path / f"in{suffix}", "-o", tmp_path / "o.arrow", "--column", "ids"]
    assert_failed(invoke(*base, "--keep", "nope"), f"in{suffix}: no column 'nope' to --keep (columns: doc, ids, "
                  "embedding)", tmp_path / "o.arrow")
    assert_failed(invoke(*base, "--keep", "doc", "--keep", "doc"), f"in{suffix}: --keep doc is given twice",
                  tmp_path / "o.arrow")
    assert_failed(invoke(*base, "--keep", "embedding"), f"in{suffix}: --keep embedding would clash with the output "
                  "column 'embedding'", tmp_path / "o.arrow")
    assert invoke(*base, "--keep", "ids", "--keep", "doc", "-q").exit_code == 0  # the ids column itself may be kept
    out = read(tmp_path / "o.arrow")
    assert out.column_names == ["ids", "doc", "embedding"] and out.column("ids").to_pylist() == [[1, 2], [3]]


@pytest.mark.parametrize("input, args, message", [
    ("ids.txt", ["--column", "ids"], "ids.txt: --column needs an Arrow or Parquet input (this input has no columns)"),
    ("ids.npy", ["--column", "ids"], "ids.npy: --column needs an Arrow or Parquet input (this input has no columns)"),
    ("ids.npy", ["--seq-len", "4"], "--seq-len applies to raw token-id input (--input-format u16, u32, i32 or i64)"),
    ("ids.txt", ["--tokenizer", "chars"], "ids.txt: --tokenizer applies to tokens; this input is read as ids"),
    ("in.parquet", ["--tokenizer", "whitespace"], "in.parquet: --tokenizer applies to text input (an Arrow "
                                                  "column's lists are its tokens)"),
    ("ids.txt", ["--oov", "skip"], "w.npy: --oov applies to tokens, and these weights have no vocabulary (ids only)"),
    ("ids.txt", ["--unk-token", "X"], "w.npy: --unk-token applies to tokens, and these weights have no vocabulary"),
    ("ids.txt", ["--lowercase-fallback"], "w.npy: --lowercase-fallback applies to tokens, and these weights have no "
                                          "vocabulary"),
])
def test_options_that_do_not_apply_are_refused(tmp_path, weight, input, args, message, monkeypatch):
    """An option the input cannot use stops the run, rather than being silently ignored."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ids.txt").write_text("1 2\n")
    np.save(tmp_path / "ids.npy", np.array([1, 2]))
    pq.write_table(pa.table({"ids": [[1, 2]]}), tmp_path / "in.parquet")
    result = invoke("embed", "w.npy", input, "-o", "o.arrow", *args)
    assert_failed(result, message, tmp_path / "o.arrow")
    assert result.output.count("\n") == 1


def test_token_columns(tmp_path, vocab):
    table = pa.table({"word": ["cat", "the", "zebra"], "words": [["the", "cat"], [], ["zebra", "sat"]], "n": [1, 2, 3]})
    feather.write_feather(table, tmp_path / "in.arrow", compression="uncompressed")
    out = tmp_path / "o.parquet"
    result = invoke("embed", tmp_path / "glove.txt", tmp_path / "in.arrow", "-o", out, "-q", "--column", "words",
                    "--oov", "skip", "--keep", "n")
    assert result.exit_code == 0, result.output
    got = read(out)
    assert got.column("n").to_pylist() == [1, 2, 3]
    rows = ragged(got)
    np.testing.assert_array_equal(rows[0], vocab[[1, 2]])
    np.testing.assert_array_equal(rows[2], vocab[[3]])
    assert json.loads(pq.read_metadata(out).metadata[b"embedtool.oov_tokens"]) == 1
    result = invoke("embed", tmp_path / "glove.txt", tmp_path / "in.arrow", "-o", out, "--column", "word",
                    "--oov", "error")
    assert_failed(result, "in.arrow: token 'zebra' at row 2 is not in the vocabulary")


@pytest.mark.parametrize("column, message", [
    (pa.array([1, None, 2]), "in.parquet: row 1 is null"),
    (pa.array([[1], [2, None]]), "in.parquet: row 1, position 1 is null"),
    (pa.array([[1, 2], [3, None]], pa.list_(pa.int64(), 2)), "in.parquet: row 1, position 1 is null"),
    (pa.array([1.0, 2.5]), "in.parquet: index 2.5 at row 1 is not an integer"),
    (pa.array([[1, 2], [3, 40]]), "in.parquet: index 40 at row 1, position 1 is out of range"),
    (pa.array([True, False]), "in.parquet: column 'x' has type bool; expected integers, strings, or lists of them"),
])
def test_bad_columns(tmp_path, weight, column, message):
    pq.write_table(pa.table({"x": column}), tmp_path / "in.parquet")
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "in.parquet", "-o", tmp_path / "o.arrow", "--column", "x")
    assert_failed(result, message, tmp_path / "o.arrow")


def test_truncated_arrow_stream_and_not_arrow(tmp_path, weight):
    table = pa.table({"ids": [[1, 2]] * 50_000})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1000):
            writer.write_batch(batch)
    data = sink.getvalue().to_pybytes()
    (tmp_path / "cut.arrows").write_bytes(data[: len(data) // 2])
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "cut.arrows", "-o", tmp_path / "o.arrow")
    assert_failed(result, "cut.arrows: cannot read record batch 24 (from row 24000): ", tmp_path / "o.arrow")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "junk.parquet", "-o", tmp_path / "o.arrow")
    assert_failed(result, "junk.parquet: not a readable parquet file", tmp_path / "o.arrow")
    assert no_temp_files(tmp_path)


def test_directory_of_shards(tmp_path, weight):
    shards = tmp_path / "shards"
    shards.mkdir()
    rng = np.random.default_rng(2)
    lists = {}
    for name in ("a", "b", "c"):
        lists[name] = [list(rng.integers(0, 20, size=rng.integers(0, 5))) for _ in range(7)]
        pq.write_table(pa.table({"ids": lists[name]}), shards / f"{name}.parquet")
    result = invoke("embed", tmp_path / "w.npy", shards, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.parquet", "b.parquet", "c.parquet"]
    for name in ("a", "b", "c"):
        single = tmp_path / f"{name}.parquet"
        assert invoke("embed", tmp_path / "w.npy", shards / f"{name}.parquet", "-o", single, "-q").exit_code == 0
        assert read(tmp_path / "out" / f"{name}.parquet").equals(read(single))
    # a failing shard: earlier shards are complete, no half-written shard
    pq.write_table(pa.table({"ids": [[1], [99]]}), shards / "d.parquet")
    (tmp_path / "out" / "d.parquet").unlink(missing_ok=True)
    result = invoke("embed", tmp_path / "w.npy", shards, "-o", tmp_path / "out2")
    assert_failed(result, "d.parquet: index 99 at row 1, position 0 is out of range")
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["a.parquet", "b.parquet", "c.parquet"]


def test_raw_token_file(tmp_path, weight):
    tokens = np.random.default_rng(4).integers(0, 20, size=103).astype(np.uint16)
    tokens.tofile(tmp_path / "train.bin")
    out = tmp_path / "o.arrow"
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "train.bin", "-o", out, "--input-format", "u16",
                    "--seq-len", "10", "-q")
    assert result.exit_code == 0, result.output
    assert "Note: train.bin: the last 3 tokens do not fill a row of --seq-len 10 and were left out" in result.output
    tensor = read(out).column("embedding").combine_chunks()
    np.testing.assert_array_equal(tensor.to_numpy_ndarray(), weight[tokens[:100].reshape(10, 10)])
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "train.bin", "-o", out, "-q")
    assert_failed(result, "train.bin: a raw token-id file needs --input-format u16, u32, i32 or i64")


def test_output_dtype_and_readers(tmp_path, weight):
    pq.write_table(pa.table({"ids": [[1, 2], [3]], "label": ["x", "y"]}), tmp_path / "in.parquet")
    out = tmp_path / "o.parquet"
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "in.parquet", "-o", out, "--keep", "label",
                    "--output-dtype", "float16", "-q")
    assert result.exit_code == 0, result.output
    assert read(out).schema.field("embedding").type == pa.list_(pa.list_(pa.float16(), 3))
    expected = [weight[[1, 2]].astype(np.float16), weight[[3]].astype(np.float16)]

    import duckdb
    import pandas as pd
    import polars as pl

    frame = pd.read_parquet(out)
    assert list(frame["label"]) == ["x", "y"]
    for got, want in zip(frame["embedding"], expected):
        np.testing.assert_array_equal(np.stack(got).astype(np.float16), want)
    polars_rows = pl.read_parquet(out)["embedding"].to_list()
    for got, want in zip(polars_rows, expected):
        np.testing.assert_array_equal(np.array(got, np.float16), want)
    duck = duckdb.sql(f"select label, embedding from read_parquet('{out}') order by label").fetchall()
    assert [row[0] for row in duck] == ["x", "y"]
    for (_, got), want in zip(duck, expected):
        np.testing.assert_array_equal(np.array(got, np.float16), want)


def test_embed_table_is_the_per_batch_path(weight):
    table = pa.table({"ids": [[1, 2], [], [19]], "doc": [1, 2, 3]})
    from embedtool.vectors import Vectors as V

    out = embed_table(table, V(weight), column="ids", keep=["doc"])
    assert out.column_names == ["doc", "embedding"]
    rows = ragged(out)
    np.testing.assert_array_equal(rows[0], weight[[1, 2]])
    pooled = embed_table(table, V(weight), column="ids", mode="mean")
    np.testing.assert_allclose(np.array(pooled.column("embedding").to_pylist()),
                               naive.embedding_bag(np.array([1, 2, 19]), weight, offsets=[0, 2, 2], mode="mean"),
                               rtol=1e-6)
    weighted = embed_table(table.append_column("w", pa.array([[2.0, -1.0], [], [0.5]])), V(weight), column="ids",
                           mode="sum", weights_column="w")
    np.testing.assert_allclose(np.array(weighted.column("embedding").to_pylist()),
                               np.stack([2 * weight[1] - weight[2], np.zeros(3), 0.5 * weight[19]]), rtol=1e-6)


# ---- shell pipelines, stdin and stdout, in real processes


def test_shell_pipeline_text_in_arrow_out(tmp_path, weight):
    (tmp_path / "ids.txt").write_text("1 2\n3\n")
    script = f"cat ids.txt | {EMBEDTOOL} embed w.npy - -o - | {sys.executable} -c " \
             "\"import sys, pyarrow as pa; t = pa.ipc.open_stream(sys.stdin.buffer).read_all(); print(t.num_rows)\""
    proc = subprocess.run(script, shell=True, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "2"


def test_arrow_stream_on_stdin(tmp_path, weight):
    sink = pa.BufferOutputStream()
    table = pa.table({"ids": pa.array([[4], [5, 6]])})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    proc = subprocess.run([EMBEDTOOL, "embed", "w.npy", "-", "-o", "o.arrow", "-q"], cwd=tmp_path,
                          input=sink.getvalue().to_pybytes(), capture_output=True, check=True)
    assert proc.stderr == b""
    rows = ragged(read(tmp_path / "o.arrow"))
    np.testing.assert_array_equal(rows[1], weight[[5, 6]])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_output(tmp_path, weight, signum):
    """Interrupted mid-stream (Ctrl-C or kill; input still arriving): no output file, no temp file, the old output
    intact."""
    (tmp_path / "o.arrow").write_bytes(b"old")
    proc = subprocess.Popen([EMBEDTOOL, "embed", "w.npy", "-", "-o", "o.arrow", "-q", "--batch-rows", "1"],
                            cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b"1 2 3\n" * 200_000)
    proc.stdin.flush()
    time.sleep(1.0)
    proc.send_signal(signum)
    proc.stdin.close()
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode != 0
    assert (tmp_path / "o.arrow").read_bytes() == b"old"
    assert no_temp_files(tmp_path)


def test_memory_stays_bounded_on_a_large_input(tmp_path):
    """A 1.1 GB text file streams through in bounded memory: peak RSS stays under 600 MB.

    The bound is the batch (about 4 MB of text and its parsed ids and vectors, a few batches in flight) plus the
    interpreter with numpy, numba and pyarrow loaded (about 250 MB); nothing grows with the input.
    """
    weight = np.random.default_rng(0).standard_normal((1_000_000, 1)).astype(np.float32)
    np.save(tmp_path / "w.npy", weight)
    rng = np.random.default_rng(1)
    block = "".join(" ".join(map(str, row)) + "\n" for row in rng.integers(100_000, 999_999, size=(1000, 150)))
    block = block.encode()
    with open(tmp_path / "big.txt", "wb") as f:
        for _ in range(1_100_000_000 // len(block) + 1):
            f.write(block)
    assert os.path.getsize(tmp_path / "big.txt") > 1_000_000_000
    # A parent of its own, so RUSAGE_CHILDREN sees only this run, not the other tests' subprocesses.
    measure = (
        "import resource, subprocess, sys\n"
        f"subprocess.run([{EMBEDTOOL!r}, 'embed', 'w.npy', 'big.txt', '-o', '-', '-q'], stdout=subprocess.DEVNULL,"
        " check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    proc = subprocess.run([sys.executable, "-c", measure], cwd=tmp_path, capture_output=True, text=True, check=True)
    peak_mb = int(proc.stdout) / 1024
    assert peak_mb < 600, f"peak RSS {peak_mb:.0f} MB"
