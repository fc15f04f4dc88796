"""Fixtures shared by test files (plain helpers: helpers.py)."""

import pytest

from helpers import SAMPLE


@pytest.fixture(scope="module", params=["kernels", "python"])
def both_paths(request):
    """Every test of a module that asks for it runs on both paths: the numba kernels, and the NumPy/Python path of
    small inputs (text parsed in Python, a dict for the vocabulary, NumPy lookups)."""
    from embedtool import small

    saved = small.SMALL_WORK, small.SMALL_TEXT, small.SMALL_VOCAB
    limit = -1 if request.param == "kernels" else float("inf")
    small.SMALL_WORK = small.SMALL_TEXT = small.SMALL_VOCAB = limit
    yield request.param
    small.SMALL_WORK, small.SMALL_TEXT, small.SMALL_VOCAB = saved


@pytest.fixture
def glove(tmp_path):
    """A copy of sample_data/glove.txt (144 x 16 GloVe text, no header) that a test may change."""
    path = tmp_path / "glove.txt"
    path.write_bytes(SAMPLE.read_bytes())
    return path
