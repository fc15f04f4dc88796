"""Fuzz suite: no weight table or input file, however malformed, crashes the CLI, leaves a file behind or touches
an existing output.

For each weight format (the store made by ``embedtool convert``, plain Arrow IPC, Parquet, ``.npy`` with its vocab
sidecar, safetensors, GloVe text, word2vec text and binary) and each input format (``.npy`` ids, text ids, text
tokens, Arrow IPC file and stream of list<int64>, Parquet, raw u16 ``.bin``), a small valid file is built and mutated
with a fixed seed: byte flips, truncations, length fields / offsets / header counts overwritten with huge, negative
or off-by-one values, and for text garbage bytes, hostile numbers and header counts. Each case runs one command
(``embed``, ``bag``, ``info``, ``lookup``, ``convert``) in a real subprocess with a timeout, and asserts the error
contract of the README:

- exit status 0, 1 or 2: no signal death, no timeout, never a traceback on stderr;
- on failure, stderr is exactly one non-empty line;
- the directory holds the same files as before (plus the output on success): no temporary file is left;
- the inputs never change, and an existing output (some cases create one first) is unchanged on failure;
- on success the output reads back with pyarrow (``info --json`` prints JSON).

Every unmutated file is run first and must succeed, which also compiles the kernels before the timed cases.

Reproduce one case (the failure message names its format and seed):

    .venv/bin/python tests/test_fuzz.py --repro store 7 [--dir DIR]

writes the case's files into DIR (default: a new temporary directory, kept), prints the mutation and the command,
runs it and prints what the suite checks. ``EMBEDTOOL_FUZZ_CASES=N`` runs N mutated cases per format instead of the
default (more for a deeper local run, fewer while developing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.fuzz

EMBEDTOOL = str(Path(sys.executable).with_name("embedtool"))
TIMEOUT_S = 120  # a kernel compiled for a new dtype takes seconds on a busy machine; a hang takes forever
BASELINE_TIMEOUT_S = 600  # the first runs compile every kernel of a fresh checkout
PRECIOUS = b"an existing output that a failed run must leave as it is"

ROWS, DIM = 40, 8
TOKENS = ["<unk>", "the", "naïve", "東京", "of", "and"] + [f"w{i}" for i in range(ROWS - 6)]


def _matrix() -> np.ndarray:
    return np.random.default_rng(20261206).standard_normal((ROWS, DIM)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Valid files


def _arrow_file(table: pa.Table, chunk: int, stream: bool = False) -> bytes:
    sink = pa.BufferOutputStream()
    with (pa.ipc.new_stream if stream else pa.ipc.new_file)(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return sink.getvalue().to_pybytes()


def _parquet_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="none", row_group_size=table.num_rows // 2 + 1)
    return sink.getvalue().to_pybytes()


def _npy(array: np.ndarray) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.PythonFile(sink, mode="w") as f:
        np.lib.format.write_array(f, array, allow_pickle=False)
    return sink.getvalue().to_pybytes()


def _text_table(header: bool) -> bytes:
    lines = [f"{ROWS} {DIM}"] if header else []
    lines += [t + " " + " ".join(repr(float(x)) for x in row) for t, row in zip(TOKENS, _matrix())]
    return ("\n".join(lines) + "\n").encode()


def _store() -> bytes:
    from embedtool.vectors import Vectors, save_vectors

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.arrow"
        save_vectors(Vectors(_matrix(), TOKENS, {"source": "w.txt", "source_format": "glove"}), path)
        return path.read_bytes()


def _safetensors() -> bytes:
    matrix = _matrix()
    header = json.dumps({"__metadata__": {"format": "pt"}, "weight": {
        "dtype": "F32", "shape": [ROWS, DIM], "data_offsets": [0, matrix.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + matrix.tobytes()


def _word2vec_binary() -> bytes:
    body = b"".join(t.encode() + b" " + row.astype("<f4").tobytes() + b"\n" for t, row in zip(TOKENS, _matrix()))
    return f"{ROWS} {DIM}\n".encode() + body


def _ids_lists() -> list[list[int]]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, ROWS, size=int(n)).tolist() for n in rng.integers(0, 7, size=12)]


def _ids_table() -> pa.Table:
    lists = _ids_lists()
    return pa.table({"doc": [f"d{i}" for i in range(len(lists))], "ids": pa.array(lists, pa.list_(pa.int64()))})


def _vocab() -> bytes:
    return ("\n".join(TOKENS) + "\n").encode()


def _tokens_text() -> bytes:
    rng = np.random.default_rng(11)
    return "".join(" ".join(rng.choice(TOKENS, size=int(n))) + "\n" for n in rng.integers(0, 7, size=12)).encode()


@cache
def base_files(kind: str) -> dict[str, bytes]:
    """The valid files of a format's cases (name -> bytes), the same bytes on every run."""
    matrix = _matrix()
    ids = _npy(np.random.default_rng(3).integers(0, ROWS, size=(4, 3)))
    vectors = pa.array(matrix.tolist(), pa.list_(pa.float32()))
    weights = {
        "store": lambda: {"w.arrow": _store()},
        "ipc": lambda: {"w.arrow": _arrow_file(pa.table({"token": TOKENS, "vector": vectors}), chunk=ROWS // 2)},
        "parquet": lambda: {"w.parquet": _parquet_file(pa.table({"token": TOKENS, "vector": vectors}))},
        "npy": lambda: {"w.npy": _npy(matrix), "w.vocab.txt": _vocab()},
        "safetensors": lambda: {"w.safetensors": _safetensors()},
        "glove": lambda: {"w.txt": _text_table(header=False)},
        "word2vec": lambda: {"w.vec": _text_table(header=True)},
        "word2vec-binary": lambda: {"w.bin": _word2vec_binary()},
    }
    if kind in weights:
        return {**weights[kind](), "ids.npy": ids}
    inputs = {
        "ids-npy": lambda: {"in.npy": _npy(np.random.default_rng(5).integers(0, ROWS, size=(6, 5)).astype(np.int32))},
        "ids-text": lambda: {"in.txt": "".join(" ".join(map(str, s)) + "\n" for s in _ids_lists()).encode()},
        "tokens-text": lambda: {"in.txt": _tokens_text(), "w.arrow": _store()},
        "ids-arrow": lambda: {"in.arrow": _arrow_file(_ids_table(), chunk=5)},
        "ids-arrows": lambda: {"in.arrows": _arrow_file(_ids_table(), chunk=5, stream=True)},
        "ids-parquet": lambda: {"in.parquet": _parquet_file(_ids_table())},
        "ids-raw": lambda: {"in.bin": np.random.default_rng(9).integers(0, ROWS, size=24).astype("<u2").tobytes()},
    }
    files = inputs[kind]()
    return files if "w.arrow" in files else {**files, "w.npy": _npy(matrix)}


# ---------------------------------------------------------------------------------------------------------------
# Mutations: each takes the rng and the file's bytes and returns the new bytes and a description to reproduce it.


class Draw(random.Random):
    """The seeded random numbers of one case. ``pick`` takes the ``k``-th option for the ``k``-th case of a format
    that uses the same mutation (options listed most telling first), and a random one past the end of the list."""

    def __init__(self, seed: str, k: int):
        super().__init__(seed)
        self.k = k

    def pick(self, options: list):
        return options[self.k] if self.k < len(options) else self.choice(options)


def flip_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    out = bytearray(data)
    done = []
    for _ in range(rng.choice((1, 1, 2, 4))):
        at = rng.randrange(len(out))
        old = out[at]
        out[at] ^= rng.choice((0x01, 0x80, 0xFF, rng.randrange(1, 256)))
        done.append(f"@{at}:{old:02x}->{out[at]:02x}")
    return bytes(out), "flip " + " ".join(done)


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    return data[:at], f"truncate to {at} of {len(data)} bytes"


def _hostile(value: int, width: int, size: int) -> list[int]:
    """Values that break a length or offset field holding ``value``: off by one, zero, negative, huge."""
    top = (1 << (8 * width - 1)) - 1
    return [value + 1, value - 1, 0, -1, -value, top, -top - 1, 1 << 30, size, value * 16 + 8]


def _overwrite(rng: random.Random, data: bytes, at: int, width: int, what: str) -> tuple[bytes, str]:
    old = int.from_bytes(data[at : at + width], "little", signed=True)
    new = rng.choice(_hostile(old, width, len(data)))
    raw = (new & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return data[:at] + raw + data[at + width :], f"{what} int{8 * width} @{at}: {old} -> {new} ({raw.hex()})"


def _words(data: bytes) -> list[tuple[int, int]]:
    """Aligned int32 words whose value could be a length or offset into the file."""
    values = np.frombuffer(data[: len(data) // 4 * 4], "<i4")
    return [(4 * int(i), 4) for i in np.flatnonzero((values > 0) & (values <= len(data)))]


def _ipc_fields(data: bytes) -> list[tuple[int, int]]:
    """Length and offset fields of an Arrow IPC file or stream: each message's metadata length, the footer's
    length, every row count and every element of the offsets buffers of its string and list columns."""
    spots = []
    at = data.find(b"\xff\xff\xff\xff")
    while at >= 0:
        spots.append((at + 4, 4))
        at = data.find(b"\xff\xff\xff\xff", at + 4)
    if data.endswith(b"ARROW1"):
        spots.append((len(data) - 10, 4))
    stream = not data.startswith(b"ARROW1")
    reader = pa.ipc.open_stream(data) if stream else pa.ipc.open_file(data)
    batches = list(reader) if stream else [reader.get_batch(i) for i in range(reader.num_record_batches)]
    for batch in batches:
        rows = struct.pack("<q", batch.num_rows)
        spots += [(i, 8) for i in range(len(data) - 7) if data[i : i + 8] == rows]
        for column in batch.columns:
            if pa.types.is_string(column.type) or pa.types.is_list(column.type):
                offsets = column.buffers()[1].to_pybytes()[: 4 * (len(column) + 1)]
                at = data.find(offsets)
                spots += [(at + 4 * k, 4) for k in range(len(column) + 1)] if at >= 0 else []
    return spots


def ipc_field(rng, data):
    return _overwrite(rng, data, *rng.choice(_ipc_fields(data)), "ipc field")


def any_word(rng, data):
    """An aligned int32 that could be a length or offset (any aligned int32 in a file without one)."""
    words = _words(data) or [(4 * i, 4) for i in range(len(data) // 4)]
    return _overwrite(rng, data, *rng.choice(words), "word")


def parquet_footer(rng, data):
    """The footer length, or a flip inside the Thrift footer (schema, row groups, column chunk offsets)."""
    size = int.from_bytes(data[-8:-4], "little")
    if rng.random() < 0.3:
        return _overwrite(rng, data, len(data) - 8, 4, "parquet footer length")
    out = bytearray(data)
    at = rng.randrange(len(data) - 8 - size, len(data) - 8)
    old = out[at]
    out[at] = rng.choice((0x00, 0xFF, 0x7F, old ^ 0x01, old ^ 0x80, rng.randrange(256)))
    return bytes(out), f"parquet footer byte @{at}: {old:02x}->{out[at]:02x}"


def _npy_parts(data: bytes) -> tuple[str, bytes]:
    size = int.from_bytes(data[8:10], "little")
    return data[10 : 10 + size].decode("latin1"), data[10 + size :]


def _npy_with(header: str, body: bytes) -> bytes:
    header = header.rstrip() + " "
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + body


# The variants of a header mutation, the most telling first: the k-th case of a format that uses the mutation takes
# the k-th variant (``Draw.pick``), so that the default count covers them; later cases draw at random.
NPY_HEADER = [("shape", "(-1, {dim})"), ("descr", "'>f4'"), ("shape", "({big}, {dim})"), ("descr", "'|O'"),
              ("length", None), ("shape", "({rows1}, {dim})"), ("descr", "'>i8'"), ("fortran", "True"),
              ("syntax", None), ("shape", "({rows}, -{dim})"), ("descr", "'<f2'"), ("shape", "()"),
              ("descr", "'<U2'"), ("shape", "(4398046511104, 4398046511104)"), ("descr", "'bogus'"),
              ("shape", "({rows}, {dim}, 1)"), ("descr", "'|b1'"), ("shape", "(0, {dim})"), ("descr", "'<c8'"),
              ("shape", "({rows},)"), ("descr", "[('a', '<f4')]"), ("fortran", "'yes'"), ("descr", "'<f8'"),
              ("shape", "({rows}, {dim1})"), ("descr", "'|V4'"), ("descr", "'<u2'")]


def npy_header(rng, data):
    """The dict of the .npy header: another shape (huge, negative, off by one), dtype, order, or broken syntax."""
    header, body = _npy_parts(data)
    fields = eval(header)  # the header numpy wrote: a dict literal
    what, new = rng.pick(NPY_HEADER)
    if what == "length":
        return _overwrite(rng, data, 8, 2, "npy header length")
    if what == "shape":
        rows, *rest = fields["shape"] or (1,)
        dim = rest[0] if rest else 1
        new = new.format(rows=rows, dim=dim, rows1=rows + 1, dim1=dim + 1, big=1 << 42)
        text = header.replace(repr(fields["shape"]), new, 1)
    elif what == "descr":
        text = header.replace(repr(fields["descr"]), new, 1)
    elif what == "fortran":
        text = header.replace("False", new, 1)
    else:
        cut = rng.randrange(1, len(header.rstrip()))
        junk = rng.choice(("", "}", "{", "'", "\\", "(((((", "1e999", "\x00"))
        text = header[:cut] + junk + header[cut + 1 :]
        new = f"byte {cut} -> {junk!r}"
    return _npy_with(text, body), f"npy header {what}: {new}"


def _safetensors_variants(size: int, file_size: int, rows: int, dim: int, end: int) -> list:
    return [
        ("data_offsets", [-64, end - 64]), ("entry", "weight"), ("shape", [rows + 1, dim]), ("nesting", None),
        ("length", (1 << 64) - 1), ("data_offsets", [0, end, 0]), ("dtype", "I32"), ("shape", [-rows, -dim]),
        ("data_offsets", None), ("dtype", None), ("length", size + 1), ("data_offsets", [0, 1 << 62]),
        ("shape", ["40", dim]), ("entry", []), ("data_offsets", [0, end + 4]), ("dtype", "F64"), ("shape", None),
        ("length", file_size - 8), ("data_offsets", [end, 0]), ("shape", [1 << 40, 1 << 40]), ("dtype", 32),
        ("data_offsets", [0.5, end]), ("shape", [rows]), ("entry", 0), ("data_offsets", [4, end + 4]),
        ("length", 0), ("dtype", "BF16"), ("shape", [rows * dim, 1]), ("data_offsets", [True, end]),
        ("shape", [0, dim]), ("data_offsets", "0"), ("length", 1 << 63), ("dtype", ["F32"]), ("entry", None),
        ("data_offsets", [-(1 << 70), end]), ("shape", [rows, dim, 1]), ("length", size - 1), ("dtype", "F16"),
    ]


def safetensors_header(rng, data):
    """The header's length field, or one of its JSON values: offsets, shape, dtype of the wrong kind or range, an
    entry that is not an object, or nesting deeper than a JSON parser's recursion."""
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    entry = header["weight"]
    key, new = rng.pick(_safetensors_variants(size, len(data), *entry["shape"], entry["data_offsets"][1]))
    if key == "length":
        return struct.pack("<Q", new) + data[8:], f"safetensors header length {size} -> {new}"
    if key == "entry":
        header["weight"] = new
    elif key == "nesting":
        header["__metadata__"] = {"format": "[" * 100000 + "]" * 100000}
    elif new is None:
        del entry[key]
    else:
        entry[key] = new
    raw = json.dumps(header).encode()
    if key == "nesting":
        raw = raw.replace(b'"[[[', b"[[[").replace(b']]]"', b"]]]")
        new = "nested 100000 deep in __metadata__"
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + size :], f"safetensors header {key}: {new!r}"


HUGE = ["9223372036854775808", "2147483648", "-1", "18446744073709551616", "4294967296", "0", "1" + "0" * 40,
        "9223372036854775807", "2147483647", "00000000000000000000040"]


def text_header(rng, data):
    """The ``rows dim`` first line of word2vec text and binary: counts huge, negative, zero or off by one."""
    first, rest = data.split(b"\n", 1)
    rows, dim = first.decode().split()
    r1, d1 = str(int(rows) + 1), str(int(dim) + 1)
    r0, d0 = str(int(rows) - 1), str(int(dim) - 1)
    new_rows, new_dim = rng.pick([(HUGE[0], dim), (rows, HUGE[3]), (r1, dim), ("-1", dim), (rows, HUGE[1]),
                                  (rows, d0), (r0, dim), (HUGE[4], HUGE[4]), (rows, d1), ("0", "0"), (rows, "-8"),
                                  (rng.choice(HUGE), rng.choice(HUGE))])
    line = f"{new_rows} {new_dim}".encode()
    return line + b"\n" + rest, f"header {first.decode()!r} -> {line.decode()!r}"


def prepend_header(rng, data):
    """A word2vec ``rows dim`` line before GloVe rows, its counts huge, negative or off by one."""
    line = rng.pick([f"{HUGE[0]} {DIM}", f"{ROWS + 1} {DIM}", f"{ROWS} {HUGE[1]}", f"-1 {DIM}", f"{ROWS} {DIM + 1}",
                     f"{rng.choice(HUGE)} {rng.choice(HUGE)}"])
    return line.encode() + b"\n" + data, f"prepend header {line!r}"


GARBAGE = [b"\x00", b"\xff\xfe", b"\xc3", b"\r", b"\r\n", b"\n\n", b"\t", b" ", b"\x0b\x0c", b"\xef\xbb\xbf",
           b"\xe2\x80\xa8", b"-", b"nan", b"1e999", b"99999999999999999999999999", b"-1", b"0x10", b"\xd9\xa3",
           b"+", b".", b"e", b"1_000", b"inf", b"-0", b"\x1b[31m"]


def insert_garbage(rng, data):
    at = rng.randrange(len(data) + 1)
    junk = b"".join(rng.choice(GARBAGE) for _ in range(rng.randint(1, 3)))
    return data[:at] + junk + data[at:], f"insert {junk!r} @{at}"


HOSTILE_FIELDS = [b"nan", b"-inf", b"1e400", b"-1e400", b"1e-400", b"0x1p3", b"1_0", b"\xd9\xa1", b"", b"-", b"+",
                  b"9" * 400, b"1.5e", b".", b"--1", b"1e+", b"NaN", b"Infinity", b"3.", b"-0", b"\x00", b"\xff",
                  b"18446744073709551616", b"9223372036854775808", b"-9223372036854775809", b"40", b"-1"]


def replace_field(rng, data):
    """One space-separated field of one line (a value, a token or an id) becomes a hostile one, or a line is
    dropped, repeated, cut short or made longer."""
    lines = data.split(b"\n")
    n = rng.randrange(len(lines) - 1)
    fields = lines[n].split(b" ")
    what = rng.choice(("field", "field", "field", "drop", "repeat", "short", "long"))
    if what == "field":
        k = rng.randrange(len(fields))
        fields[k] = rng.choice(HOSTILE_FIELDS)
        lines[n] = b" ".join(fields)
        what = f"field {k} -> {fields[k][:20]!r}"
    elif what == "drop":
        del lines[n]
    elif what == "repeat":
        lines.insert(n, lines[n])
    elif what == "short":
        lines[n] = b" ".join(fields[:-1])
    else:
        lines[n] += b" 1.0"
    return b"\n".join(lines), f"line {n + 1}: {what}"


def vocab_sidecar(rng, data):
    """The sidecar vocabulary: a token too few or too many, a repeated token, undecodable bytes, CR line ends."""
    lines = data.split(b"\n")
    what = rng.choice(("drop", "extra", "repeat", "bytes", "crlf", "empty"))
    if what == "drop":
        del lines[rng.randrange(len(lines) - 1)]
    elif what == "extra":
        lines.insert(rng.randrange(len(lines)), b"extra")
    elif what == "repeat":
        lines[5] = lines[1]
    elif what == "bytes":
        lines[rng.randrange(len(lines) - 1)] = rng.choice((b"\xff\xfe", b"a\x00b", b"\xc3", b"\xed\xa0\x80"))
    elif what == "crlf":
        return data.replace(b"\n", b"\r\n"), "vocab: CRLF line ends"
    else:
        return b"", "vocab: empty"
    return b"\n".join(lines), f"vocab: {what}"


# ---------------------------------------------------------------------------------------------------------------
# Formats: their files, the mutations that apply to each and the commands that read them.

Mutation = Callable[[Draw, bytes], tuple[bytes, str]]
BINARY = [flip_bytes, truncate, any_word]
TEXT = [flip_bytes, truncate, insert_garbage, replace_field]


@dataclass
class Format:
    mutations: list[tuple[str, Mutation]]  # (file, mutation): case ``seed`` takes ``seed % len``
    commands: list[list[str]]  # ``{out}`` is the output file of the case, if any
    cases: int


def _weight_commands(w: str, query: list[str]) -> list[list[str]]:
    return [
        ["info", w, "--json"], ["info", w], ["lookup", w, *query],
        ["embed", w, "ids.npy", "-o", "{out}.arrow", "-q"], ["embed", w, "ids.npy", "-o", "{out}.parquet", "-q"],
        ["bag", w, "ids.npy", "-o", "{out}.arrows", "-q", "--mode", "max"],
        ["bag", w, "ids.npy", "-o", "{out}.arrow", "-q", "--max-norm", "1"],
        ["convert", w, "{out}.arrow", "-q"], ["convert", w, "{out}.parquet", "-q", "--dtype", "float16"],
    ]


def _input_commands(i: str, *extra: str, weights: str = "w.npy") -> list[list[str]]:
    return [
        ["embed", weights, i, "-o", "{out}.arrow", "-q", *extra],
        ["embed", weights, i, "-o", "{out}.parquet", "-q", "--padding-idx", "0", *extra],
        ["embed", weights, i, "-o", "{out}.arrows", "-q", "--max-norm", "1", *extra],
        ["bag", weights, i, "-o", "{out}.arrow", "-q", "--mode", "sum", *extra],
        ["bag", weights, i, "-o", "{out}.parquet", "-q", "--mode", "max", "--padding-idx", "0", *extra],
    ]


WORDS = ["the", "naïve", "東京"]
IPC = BINARY + [ipc_field, ipc_field]
FORMATS = {
    "store": Format([("w.arrow", m) for m in IPC], _weight_commands("w.arrow", WORDS), 14),
    "ipc": Format([("w.arrow", m) for m in IPC], _weight_commands("w.arrow", WORDS), 12),
    "parquet": Format([("w.parquet", m) for m in BINARY + [parquet_footer, parquet_footer]],
                      _weight_commands("w.parquet", WORDS), 12),
    "npy": Format([("w.npy", m) for m in BINARY + [npy_header, npy_header]] + [("w.vocab.txt", vocab_sidecar)],
                  _weight_commands("w.npy", WORDS), 14),
    "safetensors": Format([("w.safetensors", m) for m in BINARY + [safetensors_header] * 3],
                          _weight_commands("w.safetensors", ["0", "39"]), 14),
    "glove": Format([("w.txt", m) for m in TEXT + [prepend_header]], _weight_commands("w.txt", WORDS), 12),
    "word2vec": Format([("w.vec", m) for m in TEXT + [text_header]], _weight_commands("w.vec", WORDS), 12),
    "word2vec-binary": Format([("w.bin", m) for m in BINARY + [insert_garbage, text_header, text_header]],
                              _weight_commands("w.bin", WORDS), 12),
    "ids-npy": Format([("in.npy", m) for m in BINARY + [npy_header, npy_header]],
                      _input_commands("in.npy"), 10),
    "ids-text": Format([("in.txt", m) for m in TEXT], _input_commands("in.txt"), 8),
    "tokens-text": Format([("in.txt", m) for m in TEXT],
                          _input_commands("in.txt", weights="w.arrow")
                          + [["embed", "w.arrow", "in.txt", "-o", "{out}.arrow", "-q", "--oov", "skip"]], 8),
    "ids-arrow": Format([("in.arrow", m) for m in IPC],
                        _input_commands("in.arrow", "--column", "ids", "--keep", "doc"), 10),
    "ids-arrows": Format([("in.arrows", m) for m in IPC], _input_commands("in.arrows", "--column", "ids"),
                         10),
    "ids-parquet": Format([("in.parquet", m) for m in BINARY + [parquet_footer]],
                          _input_commands("in.parquet", "--column", "ids", "--keep", "doc"), 8),
    "ids-raw": Format([("in.bin", m) for m in (flip_bytes, truncate, insert_garbage)],
                      _input_commands("in.bin", "--input-format", "u16", "--seq-len", "4"), 6),
}


def case_count(kind: str) -> int:
    return int(os.environ.get("EMBEDTOOL_FUZZ_CASES", FORMATS[kind].cases))


# ---------------------------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    kind: str
    seed: int | None  # None: the unmutated files
    files: dict[str, bytes]
    mutation: str
    args: list[str]
    target: str | None  # the output file the command writes, if any
    existing: bytes | None  # what the target holds before the run, if it exists

    def shell(self, where: Path) -> str:
        pre = f"printf %s {shlex.quote(self.existing.decode())} > {self.target} && " if self.existing else ""
        return f"cd {shlex.quote(str(where))} && {pre}embedtool {shlex.join(self.args)}"

    def title(self) -> str:
        return f"{self.kind} seed {self.seed}: {self.mutation}"


def make_case(kind: str, seed: int | None) -> Case:
    """The case ``seed`` of a format: its mutation (round robin over the format's, parameters from the seed) and its
    command (from the seed); ``seed=None`` is the unmutated files with the first command."""
    spec = FORMATS[kind]
    files = dict(base_files(kind))
    if seed is None:
        rng = Draw(f"{kind}:{seed}", 0)
        mutation, command = "none", spec.commands[(len(spec.commands) - 1) // 2]
    else:
        chosen = spec.mutations[seed % len(spec.mutations)]
        rng = Draw(f"{kind}:{seed}", sum(spec.mutations[i % len(spec.mutations)] == chosen for i in range(seed)))
        name, mutate = chosen
        files[name], mutation = mutate(rng, files[name])
        mutation = f"{name}: {mutation}"
        command = rng.choice(spec.commands)
    args = [a.replace("{out}", "out") for a in command]
    target = next((a for a, c in zip(args, command) if "{out}" in c), None)
    existing = PRECIOUS if target is not None and rng.random() < 0.5 else None
    return Case(kind, seed, files, mutation, args, target, existing)


def _snapshot(where: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(where.iterdir())}


def _readable(path: Path) -> str | None:
    """Why pyarrow cannot read an output file, or None."""
    try:
        if path.suffix == ".parquet":
            pq.read_table(path)
        elif path.suffix == ".arrows":
            pa.ipc.open_stream(path.read_bytes()).read_all()
        else:
            pa.ipc.open_file(path.read_bytes()).read_all()
    except Exception as e:  # noqa: BLE001 - any failure to read is the finding
        return f"output {path.name} does not read back with pyarrow: {type(e).__name__}: {e}"
    return None


def run_case(case: Case, where: Path, timeout: float = TIMEOUT_S) -> list[str]:
    """Write the case's files into the empty directory ``where``, run its command, and return the broken promises
    (empty when the run kept the contract)."""
    for name, data in case.files.items():
        (where / name).write_bytes(data)
    if case.existing is not None:
        (where / case.target).write_bytes(case.existing)
    before = _snapshot(where)
    try:
        proc = subprocess.run([EMBEDTOOL, *case.args], cwd=where, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return [f"timed out after {timeout} s"]
    rc, stderr = proc.returncode, proc.stderr.decode("utf-8", "replace")
    problems = []
    if rc < 0:
        problems.append(f"killed by signal {-rc}")
    elif rc not in (0, 1, 2):
        problems.append(f"exit status {rc}")
    if "Traceback" in stderr or "Aborted" in stderr:
        problems.append("a traceback or 'Aborted' on stderr")
    if rc != 0 and (stderr.count("\n") != 1 or not stderr.endswith("\n") or not stderr.strip()):
        problems.append(f"stderr is {stderr.count(chr(10))} lines, not one")
    after = _snapshot(where)
    made = rc == 0 and case.target is not None
    new = sorted(set(after) - set(before) - ({case.target} if made else set()))
    gone = sorted(set(before) - set(after))
    if new or gone:
        problems.append(f"files left {new}, removed {gone}")
    for name, data in before.items():
        if name in after and after[name] != data and not (made and name == case.target):
            problems.append(f"{name} changed" + (" (the existing output, on failure)" if name == case.target else ""))
    if made:
        problems.append(_readable(where / case.target) if case.target in after else "exit 0 but no output")
    if rc == 0 and case.args[0] == "info" and "--json" in case.args:
        try:
            json.loads(proc.stdout)
        except ValueError:
            problems.append(f"info --json printed {proc.stdout[:200]!r}")
    problems = [p for p in problems if p]
    if problems:
        tail = "\n    ".join(stderr.strip().splitlines()[-6:])
        problems.append(f"rc {rc}, stderr:\n    {tail}")
    return problems


def report(case: Case, where: Path, problems: list[str]) -> str:
    return (f"{case.title()}\n  $ {case.shell(where)}\n  " + "\n  ".join(problems)
            + f"\n  reproduce: .venv/bin/python tests/test_fuzz.py --repro {case.kind} {case.seed}")


@pytest.mark.parametrize("kind", list(FORMATS))
def test_malformed_files_keep_the_error_contract(kind, tmp_path):
    """The unmutated files succeed (so the harness can tell), then every mutated case keeps the contract."""
    base = make_case(kind, None)
    (tmp_path / "base").mkdir()
    problems = run_case(base, tmp_path / "base", BASELINE_TIMEOUT_S)
    assert not problems and (tmp_path / "base" / base.target).exists(), report(base, tmp_path / "base", problems)

    def one(seed: int) -> str | None:
        case = make_case(kind, seed)
        where = tmp_path / str(seed)
        where.mkdir()
        problems = run_case(case, where)
        return report(case, where, problems) if problems else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(one, range(case_count(kind))) if f]
    if failures:
        pytest.fail(f"{len(failures)} of {case_count(kind)} cases broke the contract:\n\n" + "\n\n".join(failures),
                    pytrace=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="Reproduce one case of the fuzz suite.")
    parser.add_argument("--repro", nargs=2, metavar=("FORMAT", "SEED"), required=True,
                        help=f"the format ({', '.join(FORMATS)}) and seed (or 'None') a failure names")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a new temporary directory)")
    args = parser.parse_args()
    kind, seed = args.repro[0], None if args.repro[1] == "None" else int(args.repro[1])
    where = args.dir or Path(tempfile.mkdtemp(prefix=f"fuzz-{kind}-{seed}-"))
    where.mkdir(parents=True, exist_ok=True)
    if any(where.iterdir()):
        sys.exit(f"{where} is not empty")
    case = make_case(kind, seed)
    print(f"{case.title()}\n$ {case.shell(where)}")
    problems = run_case(case, where)
    print("\n".join(problems) if problems else "kept the contract")


if __name__ == "__main__":
    main()
