"""Pooling speed: embedtool.embedding_bag against torch.nn.functional.embedding_bag and NumPy, side by side.

Every case pools 2**17 entries (2**15 with --quick) of a 400,000-row float32 table, the size of GloVe's
vocabulary, with Zipf-distributed word ids as in text (``--ids uniform`` for uniform ids), into bags of 1, 8, 64 or
512 entries or a Zipf mix of bag sizes (sentences to documents), for modes mean/sum/max and dims 100 and 300. The
methods run round-robin in one process (a warm-up, then --runs rounds, each in a new random order) and the median
time is kept. Every call pools a fresh batch of ids drawn from the same distribution, as a pipeline's batches are
(``BATCHES`` of them in turn): no call finds in cache the very rows the call before it has just read, while the
frequent words stay cached, as they would. The order changes every round because a method's time depends on its
predecessor: in a fixed order torch always ran after NumPy, whose gather then flushed the cache, and embedtool after
torch, which leaves the frequent rows cached. Printed as ratios, because these machines are shared and noisy:

- ``embedtool``: embedtool's median time, writing into a reused ``out=`` array as the batch pipeline does.
- ``vs torch``: torch's median time / embedtool's (> 1: embedtool is faster). torch has no ``out=`` and allocates.
- ``vs torch, new out``: the same with embedtool allocating a fresh output each call too.
- ``vs numpy``: NumPy's time / embedtool's. NumPy gathers ``NUMPY_CHUNK`` entries at a time into a reused buffer
  (``np.take(out=)``) and reduces them with ``np.add.reduceat`` (``np.maximum.reduceat`` for max) into the output.
  One gather of a whole batch, as before 2026-12-04, made a 50-160 MB temporary per call: it took twice as long, and
  its page faults and cache flush slowed whichever method ran next (embedtool's and torch's times rose up to 1.8x).

    python benchmarks/bench_bag.py            # the full grid
    python benchmarks/bench_bag.py --quick    # 2**15 entries per case, five runs
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics

import numpy as np

import embedtool  # sets passive OpenMP waiting before torch loads, so neither runtime's idle threads spin
from bench_gather import print_row, round_robin  # one table format and timing loop for every benchmark

VOCAB = 400_000
DIMS = (100, 300)
BAGS = ("1", "8", "64", "512", "zipf")
MODES = ("mean", "sum", "max")
BATCHES = 16
#: Entries the NumPy baseline gathers at a time (a 1.2 MB buffer at D=300).
NUMPY_CHUNK = 1024


def make_batches(rng, n: int, dist: str) -> list[np.ndarray]:
    """BATCHES arrays of ``n`` ids: uniform, or Zipf-distributed ranks of one random order of the words."""
    if dist == "uniform":
        return [rng.integers(0, VOCAB, size=n, dtype=np.int64) for _ in range(BATCHES)]
    words = rng.permutation(VOCAB)
    return [words[np.minimum(rng.zipf(1.2, size=n) - 1, VOCAB - 1)].astype(np.int64) for _ in range(BATCHES)]


def make_offsets(rng, n: int, bags: str) -> np.ndarray:
    """Bag starts for ``n`` entries: a fixed size, or Zipf-distributed sizes of 1 to 5,000 entries."""
    if bags != "zipf":
        return np.arange(0, n, int(bags), dtype=np.int64)
    sizes = np.minimum(rng.zipf(1.5, size=n), 5_000)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def chunks(bounds: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Ranges ``lo:hi`` of the bags ``bounds[b]:bounds[b + 1]``, in order, each of at most ``size`` entries (or one
    longer bag)."""
    nbags, found, lo = bounds.size - 1, [], 0
    while lo < nbags:
        hi = max(lo + 1, int(np.searchsorted(bounds, bounds[lo] + size, side="right")) - 1)
        found.append((lo, min(hi, nbags)))
        lo = found[-1][1]
    return found


