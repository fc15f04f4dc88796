"""``embedtool convert`` driven as a user would: exit codes, the exact one-line errors, nothing left behind on
failure, and ``info``/``embed`` reading every weight format. ``lookup``: test_cli_lookup.py."""

import json
import subprocess
import sys

import numpy as np
import pytest

from embedtool import formats
from embedtool.vectors import Vectors, load_vectors, save_vectors
from embedtool_cli.weights import Format
from helpers import EMBEDTOOL, SAMPLE, failed, run

def test_convert_text_to_the_store_and_look_up(tmp_path, glove):
    result = run("convert", glove, tmp_path / "g.arrow")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"Wrote {tmp_path / 'g.arrow'}: 144 x 16 float32 in ")
    source, store = load_vectors(glove), load_vectors(tmp_path / "g.arrow")
    np.testing.assert_array_equal(store.matrix, source.matrix)
    assert store.tokens.to_pylist() == source.tokens.to_pylist()
    assert store.metadata["converted_from"] == str(glove)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.arrow", "glove.txt"]


@pytest.mark.parametrize("to,name", [("arrow", "o.feather"), ("parquet", "o.parquet"), ("npy", "o.npy"),
                                     ("safetensors", "o.safetensors"), ("glove", "o.dat"), ("word2vec", "o.vec"),
                                     ("word2vec-binary", "o.bin")])
