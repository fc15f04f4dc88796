#!/usr/bin/env bash
# The GPU checks of issue #24, in one run for a session that is lent a GPU (about 5 minutes on an H100):
#   1. tests/test_gpu.py on the GPU, without the simulator;
#   2. benchmarks/bench_gpu.py --runs 5 on the full grid (the README's GPU table);
#   3. `embedtool bag --device cuda` against `--device cpu` (all cores), end to end, on a generated Parquet
#      list<int32> input (1,000,000 bags of 1 to 127 ids, a 100,000 x 256 float32 table), outputs compared.
#
#   benchmarks/gpu_check.sh [OUTDIR]      # logs and tables go to OUTDIR (default: $OUT, else gpu_check_out)
#   BAGS=1000 DEVICES="cpu cpu" ...       # step 3 smaller, or on other devices (a dry run of it without a GPU)
#
# Needs python3 with numba-cuda, numpy, pyarrow, typer, rich, pytest, hypothesis and torch (the lent machines'
# image has them; PYTHON=... picks another interpreter). embedtool runs from this checkout, not installed. Each step
# has its own time limit (200 + 180 + 100 s at most) and a failed step does not stop the next. If numba-cuda fails
# to import with numpy >= 2.5 (numba-cuda 0.30.4 uses np.row_stack), carry a numpy 2.4 wheel (device README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${1:-${OUT:-gpu_check_out}}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ln -s "$PWD/cli" "$WORK/embedtool_cli"  # the CLI package, as pyproject's package-dir maps it
export PYTHONPATH="$PWD:$WORK${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset NUMBA_ENABLE_CUDASIM

echo "== versions"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import numpy, numba, numba_cuda, pyarrow, torch; from numba import cuda
print('numpy', numpy.__version__, 'numba', numba.__version__, 'numba-cuda', numba_cuda.__version__,
      'pyarrow', pyarrow.__version__, 'torch', torch.__version__)
assert cuda.is_available(), 'numba.cuda sees no GPU'
print(cuda.get_current_device().name)" 2>&1 | tee "$DEST/versions.txt"

echo "== 1/3 GPU tests, no simulator"
timeout 200 $PY -m pytest tests/test_gpu.py -q -p no:cacheprovider 2>&1 | tee "$DEST/tests.log" ||
    echo "tests: FAILED or timed out"

echo "== 2/3 bench_gpu.py --runs 5"
(cd benchmarks && timeout 180 $PY bench_gpu.py --runs 5) 2>&1 | tee "$DEST/bench_gpu.md" ||
    echo "bench: FAILED or timed out"

echo "== 3/3 bag end to end, --device cuda against --device cpu"
cat >"$WORK/bag_end_to_end.py" <<'EOF'
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

work, cores, bags, devices = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
rng = np.random.default_rng(0)
vocab, dim = 100_000, 256
np.save(work / "table.npy", rng.standard_normal((vocab, dim), dtype=np.float32))
lengths = rng.integers(1, 128, bags)
offsets = np.zeros(bags + 1, np.int32)
np.cumsum(lengths, out=offsets[1:])
ids = rng.integers(0, vocab, int(offsets[-1]), dtype=np.int32)
pq.write_table(pa.table({"ids": pa.ListArray.from_arrays(offsets, ids)}), work / "bags.parquet", row_group_size=65_536)
cli = "import sys; from embedtool_cli.app import main; sys.argv[0] = 'embedtool'; sys.exit(main())"
seconds, outputs = {}, {}
for device in devices:
    outputs[device] = work / f"pooled_{device}.arrow"
    command = [sys.executable, "-c", cli, "bag", str(work / "table.npy"), str(work / "bags.parquet"), "-o",
               str(outputs[device]), "--column", "ids", "--mode", "mean", "--device", device, "--threads", cores, "-q"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds[device] = time.perf_counter() - start


def vectors(path):
    column = pa.ipc.open_file(path).read_all().column(0).combine_chunks()
    column = column.storage if isinstance(column, pa.ExtensionArray) else column
    return column.flatten().to_numpy()


np.testing.assert_allclose(vectors(outputs[devices[0]]), vectors(outputs[devices[-1]]), rtol=1e-5, atol=1e-6)
print(f"{bags:,} bags, {ids.size:,} ids, table {vocab:,} x {dim} float32, mean, Parquet in, Arrow out; outputs equal")
print("| device | seconds | M ids/s | cuda vs cpu |\n|---|---|---|---|")
for device in devices:
    print(f"| {device} | {seconds[device]:.2f} | {ids.size / seconds[device] / 1e6:.1f} |"
          f" {seconds[devices[-1]] / seconds[devices[0]]:.2f}x |")
EOF
timeout 100 $PY "$WORK/bag_end_to_end.py" "$WORK" "$(nproc)" "${BAGS:-1000000}" "${DEVICES:-cuda cpu}" 2>&1 |
    tee "$DEST/bag_end_to_end.md"
echo "== done: $DEST"