def methods(weight, batches, offsets, mode, out, torch):
    """name -> callable of a batch number; each computes the full pooled output of that batch."""
    bounds = np.append(offsets, batches[0].size)
    counts = np.diff(bounds)[:, None].astype(weight.dtype)
    reduce = np.maximum.reduceat if mode == "max" else np.add.reduceat
    ranges = chunks(bounds, NUMPY_CHUNK)
    rows = np.empty((max(bounds[hi] - bounds[lo] for lo, hi in ranges), weight.shape[1]), weight.dtype)

    def numpy_pool(i):
        """Gather and reduce a chunk of bags at a time through one reused buffer, as a careful NumPy user would."""
        pooled = np.empty((offsets.size, weight.shape[1]), weight.dtype)
        for lo, hi in ranges:
            start, stop = bounds[lo], bounds[hi]
            gathered = np.take(weight, batches[i][start:stop], axis=0, out=rows[: stop - start])
            reduce(gathered, offsets[lo:hi] - start, axis=0, out=pooled[lo:hi])
        if mode == "mean":
            pooled /= counts
        return pooled

    found = {
        "embedtool": lambda i: embedtool.embedding_bag(batches[i], weight, offsets, mode, out=out),
        "new out": lambda i: embedtool.embedding_bag(batches[i], weight, offsets, mode),
        "numpy": numpy_pool,
    }
    if torch is not None:
        tw, to = torch.from_numpy(weight), torch.from_numpy(offsets)
        tensors = [torch.from_numpy(ids) for ids in batches]
        found["torch"] = lambda i: torch.nn.functional.embedding_bag(tensors[i], tw, to, mode=mode)
    return found


def bench_case(weight, batches, offsets, mode, runs, torch):
    out = np.empty((offsets.size, weight.shape[1]), weight.dtype)
    fns = methods(weight, batches, offsets, mode, out, torch)
    results = {name: np.asarray(fn(0)) for name, fn in fns.items()}  # warm-up: compile, fault in pages
    check_same(results, out, weight, batches[0], offsets, mode)
    turn = itertools.cycle(range(BATCHES))  # each call the next batch, whichever method makes it
    median = round_robin({name: (lambda fn: lambda: fn(next(turn)))(fn) for name, fn in fns.items()}, runs,
                         shuffle=random.Random(0))
    e = median["embedtool"]
    nan = float("nan")
    return {
        "embedtool": f"{e * 1e3:.2f} ms",
        "vs torch": median.get("torch", nan) / e,
        "vs torch, new out": median.get("torch", nan) / median["new out"],
        "vs numpy": median["numpy"] / e,
    }


def check_same(results, expected, weight, ids, offsets, mode):
    """Every method computes the same pooling: maxima exactly, sums within float32's (n + 1)·eps·Σ|terms|."""
    bound = 0.0
    if mode != "max":
        sizes = np.diff(np.append(offsets, ids.size))
        bound = (sizes.max() + 1) * np.finfo(np.float32).eps * np.add.reduceat(np.abs(weight[ids]), offsets, axis=0)
        bound = bound / sizes[:, None] if mode == "mean" else bound
    for name, result in results.items():
        excess = np.abs(result.astype(np.float64) - expected) - bound - np.spacing(np.abs(expected))
        assert excess.max() <= 0, f"{name} differs from embedtool by {excess.max()} beyond the bound"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2**15 entries per case and 5 runs, for a fast look")
    parser.add_argument("--runs", type=int, default=None, help="timed rounds per case (default 11, quick 5)")
    parser.add_argument("--ids", choices=("zipf", "uniform"), default="zipf", help="distribution of the word ids")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 11)
    n = 1 << (15 if args.quick else 17)
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for dim in DIMS:
        weight = rng.standard_normal((VOCAB, dim), dtype=np.float32)
        for bags in BAGS:
            batches, offsets = make_batches(rng, n, args.ids), make_offsets(rng, n, bags)
            for mode in MODES:
                row = {"bags": bags, "mode": mode, "dim": str(dim), "entries": f"{n:,}"}
                rows.append(row | bench_case(weight, batches, offsets, mode, runs, torch))
                print_row(rows[-1], header=len(rows) == 1)
    summary = {key: "" for key in rows[0]} | {"bags": "**median**"}
    for key, value in rows[0].items():
        if isinstance(value, float):
            summary[key] = statistics.median(r[key] for r in rows)
    print_row(summary, header=False)
    if torch is not None:
        worst = min(rows, key=lambda r: r["vs torch"])
        print(f"\ntarget >= 1.5x torch on the median: {summary['vs torch']:.2f}x; >= 1.0x on every row: lowest "
              f"{worst['vs torch']:.2f}x ({worst['bags']}, {worst['mode']}, dim {worst['dim']})")
    print(f"median of {runs} runs, {VOCAB:,} x dim float32 table, {args.ids} ids (a fresh batch each call), "
          f"int64 indices and offsets, "
          f"{os.cpu_count()} CPUs; torch {torch.__version__ if torch else 'not installed'}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
