"""End-to-end pipeline speed: embedtool's batch pipeline against the floor and a straightforward script.

For each input kind, in one process, median of --runs runs after a warm-up (numba kernels compiled):

- ``embedtool``: ``embedtool.pipeline.embed_path`` (the code behind ``embedtool embed``), input file to output file.
- ``floor``: merely writing the same output bytes with pyarrow (the same record batch written again and again to
  the same kind of file): no reading, no parsing, no lookups.
- ``script``: a straightforward Python script doing the same job: read lines, split, map with a dict (or int()),
  ``np.take``, build the Arrow column and write it with pyarrow, batch by batch.

Cases: (a) a text file of 50M ids (D=16, so the output stays 3.2 GB), (b) a token file of 20M tokens with a
400,000-word, 100-dim vocabulary, (c) a Parquet file with a ``list<int>`` column of 10M ids (D=100). Output goes to
``--out-dir`` (default: /dev/shm when it exists, so disk speed does not hide the pipeline's own cost).

    python benchmarks/bench_pipeline.py             # the full sizes
    python benchmarks/bench_pipeline.py --quick     # a tenth of the sizes
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedtool.pipeline import embed_path
from embedtool.vectors import Vectors

LINE_TOKENS = 32


def write_repeated(path: Path, block: bytes, total_bytes: int) -> None:
    with open(path, "wb") as f:
        for _ in range(max(1, total_bytes // len(block))):
            f.write(block)


def make_ids_text(path: Path, n_ids: int, vocab: int, rng) -> int:
    """A text file of about ``n_ids`` ids, LINE_TOKENS per line (a random 1 MB block repeated)."""
    rows = rng.integers(0, vocab, size=(4096, LINE_TOKENS))
    block = "".join(" ".join(map(str, r)) + "\n" for r in rows).encode()
    write_repeated(path, block, len(block) * max(1, n_ids // rows.size))
    return (path.stat().st_size // len(block)) * rows.size


def make_tokens_text(path: Path, n_tokens: int, words: list[str], rng) -> int:
    ranks = np.minimum(rng.zipf(1.2, size=(4096, LINE_TOKENS)) - 1, len(words) - 1)
    block = "".join(" ".join(words[i] for i in r) + "\n" for r in ranks).encode()
    write_repeated(path, block, len(block) * max(1, n_tokens // ranks.size))
    return (path.stat().st_size // len(block)) * ranks.size


def make_parquet(path: Path, n_ids: int, vocab: int, rng) -> int:
    lengths = rng.integers(1, 2 * LINE_TOKENS, size=n_ids // LINE_TOKENS)
    values = rng.integers(0, vocab, size=int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
    pq.write_table(pa.table({"ids": column}), path, row_group_size=65536)
    return len(values)


# ---- the floor: the same bytes, written by pyarrow from one batch


def floor(out: Path, n_tokens: int, dim: int, fmt: str) -> None:
    """Write ``n_tokens`` vectors of ``dim`` float32 as ragged rows of LINE_TOKENS, in 32 MB batches."""
    rows = max(1, (32 << 20) // (dim * 4 * LINE_TOKENS))
    values = np.ones(rows * LINE_TOKENS * dim, np.float32)
    offsets = np.arange(rows + 1, dtype=np.int32) * LINE_TOKENS
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.FixedSizeListArray.from_arrays(pa.array(values), dim))
    batch = pa.record_batch([column], names=["embedding"])
    writer = pq.ParquetWriter(str(out), batch.schema) if fmt == "parquet" else pa.ipc.new_file(str(out), batch.schema)
    with writer:
        for _ in range(max(1, n_tokens // (rows * LINE_TOKENS))):
            writer.write_batch(batch)


# ---- the straightforward script


def script(src: Path, out: Path, weight: np.ndarray, vocab: dict | None, fmt: str, batch_lines: int = 8192) -> None:
    """What one would write by hand: lines, split, map, np.take, pyarrow."""
    dim = weight.shape[1]
    schema = pa.schema([("embedding", pa.list_(pa.list_(pa.float32(), dim)))])
    writer = pq.ParquetWriter(str(out), schema) if fmt == "parquet" else pa.ipc.new_file(str(out), schema)

    def flush(seqs):
        lengths = [len(s) for s in seqs]
        ids = np.fromiter((i for s in seqs for i in s), np.int64, sum(lengths))
        vectors = np.take(weight, ids, axis=0)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        column = pa.ListArray.from_arrays(pa.array(offsets),
                                          pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim))
        writer.write_batch(pa.record_batch([column], schema=schema))

    with writer:
        if src.suffix == ".parquet":
            for batch in pq.ParquetFile(src).iter_batches(batch_size=batch_lines):
                flush(batch.column(0).to_pylist())
            return
        seqs = []
        with open(src, encoding="utf-8") as f:
            for line in f:
                tokens = line.split(" ") if vocab is not None else line.split()
                seqs.append([vocab[t.rstrip("\n")] for t in tokens] if vocab is not None else [int(t) for t in tokens])
                if len(seqs) == batch_lines:
                    flush(seqs)
                    seqs = []
        if seqs:
            flush(seqs)


def timed(fn, runs: int, out: Path) -> float:
    """Median seconds of ``fn()`` after a warm-up (numba compiles, the page cache fills). ``out`` is deleted before
    each call, untimed: embedtool writes a temporary file and renames it over the old output, so the old one would
    otherwise still hold its memory (8 GB in case b, in /dev/shm) while the floor's writer truncates it first."""
    times = []
    for _ in range(runs + 1):
        out.unlink(missing_ok=True)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    out_dir = Path(tempfile.mkdtemp(prefix="bench_pipeline_out_", dir=args.out_dir))
    rows = []
    try:
        # (a) text ids, D=16
        w16 = rng.standard_normal((50_000, 16)).astype(np.float32)
        n = make_ids_text(work / "ids.txt", 50_000_000 // scale, 50_000, rng)
        rows.append(case("(a) text ids, 50k x 16", work / "ids.txt", w16, None, n, out_dir, args.runs))
        # (b) tokens, 400k words x 100
        words = [f"w{i:x}" for i in range(400_000)]
        w100 = rng.standard_normal((400_000, 100)).astype(np.float32)
        n = make_tokens_text(work / "tokens.txt", 20_000_000 // scale, words, rng)
        vectors = Vectors(w100, tokens=pa.array(words, pa.string()))
        rows.append(case("(b) tokens, 400k x 100", work / "tokens.txt", vectors, words, n, out_dir, args.runs))
        # (c) Parquet list<int>, 400k x 100
        n = make_parquet(work / "ids.parquet", 10_000_000 // scale, 400_000, rng)
        rows.append(case("(c) Parquet list<int>, 400k x 100", work / "ids.parquet", w100, None, n, out_dir, args.runs))
    finally:
        for d in (work, out_dir):
            for p in d.iterdir():
                p.unlink()
            d.rmdir()
    print("| case | tokens | embedtool tokens/s | floor / embedtool | embedtool vs script |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['tokens']:,} | {r['rate']:,.0f} | {r['floor']:.2f} | {r['script']:.1f}x |")
    print(f"\nmedian of {args.runs} runs after a warm-up; output to {args.out_dir or tempfile.gettempdir()}; "
          "'floor / embedtool' is writing the same bytes with pyarrow divided by embedtool's time (1.0 = at the floor)")


def case(name, src, weights, words, n_tokens, out_dir, runs):
    vectors = weights if isinstance(weights, Vectors) else Vectors(weights)
    dim = vectors.matrix.shape[1]
    fmt = "arrow"
    out = out_dir / f"out.{fmt}"
    vocab = {w: i for i, w in enumerate(words)} if words else None
    t_embed = timed(lambda: embed_path(vectors, src, out, progress=False), runs, out)
    t_floor = timed(lambda: floor(out, n_tokens, dim, fmt), runs, out)
    t_script = timed(lambda: script(src, out, vectors.matrix, vocab, fmt), 1, out)
    out.unlink(missing_ok=True)
    print(f"{name}: embedtool {t_embed:.2f}s floor {t_floor:.2f}s script {t_script:.2f}s", flush=True)
    return {"case": name, "tokens": n_tokens, "rate": n_tokens / t_embed, "floor": t_floor / t_embed,
            "script": t_script / t_embed}


if __name__ == "__main__":
    main()
