"""Nearest neighbours, analogies and evaluation (embedtool/similarity.py) against a NumPy brute force, gensim and
faiss, on gensim's own test files and on generated vectors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedtool import similarity
from embedtool.errors import InputFormatError, InvalidArgumentError
from embedtool.vectors import Vectors, load_vectors, save_vectors

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors  # noqa: E402

DATA = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
QUESTIONS = os.path.join(DATA, "questions-words.txt")


def brute_force(table, queries, k, metric="cosine", exclude=None):
    """Top-k by float64 scores, ties by the lower id: the rules of docs/similarity.md stated plainly."""
    table = np.asarray(table, np.float64)
    queries = np.asarray(queries, np.float64)
    if metric == "cosine":
        def unit(x):
            n = np.linalg.norm(x, axis=1, keepdims=True)
            return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

        table, queries = unit(table), unit(queries)
    scores = queries @ table.T
    width = min(k, len(table))
    ids = np.full((len(queries), width), -1)
    best = np.full((len(queries), width), -np.inf)
    for q in range(len(queries)):
        rows = [i for i in range(len(table)) if exclude is None or i != exclude[q]]
        rows.sort(key=lambda i: (-scores[q, i], i))
        ids[q, : len(rows[:width])] = rows[:width]
        best[q, : len(rows[:width])] = scores[q, rows[:width]]
    return ids, best


def assert_same_top_k(table, queries, k, metric, result_ids, result_scores, tol, exclude=None):
    """Ids equal the brute force's wherever scores are more than ``tol`` apart (float32 sums may swap near ties),
    scores equal to ``tol``; never NaN."""
    ids, best = brute_force(table, queries, k, metric, exclude)
    assert result_ids.shape == ids.shape
    assert not np.isnan(result_scores).any()
    np.testing.assert_allclose(result_scores, best, atol=tol)
    for q in range(len(ids)):
        for j in range(ids.shape[1]):
            if result_ids[q, j] != ids[q, j]:
                assert abs(best[q, j] - best[q, min(j + 1, ids.shape[1] - 1)]) <= 2 * tol or \
                       abs(best[q, j] - best[q, max(j - 1, 0)]) <= 2 * tol


tables = st.tuples(st.integers(1, 40), st.integers(1, 9), st.integers(1, 6), st.integers(0, 50), st.integers(0, 2**32 - 1))


@settings(max_examples=60, deadline=None)
@given(tables, st.sampled_from(["float32", "float64", "float16"]))
def test_dot_top_k_equals_the_brute_force_exactly_with_ties_by_lower_id(shape, dtype):
    """Small integers make every dot product exact, so duplicate rows tie exactly and must come out by lower id."""
    n, d, nq, k, seed = shape
    rng = np.random.default_rng(seed)
    table = rng.integers(-2, 3, size=(n, d)).astype(dtype)
    table[rng.random(n) < 0.2] = 0  # zero rows
    table[rng.integers(0, n, size=n // 3)] = table[0]  # duplicate rows
    queries = rng.integers(-2, 3, size=(nq, d)).astype(np.float64)
    result = Vectors(table).most_similar(queries, k, metric="dot")
    ids, best = brute_force(table, queries, k, "dot")
    np.testing.assert_array_equal(result.ids, ids)
    np.testing.assert_array_equal(result.scores, best)


@settings(max_examples=60, deadline=None)
@given(tables)
def test_cosine_top_k_equals_the_brute_force_zero_rows_and_queries_score_zero(shape):
    n, d, nq, k, seed = shape
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((n, d)).astype(np.float32)
    table[rng.random(n) < 0.2] = 0
    queries = rng.standard_normal((nq, d)).astype(np.float32)
    queries[0] = 0
    result = Vectors(table).most_similar(queries, k)
    assert_same_top_k(table, queries, k, "cosine", result.ids, result.scores, 1e-5)
    assert (result.scores[0] == 0).all() and list(result.ids[0]) == list(range(min(k, n)))


def test_block_sizes_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(1)
    table = rng.standard_normal((997, 13)).astype(np.float32)
    table[5] = table[700]
    queries = rng.standard_normal((61, 13)).astype(np.float32)
    whole = Vectors(table).most_similar(queries, 17)
    monkeypatch.setattr(similarity, "QUERY_BLOCK", 7)
    monkeypatch.setattr(similarity, "TABLE_BLOCK", 45)
    blocked = Vectors(table).most_similar(queries, 17)
    np.testing.assert_array_equal(blocked.ids, whole.ids)
    np.testing.assert_array_equal(blocked.scores, whole.scores)


def test_token_and_id_queries_exclude_themselves_and_short_rows_are_padded():
    v = Vectors(np.array([[1, 0], [1, 0.1], [0, 1]], np.float32), ["a", "b", "c"])
    by_token = v.most_similar(["a", "c"], k=5)
    assert by_token.ids.tolist() == [[1, 2, -1], [1, 0, -1]]
    assert by_token.tokens == [["b", "c", None], ["b", "a", None]]
    assert np.isneginf(by_token.scores[:, 2]).all()
    np.testing.assert_array_equal(v.most_similar(0, k=5).ids, by_token.ids[:1])
    assert v.most_similar(np.array([1, 0], np.float32), k=1).ids.tolist() == [[0]]  # a vector excludes nothing
    assert v.most_similar("a", k=0).ids.shape == (1, 0)


def test_against_searches_another_table_without_excluding():
    words = Vectors(np.eye(3, dtype=np.float32), ["x", "y", "z"])
    labels = Vectors(np.array([[0, 0, 1], [1, 0, 0]], np.float32), ["Z", "X"])
    assert words.most_similar(["x", "z"], k=1, against=labels).tokens == [["X"], ["Z"]]


def test_bad_queries_and_options_are_refused_with_their_value():
    v = Vectors(np.eye(3, dtype=np.float32), ["x", "y", "z"])
    with pytest.raises(InputFormatError, match="'nope'"):
        v.most_similar(["x", "nope"])
    with pytest.raises(InvalidArgumentError, match="-1"):
        v.most_similar("x", k=-1)
    with pytest.raises(InvalidArgumentError, match="'l2'"):
        v.most_similar("x", metric="l2")
    with pytest.raises(InvalidArgumentError, match="queries have 4 dimensions but the table searched has 3"):
        v.most_similar(np.ones(4, np.float32))
    with pytest.raises(InvalidArgumentError, match="0..2"):
        v.most_similar([7])
    with pytest.raises(InvalidArgumentError, match="'sub'"):
        v.analogy("x", "y", "z", method="sub")


def test_norms_are_computed_once_per_table():
    v = Vectors(np.ones((4, 3), np.float32), list("abcd"))
    batch = list("abcd") * 3  # more than FEW_QUERIES: the batch path, which keeps the norms
    v.most_similar(batch)
    norms = v._norms
    assert norms is not None
    v.most_similar(batch[::-1])
    assert v._norms is norms


def few_and_batch(matrix, queries, k, cosine, exclude=None, cached=False):
    """(search_few's result, search's result) for the same queries: cosine from the norms, given or not."""
    v = Vectors(matrix)
    inverse = similarity._inverse(similarity.row_norms(v)) if cosine else None
    few = similarity.search_few(matrix, queries, k, cosine=cosine, norms=v._norms if cached else None,
                                exclude=exclude)
    return few, similarity.search(matrix, queries, k, inverse_norms=inverse, exclude=exclude)


@settings(max_examples=60, deadline=None)
@given(tables, st.sampled_from(["float32", "float64", "float16"]), st.booleans(), st.booleans())
def test_few_queries_equal_the_batch_path_and_the_brute_force(shape, dtype, cosine, cached):
    """search_few (NumPy, the one-word command's path) against search (the compiled scan): the same ids and
    scores, with duplicate rows tying by the lower id, zero rows scoring 0, k above the rows, and excluded rows."""
    n, d, nq, k, seed = shape
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((n, d)).astype(dtype)
    table[rng.random(n) < 0.2] = 0
    table[rng.integers(0, n, size=n // 3)] = table[0]
    queries = similarity._unit(table[rng.integers(0, n, size=nq)].astype(np.float64))
    exclude = rng.integers(-1, n, size=(nq, 1))  # -1: none
    (ids, scores), (batch_ids, batch_scores) = few_and_batch(table, queries, k, cosine, exclude, cached)
    np.testing.assert_array_equal(ids, batch_ids)
    np.testing.assert_allclose(scores, batch_scores, rtol=1e-6, atol=1e-7)
    assert_same_top_k(table, queries, k, "cosine" if cosine else "dot", ids, scores, 1e-5, exclude[:, 0])


def test_one_query_equals_numpy_on_a_large_table_with_duplicates_and_zero_rows():
    rng = np.random.default_rng(8)
    table = rng.standard_normal((50_000, 40)).astype(np.float32)
    table[100:110] = 0
    table[40_000] = table[30_000] = table[20_000]  # duplicates: they tie exactly
    query = table[20_000][None, :]
    for k in (1, 10, 60_000):
        (ids, scores), (batch_ids, batch_scores) = few_and_batch(table, query, k, True)
        np.testing.assert_array_equal(ids, batch_ids)
        np.testing.assert_array_equal(scores, batch_scores)
    assert ids[0, :3].tolist() == [20_000, 30_000, 40_000] and scores[0, 0] == scores[0, 2]
    assert (scores[0, np.isin(ids[0], range(100, 110))] == 0).all()
    unit = table.astype(np.float64) / np.linalg.norm(table.astype(np.float64), axis=1, keepdims=True).clip(1e-300)
    expected = np.lexsort((np.arange(len(table)), -(unit @ unit[20_000])))[:10]
    assert similarity.search_few(table, similarity._unit(query), 10, cosine=True)[0][0].tolist() == expected.tolist()
    zero_ids, zero_scores = similarity.search_few(table, np.zeros((1, 40), np.float32), 10, cosine=True)
    assert zero_ids[0].tolist() == list(range(10)) and (zero_scores == 0).all()  # every row a candidate: ties


def test_few_cosine_bound_holds_for_huge_tiny_and_nonfinite_rows():
    """Rows whose float32 sums of squares overflow or underflow are never ruled out by the approximate norms: the
    result equals the batch path's, whose norms are summed in float64."""
    rng = np.random.default_rng(9)
    table = rng.standard_normal((3000, 16)).astype(np.float32)
    table[7] *= np.float32(1e25)  # squares overflow float32, the norm does not
    table[8] *= np.float32(1e-30)  # squares underflow
    table[9, 0] = np.inf
    table[10, 0] = np.nan
    queries = similarity._unit(np.vstack([table[7], table[8], rng.standard_normal(16)]).astype(np.float64))
    (ids, scores), (batch_ids, batch_scores) = few_and_batch(table, queries, 5, True)
    np.testing.assert_array_equal(ids, batch_ids)
    np.testing.assert_array_equal(scores, batch_scores)
    assert ids[0, 0] == 7 and ids[1, 0] == 8 and not np.isin([9, 10], ids).any()


def test_a_few_tokens_are_found_by_a_scan_as_the_index_finds_them():
    tokens = [f"w{i % 70_000}" for i in range(70_010)]  # above SMALL_VOCAB; w0..w9 twice: the first row counts
    v = Vectors(np.zeros((len(tokens), 1), np.float32), tokens)
    words = ["w5", "w69999", "nope", "w0"]
    scanned = v.token_ids(words)
    assert v._index is None  # the scan built no index
    np.testing.assert_array_equal(scanned, v.token_ids(np.array(words, object)))  # (an array: the index)
    assert scanned.tolist() == [5, 69_999, -1, 0]


# --------------------------------------------------------------------------------------------------------------
# gensim and faiss


@pytest.fixture(scope="module")
def euclidean():
    path = os.path.join(DATA, "euclidean_vectors.bin")
    return load_vectors(path), KeyedVectors.load_word2vec_format(path, binary=True)


def kv_of(vectors):
    kv = KeyedVectors(vectors.dim)
    kv.add_vectors(vectors.tokens.to_pylist(), np.asarray(vectors.matrix))
    return kv


def gensim_ids(kv, results):
    return [kv.key_to_index[word] for word, _ in results]


def test_most_similar_ids_and_scores_equal_gensims_on_its_test_vectors(euclidean):
    ours, kv = euclidean
    words = kv.index_to_key[:200]
    result = ours.most_similar(words, k=10)
    for i, word in enumerate(words):
        expected = kv.most_similar(word, topn=10)
        assert result.ids[i].tolist() == gensim_ids(kv, expected)
        np.testing.assert_allclose(result.scores[i], [s for _, s in expected], rtol=0, atol=2e-6)


def test_most_similar_ids_equal_faiss_index_flat_ip():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    table = rng.standard_normal((5000, 64)).astype(np.float32)
    queries = rng.standard_normal((300, 64)).astype(np.float32)
    index = faiss.IndexFlatIP(64)
    index.add(table / np.linalg.norm(table, axis=1, keepdims=True))
    _, expected = index.search(queries / np.linalg.norm(queries, axis=1, keepdims=True), 10)
    np.testing.assert_array_equal(Vectors(table).most_similar(queries, 10).ids, expected)


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogies_equal_gensims_most_similar_and_cosmul(euclidean, method):
    ours, kv = euclidean
    rng = np.random.default_rng(4)
    triples = [kv.index_to_key[i] for i in rng.integers(0, len(kv), size=(100, 3)).ravel()]
    a, b, c = triples[0::3], triples[1::3], triples[2::3]
    result = ours.analogy(a, b, c, k=5, method=method)
    for i in range(100):
        if method == "add":
            expected = kv.most_similar(positive=[b[i], c[i]], negative=[a[i]], topn=5)
        else:
            expected = kv.most_similar_cosmul(positive=[b[i], c[i]], negative=[a[i]], topn=5)
        assert result.ids[i].tolist() == gensim_ids(kv, expected), (a[i], b[i], c[i])
        np.testing.assert_allclose(result.scores[i], [s for _, s in expected], rtol=1e-5, atol=1e-6)


def structured_vectors(seed=5):
    """Vectors for the words of questions-words.txt in which most analogies hold (b - a = the section's offset,
    plus noise), with lower- and upper-case variants and filler words, shuffled."""
    rng = np.random.default_rng(seed)
    vectors, offset = {}, None
    with open(QUESTIONS) as f:
        for line in f:
            if line.startswith(":"):
                offset = rng.standard_normal(40)
                continue
            a, b, c, d = line.split()
            for x, y in ((a, b), (c, d)):
                vectors.setdefault(x, rng.standard_normal(40))
                vectors.setdefault(y, vectors[x] + offset + 0.3 * rng.standard_normal(40))
    words = list(vectors)
    for w in words[::7]:
        vectors[w.lower() if w != w.lower() else w.upper()] = rng.standard_normal(40)  # a case variant
    for i in range(300):
        vectors[f"filler{i}"] = rng.standard_normal(40)
    order = rng.permutation(len(vectors))
    tokens = [list(vectors)[i] for i in order]
    return Vectors(np.array([vectors[t] for t in tokens], np.float32), tokens)


def section_counts(sections):
    return [(s["section"], s["correct"], s["incorrect"]) for s in sections]


@pytest.mark.parametrize("options", [{}, {"restrict_vocab": 400}, {"case_insensitive": False},
                                     {"dummy4unknown": True, "restrict_vocab": 700}])
def test_analogy_evaluation_equals_gensims(euclidean, options):
    for ours in (euclidean[0], structured_vectors()):
        kv = kv_of(ours)
        accuracy, sections = kv.evaluate_word_analogies(QUESTIONS, **options)
        result = ours.evaluate_analogies(QUESTIONS, **options)
        assert result.accuracy == accuracy
        assert section_counts(result.sections) == section_counts(sections)
    assert len(sections[-1]["correct"]) > 100  # the structured vectors answer many: not a comparison of empty lists


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
@pytest.mark.parametrize("options", [{}, {"dummy4unknown": True}, {"restrict_vocab": 1000, "case_insensitive": False}])
def test_pair_evaluation_equals_gensims_to_float_rounding(euclidean, name, options):
    """gensim computes each cosine in float32 (scipy's snrm2, sdot), embedtool in float64: the correlations agree
    to about 1e-8, the OOV ratio exactly."""
    ours, kv = euclidean
    pearson, spearman, oov = kv.evaluate_word_pairs(os.path.join(DATA, name), **options)
    result = ours.evaluate_pairs(os.path.join(DATA, name), **options)
    assert result.pearson == pytest.approx(pearson.statistic, rel=1e-6)
    assert result.spearman == pytest.approx(spearman.statistic, rel=1e-6)
    assert result.oov_ratio == oov


def test_evaluation_files_with_errors_name_them(tmp_path):
    v = Vectors(np.eye(3, dtype=np.float32), ["x", "y", "z"])
    bad = tmp_path / "q.txt"
    bad.write_text("x y z x\n")
    with pytest.raises(InputFormatError, match=f"{bad}:1"):
        v.evaluate_analogies(bad)
    with pytest.raises(InputFormatError, match="no such file"):
        v.evaluate_pairs(tmp_path / "missing.tsv")
    with pytest.raises(InvalidArgumentError, match="no vocabulary"):
        Vectors(np.eye(3, dtype=np.float32)).evaluate_pairs(bad)


# --------------------------------------------------------------------------------------------------------------
# The commands
