"""Dask: a LocalCluster of two worker processes writes byte for byte what the single-process CLI writes, retries a
failed shard, resumes, and reports input errors as the CLI does. Ray Data and Spark: tests/test_engines.py."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedtool.errors import EmbedtoolError, InputFormatError
from embedtool.vectors import Vectors, save_vectors
from embedtool_cli.app import app

distributed = pytest.importorskip("distributed")
import embedtool.distributed as dist  # noqa: E402 - after the skip: it needs dask to run

WORDS = ["<unk>", "the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away"]
OPTIONS = ["--column", "tokens", "--keep", "doc", "--oov", "unk", "--batch-rows", "7"]
KWARGS = {"column": "tokens", "keep": ["doc"], "oov": "unk", "batch_rows": 7}
SHARDS = 5


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300"})  # a summary row per line


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A vocabulary store and a directory of Parquet shards, OOV words included."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(5)
    vectors = Vectors(rng.standard_normal((len(WORDS), 4)).astype(np.float32), WORDS)
    save_vectors(vectors, root / "store.arrow")
    shards = root / "shards"
    shards.mkdir()
    words = np.array(WORDS[1:] + ["zebra", "yak", "emu"])
    for s in range(SHARDS):
        lengths = rng.integers(0, 6, 30)
        tokens = [list(rng.choice(words, n)) for n in lengths]
        pq.write_table(pa.table({"doc": np.arange(30) + 100 * s, "tokens": tokens}), shards / f"part-{s}.parquet")
    (shards / "_SUCCESS").write_text("")
    (shards / ".part-9.parquet.crc").write_text("")
    return root, shards


@pytest.fixture(scope="module")
def reference(data):
    """The single-process CLI's output directory for ``embed`` or ``bag``, made on first use."""
    root, shards = data

    def made_by(command: str, vector_type: str = "fixed") -> Path:
        out = root / f"ref-{command}-{vector_type}"
        if not out.exists():
            result = invoke(command, root / "store.arrow", shards, "-o", out, *OPTIONS, "--vector-type", vector_type,
                            "-q")
            assert result.exit_code == 0, result.output
        return out

    return made_by


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


@pytest.mark.parametrize("command, weights, vector_type",
                         [("embed", "path", "fixed"), ("bag", "scattered", "fixed"), ("embed", "path", "list")])
def test_cluster_writes_what_the_cli_writes(client, data, reference, tmp_path, command, weights, vector_type):
    root, shards = data
    store = root / "store.arrow"
    if weights == "scattered":
        from embedtool.vectors import load_vectors

        store = load_vectors(store)
    mode = {"mode": "mean"} if command == "bag" else {}
    summary = dist.embed_dataset(client, shards, tmp_path / "out", store, **KWARGS, **mode, vector_type=vector_type)
    assert same_files(tmp_path / "out", reference(command, vector_type))
    assert list(summary["shards"]) == [f"part-{s}.parquet" for s in range(SHARDS)]
    assert summary["rows"] == SHARDS * 30 and summary["skipped"] == []
    oov = sum(int(pq.read_metadata(p).metadata[b"embedtool.oov_tokens"])
              for p in reference(command, vector_type).iterdir())
    assert summary["oov_tokens"] == oov == sum(s["oov_tokens"] for s in summary["shards"].values()) > 0
    assert summary["oov"].startswith(f"{oov} OOV tokens (unk); most frequent: ")


def test_a_failed_task_is_retried(client, data, reference, tmp_path, monkeypatch):
    root, shards = data
    marker = tmp_path / "fail-once"
    marker.touch()
    embed_shard = dist._embed_shard

    def fails_once(*args, **kwargs):  # a local function: sent to the workers by value
        try:
            os.remove(marker)
        except FileNotFoundError:
            return embed_shard(*args, **kwargs)
        raise OSError("injected fault")

    monkeypatch.setattr(dist, "_embed_shard", fails_once)
    summary = dist.embed_dataset(client, shards, tmp_path / "out", root / "store.arrow", retries=1, **KWARGS)
    assert not marker.exists() and len(summary["shards"]) == SHARDS
    assert same_files(tmp_path / "out", reference("embed"))
    marker.touch()
    with pytest.raises(OSError, match="injected fault"):
        dist.embed_dataset(client, shards, tmp_path / "again", root / "store.arrow", retries=0, **KWARGS)


