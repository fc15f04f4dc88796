"""Scale-out speed: one process against a Dask LocalCluster on this machine, on one generated directory of shards.

The input is ``--shards`` ``.npy`` shards of token ids (rows of ``--seq`` ids, ``--tokens`` in all, Zipf-distributed
over a ``--vocab`` x ``--dim`` float32 table), the output one Arrow IPC shard per input shard, in ``--out-dir``
(default: /dev/shm when it exists, so the disk does not hide the pipeline's cost). After a warm-up (numba kernels
loaded in every process) the ways take turns, ``--runs`` rounds, and each keeps its fastest run: the machines are
shared, and the fastest run is the least disturbed one.

- ``1 process, 1 thread``: ``embed_path(threads=1)``, the unit a Dask worker runs.
- ``1 process, N threads``: ``embed_path()``, the CLI's default (numba on all cores).
- ``Dask, W workers x 1 thread``: ``embed_dataset`` on a LocalCluster of W worker processes, one task per shard.

Also measured, for the scaling model in the README: ``gather only``, the lookup kernel alone on one thread (the ids
of one shard into a reused buffer: no reading, no Arrow, no writing), and the bandwidth of a one-thread NumPy copy
of 256 MB (bytes read + bytes written). And, since other work may share the machine, the cores the workers really
had: a pure-Python loop on one worker, then on all at once (W workers x the one-worker time / the all-workers time).

    python benchmarks/bench_distributed.py                 # 8 shards, 4M tokens, dim 64 (1 GB of output)
    python benchmarks/bench_distributed.py --workers 4 --tokens 16000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_data(root: Path, shards: int, tokens: int, seq: int, vocab: int, dim: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    weights = root / "weights.npy"
    np.save(weights, rng.standard_normal((vocab, dim), dtype=np.float32))
    source = root / "shards"
    source.mkdir()
    rows = max(1, tokens // shards // seq)
    for s in range(shards):
        ids = np.minimum(rng.zipf(1.2, size=(rows, seq)) - 1, vocab - 1).astype(np.int32)
        np.save(source / f"part-{s:04d}.npy", ids)
    return weights, source


def copy_bandwidth(nbytes: int = 256 << 20) -> float:
    """GB/s of a one-thread copy, counting the bytes read and written."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - started)
    return 2 * nbytes / min(times) / 1e9


def gather_rate(weights: Path, shard: Path) -> float:
    """Tokens/s of the lookup kernel alone, one thread."""
    from embedtool import embedding
    from embedtool.pipeline import num_threads

    weight, ids = np.load(weights, mmap_mode="r"), np.load(shard)
    out = np.empty(ids.shape + (weight.shape[1],), weight.dtype)
    with num_threads(1):
        embedding(ids, weight, out=out, device="cpu")
        times = []
        for _ in range(5):
            started = time.perf_counter()
            embedding(ids, weight, out=out, device="cpu")
            times.append(time.perf_counter() - started)
    return ids.size / min(times)


def fastest(ways: dict, runs: int, out: Path) -> dict:
    """name -> the fastest of ``runs`` runs of ``ways[name]()``, the ways taking turns; ``out`` cleared each time."""
    times = {name: [] for name in ways}
    for _ in range(runs):
        for name, run in ways.items():
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    shutil.rmtree(out, ignore_errors=True)
    return {name: min(t) for name, t in times.items()}


def warm(weights: str, shard: str, out: str) -> None:
    """Load the kernels in a process (run on every worker: their numba caches load on first use)."""
    from embedtool.pipeline import embed_path

    embed_path(weights, shard, out, threads=1, progress=False, device="cpu")


def spin() -> float:
    """Seconds of a fixed pure-Python loop: one core's worth of work."""
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return time.perf_counter() - started


def free_cores(client, runs: int = 3) -> float:
    """How many of the workers ran at once: W x (wall time on one worker) / (wall time on all W at once)."""
    workers = list(client.scheduler_info()["workers"])
    one, every = [], []
    for _ in range(runs):
        for times, on in ((one, workers[:1]), (every, workers)):
            started = time.perf_counter()
            client.run(spin, workers=on)
            times.append(time.perf_counter() - started)
    return len(workers) * min(one) / min(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=4_000_000)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from embedtool.distributed import embed_dataset
    from embedtool.pipeline import embed_path

    with tempfile.TemporaryDirectory(dir=args.out_dir) as tmp:
        root = Path(tmp)
        weights, source = make_data(root, args.shards, args.tokens, args.seq, args.vocab, args.dim)
        tokens = sum(np.load(p, mmap_mode="r").size for p in source.iterdir())
        out = root / "out"
        first = str(sorted(source.iterdir())[0])
        warm(str(weights), first, str(root / "warm.arrow"))
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(warm, str(weights), first, str(root / "warm.arrow"))
            results = fastest({
                "1 process, 1 thread": lambda: embed_path(weights, source, out, threads=1, progress=False,
                                                          device="cpu"),
                f"1 process, {os.cpu_count()} threads": lambda: embed_path(weights, source, out, progress=False,
                                                                           device="cpu"),
                f"Dask, {args.workers} workers x 1 thread": lambda: embed_dataset(client, source, out, weights,
                                                                                 device="cpu"),
            }, args.runs, out)
            cores = free_cores(client)
        gather = gather_rate(weights, Path(first))
        bandwidth = copy_bandwidth()

    out_bytes = tokens * args.dim * 4
    base = results["1 process, 1 thread"]
    print(f"{tokens:,} tokens in {args.shards} shards, table {args.vocab:,} x {args.dim} float32, "
          f"{out_bytes / 1e9:.2f} GB of output; one-thread copy bandwidth {bandwidth:.1f} GB/s (read + write); "
          f"the {args.workers} workers had {cores:.1f} cores' worth of CPU\n")
    print("| run | seconds | Mtokens/s | output GB/s | vs 1 thread |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {tokens / seconds / 1e6:.1f} | {out_bytes / seconds / 1e9:.2f} "
              f"| {base / seconds:.2f} |")
    seconds = tokens / gather
    print(f"| gather only, 1 thread | {seconds:.2f} | {gather / 1e6:.1f} | {out_bytes / seconds / 1e9:.2f} "
          f"| {base / seconds:.2f} |")


if __name__ == "__main__":
    main()
