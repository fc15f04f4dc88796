"""Outputs never lose data and temporaries never outlive their process (issue 19, cases 1-5, 15-19, 23): an output
that would overwrite the weights, their vocabulary or an input is refused before any work; a killed run leaves
nothing behind; closed standard streams, devices and unwritable targets behave; all errors are one line."""

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from embedtool.errors import InvalidArgumentError
from embedtool.vectors import Vectors, load_vectors, save_vectors
from embedtool_cli.app import app
from helpers import others_can_run, tmpfile_supported

runner = CliRunner()
EMBEDTOOL = str(Path(sys.executable).with_name("embedtool"))
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat"]


@pytest.fixture
def weight(tmp_path):
    w = np.random.default_rng(3).standard_normal((len(WORDS), 3)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    return w


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def cli(*args, cwd, shell_redirects="", **kwargs):
    """The installed ``embedtool`` in a real process (through a shell when redirections are given)."""
    if shell_redirects:
        command = " ".join([EMBEDTOOL, *map(str, args)]) + " " + shell_redirects
        return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, **kwargs)
    return subprocess.run([EMBEDTOOL, *map(str, args)], cwd=cwd, capture_output=True, text=True, **kwargs)


def one_line_error(result, message: str, code: int = 1) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (code, "", f"Error: {message}\n")


