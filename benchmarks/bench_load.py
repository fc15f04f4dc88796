"""Text loading speed and memory: embedtool's parser against gensim, pandas and pyarrow.csv, side by side.

A GloVe-style file (400,000 x 100 by default, about 348 MB: token, then 100 values of 5 significant digits) is generated
once (seeded) in --dir. Each round runs every loader in a fresh process, round-robin (these machines are shared and
noisy), and the median is kept. A worker imports its library and loads a small file first (JIT cache, first-call
costs), then times one load of the big file to a float32 ``[N, D]`` matrix and the tokens, and measures its peak
memory: the high-water RSS (``VmHWM``, reset through ``/proc/self/clear_refs``) minus the RSS before the load.

- ``MB/s``: file size / median seconds. ``x``: the loader's median / embedtool's (> 1: embedtool is faster).
- ``peak``: peak memory over the final matrix + tokens (embedtool's Arrow tokens); the target is <= 1.5.
- ``same``: the matrix is bit-identical to embedtool's and the tokens equal.
- The store: the table converted once to ``.arrow``, then opened (median of 20 opens); and a 1 GB store.

    python benchmarks/bench_load.py            # 400,000 x 100, three rounds
    python benchmarks/bench_load.py --quick    # 40,000 x 100, one round
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOADERS = ("embedtool", "gensim", "pandas", "pyarrow.csv")
#: Required speed ratios (loader's time / embedtool's) and the memory bound.
TARGETS = {"gensim": 25.0, "pandas": 1.2, "pyarrow.csv": 1.0}
PEAK_TARGET = 1.5
STORE_OPEN_TARGET_MS = 50.0


def generate(path: Path, rows: int, dim: int, seed: int = 0) -> None:
    """A GloVe-style file: unique lower-case tokens, then ``dim`` values of 5 significant digits (as GloVe's)."""
    import embedtool

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 9, size=rows)
    tokens = ["".join(rng.choice(letters, n)) + str(i) for i, n in enumerate(lengths)]
    values = rng.standard_normal((rows, dim)) * 0.4
    scale = 10.0 ** (4 - np.floor(np.log10(np.abs(values))))
    values = (np.round(values * scale) / scale).astype(np.float32)
    embedtool.save_vectors(embedtool.Vectors(values, tokens), path, format="glove", progress=False)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _load(loader: str, path: str, dim: int):
    """(float32 matrix [N, D], tokens as a list or Arrow array) by one loader."""
    if loader == "embedtool":
        import embedtool

        v = embedtool.load_vectors(path)
        return v.matrix, v.tokens
    if loader == "gensim":
        from gensim.models import KeyedVectors

        kv = KeyedVectors.load_word2vec_format(path, binary=False, no_header=True)
        return kv.vectors, kv.index_to_key
    if loader == "pandas":
        import pandas as pd

        df = pd.read_csv(
            path, sep=" ", quoting=csv.QUOTE_NONE, engine="c", header=None, na_filter=False,
            dtype={0: str, **{k: np.float32 for k in range(1, dim + 1)}},
        )
        return df.iloc[:, 1:].to_numpy(np.float32), df[0].tolist()
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = ["token"] + [f"v{k}" for k in range(dim)]
    table = pcsv.read_csv(
        path,
        pcsv.ReadOptions(column_names=names),
        pcsv.ParseOptions(delimiter=" ", quote_char=False),
        pcsv.ConvertOptions(column_types={"token": pa.string(), **{n: pa.float32() for n in names[1:]}}),
    )
    matrix = np.column_stack([table.column(n).to_numpy() for n in names[1:]])
    return matrix, table.column("token")


def _digest(matrix, tokens) -> str:
    h = hashlib.sha256(np.ascontiguousarray(matrix, np.float32).tobytes())
    items = tokens.to_pylist() if hasattr(tokens, "to_pylist") else list(tokens)
    h.update("\n".join(items).encode())
    return h.hexdigest()


def worker(loader: str, path: str, small: str, dim: int, digest: bool) -> dict:
    """Runs in its own process: warm up on ``small``, then one measured load of ``path``."""
    _load(loader, small, dim)
    before = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    started = time.perf_counter()
    matrix, tokens = _load(loader, path, dim)
    seconds = time.perf_counter() - started
    peak = (_rss_kb("VmHWM") - before) * 1024
    return {"seconds": seconds, "peak": peak, "digest": _digest(matrix, tokens) if digest else None}


