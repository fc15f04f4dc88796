"""Exact nearest-neighbour search: embedtool against faiss-cpu, NumPy and gensim, side by side in one process.

Top-k by cosine for Q random queries against an N x D random float32 table (seeded). Every method runs in a shuffled
order each round (a warm-up first, then --runs rounds) and the median time is kept:

- ``embedtool``: ``Vectors.most_similar(query_vectors, k)`` (cosine on the raw table; its row norms are computed
  once, in the warm-up, as they are once per open).
- ``faiss``: ``IndexFlatIP`` on the normalised table (the normalised copy and ``add`` are not timed).
- ``numpy``: the normalised table, ``matmul`` on blocks of 2,048 queries, ``argpartition`` + ``argsort`` per block.
- ``gensim``: ``KeyedVectors.most_similar`` one query at a time, timed on a subsample of queries and extrapolated
  to Q (it is linear in Q: one BLAS call per query); printed as such.

Printed: each median, the ratio to embedtool (> 1: embedtool is faster), the fraction of ids equal to faiss's and
to NumPy's, and the fraction of the machine's float32 peak (2 Q N D flops / time / peak). The peak is estimated as
cores x FMA units per core (2 assumed: Intel server cores since Skylake-SP, AMD since Zen 4 for 256-bit) x float32
lanes (16 with avx512f, 8 with avx2) x 2 flops x clock (lscpu's max MHz, else /proc/cpuinfo's MHz).

``--one-word`` measures the shell call instead: whole-process times (median of --repeat, warm: page cache hot, no
numba kernel to compile) of ``embedtool similar store.arrow w17 -k 10`` on a 400,000 x 300 store (random, seeded,
tokens w0..w399999, built once in a temporary directory), of the start-up baseline of bench_startup.py (``python -c
"import numpy, pyarrow, pyarrow.ipc"``), and of one pass over the table at memory bandwidth (a float32 dot of the
mapped table with itself, its pages in the page cache and in the process's page table); the target (issue 23) is the
call within 2x baseline + pass.

    python benchmarks/bench_similar.py            # 10,000 queries x 400,000 x 300, k = 10
    python benchmarks/bench_similar.py --quick    # 1,000 queries x 100,000 x 300
    python benchmarks/bench_similar.py --one-word # the shell call, median of 9
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench_startup import EMBEDTOOL, ROOT, imports_numba, run
from embedtool.vectors import Vectors, load_vectors, save_vectors


def peak_gflops() -> tuple[float, str]:
    """The machine's float32 FMA peak (GFLOP/s) and how it was estimated."""
    flags = ""
    mhz = 0.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        found = re.search(r"CPU max MHz:\s*([\d.]+)", lscpu)
        mhz = float(found.group(1)) if found else mhz
    except OSError:
        pass
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    cores = len(os.sched_getaffinity(0))
    peak = cores * 2 * lanes * 2 * mhz / 1000
    return peak, f"{cores} cores x 2 FMA units x {lanes} lanes x 2 flops x {mhz:.0f} MHz"


def numpy_search(unit_table, unit_queries, k, block=2048):
    ids = np.empty((len(unit_queries), k), np.int64)
    for q0 in range(0, len(unit_queries), block):
        scores = unit_queries[q0 : q0 + block] @ unit_table.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
        ids[q0 : q0 + block] = np.take_along_axis(part, order, 1)
    return ids


