"""What several test files share: the CLI run in this process and as the installed command, the checks of the
one-line error contract, and small weight tables with awkward values."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from embedtool import atomic
from embedtool.vectors import Vectors
from embedtool_cli.app import app

EMBEDTOOL = Path(sys.executable).with_name("embedtool")
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "glove.txt"
WEIGHT = np.arange(24, dtype=np.float32).reshape(6, 4) / 7
TOKENS = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff"]  # offsets 0 1 3 6 10 15 21: one byte pattern in the file
DTYPES = [np.float16, np.float32, np.float64]

runner = CliRunner()


def run(*args):
    """The CLI in this process (CliRunner), arguments as strings."""
    return runner.invoke(app, [str(a) for a in args])


def subprocess_run(*args, **kwargs):
    """The installed CLI in a real process: a crash is a negative return code there."""
    return subprocess.run([str(EMBEDTOOL), *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs)


def one_line_error(result, *fragments) -> None:
    """Exit 1 and exactly one line ``Error: ...`` on stderr holding each fragment."""
    stderr = result.stderr
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def failed(result, message: str) -> None:
    """Exit status 1, nothing on stdout, exactly ``Error: message`` on stderr."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"


def assert_clean_failure(result) -> None:
    """A real process's one-line failure: exit 1 and one ``Error: ...`` line."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr


def table(dtype, spaces=True):
    """Five rows with awkward values (subnormals, negative zero, wide exponents) and awkward tokens; without spaces
    in tokens and within float32's range for word2vec binary."""
    rng = np.random.default_rng(7)
    reach = {np.float16: 4, np.float32: 30, np.float64: 200 if spaces else 30}[dtype]
    values = rng.standard_normal((5, 3)) * 10.0 ** rng.integers(-reach, reach, (5, 3))
    matrix = values.astype(dtype)
    matrix[0, 0] = -0.0
    matrix[0, 1] = np.finfo(dtype).smallest_subnormal
    words = ["a", "b c" if spaces else "bc", "é", "x\u00a0y", "日本"]
    return Vectors(matrix, words)


def same_bits(a, b):
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


def sparse_npy(path: Path, rows: int, dim: int) -> Path:
    """A float32 .npy of ``rows`` x ``dim`` zeros that takes no disk space (a sparse file)."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
        f.truncate(f.tell() + rows * dim * 4)
    return path


def tmpfile_supported(directory) -> bool:
    """Whether ``directory`` takes unnamed (O_TMPFILE) files and atomic.py uses them."""
    try:
        os.close(os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600))
    except (AttributeError, OSError):
        return False
    return atomic._ANONYMOUS


def others_can_run(path: Path) -> bool:
    """Whether another user (the tests that act as ``nobody``) can run ``path``: every folder above it searchable and
    the file itself readable by others. A clone inside a private ``mktemp -d`` folder is not."""
    path = Path(path).absolute()
    folders_open = all(folder.stat().st_mode & 0o001 for folder in path.parents)
    return folders_open and bool(path.stat().st_mode & 0o004)
