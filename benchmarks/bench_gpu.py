"""GPU lookup speed: embedtool's CUDA gather and bag kernels against the device's copy bandwidth and torch/CuPy.

For each (vocab, dim, n), float32 weights and uniform int64 indices already on the GPU, every method runs once to
warm up (compile, allocate), then --runs times, timed with CUDA events; the median is kept. Columns:

- ``copy GB/s``: a device-to-device copy of the output's size, read + written: the bandwidth reference.
- ``% copy``: ``embedding_cuda`` on device arrays, the whole call (index check included), as a share of the copy's
  speed; ``kernel % copy``: the gather kernel alone (launched directly, no argument checks).
- ``call us``: the fixed cost of a call: host wall time per call of a 1-row ``embedding_cuda`` on device arrays,
  calls back to back (the index checks read every ``_Queue.SLOTS`` calls included); ``torch call us`` likewise.
- ``vs torch``: torch's ``F.embedding`` time / ours (> 1: embedtool is faster); ``vs cupy take`` likewise.
- ``sum/L``, ``mean/L``: ``embedding_bag_cuda`` on 2-D bags of L = 1, 16 and 512 entries: torch's
  ``F.embedding_bag`` time / ours.
- ``host M/s``: ``DeviceTable.embed_batches`` on the indices from host memory, in batches of 32 MiB of output,
  results back in (pinned) host memory: million lookups/s, end to end; ``cpu M/s``: the CPU path
  (``embedding(..., device="cpu")``, all cores) on the same host arrays, on the same machine.

Targets (issue #24): >= 1.0x torch on every gather and bag column, the whole call >= 85% of the copy for D >= 128,
and <= 30 us fixed cost per call.

    python benchmarks/bench_gpu.py --runs 5   # the full grid (needs about 50 GB of GPU memory)
    python benchmarks/bench_gpu.py --quick    # n / 10
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/bench_gpu.py --smoke   # tiny sizes: proves it runs, times meaningless
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types

import numpy as np

from bench_gather import GRID  # the foundation's grid, the same on CPU and GPU
from embedtool import config, device, embedding, gpu

SMOKE_GRID = [(50, 8, 96), (20, 3, 48)]
BAGS = (1, 16, 512)
SMOKE_BAGS = (1, 16)  # the simulator is slow; n must hold one bag of each size
HOST_BATCH_BYTES = 32 << 20
CALLS = 200  # back-to-back calls per fixed-cost measure


def gpu_time(cuda, fn, runs: int) -> float:
    """Median seconds of ``fn()`` between two CUDA events, after one warm-up call."""
    fn()
    cuda.synchronize()
    times = []
    for _ in range(runs):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def wall_time(fn, runs: int) -> float:
    """Median seconds of ``fn()`` by the host clock, after one warm-up call (for host-to-host work)."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def call_cost(cuda, fn, calls: int) -> float:
    """Host seconds per call of ``fn()``, ``calls`` back to back then one synchronisation, after a warm-up."""
    fn()
    cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    cuda.synchronize()
    return (time.perf_counter() - start) / calls


