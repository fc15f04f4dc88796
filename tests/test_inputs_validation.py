"""Untrusted inputs: a damaged Arrow/Parquet input ends in one line and exit 1, never in a crash or an abort
(issue 19, case 10, and case 15's Parquet errors), and one long text line is read in linear time and bounded
memory, or refused (case 13). Crash cases run in real subprocesses: a negative return code is a signal death."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

EMBEDTOOL = Path(sys.executable).with_name("embedtool")
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def cli(*args, cwd=None):
    return subprocess.run([str(EMBEDTOOL), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def failed_in_one_line(result, message, directory):
    """Exit 1 (no signal death), one ``Error:`` line holding ``message``, no temporary file left in ``directory``."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert [p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp")] == []


def list_table(rows=6, width=3):
    """A list<int64> column of ``rows`` lists of ``width`` ids and a string column: offsets 0, 3, 6, ..."""
    ids = pa.array([[(r * width + k) % 50 for k in range(width)] for r in range(rows)], pa.list_(pa.int64()))
    return pa.table({"ids": ids, "word": pa.array(["the", "of", "and", "to", "in", "a"][:rows])})


def write_ipc(table, path, batch_rows=3):
    with pa.ipc.new_file(str(path), table.schema) as w:
        w.write_table(table, max_chunksize=batch_rows)
    return path.read_bytes()


def test_list_offsets_past_the_data_are_refused_naming_the_file_and_batch(tmp_path):
    data = write_ipc(list_table(), tmp_path / "in.arrow")
    offsets = np.arange(4, dtype=np.int32) * 3  # the first batch's list offsets: 0 3 6 9
    at = data.index(offsets.tobytes())
    bad = bytearray(data)
    bad[at + 12 : at + 16] = np.int32(1 << 20).tobytes()  # the last row ends a megabyte past the ids
    (tmp_path / "bad.arrow").write_bytes(bytes(bad))
    result = cli("embed", SAMPLE / "weights.npy", tmp_path / "bad.arrow", "-o", tmp_path / "out.arrow",
                 "--column", "ids")
    failed_in_one_line(result, "bad.arrow: cannot read record batch 0 (from row 0): ", tmp_path)
    assert not (tmp_path / "out.arrow").exists()


def test_string_offsets_past_the_data_are_refused(tmp_path):
    data = write_ipc(list_table().select(["word"]), tmp_path / "in.arrow")
    offsets = np.array([0, 3, 5, 8], np.int32)  # "the", "of", "and"
    at = data.index(offsets.tobytes())
    bad = bytearray(data)
    bad[at + 8 : at + 12] = np.int32(1 << 30).tobytes()
    (tmp_path / "bad.arrow").write_bytes(bytes(bad))
    result = cli("embed", SAMPLE / "glove.txt", tmp_path / "bad.arrow", "-o", tmp_path / "out.arrow")
    failed_in_one_line(result, "bad.arrow: cannot read record batch 0 (from row 0): ", tmp_path)


FLIP_EVERY_BYTE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from embedtool.errors import EmbedtoolError
    from embedtool.pipeline import embed_path

    src, weights, work = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    data = src.read_bytes()
    failed = 0
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        target = work / f"bad{i}{src.suffix}"  # a new file: rewriting one still mapped would be SIGBUS
        target.write_bytes(bytes(bad))
        print(i, file=sys.stderr, flush=True)
        try:
            embed_path(weights, target, work / "out.arrow", column="ids", progress=False, threads=1)
        except EmbedtoolError as e:
            failed += 1
            assert "\\n" not in str(e), (i, str(e))
        target.unlink()
        left = [p.name for p in work.iterdir() if p.name.endswith(".tmp")]
        assert not left, (i, left)
    print(failed, len(data))
""")


@pytest.mark.parametrize("suffix", [".arrow", ".arrows", ".parquet"])
def test_every_flipped_byte_of_an_input_fails_cleanly_or_reads(tmp_path, suffix):
    """Each byte of a small list<int64> input flipped in turn (the length fields, offsets and counts of every
    record batch among them): the run reads it or raises one line, in one process that must not die."""
    table = list_table()
    src = tmp_path / ("in" + suffix)
    if suffix == ".parquet":
        pq.write_table(table, src, row_group_size=3)
    elif suffix == ".arrows":
        with pa.ipc.new_stream(str(src), table.schema) as w:
            w.write_table(table, max_chunksize=3)
    else:
        write_ipc(table, src)
    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run([sys.executable, "-c", FLIP_EVERY_BYTE, str(src), str(SAMPLE / "weights.npy"), str(work)],
                         capture_output=True, text=True, timeout=600,
                         env={"NUMBA_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    failed, size = map(int, run.stdout.split())
    assert 0 < failed < size  # some flips damage the file, some only change an id


def test_damaged_parquet_page_is_one_line(tmp_path):
    """pyarrow's Parquet errors span lines ("Couldn't deserialize thrift: ...\\nDeserializing page header
    failed."): the CLI's message stays one line."""
    pq.write_table(list_table(), tmp_path / "in.parquet", row_group_size=6, compression="none")
    data = bytearray((tmp_path / "in.parquet").read_bytes())
    data[4:24] = b"\\xff" * 20  # the first page header
    (tmp_path / "bad.parquet").write_bytes(bytes(data))
    result = cli("embed", SAMPLE / "weights.npy", tmp_path / "bad.parquet", "-o", tmp_path / "out.arrow",
                 "--column", "ids")
    failed_in_one_line(result, "bad.parquet: ", tmp_path)