def snapshot(directory) -> dict:
    """Every file under ``directory`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def arrow_file(path, table: pa.Table) -> None:
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)


# ---- case 1: the weights and their vocabulary


@pytest.mark.parametrize("command", ["embed", "bag"])
def test_output_never_overwrites_the_weight_store(tmp_path, weight, command):
    save_vectors(Vectors(weight, WORDS), tmp_path / "store.arrow")
    (tmp_path / "toks.txt").write_text("the cat\n")
    before = snapshot(tmp_path)
    result = cli(command, "store.arrow", "toks.txt", "-o", "store.arrow", cwd=tmp_path)
    one_line_error(result, "store.arrow: the output would overwrite the weights store.arrow; name another output")
    assert snapshot(tmp_path) == before


def test_output_never_overwrites_the_weights_sidecar_vocabulary(tmp_path, weight):
    """The vocabulary beside .npy weights is read too: an output of that name is refused (a FIFO or device never)."""
    (tmp_path / "w.vocab.txt").write_text("\n".join(WORDS) + "\n")
    np.save(tmp_path / "ids.npy", np.arange(3))
    (tmp_path / "w.vocab.arrow").symlink_to("w.vocab.txt")  # the same file under an output's suffix
    before = snapshot(tmp_path)
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "ids.npy", "-o", tmp_path / "w.vocab.arrow", "-q")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path}/w.vocab.arrow: the output would overwrite the vocabulary "
                             f"{tmp_path}/w.vocab.txt; name another output\n")
    assert snapshot(tmp_path) == before


def test_output_never_overwrites_a_vocabulary_named_with_vocab(tmp_path, weight):
    """--vocab names the vocabulary explicitly (not a sidecar): it is protected as the sidecar is."""
    (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
    (tmp_path / "toks.txt").write_text("the cat\n")
    (tmp_path / "words.arrow").symlink_to("words.txt")
    before = snapshot(tmp_path)
    result = invoke("embed", tmp_path / "w.npy", tmp_path / "toks.txt", "--vocab", tmp_path / "words.txt",
                    "-o", tmp_path / "words.arrow", "-q")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {tmp_path}/words.arrow: the output would overwrite the vocabulary "
                             f"{tmp_path}/words.txt; name another output\n")
    assert snapshot(tmp_path) == before


# ---- case 2: an input file, by any name


@pytest.mark.parametrize("name", ["in.arrow", "in.parquet"])
def test_output_never_overwrites_the_input_file(tmp_path, weight, name):
    table = pa.table({"ids": pa.array([[1, 2], [3]])})
    pq.write_table(table, tmp_path / name) if name.endswith(".parquet") else arrow_file(tmp_path / name, table)
    os.link(tmp_path / name, tmp_path / f"hard{Path(name).suffix}")
    before = snapshot(tmp_path)
    for output in [name, f"{tmp_path}/{name}", f"hard{Path(name).suffix}"]:
        result = cli("embed", "w.npy", f"./{name}", "-o", output, "--column", "ids", cwd=tmp_path)
        one_line_error(result, f"{output}: the output would overwrite the input ./{name}; name another output")
    assert snapshot(tmp_path) == before


# ---- cases 3 and 4: directories of shards


def test_output_directory_never_overwrites_its_input_shards(tmp_path, weight):
    shards = tmp_path / "shards"
    shards.mkdir()
    arrow_file(shards / "a.arrow", pa.table({"ids": pa.array([[1, 2]])}))
    pq.write_table(pa.table({"ids": pa.array([[3]])}), shards / "b.parquet")
    before = snapshot(tmp_path)
    result = cli("embed", "w.npy", "shards", "-o", "shards", "--column", "ids", cwd=tmp_path)
    one_line_error(result, "shards/a.arrow: the output would overwrite the input shards/a.arrow; name another output")
    assert snapshot(tmp_path) == before


def test_two_input_shards_of_one_output_name_are_refused_before_any_work(tmp_path, weight):
    shards = tmp_path / "shards"
    shards.mkdir()
    np.save(shards / "a.npy", np.array([0, 1]))
    (shards / "a.txt").write_text("2 3\n")
    result = cli("embed", "w.npy", "shards", "-o", "out", cwd=tmp_path)
    one_line_error(result, "shards: a.npy and a.txt would both write a.arrow")
    assert not (tmp_path / "out").exists()


# ---- case 5: convert


def test_convert_never_overwrites_its_source_or_its_vocabulary(tmp_path, weight):
    (tmp_path / "v.vocab.txt").write_text("\n".join(WORDS) + "\n")
    np.save(tmp_path / "v.npy", weight)
    save_vectors(Vectors(weight, WORDS), tmp_path / "g.txt")
    before = snapshot(tmp_path)
    for args, message in [
        (["v.npy", "v.vocab.txt"], "v.vocab.txt: the output would overwrite the vocabulary v.vocab.txt"),
        (["g.txt", "g.txt", "--limit", "5"], "g.txt: the output would overwrite the source g.txt"),
        (["v.npy", "v.safetensors"], "v.vocab.txt: the output would overwrite the vocabulary v.vocab.txt"),
    ]:
        one_line_error(cli("convert", *args, cwd=tmp_path), f"{message}; name another output")
    assert snapshot(tmp_path) == before


def test_save_vectors_never_overwrites_the_file_its_table_came_from(tmp_path, weight):
    np.save(tmp_path / "v.npy", weight)
    with pytest.raises(InvalidArgumentError, match="the output would overwrite the source"):
        save_vectors(load_vectors(tmp_path / "v.npy"), tmp_path / "v.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), weight)


# ---- case 16: no temporary outlives its process


def test_sighup_leaves_no_output_and_no_temporary(tmp_path, weight):
    (tmp_path / "o.arrow").write_bytes(b"old")
    proc = subprocess.Popen([EMBEDTOOL, "embed", "w.npy", "-", "-o", "o.arrow", "-q", "--batch-rows", "1"],
                            cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(b"1 2 3\n" * 100_000)
    proc.stdin.flush()
    time.sleep(1.0)
    proc.send_signal(signal.SIGHUP)
    proc.stdin.close()
    assert proc.wait(timeout=30) == 128 + signal.SIGHUP
    assert sorted(os.listdir(tmp_path)) == ["o.arrow", "w.npy"]
    assert (tmp_path / "o.arrow").read_bytes() == b"old"


def _anonymous_output(pid: int, directory: Path) -> str | None:
    """The /proc path of the process's unnamed (O_TMPFILE) file in ``directory`` once it holds data, else None."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(f"{directory}/#") and os.stat(fd).st_size > 0:
                return str(fd)
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_TMPFILE is Linux's")
def test_kill_9_mid_write_leaves_nothing_and_resume_then_works(tmp_path, weight):
    """SIGKILL cannot be caught: the output being written is an unnamed file, gone with the process. A --resume
    run afterwards embeds the shard (nothing half-written passes for a finished output)."""
    out = tmp_path / "out"
    out.mkdir()
    if not tmpfile_supported(out):
        pytest.skip("this file system has no O_TMPFILE")
    proc = subprocess.Popen([EMBEDTOOL, "embed", "w.npy", "-", "-o", "out/a.arrow", "-q", "--batch-rows", "1000"],
                            cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(b"1 2 3\n" * 1_000_000)  # more than a read chunk (4 MB), so batches are written; stdin stays open
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while _anonymous_output(proc.pid, out) is None:
        assert proc.poll() is None and time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    assert os.listdir(out) == []  # mid-write, nothing visible
    proc.kill()
    proc.wait(timeout=30)
    proc.stdin.close()
    assert os.listdir(out) == []
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.txt").write_text("1 2\n3\n")
    result = cli("embed", "w.npy", "shards", "-o", "out", "--resume", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert os.listdir(out) == ["a.arrow"]
    with pa.memory_map(str(out / "a.arrow")) as source:
        rows = pa.ipc.open_file(source).read_all().column("embedding").to_pylist()
    np.testing.assert_array_equal(np.array(rows[1], np.float32), weight[[3]])


# ---- case 17: stderr closed


def test_closed_stderr_changes_nothing_but_the_messages(tmp_path, weight):
    (tmp_path / "ids.txt").write_text("1 2\n3\n")
    ok = cli("embed", "w.npy", "ids.txt", "-o", "o.arrow", cwd=tmp_path, shell_redirects="2>&-")
    assert ok.returncode == 0 and sorted(os.listdir(tmp_path)) == ["ids.txt", "o.arrow", "w.npy"]
    with pa.memory_map(str(tmp_path / "o.arrow")) as source:
        assert pa.ipc.open_file(source).read_all().num_rows == 2
    (tmp_path / "bad.txt").write_text("1 99\n")
    failed = cli("embed", "w.npy", "bad.txt", "-o", "p.arrow", cwd=tmp_path, shell_redirects="2>&-")
    assert failed.returncode == 1 and not (tmp_path / "p.arrow").exists()


# ---- case 15: closed stdin or stdout, a nonsense --scheduler


def test_closed_stdin_or_stdout_as_dash_is_one_line(tmp_path, weight):
    (tmp_path / "ids.txt").write_text("1\n")
    one_line_error(cli("embed", "w.npy", "-", "-o", "o.arrow", cwd=tmp_path, shell_redirects="<&-"),
                   "-: standard input is closed")
    result = cli("embed", "w.npy", "ids.txt", "-o", "-", cwd=tmp_path, shell_redirects=">&-")
    assert (result.returncode, result.stderr) == (1, "Error: -o -: standard output is closed\n")
    assert sorted(os.listdir(tmp_path)) == ["ids.txt", "w.npy"]


def test_nonsense_scheduler_is_a_usage_error(tmp_path, weight):
    pytest.importorskip("distributed")
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "a.npy", np.array([1]))
    result = cli("embed", "w.npy", "shards", "-o", "out", "--scheduler", "nonsense", cwd=tmp_path)
    one_line_error(result, "--scheduler nonsense: missing port number in address 'nonsense'; give a scheduler's "
                           "address (tcp://host:8786) or local:N", code=2)


# ---- case 18: one stream for a directory


def test_stdout_for_a_directory_of_shards_is_a_usage_error(tmp_path, weight):
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "a.npy", np.array([1]))
    result = cli("embed", "w.npy", "shards", "-o", "-", cwd=tmp_path)
    one_line_error(result, "shards is a directory of shards, and -o - is one stream: name an output directory", 2)
    assert sorted(os.listdir(tmp_path)) == ["shards", "w.npy"]


