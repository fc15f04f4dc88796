"""``max_norm`` scaling shared by ``embedding`` and ``embedding_bag`` (shared_kernels.py): memory per looked-up row,
the path for tables too large for per-row state, and rows holding NaN as torch leaves them."""

import tracemalloc

import numpy as np
import pytest
import torch

from embedtool import embedding, embedding_bag
from helpers import sparse_npy


def test_max_norm_allocates_per_looked_up_row_not_per_table_row(tmp_path):
    from embedtool.formats import npy

    weight = npy.read(sparse_npy(tmp_path / "big.npy", 1 << 28, 4)).matrix
    ids = np.array([[3, 5, (1 << 28) - 1]])
    embedding(ids - 3, weight, max_norm=1.0), embedding_bag(ids - 3, weight, max_norm=1.0)  # the kernels compiled
    tracemalloc.start()
    try:
        looked_up = embedding(ids, weight, max_norm=1.0, padding_idx=5)
        pooled = embedding_bag(ids, weight, max_norm=1.0, padding_idx=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # the 2**28-row table would need 1 GiB of per-row scales
    assert not looked_up.any() and not pooled.any()


def test_max_norm_on_huge_tables_matches_the_per_row_path(monkeypatch):
    import embedtool.shared_kernels as shared_kernels

    rng = np.random.default_rng(21)
    for dtype in (np.float16, np.float32, np.float64):
        weight = (rng.standard_normal((40, 5)) * 3).astype(dtype)
        ids = rng.integers(0, 40, (6, 7))
        expected = [embedding(ids, weight, 3, 1.5, p) for p in (1.0, 2.0, np.inf)]
        expected_bags = [embedding_bag(ids, weight, mode="max", padding_idx=3, max_norm=1.5, norm_type=p)
                         for p in (1.0, 2.0, np.inf)]
        with monkeypatch.context() as patch:
            patch.setattr(shared_kernels, "_MAX_STATE", -1)  # as for a table too large for per-row state
            for p, want, want_bags in zip((1.0, 2.0, np.inf), expected, expected_bags):
                np.testing.assert_array_equal(embedding(ids, weight, 3, 1.5, p), want)
                np.testing.assert_array_equal(
                    embedding_bag(ids, weight, mode="max", padding_idx=3, max_norm=1.5, norm_type=p), want_bags)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [np.inf, 2.0])
def test_max_norm_leaves_a_row_holding_nan_unchanged_as_torch(dtype, norm_type):
    weight = np.array([[np.nan, 5, 0], [3, 4, 0]], dtype)
    ids = np.array([0, 1])
    ours = embedding(ids, weight, max_norm=1.0, norm_type=norm_type)
    theirs = torch.nn.functional.embedding(torch.from_numpy(ids), torch.from_numpy(weight.copy()), max_norm=1.0,
                                           norm_type=norm_type).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours[0], weight[0])
    pooled = embedding_bag(ids[:, None], weight, mode="sum", max_norm=1.0, norm_type=norm_type)
    np.testing.assert_array_equal(pooled, theirs)
