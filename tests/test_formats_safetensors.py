"""safetensors (formats/safetensors.py): files of the safetensors package read and written, the tensor choice, and
untrusted headers, each one line ``Error: ...``."""

import json
from pathlib import Path

import numpy as np
import pytest

from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.vectors import load_vectors, save_vectors
from helpers import DTYPES, WEIGHT, one_line_error, run, same_bits, table

on_both_paths = pytest.mark.usefixtures("both_paths")  # the kernels and the small-input path (conftest.py)


@on_both_paths
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_safetensors_written_by_the_package(tmp_path, dtype):
    from safetensors.numpy import save_file

    matrix = table(dtype).matrix
    save_file({"emb": matrix, "bias": np.ones(3, dtype)}, tmp_path / "m.safetensors")
    v = load_vectors(tmp_path / "m.safetensors")
    assert isinstance(v.matrix, np.memmap) and v.metadata["tensor"] == "emb"
    same_bits(v.matrix, matrix)


@on_both_paths
def test_safetensors_bfloat16_is_widened_to_float32(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    weight = torch.randn(6, 4).to(torch.bfloat16)
    save_file({"w": weight}, tmp_path / "m.safetensors")
    v = load_vectors(tmp_path / "m.safetensors")
    assert v.matrix.dtype == np.float32
    np.testing.assert_array_equal(v.matrix, weight.float().numpy())


@on_both_paths
def test_safetensors_written_by_embedtool_read_by_the_package(tmp_path):
    from safetensors import safe_open

    save_vectors(table(np.float16), tmp_path / "m.safetensors", tensor="embeddings.weight")
    with safe_open(str(tmp_path / "m.safetensors"), "np") as f:
        same_bits(f.get_tensor("embeddings.weight"), table(np.float16).matrix)
        assert f.metadata()["rows"] == "5"


@on_both_paths
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


@on_both_paths
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


def safetensors_file(path: Path, header, data: bytes = WEIGHT.tobytes()) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


GOOD_ENTRY = {"dtype": "F32", "shape": [6, 4], "data_offsets": [0, 96]}


def test_safetensors_negative_data_offsets_are_refused(tmp_path):
    path = safetensors_file(tmp_path / "w.safetensors",
                            {"w": {**GOOD_ENTRY, "data_offsets": [-64, 32]}})
    one_line_error(run("info", path), "tensor 'w' has data_offsets [-64, 32]")


@pytest.mark.parametrize("entry", [
    {"shape": [6, 4], "data_offsets": [0, 96]},  # no dtype
    {"dtype": "F32", "shape": [6, 4]},  # no data_offsets
    {**GOOD_ENTRY, "data_offsets": [0, 48, 96]},
    {**GOOD_ENTRY, "data_offsets": ["0", 96]},
    {**GOOD_ENTRY, "data_offsets": [0.0, 96]},
    {**GOOD_ENTRY, "data_offsets": [0, 128]},  # past the data
    {**GOOD_ENTRY, "data_offsets": [0, 64]},  # shorter than the shape
    {**GOOD_ENTRY, "shape": "6,4"},
    {**GOOD_ENTRY, "shape": [-6, -4]},
    {**GOOD_ENTRY, "shape": [6, True]},
    {**GOOD_ENTRY, "dtype": 32},
    [1, 2],
    "w",
])
def test_safetensors_header_entries_are_type_checked(tmp_path, entry):
    one_line_error(run("info", safetensors_file(tmp_path / "w.safetensors", {"w": entry})), "bad safetensors header")


@pytest.mark.parametrize("header", [
    b"[" * 100_000 + b"]" * 100_000,  # nested past Python's recursion limit
    {"__metadata__": {"a": 1}, "w": GOOD_ENTRY},
    {"__metadata__": [], "w": GOOD_ENTRY},
    b"[1, 2]",
])
def test_safetensors_header_structure_is_checked(tmp_path, header):
    one_line_error(run("info", safetensors_file(tmp_path / "w.safetensors", header)), "safetensors")


def test_safetensors_header_size_is_bounded(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes((200 << 20).to_bytes(8, "little") + b"{" + b" " * 100)
    one_line_error(run("info", path, "--from", "safetensors"), "not a safetensors file (no header)")