def test_convert_to_every_format(tmp_path, glove, to, name):
    result = run("convert", glove, tmp_path / name, "--to", to, "--dtype", "float64", "--limit", "10", "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    back = load_vectors(tmp_path / name, format=to, dtype="float64")
    expected = load_vectors(glove, limit=10, dtype="float64").matrix
    expected = expected.astype(np.float32).astype(np.float64) if to == "word2vec-binary" else expected
    np.testing.assert_array_equal(back.matrix, expected)
    assert back.tokens.to_pylist()[:2] == ["<unk>", "the"]


def test_convert_safetensors_tensor_with_a_vocab(tmp_path):
    from safetensors.numpy import save_file

    weight = np.arange(12, dtype=np.float32).reshape(4, 3)
    save_file({"embeddings.weight": weight, "pooler": np.ones((2, 2), np.float32)}, tmp_path / "m.safetensors")
    (tmp_path / "words.txt").write_text("[PAD]\n[UNK]\nhello\nworld\n")
    result = run("convert", tmp_path / "m.safetensors", tmp_path / "w.npy",
                 "--tensor", "embeddings.weight", "--vocab", tmp_path / "words.txt", "--dtype", "float16")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w.vocab.txt").read_text() == "[PAD]\n[UNK]\nhello\nworld\n"
    v = load_vectors(tmp_path / "w.npy")
    assert v.matrix.dtype == np.float16 and v.ids(["world"]).tolist() == [3]
    failed(run("convert", tmp_path / "m.safetensors", tmp_path / "x.npy"),
           f"{tmp_path / 'm.safetensors'} holds 2 2-D tensors; pick one with --tensor: embeddings.weight, pooler")


def test_bad_row_fails_with_one_line_and_leaves_nothing(tmp_path):
    src = tmp_path / "v.txt"
    src.write_bytes(b"a 1 2\nb 3 4\nc\t5\t6\n")
    failed(run("convert", src, tmp_path / "v.arrow"),
           f"{src}:3: token 'c\\t5\\t6': expected a token and 2 values, found 1 field "
           "(fields are separated by spaces, this line has tabs)")
    assert [p.name for p in tmp_path.iterdir()] == ["v.txt"]


def test_failure_keeps_an_existing_destination(tmp_path):
    src = tmp_path / "v.txt"
    src.write_bytes(b"a 1 2\nb 3 nan\n")
    (tmp_path / "v.arrow").write_bytes(b"old")
    failed(run("convert", src, tmp_path / "v.arrow"),
           f"{src}:2: token 'b': value 2 of 2 is not finite: 'nan' (use --allow-nonfinite to keep it)")
    assert (tmp_path / "v.arrow").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.arrow", "v.txt"]
    assert run("convert", src, tmp_path / "v.arrow", "--allow-nonfinite").exit_code == 0
    assert np.isnan(load_vectors(tmp_path / "v.arrow").matrix[1, 1])


def test_skipped_rows_and_duplicates_are_reported(tmp_path):
    src = tmp_path / "v.txt"
    src.write_bytes(b"a 1 2\n\nb 3 4\na 5 6\n")
    result = run("convert", src, tmp_path / "v.npy", "--on-bad-row", "skip")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[:2] == ["Note: skipped 1 bad rows", "Note: dropped 1 rows of repeated tokens"]
    assert lines[2].startswith(f"Wrote {tmp_path / 'v.npy'}: 2 x 2 float32")
    failed(run("convert", src, tmp_path / "w.npy", "--on-bad-row", "skip", "--duplicates", "error"),
           f"{src}:4: duplicate token 'a' (first at line 1)")
    assert not (tmp_path / "w.npy").exists() and not (tmp_path / "w.vocab.txt").exists()


def test_encoding_and_errors_options(tmp_path):
    src = tmp_path / "v.txt"
    src.write_bytes(b"caf\xe9 1 2\n")
    failed(run("convert", src, tmp_path / "v.arrow"),
           f"{src}:1: token b'caf\\xe9' is not valid utf-8: byte 0xe9 at position 3 "
           "(use --errors replace or --errors ignore, or --encoding)")
    assert run("convert", src, tmp_path / "v.arrow", "--encoding", "latin-1", "-q").exit_code == 0
    assert load_vectors(tmp_path / "v.arrow").tokens.to_pylist() == ["café"]
    assert run("convert", src, tmp_path / "w.arrow", "--errors", "ignore", "-q").exit_code == 0
    assert load_vectors(tmp_path / "w.arrow").tokens.to_pylist() == ["caf"]


def test_format_and_file_errors(tmp_path, glove):
    failed(run("convert", glove, tmp_path / "v.dat"),
           f"{tmp_path / 'v.dat'}: cannot tell the format from the suffix; use one of .arrow, .feather, .ipc, "
           ".parquet, .npy, .safetensors, .txt, .vec, .bin or name the format")
    failed(run("convert", tmp_path / "missing.txt", tmp_path / "v.arrow"), f"{tmp_path / 'missing.txt'}: no such file")
    empty = tmp_path / "empty.vec"
    empty.write_bytes(b"")
    failed(run("convert", empty, tmp_path / "v.arrow"), f"{empty}: empty file")
    truncated = tmp_path / "t.bin"
    truncated.write_bytes(b"2 2\na \x00\x00\x80?\x00\x00\x00@\nb \x00\x00")
    failed(run("convert", truncated, tmp_path / "v.arrow"),
           f"{truncated}: truncated: the header says 2 rows but the file holds 1, and ends inside the row of token 'b'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.vec", "glove.txt", "t.bin"]


def test_usage_errors_are_exit_2(tmp_path, glove):
    assert run("convert", glove, tmp_path / "v.arrow", "--dtype", "int8").exit_code == 2
    assert run("convert", glove, tmp_path / "v.arrow", "--from", "csv").exit_code == 2
    assert run("convert", glove, tmp_path / "v.arrow", "--limit", "-1").exit_code == 2
    assert not (tmp_path / "v.arrow").exists()


def test_info_and_embed_read_text_and_the_store(tmp_path, glove):
    result = run("info", glove, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 144 and json.loads(result.stdout)["dim"] == 16
    save_vectors(Vectors(np.eye(3, dtype=np.float32), ["a", "b", "c"]), tmp_path / "w.arrow")
    np.save(tmp_path / "ids.npy", np.array([2, 0]))
    result = run("embed", tmp_path / "w.arrow", tmp_path / "ids.npy", "-o", tmp_path / "o.arrow", "-q")
    assert result.exit_code == 0, result.output
    import pyarrow as pa

    column = pa.ipc.open_file(pa.memory_map(str(tmp_path / "o.arrow"))).read_all().column("embedding")
    np.testing.assert_array_equal(column.combine_chunks().flatten().to_numpy().reshape(2, 3), np.eye(3)[[2, 0]])


def test_installed_entry_point_and_light_imports(tmp_path):
    out = subprocess.run([str(EMBEDTOOL), "convert", str(SAMPLE), str(tmp_path / "g.vec"), "-q"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == ""
    assert (tmp_path / "g.vec").read_text().startswith("144 16\n<unk> 0 0 0")
    code = "import sys, embedtool_cli.vectors_cmds; print(sorted({'numba', 'pyarrow', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "[]\n"


def test_format_choices_are_the_registry():
    """--from/--to list the registry's formats in its order (the CLI cannot import it: it would load numpy)."""
    assert [f.value for f in Format] == list(formats.NAMES)
