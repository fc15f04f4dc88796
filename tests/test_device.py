"""The device switch on a machine without a GPU (the normal suite, no simulator): auto falls back, cuda refuses."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import embedtool
from embedtool.errors import GpuUnavailableError, InvalidArgumentError
from embedtool_cli.app import app

pytestmark = pytest.mark.skipif(
    __import__("embedtool.device", fromlist=["gpu_available"]).gpu_available(), reason="a GPU is usable here"
)
runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    weight = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    np.save(tmp_path / "w.npy", weight)
    np.save(tmp_path / "ids.npy", np.array([[1, 2], [3, 9]]))
    return tmp_path, weight


def test_auto_and_default_run_on_the_cpu(files):
    _, weight = files
    for device in (None, "auto", "cpu"):
        np.testing.assert_array_equal(embedtool.embedding([4, 1], weight, device=device), weight[[4, 1]])
        pooled = embedtool.embedding_bag([[4, 1]], weight, mode="sum", device=device)
        np.testing.assert_allclose(pooled, weight[[4, 1]].sum(axis=0, keepdims=True), rtol=1e-6)


def test_cuda_without_a_gpu_is_a_one_line_error(files):
    _, weight = files
    with pytest.raises(GpuUnavailableError, match=r"^cannot use the GPU: ") as info:
        embedtool.embedding([1], weight, device="cuda")
    assert "\n" not in str(info.value)
    with pytest.raises(GpuUnavailableError, match=r"^cannot use the GPU: "):
        embedtool.embedding_bag([[1]], weight, device="cuda")
    with pytest.raises(InvalidArgumentError, match=r"device must be one of auto, cpu, cuda, got 'gpu'"):
        embedtool.embedding([1], weight, device="gpu")


def test_cli_device_options(files):
    tmp_path, weight = files
    result = runner.invoke(app, ["embed", str(tmp_path / "w.npy"), str(tmp_path / "ids.npy"), "-o",
                                 str(tmp_path / "o.arrow"), "--device", "cuda"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot use the GPU: ") and result.output.count("\n") == 1
    assert not (tmp_path / "o.arrow").exists()
    result = runner.invoke(app, ["embed", str(tmp_path / "w.npy"), str(tmp_path / "ids.npy"), "-o",
                                 str(tmp_path / "o.arrow"), "--device", "auto"])
    assert result.exit_code == 0, result.output
    assert "on the CPU" in result.output
    tensor = pa.ipc.open_file(str(tmp_path / "o.arrow")).read_all().column("embedding").combine_chunks()
    np.testing.assert_array_equal(tensor.to_numpy_ndarray(), weight[[[1, 2], [3, 9]]])


def test_cpu_never_imports_cuda(files):
    tmp_path, _ = files
    code = (
        "import sys, numpy as np, embedtool\n"
        "w = np.ones((3, 2), np.float32)\n"
        "embedtool.embedding([1], w); embedtool.embedding([1], w, device='cpu')\n"
        "embedtool.embedding_bag([[1]], w)\n"
        "print('CUDA' if any(m.startswith(('numba.cuda', 'numba_cuda')) for m in sys.modules) else 'CLEAN')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "CLEAN"