def store_open(store: str, runs: int = 20) -> float:
    """Median milliseconds to open a store (in this process, after one warm-up open)."""
    import embedtool

    embedtool.load_vectors(store)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        v = embedtool.load_vectors(store)
        times.append(time.perf_counter() - started)
        assert v.matrix.base is not None  # a view of the mapped file, not a copy
    return statistics.median(times) * 1000


def _run_worker(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each runs every loader once)")
    parser.add_argument("--quick", action="store_true", help="rows / 10, one round, no 1 GB store")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "embedtool-bench"))
    parser.add_argument("--loaders", default=",".join(LOADERS), help="comma-separated subset of " + ", ".join(LOADERS))
    parser.add_argument("--worker", nargs=5, metavar=("LOADER", "PATH", "SMALL", "DIM", "DIGEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        loader, path, small, dim, digest = args.worker
        print(json.dumps(worker(loader, path, small, int(dim), digest == "1")))
        return

    import embedtool

    rows, runs = (args.rows // 10, 1) if args.quick else (args.rows, args.runs)
    loaders = [name for name in args.loaders.split(",") if name]
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    path, small = work / f"glove_{rows}x{args.dim}.txt", work / "small.txt"
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, rows, args.dim)
    if not small.exists():
        generate(small, 200, args.dim, seed=1)
    size = path.stat().st_size
    path.read_bytes()  # into the page cache, for every loader alike

    results = {name: [] for name in loaders}
    digests, peaks = {}, {}
    for r in range(runs):
        for name in loaders:
            res = _run_worker(name, str(path), str(small), str(args.dim), "1" if r == 0 else "0")
            results[name].append(res["seconds"])
            if r == 0:
                digests[name], peaks[name] = res["digest"], res["peak"]
            print(f"round {r + 1}: {name:12s} {res['seconds']:8.3f} s", file=sys.stderr)

    v = embedtool.load_vectors(path)
    final = v.matrix.nbytes + v.tokens.nbytes
    median = {name: statistics.median(times) for name, times in results.items()}
    base = median.get("embedtool")
    import numba

    print(f"\n{rows:,} x {args.dim} GloVe-style text, {size / 1e6:.0f} MB; {os.cpu_count()} CPUs, numba threads "
          f"{numba.get_num_threads()}; median of {runs} round(s); matrix + tokens = {final / 1e6:.0f} MB\n")
    print("| loader | seconds | MB/s | x (vs embedtool) | peak memory | peak / (matrix + tokens) | same values |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in loaders:
        ratio = f"{median[name] / base:.1f}" if base else "-"
        same = "yes" if digests[name] == digests.get("embedtool") else "NO"
        print(f"| {name} | {median[name]:.2f} | {size / 1e6 / median[name]:.0f} | {ratio} | "
              f"{peaks[name] / 1e6:.0f} MB | {peaks[name] / final:.2f} | {same} |")

    store = work / f"glove_{rows}x{args.dim}.arrow"
    embedtool.save_vectors(v, store)
    stores = [store]
    if not args.quick:
        big = work / "store_1gb.arrow"
        if not big.exists():
            n = (1 << 30) // (4 * 256)
            matrix = np.random.default_rng(2).standard_normal((n, 256), dtype=np.float32)
            embedtool.save_vectors(embedtool.Vectors(matrix, [f"t{i}" for i in range(n)]), big)
        stores.append(big)
    opens = {s: store_open(str(s)) for s in stores}
    print()
    for s, ms in opens.items():
        print(f"store {s.name} ({s.stat().st_size / 1e6:,.0f} MB): load_vectors in {ms:.2f} ms (median of 20)")

    print("\ntargets:")
    for name, target in TARGETS.items():
        if name in median and base:
            ratio = median[name] / base
            print(f"  {'met   ' if ratio >= target else 'MISSED'} {name}: {ratio:.2f}x (target >= {target}x)")
    for s, ms in opens.items():
        print(f"  {'met   ' if ms < STORE_OPEN_TARGET_MS else 'MISSED'} open {s.name}: {ms:.2f} ms "
              f"(target < {STORE_OPEN_TARGET_MS:.0f} ms)")
    if "embedtool" in peaks:
        ratio = peaks["embedtool"] / final
        print(f"  {'met   ' if ratio <= PEAK_TARGET else 'MISSED'} embedtool peak memory: {ratio:.2f} x matrix + "
              f"tokens (target <= {PEAK_TARGET})")


if __name__ == "__main__":
    main()