# ---- case 19: a target that cannot be replaced fails before the work


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to act as another user")
@pytest.mark.skipif(not others_can_run(EMBEDTOOL),
                    reason="the installed command is in a folder other users cannot enter")
@pytest.mark.parametrize("case", ["sticky", "read-only"])
def test_unwritable_target_as_another_user_fails_before_the_work(case):
    """A real run as ``nobody``: the error names the target, comes before the input is read (its id is out of
    range, the error the work would give) and leaves the directory as it was."""
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        top.chmod(0o755)
        np.save(top / "w.npy", np.zeros((4, 2), np.float32))
        np.save(top / "ids.npy", np.array([99]))
        out = top / "out"
        out.mkdir()
        if case == "sticky":
            out.chmod(0o1777)
            (out / "o.arrow").write_bytes(b"root's")
            message = "cannot replace another user's file in a sticky directory"
        else:
            out.chmod(0o555)
            message = f"cannot write in the directory '{out}'"
        for path in top.iterdir():
            if path.is_file():
                path.chmod(0o644)
        before = snapshot(top)
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", EMBEDTOOL, "embed",
                                 "w.npy", "ids.npy", "-o", str(out / "o.arrow")],
                                cwd=top, capture_output=True, text=True, env={**os.environ, "HOME": "/tmp"})
        one_line_error(result, f"{out}/o.arrow: {message}")
        assert snapshot(top) == before
    finally:
        (top / "out").chmod(0o755)
        shutil.rmtree(top)


# ---- case 23: devices


def test_output_to_dev_null_works_and_creates_nothing(tmp_path, weight):
    (tmp_path / "ids.txt").write_text("1 2\n3\n")
    result = cli("embed", "w.npy", "ids.txt", "-o", "/dev/null", "-q", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert sorted(os.listdir(tmp_path)) == ["ids.txt", "w.npy"]
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_output_to_a_fifo_is_an_arrow_stream(tmp_path, weight):
    np.save(tmp_path / "ids.npy", np.array([4, 5]))
    os.mkfifo(tmp_path / "pipe")
    fifo = os.open(tmp_path / "pipe", os.O_RDONLY | os.O_NONBLOCK)  # a reader that never blocks the test
    proc = subprocess.Popen([EMBEDTOOL, "embed", "w.npy", "ids.npy", "-o", "pipe", "-q"], cwd=tmp_path)
    data, deadline = b"", time.monotonic() + 60
    while time.monotonic() < deadline:
        done = proc.poll() is not None
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fifo, 1 << 16):
                data += chunk
        if done:
            break
        time.sleep(0.02)
    os.close(fifo)
    assert proc.wait(timeout=1) == 0
    table = pa.ipc.open_stream(data).read_all()
    np.testing.assert_array_equal(np.array(table.column("embedding").to_pylist(), np.float32), weight[[4, 5]])
    assert sorted(os.listdir(tmp_path)) == ["ids.npy", "pipe", "w.npy"]
