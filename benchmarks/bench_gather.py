"""Lookup speed: embedtool.embedding against NumPy and torch, side by side in one process.

For each (vocab, dim, n) and index distribution, every method runs round-robin (a warm-up, then --runs rounds) and
the median time is kept. Printed as ratios, because these machines are shared and noisy:

- ``copy/s``: bandwidth of a plain NumPy copy of the output's size (the memory-bandwidth reference), GB/s moved.
- ``vs copy``: embedtool's time relative to that copy (1.0 = a gather as fast as a memcpy of the output).
- ``vs X``: X's median time / embedtool's median time (> 1: embedtool is faster).
- ``pad``, ``max_norm``: embedtool's plain gather time / its time with padding_idx, with max_norm=1.0.

    python benchmarks/bench_gather.py            # the full grid
    python benchmarks/bench_gather.py --quick    # n / 10, three runs

A grid point whose arrays would not fit in memory is skipped with a note (30,522 x 384 with n=8M needs about
46 GiB: four outputs of 12 GB).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import numpy as np

import embedtool

GRID = [
    (50_000, 300, 4_000_000),
    (400_000, 100, 10_000_000),
    (2_000_000, 300, 2_000_000),
    (30_522, 384, 8_000_000),
    (1_000, 16, 50_000_000),
    (50_000, 768, 1_000_000),
]


def make_indices(rng, vocab: int, n: int, dist: str) -> np.ndarray:
    if dist == "uniform":
        return rng.integers(0, vocab, size=n, dtype=np.int64)
    ranks = np.minimum(rng.zipf(1.2, size=n) - 1, vocab - 1)
    return rng.permutation(vocab)[ranks].astype(np.int64)


def methods(weight, idx, out, torch):
    """name -> zero-argument callable; each writes a full output."""
    copy_src = np.ones_like(out)
    found = {
        "copy": lambda: np.copyto(out, copy_src),
        "embedtool": lambda: embedtool.embedding(idx, weight, out=out),
        "pad": lambda: embedtool.embedding(idx, weight, padding_idx=0, out=out),
        "max_norm": lambda: embedtool.embedding(idx, weight, max_norm=1.0, out=out),
        "np.take": lambda: np.take(weight, idx, axis=0, out=out, mode="clip"),
        "weight[idx]": lambda: weight[idx],
    }
    if torch is not None:
        tw, ti, to = torch.from_numpy(weight), torch.from_numpy(idx), torch.from_numpy(out)
        found["index_select"] = lambda: torch.index_select(tw, 0, ti, out=to)
        found["F.embedding"] = lambda: torch.nn.functional.embedding(ti, tw)
    return found


def round_robin(fns: dict, runs: int, shuffle=None) -> dict:
    """name -> median time of ``runs`` rounds in which every ``fns[name]()`` runs once, in turn (so drifts in the
    machine's speed hit every method alike). The caller warms them up first. With ``shuffle`` (a
    ``random.Random``) each round runs the methods in a new order, so that each follows every other about as often:
    in a fixed order a method always inherits the cache its predecessor left (warmed with the rows it wants, or
    flushed by a large temporary)."""
    times = {name: [] for name in fns}
    names = list(fns)
    for _ in range(runs):
        if shuffle is not None:
            shuffle.shuffle(names)
        for name in names:
            fn = fns[name]
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_case(vocab, dim, n, dist, runs, rng, torch):
    weight = rng.standard_normal((vocab, dim)).astype(np.float32)
    idx = make_indices(rng, vocab, n, dist)
    out = np.empty((n, dim), np.float32)
    fns = methods(weight, idx, out, torch)
    for fn in fns.values():  # warm-up: compile, fault in pages
        fn()
    median = round_robin(fns, runs, shuffle=random.Random(0))
    e = median["embedtool"]
    row = {
        "grid": f"{vocab:,} x {dim}, n={n:,}",
        "dist": dist,
        "copy/s": f"{2 * out.nbytes / median['copy'] / 1e9:.1f} GB/s",
        "vs copy": median["copy"] / e,
        "vs index_select": median.get("index_select", float("nan")) / e,
        "vs np.take": median["np.take"] / e,
        "vs weight[idx]": median["weight[idx]"] / e,
        "vs F.embedding": median.get("F.embedding", float("nan")) / e,
        "pad": e / median["pad"],
        "max_norm": e / median["max_norm"],
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n / 10 and 3 runs, for a fast look")
    parser.add_argument("--runs", type=int, default=None, help="timed rounds per case (default 7, quick 3)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for vocab, dim, n in GRID:
        n = n // 10 if args.quick else n
        # the output, the copy's source, and the two methods that allocate their own output, plus the table
        needed = 4 * n * dim * 4 + vocab * dim * 4
        if needed > 0.8 * memory:
            print(f"skipped {vocab:,} x {dim}, n={n:,}: needs about {needed / 2**30:.0f} GiB, this machine has "
                  f"{memory / 2**30:.0f} GiB", flush=True)
            continue
        for dist in ("uniform", "zipf"):
            rows.append(bench_case(vocab, dim, n, dist, runs, rng, torch))
            print_row(rows[-1], header=len(rows) == 1)
    summary = {"grid": "**median**", "dist": "", "copy/s": ""}
    for key in rows[0]:
        if key not in summary:
            summary[key] = statistics.median(r[key] for r in rows)
    print_row(summary, header=False)
    print(f"\nmedian of {runs} runs, float32 weights, int64 indices; "
          f"torch {'%s' % torch.__version__ if torch else 'not installed'}, numpy {np.__version__}")


def print_row(row, header):
    cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
    if header:
        print("| " + " | ".join(row) + " |")
        print("|" + "---|" * len(row))
    print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
