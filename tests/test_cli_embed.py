"""``embedtool embed`` driven as a user would (CliRunner and a real subprocess): Arrow output, bad input and
the output file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import embedtool
import naive
from embedtool_cli.app import app

runner = CliRunner()
EMBEDTOOL = Path(sys.executable).with_name("embedtool")


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((50, 6)).astype(np.float32)
    np.save(tmp_path / "w.npy", weight)
    return tmp_path, weight, rng


def read_arrow(path):
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def embeddings(table):
    """The ``embedding`` column as ``input.shape + (D,)``, using the recorded input shape."""
    column = table.column("embedding").combine_chunks()
    shape = tuple(json.loads(table.schema.metadata[b"embedtool.input_shape"]))
    if isinstance(column.type, pa.FixedShapeTensorType):
        return column.to_numpy_ndarray()
    return column.flatten().to_numpy().reshape(shape + (column.type.list_size,))


@pytest.mark.parametrize("shape", [(7,), (4, 5), (3, 2, 4), ()])
@pytest.mark.parametrize("index_dtype", [np.uint16, np.int64])
def test_embed_round_trips_through_arrow(files, shape, index_dtype):
    tmp_path, weight, rng = files
    indices = rng.integers(0, 50, size=shape).astype(index_dtype)
    np.save(tmp_path / "ids.npy", indices)
    result = runner.invoke(
        app, ["embed", str(tmp_path / "w.npy"), str(tmp_path / "ids.npy"), "-o", str(tmp_path / "o.arrow"),
              "--padding-idx", "3", "--batch-rows", "2", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    table = read_arrow(tmp_path / "o.arrow")
    assert table.num_rows == (shape[0] if shape else 1)
    if len(shape) <= 1:
        assert table.schema.field("embedding").type == pa.list_(pa.float32(), 6)
    else:
        assert table.schema.field("embedding").type == pa.fixed_shape_tensor(pa.float32(), [*shape[1:], 6])
    np.testing.assert_array_equal(embeddings(table), naive.embedding(indices, weight, padding_idx=3))
    meta = {k.decode(): json.loads(v) for k, v in table.schema.metadata.items()}
    assert meta["embedtool.weights"] == "w.npy" and meta["embedtool.input"] == "ids.npy"
    assert meta["embedtool.padding_idx"] == 3 and meta["embedtool.max_norm"] is None
    assert meta["embedtool.norm_type"] == 2.0 and meta["embedtool.version"] == embedtool.__version__


def test_embed_max_norm_equals_api(files):
    tmp_path, weight, rng = files
    indices = rng.integers(0, 50, size=(10, 3))
    np.save(tmp_path / "ids.npy", indices)
    out = tmp_path / "o.feather"
    result = runner.invoke(
        app, ["embed", str(tmp_path / "w.npy"), str(tmp_path / "ids.npy"), "-o", str(out),
              "--max-norm", "1.0", "--norm-type", "inf", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    expected = embedtool.embedding(indices, weight, max_norm=1.0, norm_type=float("inf"))
    np.testing.assert_array_equal(embeddings(read_arrow(out)), expected)
    assert "lookups" in result.output  # the summary (stderr; CliRunner mixes it in)


# ---- bad input: exit 1, one line naming file, value and position, no traceback, no output file.


def bad_cases(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, size=(4, 3))
    ids[2, 1] = 50
    np.save(tmp_path / "oob.npy", ids)
    np.save(tmp_path / "neg.npy", np.array([1, 2, -4]))
    np.save(tmp_path / "frac.npy", np.array([1.0, 2.25]))
    np.save(tmp_path / "bool.npy", np.array([True]))
    np.save(tmp_path / "w1.npy", np.zeros(5, np.float32))
    np.save(tmp_path / "w3.npy", np.zeros((5, 2, 2), np.float32))
    (tmp_path / "notnpy.npy").write_text("hello\n")
    return {
        "oob": (["oob.npy"], "oob.npy: index 50 at position (2, 1) is out of range (the table has 50 rows, valid indices are 0..49)"),
        "neg": (["neg.npy"], "neg.npy: index -4 at position 2 is out of range (the table has 50 rows"),
        "frac": (["frac.npy"], "frac.npy: index 2.25 at position 1 is not an integer"),
        "bool": (["bool.npy"], "bool.npy: indices must be integers, got dtype bool"),
        "weight1d": (["neg.npy", "--weights", "w1.npy"], "w1.npy: weight must be 2-D"),
        "weight3d": (["neg.npy", "--weights", "w3.npy"], "w3.npy: weight must be 2-D"),
        "nan_max_norm": (["neg.npy", "--max-norm", "nan"], "max_norm must be a finite number > 0, got nan"),
        "neg_max_norm": (["neg.npy", "--max-norm", "-2"], "max_norm must be a finite number > 0, got -2.0"),
        "padding": (["neg.npy", "--padding-idx", "50"], "padding_idx 50 is out of range for a table of 50 rows"),
        "missing": (["nothere.npy"], "nothere.npy: no such file"),
        "notnpy": (["notnpy.npy"], "notnpy.npy: not a readable .npy file"),
    }


@pytest.mark.parametrize("case", ["oob", "neg", "frac", "bool", "weight1d", "weight3d", "nan_max_norm",
                                  "neg_max_norm", "padding", "missing", "notnpy"])
def test_bad_input(files, case, monkeypatch):
    tmp_path, _, _ = files
    monkeypatch.chdir(tmp_path)
    args, message = bad_cases(tmp_path)[case]
    weights = "w.npy"
    if "--weights" in args:
        i = args.index("--weights")
        weights = args[i + 1]
        args = args[:i] + args[i + 2:]
    result = runner.invoke(app, ["embed", weights, *args, "-o", "out.arrow"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: " + message), result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.suffix == ".npy") == []  # no output, no temp file


def test_error_leaves_existing_output_untouched(files):
    tmp_path, _, _ = files
    np.save(tmp_path / "ids.npy", np.arange(60) % 51)  # 50 is out of range, late in the file
    (tmp_path / "o.arrow").write_bytes(b"previous")
    result = runner.invoke(app, ["embed", str(tmp_path / "w.npy"), str(tmp_path / "ids.npy"), "-o",
                                 str(tmp_path / "o.arrow"), "--batch-rows", "8", "-q"])
    assert result.exit_code == 1
    assert "index 50 at position 50" in result.output
    assert (tmp_path / "o.arrow").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.npy", "o.arrow", "w.npy"]


def test_unwritable_output_fails_before_the_work(files):
    """-o naming a directory or a file in a missing directory: one line naming the target, before any input is
    read (the ids here are out of range, which would be the error if the work ran first)."""
    tmp_path, _, _ = files
    np.save(tmp_path / "ids.npy", np.array([99]))
    (tmp_path / "out.arrow").mkdir()
    for target, message in [("out.arrow", "out.arrow: is a directory; name an output file"),
                            ("missing/o.arrow", "missing/o.arrow: no such directory 'missing'")]:
        result = subprocess.run([str(EMBEDTOOL), "embed", "w.npy", "ids.npy", "-o", target], cwd=tmp_path,
                                capture_output=True, text=True)
        assert (result.returncode, result.stderr, result.stdout) == (1, f"Error: {message}\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.npy", "out.arrow", "w.npy"]
    assert list((tmp_path / "out.arrow").iterdir()) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_output_file_mode_follows_the_umask(files, umask, mode):
    tmp_path, _, _ = files
    np.save(tmp_path / "ids.npy", np.arange(6))
    previous = os.umask(umask)
    try:
        result = runner.invoke(app, ["embed", str(tmp_path / "w.npy"), str(tmp_path / "ids.npy"), "-o",
                                     str(tmp_path / "o.arrow"), "-q"])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o.arrow").stat().st_mode & 0o777 == mode


def test_usage_errors_exit_2(files):
    tmp_path, _, _ = files
    result = runner.invoke(app, ["embed", str(tmp_path / "w.npy")])
    assert result.exit_code == 2


# ---- the installed entry point, in real processes.


def test_installed_entry_point(files):
    tmp_path, weight, rng = files
    indices = rng.integers(0, 50, size=(5, 2)).astype(np.int32)
    np.save(tmp_path / "ids.npy", indices)
    proc = subprocess.run(
        [str(EMBEDTOOL), "embed", "w.npy", "ids.npy", "-o", "-", "--quiet"],
        cwd=tmp_path, capture_output=True, check=True,
    )
    table = pa.ipc.open_stream(proc.stdout).read_all()
    np.testing.assert_array_equal(embeddings(table), weight[indices])
    bad = subprocess.run([str(EMBEDTOOL), "embed", "w.npy", "missing.npy", "-o", "x.arrow"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr == "Error: missing.npy: no such file\n" and bad.stdout == ""


