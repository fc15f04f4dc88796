"""Fixtures shared by test files."""

import pytest


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
