"""Untrusted weight files are validated before any kernel reads them (issue 19): each malformed file gives one line
``Error: ...`` and exit 1 (never a traceback, a signal or silently wrong numbers), and every command that reads
weights takes the same weight options. Crash cases run in real subprocesses, where a SIGSEGV shows as rc < 0."""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from typer.testing import CliRunner

from embedtool import embedding, embedding_bag
from embedtool.errors import InputFormatError
from embedtool.vectors import Vectors, load_vectors, save_vectors
from embedtool_cli.app import app

runner = CliRunner()
EMBEDTOOL = Path(sys.executable).with_name("embedtool")
WEIGHT = np.arange(24, dtype=np.float32).reshape(6, 4) / 7
TOKENS = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"]  # offsets 0 1 3 6 10 15 21: one byte pattern in the file


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *fragments) -> None:
    """Exit 1 and exactly one line ``Error: ...`` on stderr holding each fragment."""
    stderr = result.stderr
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def subprocess_run(*args, **kwargs):
    """The installed CLI in a real process: a crash is a negative return code there."""
    return subprocess.run([str(EMBEDTOOL), *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def assert_clean_failure(result) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr


def store_with_offsets(path: Path, offsets: list[int]) -> Path:
    """A store of WEIGHT and TOKENS whose token offsets are replaced by ``offsets`` (7 int32)."""
    save_vectors(Vectors(WEIGHT, TOKENS), path)
    raw = path.read_bytes()
    good = np.array([0, 1, 3, 6, 10, 15, 21], np.int32).tobytes()
    assert raw.count(good) == 1
    path.write_bytes(raw.replace(good, np.array(offsets, np.int32).tobytes()))
    return path


def safetensors_file(path: Path, header, data: bytes = WEIGHT.tobytes()) -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


# --- case 6: big-endian .npy -------------------------------------------------------------------------------------


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


# --- cases 7 and 14: safetensors headers ---------------------------------------------------------------------------

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


# --- cases 8 and 9: Arrow token offsets ----------------------------------------------------------------------------


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


@pytest.mark.parametrize("suffix", [".arrow", ".parquet", ".npy", ".safetensors"])
def test_byte_flips_and_truncations_in_weights_never_crash(tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    save_vectors(Vectors(np.random.default_rng(0).standard_normal((300, 8), np.float32),
                         [f"w{i}" for i in range(300)]), path)
    good = path.read_bytes()
    rng = random.Random(19)
    for k in range(5):
        mutated = bytearray(good)
        if k == 4:
            del mutated[rng.randrange(1, len(mutated)):]
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        path.write_bytes(mutated)
        result = subprocess_run("lookup", path, "w1", "w299")
        assert result.returncode in (0, 1), (k, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 1, result.stderr


# --- case 15: .npy headers and store metadata ----------------------------------------------------------------------


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


# --- case 11: info from the header ---------------------------------------------------------------------------------


def sparse_npy(path: Path, rows: int, dim: int) -> Path:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
        f.truncate(f.tell() + rows * dim * 4)
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_info_answers_from_the_header_without_reading_rows(tmp_path):
    path = sparse_npy(tmp_path / "big.npy", 1 << 28, 4)  # 4 GiB, sparse
    code = ("import sys; from embedtool_cli.app import app; sys.argv = ['embedtool', 'info', sys.argv[1], '--json']"
            "\ntry: app()\nexcept SystemExit: pass\n"  # VmHWM: this process's peak (ru_maxrss counts the parent's)
            "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')),"
            " file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert json.loads(result.stdout) == {"path": str(path), "format": "npy", "rows": 1 << 28, "dim": 4,
                                         "dtype": "float32", "bytes": 1 << 32, "vocab": False}
    assert int(result.stderr) < 400_000  # kB: the 4 GiB were not paged in


def test_info_stats_only_when_asked(tmp_path):
    np.save(tmp_path / "w.npy", WEIGHT)
    plain = json.loads(run("info", tmp_path / "w.npy", "--json").stdout)
    assert "zero_rows" not in plain and "norm_max" not in plain
    stats = json.loads(run("info", tmp_path / "w.npy", "--json", "--stats").stdout)
    assert stats["zero_rows"] == 0 and stats["norm_max"] == pytest.approx(np.linalg.norm(WEIGHT[5]))


# --- cases 12 and 21: max_norm -------------------------------------------------------------------------------------


def test_max_norm_allocates_per_looked_up_row_not_per_table_row(tmp_path):
    from embedtool.formats import npy

    weight = npy.read(sparse_npy(tmp_path / "big.npy", 1 << 28, 4)).matrix
    ids = np.array([[3, 5, (1 << 28) - 1]])
    embedding(ids - 3, weight, max_norm=1.0), embedding_bag(ids - 3, weight, max_norm=1.0)  # the kernels compiled
    tracemalloc.start()
    try:
        looked_up = embedding(ids, weight, max_norm=1.0, padding_idx=5)
        pooled = embedding_bag(ids, weight, max_norm=1.0, padding_idx=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # the 2**28-row table would need 1 GiB of per-row scales
    assert not looked_up.any() and not pooled.any()


def test_max_norm_on_huge_tables_matches_the_per_row_path(monkeypatch):
    import embedtool.shared_kernels as shared_kernels

    rng = np.random.default_rng(21)
    for dtype in (np.float16, np.float32, np.float64):
        weight = (rng.standard_normal((40, 5)) * 3).astype(dtype)
        ids = rng.integers(0, 40, (6, 7))
        expected = [embedding(ids, weight, 3, 1.5, p) for p in (1.0, 2.0, np.inf)]
        expected_bags = [embedding_bag(ids, weight, mode="max", padding_idx=3, max_norm=1.5, norm_type=p)
                         for p in (1.0, 2.0, np.inf)]
        with monkeypatch.context() as patch:
            patch.setattr(shared_kernels, "_MAX_STATE", -1)  # as for a table too large for per-row state
            for p, want, want_bags in zip((1.0, 2.0, np.inf), expected, expected_bags):
                np.testing.assert_array_equal(embedding(ids, weight, 3, 1.5, p), want)
                np.testing.assert_array_equal(
                    embedding_bag(ids, weight, mode="max", padding_idx=3, max_norm=1.5, norm_type=p), want_bags)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [np.inf, 2.0])
def test_max_norm_leaves_a_row_holding_nan_unchanged_as_torch(dtype, norm_type):
    weight = np.array([[np.nan, 5, 0], [3, 4, 0]], dtype)
    ids = np.array([0, 1])
    ours = embedding(ids, weight, max_norm=1.0, norm_type=norm_type)
    theirs = torch.nn.functional.embedding(torch.from_numpy(ids), torch.from_numpy(weight.copy()), max_norm=1.0,
                                           norm_type=norm_type).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours[0], weight[0])
    pooled = embedding_bag(ids[:, None], weight, mode="sum", max_norm=1.0, norm_type=norm_type)
    np.testing.assert_array_equal(pooled, theirs)


# --- case 20: unreadable weights -----------------------------------------------------------------------------------


def test_unreadable_weights_are_one_line_not_a_usage_box(tmp_path):
    prefix = []
    if os.geteuid() == 0:  # root reads anything: run as nobody, in a directory nobody can enter
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv cannot make a file unreadable")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        tmp_path = Path(tempfile.mkdtemp())
        tmp_path.chmod(0o777)
    try:
        np.save(tmp_path / "w.npy", WEIGHT)
        (tmp_path / "w.npy").chmod(0)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), HOME=str(tmp_path))
        for argv in (["info", "w.npy"], ["lookup", "w.npy", "0"], ["convert", "w.npy", "x.arrow"],
                     ["embed", "w.npy", "-", "-o", "-"]):
            result = subprocess.run([*prefix, str(EMBEDTOOL), *argv], capture_output=True, text=True, cwd=tmp_path,
                                    env=env, timeout=300, input="0\n")
            assert (result.returncode, result.stderr) == (1, "Error: w.npy: Permission denied\n"), argv
    finally:
        if prefix:
            shutil.rmtree(tmp_path)


def test_missing_or_directory_weights_are_one_line(tmp_path):
    one_line_error(run("info", tmp_path / "nope.npy"), f"{tmp_path / 'nope.npy'}: no such file")
    one_line_error(run("lookup", tmp_path, "0"), f"{tmp_path}: is a directory")


# --- case 22: the same weight options everywhere -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["embed", "bag", "info", "lookup", "convert"])
def test_every_command_that_reads_weights_takes_the_weight_options(command):
    result = run(command, "--help")
    for option in ("--from", "--vocab", "--tensor", "--encoding", "--errors", "--on-bad-row", "--allow-nonfinite",
                   "--duplicates"):
        assert option in result.stdout, (command, option)


def test_weight_options_reach_the_loader_in_embed_bag_and_info(tmp_path):
    (tmp_path / "g.dat").write_text("a 1 2\nbad row x\nb 3 4\na 5 6\n")
    (tmp_path / "in.txt").write_text("b a\n")
    options = ["--from", "glove", "--on-bad-row", "skip", "--duplicates", "last"]
    info = run("info", tmp_path / "g.dat", "--json", *options)
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["rows"] == 2
    for command in ("embed", "bag"):
        out = tmp_path / f"{command}.arrow"
        result = run(command, tmp_path / "g.dat", tmp_path / "in.txt", "-o", out, "-q", *options)
        assert result.exit_code == 0, result.output
        values = pa.ipc.open_file(str(out)).read_all().column("embedding").combine_chunks()
        values = values.flatten().flatten() if command == "embed" else values.flatten()
        expected = [3, 4, 5, 6] if command == "embed" else [4, 5]  # "a" keeps its last row
        np.testing.assert_array_equal(values.to_numpy(), expected)
    one_line_error(run("info", tmp_path / "g.dat", "--from", "glove"), "g.dat:2")


def test_a_garbled_fasttext_bin_model_is_read_as_one_and_named(tmp_path):
    path = tmp_path / "cc.en.300.bin"
    path.write_bytes((793712314).to_bytes(4, "little") + (12).to_bytes(4, "little") + bytes(64))
    one_line_error(run("info", path), "cc.en.300.bin: not a readable fastText .bin model: it ends inside its header, at byte 72")


def test_dask_workers_load_the_weights_with_the_weight_options(tmp_path):
    pytest.importorskip("distributed")
    from embedtool.distributed import _worker_vectors

    (tmp_path / "g.dat").write_text("a 1 2\nbad row x\nb 3 4\n")
    vectors = _worker_vectors(str(tmp_path / "g.dat"), {"format": "glove", "on_bad_row": "skip"})
    assert vectors.tokens.to_pylist() == ["a", "b"] and vectors.metadata["skipped_rows"] == 1
    with pytest.raises(InputFormatError, match="g.dat:2"):  # other options: loaded again, not the cached table
        _worker_vectors(str(tmp_path / "g.dat"), {"format": "glove"})


@pytest.mark.parametrize("dim", [2**64, 2**25])
def test_word2vec_binary_header_with_a_huge_dim_is_one_line(tmp_path, dim):
    """A header's dim is untrusted: rows over the row limit are refused before anything is allocated for them."""
    (tmp_path / "w.bin").write_bytes(f"2 {dim}\n".encode() + b"a " + b"\0" * 64)
    one_line_error(run("info", tmp_path / "w.bin"), f"w.bin:1: a row of {dim:,} values is longer than")