def test_resume_skips_finished_shards(client, data, reference, tmp_path):
    root, shards = data
    out = tmp_path / "out"
    dist.embed_dataset(client, shards, out, root / "store.arrow", **KWARGS)
    (out / "part-3.parquet").unlink()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}
    summary = dist.embed_dataset(client, shards, out, root / "store.arrow", resume=True, **KWARGS)
    assert list(summary["shards"]) == ["part-3.parquet"]
    assert summary["skipped"] == ["part-0.parquet", "part-1.parquet", "part-2.parquet", "part-4.parquet"]
    assert {n: (out / n).stat().st_ino for n in before} == {n: ino for n, (ino, _) in before.items()}
    assert {n: (out / n).stat().st_mtime_ns for n in before} == {n: t for n, (_, t) in before.items()}
    assert same_files(out, reference("embed"))


def test_cli_scheduler_local(client, data, reference, tmp_path):
    root, shards = data
    result = invoke("embed", root / "store.arrow", shards, "-o", tmp_path / "local", *OPTIONS, "--scheduler", "local:2")
    assert result.exit_code == 0, result.output
    assert same_files(tmp_path / "local", reference("embed"))
    assert "OOV tokens (unk)" in result.output and f"{SHARDS * 30:,} rows  ({SHARDS} shards)" in result.output


def test_cli_bag_on_a_scheduler_address_resumes(client, data, reference, tmp_path):
    root, shards = data
    out = tmp_path / "bag"
    out.mkdir()
    (out / "part-0.parquet").write_bytes((reference("bag") / "part-0.parquet").read_bytes())
    result = invoke("bag", root / "store.arrow", shards, "-o", out, *OPTIONS, "--scheduler", client.scheduler.address,
                    "--resume")
    assert result.exit_code == 0, result.output
    assert f"({SHARDS - 1} shards, 1 skipped)" in result.output
    assert same_files(out, reference("bag"))


def test_input_errors_read_as_in_a_single_process_run(client, tmp_path):
    np.save(tmp_path / "w.npy", np.ones((5, 2), np.float32))
    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(pa.table({"ids": [[1, 2], [3]]}), shards / "a.parquet")
    pq.write_table(pa.table({"ids": [[1], [4, 9]]}), shards / "b.parquet")
    single = invoke("embed", tmp_path / "w.npy", shards, "-o", tmp_path / "single")
    on_dask = invoke("embed", tmp_path / "w.npy", shards, "-o", tmp_path / "dask",
                     "--scheduler", client.scheduler.address)
    assert single.exit_code == on_dask.exit_code == 1
    assert on_dask.output == single.output
    assert single.output.startswith("Error: b.parquet: index 9 at row 1, position 1 is out of range")
    with pytest.raises(EmbedtoolError, match="no column 'nope'"):
        dist.embed_dataset(client, shards, tmp_path / "x", tmp_path / "w.npy", column="nope", retries=0)
    with pytest.raises(TypeError, match="colum"):
        dist.embed_dataset(client, shards, tmp_path / "x", tmp_path / "w.npy", colum="ids")
    result = invoke("embed", tmp_path / "w.npy", shards / "a.parquet", "-o", tmp_path / "x.arrow",
                    "--scheduler", "local:2")
    assert result.output.startswith("Error: ") and "not a directory" in result.output


def test_dask_is_not_imported_without_scheduler(data, tmp_path):
    root, shards = data
    script = (
        "import sys; from typer.testing import CliRunner; from embedtool_cli.app import app\n"
        f"r = CliRunner().invoke(app, ['embed', {str(root / 'store.arrow')!r}, {str(shards)!r}, '-o', "
        f"{str(tmp_path / 'out')!r}, '--column', 'tokens', '--oov', 'unk', '--resume', '-q'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_dask_workers_load_the_weights_with_the_weight_options(tmp_path):
    (tmp_path / "g.dat").write_text("a 1 2\nbad row x\nb 3 4\n")
    vectors = dist._worker_vectors(str(tmp_path / "g.dat"), {"format": "glove", "on_bad_row": "skip"})
    assert vectors.tokens.to_pylist() == ["a", "b"] and vectors.metadata["skipped_rows"] == 1
    with pytest.raises(InputFormatError, match="g.dat:2"):  # other options: loaded again, not the cached table
        dist._worker_vectors(str(tmp_path / "g.dat"), {"format": "glove"})
