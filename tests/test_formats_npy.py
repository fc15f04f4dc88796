"""A .npy matrix with its vocab file (formats/npy.py): the sidecar written and found, and damaged or unusual
headers, each one line ``Error: ...``."""

import numpy as np
import pyarrow as pa
import pytest

from embedtool.vectors import load_vectors, save_vectors
from helpers import WEIGHT, assert_clean_failure, one_line_error, run, subprocess_run, table

on_both_paths = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


@on_both_paths
def test_npy_writes_and_finds_its_vocab(tmp_path):
    save_vectors(table(np.float32), tmp_path / "glove.6B.npy")
    assert (tmp_path / "glove.6B.vocab.txt").read_text() == "a\nb c\né\nx\u00a0y\n日本\n"
    v = load_vectors(tmp_path / "glove.6B.npy")
    assert isinstance(v.matrix, np.memmap)
    assert v.tokens.to_pylist() == table(np.float32).tokens.to_pylist()


def test_big_endian_npy_is_converted_for_embed_convert_and_lookup(tmp_path):
    np.save(tmp_path / "be.npy", WEIGHT.astype(">f4"))
    (tmp_path / "ids.txt").write_text("2 0\n5\n")
    result = run("embed", tmp_path / "be.npy", tmp_path / "ids.txt", "-o", tmp_path / "o.arrow", "-q")
    assert result.exit_code == 0, result.output
    column = pa.ipc.open_file(str(tmp_path / "o.arrow")).read_all().column("embedding").combine_chunks()
    values = column.flatten().flatten().to_numpy()
    np.testing.assert_array_equal(values, WEIGHT[[2, 0, 5]].reshape(-1))
    for name in ("c.arrow", "c.parquet"):
        assert run("convert", tmp_path / "be.npy", tmp_path / name, "-q").exit_code == 0
        np.testing.assert_array_equal(load_vectors(tmp_path / name).matrix, WEIGHT)
    result = run("lookup", tmp_path / "be.npy", "3")
    assert result.exit_code == 0, result.output
    assert [float(x) for x in result.stdout.split("\t")[2].split()] == pytest.approx(WEIGHT[3].tolist())


def test_npy_with_a_negative_shape_is_one_line(tmp_path):
    np.save(tmp_path / "w.npy", WEIGHT)
    raw = (tmp_path / "w.npy").read_bytes()
    (tmp_path / "w.npy").write_bytes(raw.replace(b"(6, 4)", b"(-6, 4)"))
    one_line_error(run("info", tmp_path / "w.npy"), "bad shape (-6, 4)")


def test_empty_npy_is_one_line(tmp_path):
    (tmp_path / "w.npy").write_bytes(b"")
    result = subprocess_run("info", tmp_path / "w.npy")
    assert_clean_failure(result)
    assert "not a readable .npy file" in result.stderr and "Aborted" not in result.stderr


@pytest.mark.parametrize("make", [np.zeros((2, 3, 4), np.float32), np.zeros((5, 3), np.int32), np.zeros(5)],
                         ids=["3-D", "int32", "1-D"])
def test_npy_that_is_not_a_2d_float_table_is_one_line(tmp_path, make):
    np.save(tmp_path / "w.npy", make)
    one_line_error(run("info", tmp_path / "w.npy"), str(tmp_path / "w.npy"))


def test_truncated_npy_is_one_line(tmp_path):
    np.save(tmp_path / "w.npy", WEIGHT)
    (tmp_path / "w.npy").write_bytes((tmp_path / "w.npy").read_bytes()[:-4])
    one_line_error(run("lookup", tmp_path / "w.npy", "0"), "does not fit the file")
