"""The weight-format registry (``embedtool.formats``): how a file's format is found to read it and chosen to write it,
every format module reads what it writes, and the registry stays light to import."""

import gzip
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from embedtool import formats
from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.formats.base import LoadOptions, SaveOptions
from embedtool.vectors import load_vectors, save_vectors
from helpers import one_line_error, run, same_bits, table


def test_registry_imports_no_numba():
    """The CLI's light paths import the registry: its format modules import numba only inside read/write."""
    code = "import sys, embedtool.formats; print('numba' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


@pytest.mark.parametrize("fmt", [f for f in formats.REGISTRY if f.write is not None], ids=lambda f: f.name)
def test_each_format_round_trips_through_its_module(tmp_path, fmt):
    """A format's ``write`` then its ``read`` give the matrix back, and the tokens where the file holds them."""
    matrix = np.array([[0.5, -1.25, 3.0], [2.0, 0.0, -0.75]], np.float32)
    tokens = pa.array(["a b", "c"] if fmt.name in ("glove", "word2vec") else ["ab", "c"], pa.string())
    meta = {"source": "x", "source_format": "glove", "dtype": "float32", "rows": 2, "dim": 3}
    path = tmp_path / f"w{fmt.suffixes[0]}"
    with open(path, "wb") as f:
        fmt.write(f, matrix, tokens, meta, SaveOptions())
    assert formats.detect(path)[0] is fmt
    result = fmt.read(path, None, LoadOptions())
    np.testing.assert_array_equal(result.matrix, matrix)
    if fmt.sidecar_vocab:
        assert result.tokens is None
    else:
        assert result.tokens.to_pylist() == tokens.to_pylist()


@pytest.mark.usefixtures("both_paths")
def test_first_bytes_win_over_the_suffix(tmp_path):
    save_vectors(table(np.float32), tmp_path / "v.parquet")
    (tmp_path / "v.parquet").rename(tmp_path / "really_parquet.txt")
    assert load_vectors(tmp_path / "really_parquet.txt").metadata["source_format"] == "parquet"
    np.save(tmp_path / "m.npy", np.ones((2, 2), np.float32))
    (tmp_path / "m.npy").rename(tmp_path / "m.bin")
    assert load_vectors(tmp_path / "m.bin").metadata["source_format"] == "npy"


@pytest.mark.usefixtures("both_paths")
def test_text_without_a_known_suffix_is_text(tmp_path):
    (tmp_path / "vectors").write_bytes(b"a 1 2\nb 3 4\n")
    assert load_vectors(tmp_path / "vectors").metadata["source_format"] == "glove"


@pytest.mark.usefixtures("both_paths")
def test_format_option_overrides_detection(tmp_path):
    (tmp_path / "v.npy").write_bytes(b"a 1 2\n")
    assert load_vectors(tmp_path / "v.npy", format="glove").tokens.to_pylist() == ["a"]
    with pytest.raises(InputFormatError, match=r"v\.txt: not a readable \.npy file"):
        (tmp_path / "v.txt").write_bytes(b"a 1 2\n")
        load_vectors(tmp_path / "v.txt", format="npy")


@pytest.mark.usefixtures("both_paths")
def test_compressed_binary_formats_are_refused(tmp_path):
    (tmp_path / "v.npy.gz").write_bytes(gzip.compress(b"\x93NUMPY rest"))
    with pytest.raises(InputFormatError) as e:
        load_vectors(tmp_path / "v.npy.gz")
    assert str(e.value) == f"{tmp_path}/v.npy.gz: a compressed npy file cannot be read; decompress it first"


@pytest.mark.usefixtures("both_paths")
def test_for_output_from_the_suffix_or_named(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"cannot tell the format from the suffix"):
        save_vectors(table(np.float32), tmp_path / "v.dat")
    save_vectors(table(np.float32), tmp_path / "v.dat", format="word2vec")
    assert (tmp_path / "v.dat").read_text().startswith("5 3\n")
    with pytest.raises(InvalidArgumentError, match="only text and word2vec binary files can be written compressed"):
        save_vectors(table(np.float32), tmp_path / "v.parquet.gz")


@pytest.mark.usefixtures("both_paths")
@pytest.mark.parametrize("suffix,magic", [(".txt.gz", b"\x1f\x8b"), (".vec.bz2", b"BZh"), (".bin.xz", b"\xfd7zXZ")])
def test_compressed_output(tmp_path, suffix, magic):
    original = table(np.float32, spaces=False)
    path = save_vectors(original, tmp_path / f"v{suffix}")
    assert path.read_bytes().startswith(magic)
    same_bits(load_vectors(path).matrix, original.matrix)


@pytest.mark.parametrize("list_type", [pa.list_(pa.float32()), pa.large_list(pa.float32()), pa.list_(pa.float32(), 2)],
                         ids=str)
def test_arrow_vector_column_read_from_a_slice_as_flatten_reads_it(list_type):
    """``from_table`` takes the vectors as a slice of the list's values (pyarrow's flatten would load
    pyarrow.compute): a table sliced from a larger one gives its own rows, not the larger one's first rows."""
    from embedtool.formats.arrow import from_table

    full = pa.table({"token": ["a", "b", "c", "d"],
                     "vector": pa.array([[1, 2], [3, 4], [5, 6], [7, 8]], list_type)})
    for part in (full.slice(1, 2), full.slice(3, 1), full.slice(0, 0), full):
        matrix, tokens = from_table(part, "t.arrow")
        assert matrix.shape[0] == part.num_rows
        np.testing.assert_array_equal(matrix.reshape(-1), part.column("vector").combine_chunks().flatten().to_numpy())
        assert tokens.to_pylist() == part.column("token").to_pylist()


def test_a_garbled_fasttext_bin_model_is_read_as_one_and_named(tmp_path):
    path = tmp_path / "cc.en.300.bin"
    path.write_bytes((793712314).to_bytes(4, "little") + (12).to_bytes(4, "little") + bytes(64))
    one_line_error(run("info", path), "cc.en.300.bin: not a readable fastText .bin model: it ends inside its header, at byte 72")
