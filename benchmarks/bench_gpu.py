"""GPU lookup speed: embedtool's CUDA gather and bag kernels against the device's copy bandwidth and torch/CuPy.

For each (vocab, dim, n), float32 weights and uniform int64 indices already on the GPU, every method runs once to
warm up (compile, allocate), then --runs times, timed with CUDA events; the median is kept. Columns:

- ``copy``: a device-to-device copy of the output's size, GB/s read + written: the bandwidth reference.
- ``gather``: ``embedding_cuda`` (index check included), GB/s of rows read + output written; ``% copy`` of the
  reference; ``kernel % copy``: the gather kernel alone (no index check, no launch of the scan);
  ``vs torch``: torch's ``F.embedding`` time / ours (> 1: embedtool is faster); ``cupy take`` likewise.
- ``bag``: ``embedding_bag_cuda(mode="sum")`` on bags of 16 entries, GB/s of rows read + output written;
  ``bag vs torch``: ``F.embedding_bag``'s time / ours.
- ``host batches``: ``DeviceTable.embed_batches`` on the indices from host memory, in batches of 32 MiB of output,
  results back in (pinned) host memory: million lookups/s, end to end.

Targets: gather >= 80% of the copy bandwidth for D >= 128, and >= 1.0x torch.

    python benchmarks/bench_gpu.py            # the full grid (needs about 50 GB of GPU memory; 30 s on an H200)
    python benchmarks/bench_gpu.py --quick    # n / 10, a whole run in about two minutes on an H100
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
from embedtool import config, device, gpu

SMOKE_GRID = [(50, 8, 96), (20, 3, 48)]  # n: a multiple of BAG
BAG = 16
HOST_BATCH_BYTES = 32 << 20


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


def bench_case(cuda, torch, cupy, vocab: int, dim: int, n: int, runs: int, rng) -> dict:
    weight = rng.random((vocab, dim), dtype=np.float32)
    idx = rng.integers(0, vocab, n, dtype=np.int64)
    d_weight, d_idx = cuda.to_device(weight), cuda.to_device(idx)
    d_out = cuda.device_array((n, dim), np.float32)
    d_copy = cuda.device_array((n, dim), np.float32)
    bags = d_idx.reshape(n // BAG, BAG)
    d_bag_out = cuda.device_array((n // BAG, dim), np.float32)
    out_bytes = n * dim * 4
    moved = 2 * out_bytes  # rows read + output written (the 8-byte indices are left out, as for the copy)
    bag_moved = out_bytes + d_bag_out.size * 4

    copy = gpu_time(cuda, lambda: d_copy.copy_to_device(d_out), runs)
    gather = gpu_time(cuda, lambda: gpu.embedding_cuda(d_idx, d_weight, out=d_out), runs)
    queue = gpu._default_queue()
    kernel = gpu_time(cuda, lambda: gpu._lookup(d_idx, d_weight, -1, None, 2.0, d_out, queue, 0), runs)
    bag = gpu_time(cuda, lambda: gpu.embedding_bag_cuda(bags, d_weight, mode="sum", out=d_bag_out), runs)
    check = min(n // BAG, 1000)  # spot-check the results
    np.testing.assert_array_equal(d_out[: check * BAG].copy_to_host(), weight[idx[: check * BAG]])
    expected = weight[idx[: check * BAG]].reshape(check, BAG, dim).sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(d_bag_out[:check].copy_to_host(), expected, rtol=1e-5)
    row = {
        "vocab x dim, n": f"{vocab:,} x {dim}, {n:,}",
        "copy GB/s": moved / copy / 1e9,
        "gather GB/s": moved / gather / 1e9,
        "% copy": 100 * copy / gather,
        "kernel % copy": 100 * copy / kernel,
        "vs torch": float("nan"),
        "vs cupy take": float("nan"),
        "bag GB/s": bag_moved / bag / 1e9,
        "bag vs torch": float("nan"),
    }
    if torch is not None:
        t_weight, t_idx = torch.as_tensor(d_weight, device="cuda"), torch.as_tensor(d_idx, device="cuda")
        t_bags = t_idx.view(n // BAG, BAG)
        row["vs torch"] = gpu_time(cuda, lambda: torch.nn.functional.embedding(t_idx, t_weight), runs) / gather
        torch_bag = gpu_time(cuda, lambda: torch.nn.functional.embedding_bag(t_bags, t_weight, mode="sum"), runs)
        row["bag vs torch"] = torch_bag / bag
    if cupy is not None:
        c_weight, c_idx, c_out = cupy.asarray(d_weight), cupy.asarray(d_idx), cupy.asarray(d_out)
        row["vs cupy take"] = gpu_time(cuda, lambda: cupy.take(c_weight, c_idx, axis=0, out=c_out), runs) / gather

    table = gpu.DeviceTable(d_weight)
    batch = max(1, HOST_BATCH_BYTES // (dim * 4))

    def host_batches():
        batches = (types.SimpleNamespace(ids=idx[i : i + batch], offsets=None, where=None) for i in range(0, n, batch))
        for _ in table.embed_batches(batches):
            pass

    row["host batches M/s"] = n / wall_time(host_batches, max(1, runs // 3)) / 1e6
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
    rng = np.random.default_rng(0)
    name = getattr(cuda.get_current_device(), "name", "the CUDA simulator")
    name = name.decode() if isinstance(name, bytes) else name
    print(f"device: {name}; median of {runs} runs, float32, uniform int64 indices;"
          f" torch {torch.__version__ if torch else 'without CUDA'}, cupy {cupy.__version__ if cupy else 'absent'}\n")
    for k, (vocab, dim, n) in enumerate(grid):
        row = bench_case(cuda, torch, cupy, vocab, dim, n, runs, rng)
        if k == 0:
            print("| " + " | ".join(row) + " |")
            print("|" + "---|" * len(row))
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else v for v in row.values()) + " |", flush=True)
        if torch is not None:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
