"""``embedtool info``: the table's shape from the header without reading rows, and its statistics when asked."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import WEIGHT, run, sparse_npy


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_info_answers_from_the_header_without_reading_rows(tmp_path):
    path = sparse_npy(tmp_path / "big.npy", 1 << 28, 4)  # 4 GiB, sparse
    code = ("import sys; from embedtool_cli.app import app; sys.argv = ['embedtool', 'info', sys.argv[1], '--json']"
            "\ntry: app()\nexcept SystemExit: pass\n"  # VmHWM: this process's peak (ru_maxrss counts the parent's)
            "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')),"
            " file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert json.loads(result.stdout) == {"path": str(path), "format": "npy", "rows": 1 << 28, "dim": 4,
                                         "dtype": "float32", "bytes": 1 << 32, "vocab": False}
    assert int(result.stderr) < 400_000  # kB: the 4 GiB were not paged in


def test_info_stats_only_when_asked(tmp_path):
    np.save(tmp_path / "w.npy", WEIGHT)
    plain = json.loads(run("info", tmp_path / "w.npy", "--json").stdout)
    assert "zero_rows" not in plain and "norm_max" not in plain
    stats = json.loads(run("info", tmp_path / "w.npy", "--json", "--stats").stdout)
    assert stats["zero_rows"] == 0 and stats["norm_max"] == pytest.approx(np.linalg.norm(WEIGHT[5]))


def test_info_json(tmp_path):
    weight = np.random.default_rng(3).standard_normal((50, 6)).astype(np.float32)
    weight[4] = 0
    weight[7, 2] = np.nan
    np.save(tmp_path / "w.npy", weight)
    result = run("info", tmp_path / "w.npy", "--json", "--stats")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    finite = np.delete(weight, 7, axis=0)
    norms = np.linalg.norm(finite.astype(np.float64), axis=1)
    assert stats["rows"] == 50 and stats["dim"] == 6 and stats["dtype"] == "float32" and stats["bytes"] == 1200
    assert stats["zero_rows"] == 1 and stats["nonfinite_rows"] == 1
    assert stats["norm_min"] == pytest.approx(norms.min()) and stats["norm_max"] == pytest.approx(norms.max())
    assert stats["norm_mean"] == pytest.approx(norms.mean())
