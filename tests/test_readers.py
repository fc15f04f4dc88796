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


def test_damaged_arrow_stream_on_stdin_is_refused(tmp_path):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, list_table().schema) as w:
        w.write_table(list_table(), max_chunksize=3)
    data = bytearray(sink.getvalue().to_pybytes())
    offsets = (np.arange(4, dtype=np.int32) * 3).tobytes()  # each batch's list offsets: 0 3 6 9
    at = bytes(data).index(offsets, bytes(data).index(offsets) + 1)  # the second batch's
    data[at + 12 : at + 16] = np.int32(-5).tobytes()
    run = subprocess.run([str(EMBEDTOOL), "embed", str(SAMPLE / "weights.npy"), "-", "-o", str(tmp_path / "o.arrow"),
                          "--column", "ids"], input=bytes(data), capture_output=True, timeout=300)
    failed_in_one_line(subprocess.CompletedProcess(run.args, run.returncode, "", run.stderr.decode()),
                       "stdin: cannot read record batch 1 (from row 3): ", tmp_path)


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


# ---- case 13: one long line


LONG_LINE = 64_000_000  # bytes: 16M ids of "123 ", just under the default limit (64 MiB)

MEASURED = textwrap.dedent("""
    import resource, subprocess, sys, time
    started = time.perf_counter()
    run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(run.returncode, seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    sys.stderr.write(run.stderr)
""")


def measured(*args):
    """Run the CLI in a fresh process: its return code, stderr, seconds and peak RSS (bytes)."""
    run = subprocess.run([sys.executable, "-c", MEASURED, str(EMBEDTOOL), *map(str, args)], capture_output=True,
                         text=True, timeout=300)
    code, seconds, peak = run.stdout.split()
    return int(code), run.stderr, float(seconds), int(peak)


def test_a_64_mb_text_line_reads_in_bounded_memory_or_is_refused_early(tmp_path):
    with open(tmp_path / "long.txt", "wb") as f:
        f.write(b"1 2\n" + b"123 " * (LONG_LINE // 4) + b"\n7\n")
    (tmp_path / "short.txt").write_bytes(b"1 2\n123\n7\n")
    bag = ["bag", SAMPLE / "weights.npy", "--mode", "max"]  # the max of 16M equal rows is exactly that row
    # The base loads the kernels as the long runs do (--max-norm never takes the small NumPy path).
    code, err, base_seconds, base_peak = measured(*bag, tmp_path / "short.txt", "-o", tmp_path / "short.arrow", "-q",
                                                  "--max-norm", 1)
    assert code == 0, err
    code, err, seconds, peak = measured(*bag, tmp_path / "long.txt", "-o", tmp_path / "long.arrow", "-q")
    assert code == 0, err
    pooled = pa.ipc.open_file(str(tmp_path / "long.arrow")).read_all().column("embedding").combine_chunks()
    weight = np.load(SAMPLE / "weights.npy")
    expected = [np.maximum(weight[1], weight[2]), weight[123], weight[7]]
    np.testing.assert_array_equal(pooled.flatten().to_numpy().reshape(3, -1), expected)
    assert peak - base_peak < 6 * LONG_LINE, (peak, base_peak)  # the line, its 16M ids, their parse: linear
    assert seconds - base_seconds < 60, (seconds, base_seconds)

    code, err, seconds, peak = measured(*bag, tmp_path / "long.txt", "-o", tmp_path / "refused.arrow",
                                        "--max-line-bytes", 8_000_000)
    assert code == 1
    assert err == ("Error: long.txt: line 2 is longer than 8,000,000 bytes (a line is one row, held whole in memory; "
                   "--max-line-bytes raises the limit)\n")
    assert peak - base_peak < 64 << 20, (peak, base_peak)  # stopped after about 8 MB, not the 64 MB line
    assert not (tmp_path / "refused.arrow").exists()


def test_reading_a_long_line_in_small_pieces_is_linear():
    """A 64 MB line read 4 KiB at a time: joining each piece onto the rest (quadratic: 16K copies of up to 64 MB)
    took minutes; gathering the pieces and joining once takes well under a second."""
    script = textwrap.dedent("""
        import io, time
        from embedtool.readers import _line_chunks
        data = b"1 " * (64_000_000 // 2) + b"\\n2\\n"
        started = time.perf_counter()
        chunks = list(_line_chunks(io.BytesIO(data), 1 << 12, 1 << 30, "long.txt"))
        print(time.perf_counter() - started)
        assert b"".join(c for c, _ in chunks) == data and chunks[0][1] == 1
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) < 20


def test_a_glove_line_over_the_limit_is_refused_without_reading_it_whole(tmp_path):
    from embedtool.formats.text_blocks import MAX_ROW_BYTES

    with open(tmp_path / "g.txt", "wb") as f:
        f.write(b"a 1 2\nb 3 4\nx" + b" 1" * (MAX_ROW_BYTES // 2 + 1) + b"\nc 5 6\n")
    from embedtool import small

    # The base is read as g.txt is, by the block reader and its kernels: a file larger than small.SMALL_TEXT.
    (tmp_path / "base.txt").write_bytes(b"".join(b"w%d 1 2\n" % i for i in range(small.SMALL_TEXT // 8 + 1)))
    code, err, _, base_peak = measured("info", tmp_path / "base.txt")
    assert code == 0, err
    code, err, _, peak = measured("info", tmp_path / "g.txt")
    assert code == 1
    assert err == (f"Error: {tmp_path / 'g.txt'}:3: line is longer than {MAX_ROW_BYTES:,} bytes (a row is a token "
                   "and its numbers; is this a text embedding file?)\n")
    assert peak - base_peak < 2 * MAX_ROW_BYTES, (peak, base_peak)