def one_word(repeat: int, rows: int, dim: int) -> None:
    """The ``--one-word`` table: the call, the baseline and one pass, each a median of ``repeat``."""
    compileall.compile_dir(ROOT / "embedtool", quiet=1)
    compileall.compile_dir(ROOT / "cli", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-similar-") as tmp:
        store = Path(tmp) / "store.arrow"
        table = np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)
        save_vectors(Vectors(table, pa.array([f"w{i}" for i in range(rows)])), store)
        del table
        env = dict(os.environ)
        call = [*EMBEDTOOL, "similar", str(store), "w17", "-k", "10"]
        baseline = [sys.executable, "-c", "import numpy, pyarrow, pyarrow.ipc"]
        run(call, env)  # warm: the store's pages in the page cache
        flat = load_vectors(store).matrix.reshape(-1)
        flat @ flat  # its pages mapped in this process
        times = {"call": [], "baseline": [], "pass": []}
        for _ in range(repeat):
            times["baseline"].append(run(baseline, env))
            times["call"].append(run(call, env))
            started = time.perf_counter()
            flat @ flat
            times["pass"].append(time.perf_counter() - started)
        median = {name: statistics.median(values) for name, values in times.items()}
        numba = "imported" if imports_numba(call, env) else "no"
    target = median["baseline"] + median["pass"]
    print(f"embedtool similar store.arrow w17 -k 10: {rows:,} x {dim} float32 ({flat.nbytes / 1e6:,.0f} MB), warm, "
          f"median of {repeat}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print("| call | s | / (baseline + pass) | numba |")
    print("|---|---:|---:|---|")
    print(f"| `embedtool similar store.arrow w17 -k 10` | {median['call']:.3f} | {median['call'] / target:.2f}x "
          f"| {numba} |")
    print(f"| baseline `import numpy, pyarrow, pyarrow.ipc` | {median['baseline']:.3f} | | |")
    print(f"| one pass over the table ({flat.nbytes / median['pass'] / 1e9:.1f} GB/s) | {median['pass']:.3f} | | |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 queries x 100,000 x 300")
    parser.add_argument("--queries", type=int)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gensim-queries", type=int, default=20, help="the subsample gensim is timed on")
    parser.add_argument("--skip", nargs="*", default=[], help="methods to leave out (faiss, numpy, gensim)")
    parser.add_argument("--one-word", action="store_true", help="time the shell call `embedtool similar STORE w17`")
    parser.add_argument("--repeat", type=int, default=9, help="runs of each process with --one-word (median kept)")
    args = parser.parse_args()
    if args.one_word:
        one_word(args.repeat, args.rows or 400_000, args.dim)
        return
    nq = args.queries or (1_000 if args.quick else 10_000)
    n = args.rows or (100_000 if args.quick else 400_000)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((n, args.dim), dtype=np.float32)
    queries = rng.standard_normal((nq, args.dim), dtype=np.float32)
    unit_table = table / np.linalg.norm(table, axis=1, keepdims=True)
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    k = args.k

    vectors = Vectors(table)
    methods = {"embedtool": lambda: vectors.most_similar(queries, k).ids}
    if "faiss" not in args.skip:
        import faiss

        index = faiss.IndexFlatIP(args.dim)
        index.add(unit_table)
        methods["faiss"] = lambda: index.search(unit_queries, k)[1]
    if "numpy" not in args.skip:
        methods["numpy"] = lambda: numpy_search(unit_table, unit_queries, k)
    sub = min(args.gensim_queries, nq)
    if "gensim" not in args.skip:
        from gensim.models import KeyedVectors

        kv = KeyedVectors(args.dim)
        kv.add_vectors([str(i) for i in range(n)], table)
        kv.fill_norms()
        methods["gensim"] = lambda: [kv.most_similar(queries[i], topn=k) for i in range(sub)]
    scale = {"gensim": nq / sub}

    times = {name: [] for name in methods}
    results = {}
    for run in range(args.runs + 1):
        order = list(methods)
        random.Random(run).shuffle(order)
        for name in order:
            started = time.perf_counter()
            out = methods[name]()
            elapsed = (time.perf_counter() - started) * scale.get(name, 1)
            if run == 0:
                results[name] = out  # the warm-up compiles, fills caches and computes embedtool's norms
            else:
                times[name].append(elapsed)

    peak, how = peak_gflops()
    flops = 2 * nq * n * args.dim
    mine = statistics.median(times["embedtool"])
    print(f"{nq:,} queries x {n:,} x {args.dim} float32, k={k}, median of {args.runs} runs; "
          f"peak {peak:,.0f} GFLOP/s ({how})")
    print(f"{'method':<10} {'seconds':>9} {'vs embedtool':>13} {'GFLOP/s':>9} {'of peak':>8} {'ids = faiss':>12}")
    for name in methods:
        t = statistics.median(times[name])
        same = "" if "faiss" not in results or name == "gensim" else f"{(results[name] == results['faiss']).mean():.4%}"
        note = f"  (timed on {sub} queries, x{nq / sub:,.0f})" if name == "gensim" else ""
        print(f"{name:<10} {t:>9.3f} {t / mine:>12.2f}x {flops / t / 1e9:>9.1f} {flops / t / 1e9 / peak:>8.1%} "
              f"{same:>12}{note}")


if __name__ == "__main__":
    main()
