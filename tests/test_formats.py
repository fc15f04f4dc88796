"""The weight-format registry (``embedtool.formats``): every format module reads what it writes, and the registry stays
light to import."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from embedtool import formats
from embedtool.formats.base import LoadOptions, SaveOptions


def test_registry_imports_no_numba():
    """The CLI's light paths import the registry: its format modules import numba only inside read/write."""
    code = "import sys, embedtool.formats; print('numba' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


@pytest.mark.parametrize("fmt", formats.REGISTRY, ids=lambda f: f.name)
def test_each_format_round_trips_through_its_module(tmp_path, fmt):
    """A format's ``write`` then its ``read`` give the matrix back, and the tokens where the file holds them."""
    matrix = np.array([[0.5, -1.25, 3.0], [2.0, 0.0, -0.75]], np.float32)
    tokens = pa.array(["a b", "c"] if fmt.name in ("glove", "word2vec") else ["ab", "c"], pa.string())
    meta = {"source": "x", "source_format": "glove", "dtype": "float32", "rows": 2, "dim": 3}
    path = tmp_path / f"w{fmt.suffixes[0]}"
    with open(path, "wb") as f:
        fmt.write(f, matrix, tokens, meta, SaveOptions())
    assert formats.detect(path)[0] is fmt
    result = fmt.read(path, None, LoadOptions())
    np.testing.assert_array_equal(result.matrix, matrix)
    if fmt.sidecar_vocab:
        assert result.tokens is None
    else:
        assert result.tokens.to_pylist() == tokens.to_pylist()