def bench_case(cuda, torch, cupy, vocab: int, dim: int, n: int, runs: int, bags: tuple, calls: int, rng) -> dict:
    weight = rng.random((vocab, dim), dtype=np.float32)
    idx = rng.integers(0, vocab, n, dtype=np.int64)
    d_weight, d_idx = cuda.to_device(weight), cuda.to_device(idx)
    d_out = cuda.device_array((n, dim), np.float32)
    d_copy = cuda.device_array((n, dim), np.float32)
    moved = 2 * n * dim * 4  # rows read + output written (the 8-byte indices are left out, as for the copy)

    copy = gpu_time(cuda, lambda: d_copy.copy_to_device(d_out), runs)
    gather = gpu_time(cuda, lambda: gpu.embedding_cuda(d_idx, d_weight, out=d_out), runs)
    queue = gpu._default_queue()
    kernel = gpu_time(cuda, lambda: gpu._lookup(d_idx, d_weight, -1, None, 2.0, d_out, queue, 0), runs)
    one, one_out = d_idx[:1], d_out[:1]
    call = call_cost(cuda, lambda: gpu.embedding_cuda(one, d_weight, out=one_out), calls)
    gpu.check()
    check = min(n, 16_000)  # spot-check the results
    np.testing.assert_array_equal(d_out[:check].copy_to_host(), weight[idx[:check]])
    row = {
        "vocab x dim, n": f"{vocab:,} x {dim}, {n:,}",
        "copy GB/s": moved / copy / 1e9,
        "% copy": 100 * copy / gather,
        "kernel % copy": 100 * copy / kernel,
        "call us": call * 1e6,
        "torch call us": float("nan"),
        "vs torch": float("nan"),
        "vs cupy take": float("nan"),
    }
    t_weight = t_idx = None
    if torch is not None:
        t_weight, t_idx = torch.as_tensor(d_weight, device="cuda"), torch.as_tensor(d_idx, device="cuda")
        row["vs torch"] = gpu_time(cuda, lambda: torch.nn.functional.embedding(t_idx, t_weight), runs) / gather
        t_one = t_idx[:1]
        row["torch call us"] = call_cost(cuda, lambda: torch.nn.functional.embedding(t_one, t_weight), calls) * 1e6
    if cupy is not None:
        c_weight, c_idx, c_out = cupy.asarray(d_weight), cupy.asarray(d_idx), cupy.asarray(d_out)
        row["vs cupy take"] = gpu_time(cuda, lambda: cupy.take(c_weight, c_idx, axis=0, out=c_out), runs) / gather
    for mode in ("sum", "mean"):
        for size in bags:
            count = n // size
            d_bags = d_idx[: count * size].reshape(count, size)
            d_pooled = cuda.device_array((count, dim), np.float32)
            ours = gpu_time(cuda, lambda: gpu.embedding_bag_cuda(d_bags, d_weight, mode=mode, out=d_pooled), runs)
            gpu.check()
            checked = min(count, 1000)
            expected = weight[idx[: checked * size]].reshape(checked, size, dim).sum(axis=1, dtype=np.float64)
            expected = expected / size if mode == "mean" else expected
            np.testing.assert_allclose(d_pooled[:checked].copy_to_host(), expected, rtol=1e-5, atol=1e-6)
            row[f"{mode}/{size}"] = float("nan")
            if torch is not None:
                t_bags = t_idx[: count * size].view(count, size)
                theirs = gpu_time(cuda, lambda: torch.nn.functional.embedding_bag(t_bags, t_weight, mode=mode), runs)
                row[f"{mode}/{size}"] = theirs / ours
            del d_pooled

    table = gpu.DeviceTable(d_weight)
    batch = max(1, HOST_BATCH_BYTES // (dim * 4))

    def host_batches():
        batches = (types.SimpleNamespace(ids=idx[i : i + batch], offsets=None, where=None) for i in range(0, n, batch))
        for _ in table.embed_batches(batches):
            pass

    host_runs = max(1, runs // 3)
    row["host M/s"] = n / wall_time(host_batches, host_runs) / 1e6
    host_out = np.empty((n, dim), np.float32)
    row["cpu M/s"] = n / wall_time(lambda: embedding(idx, weight, out=host_out, device="cpu"), host_runs) / 1e6
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="n / 10, for a run of about two minutes")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs (simulator)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per method (default 9, quick 5)")
    args = parser.parse_args()
    try:
        device.require_gpu()
    except gpu.GpuUnavailableError as e:
        sys.exit(f"bench_gpu: {e}")
    from numba import cuda

    torch = cupy = None
    try:
        import torch

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        pass
    try:
        import cupy
    except ImportError:
        pass
    if args.smoke:
        # The simulator runs a Python thread per CUDA thread.
        config.THREADS_PER_BLOCK, config.ROW_BLOCKS_PER_SM, config.FLAT_BLOCKS_PER_SM = 8, 2, 2
    runs = args.runs or (1 if args.smoke else 5 if args.quick else 9)
    grid = SMOKE_GRID if args.smoke else [(v, d, n // 10 if args.quick else n) for v, d, n in GRID]
    bags, calls = (SMOKE_BAGS, 3) if args.smoke else (BAGS, CALLS)
    rng = np.random.default_rng(0)
    name = getattr(cuda.get_current_device(), "name", "the CUDA simulator")
    name = name.decode() if isinstance(name, bytes) else name
    print(f"device: {name}; median of {runs} runs, float32, uniform int64 indices;"
          f" torch {torch.__version__ if torch else 'without CUDA'}, cupy {cupy.__version__ if cupy else 'absent'}\n")
    for k, (vocab, dim, n) in enumerate(grid):
        row = bench_case(cuda, torch, cupy, vocab, dim, n, runs, bags, calls, rng)
        if k == 0:
            print("| " + " | ".join(row) + " |")
            print("|" + "---|" * len(row))
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else v for v in row.values()) + " |", flush=True)
        if torch is not None:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
