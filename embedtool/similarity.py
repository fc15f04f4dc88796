"""Nearest neighbours, analogies and their evaluation: exact brute force at the speed of BLAS.

``search`` is the engine every other function here calls. It streams over the table in blocks of rows (a
memory-mapped table is read, never copied; a float16 block is widened to float32 one block at a time), multiplies
each block by a block of queries with NumPy's BLAS (``sgemm``: the fastest thing for a dense product on a CPU, which
no hand-written loop comes near), and folds each block of scores into a running top-k per query with a compiled,
parallel scan. The scan compares 16 scores at once against the k-th best so far and only looks closer when one of
them beats it, so it costs a small fraction of the product. Cosine scores are ``q . t / |q| / |t|``: queries are
normalised once, and the table's inverse row norms (computed once per ``Vectors`` and kept on it: once per open for
the store) scale each score in the scan, so the table itself is never normalised into a copy.

Rules (docs/similarity.md): results are sorted by score, ties by the lower id, so they do not depend on block sizes
or threads. A zero row or a zero query scores 0, never NaN. ``k`` larger than the table gives all its rows; where a
query has fewer candidates than the result's width (its own token excluded), the rest is id -1 with score -inf.

Parity with gensim (``KeyedVectors``): ``most_similar`` of a token excludes the token, ``analogy(..., "add")`` is
``most_similar(positive=[b, c], negative=[a])`` and ``"mul"`` is ``most_similar_cosmul`` (both normalise a, b and c
and exclude them); ``evaluate_analogies`` and ``evaluate_pairs`` follow ``evaluate_word_analogies`` and
``evaluate_word_pairs`` line by line (case folding with ``str.upper``, ``restrict_vocab``, OOV handling). Scores
agree with gensim's to float32 rounding (BLAS sums in another order), so ids agree except between near-equal scores.

A few queries (``FEW_QUERIES``: a one-word command) go to ``search_few`` instead, NumPy alone, so that numba is not
imported (its import and cache loads cost several times the search): one pass over the table for the products and
approximate norms, exact norms for the rows that can make the top k. Its results are ``search``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from .arrays import from_numpy
from .errors import InputFormatError, InvalidArgumentError

# Block sizes (see benchmarks/bench_similar.py). On one core, in CPU time, query x table blocks from 512 x 2048 to
# 1024 x 16384 ran within noise of each other (sgemm near 130 GFLOP/s, the scan 6-10% of the time). On the 2-core
# machine shared with other work, wall time fell from 3.96 s (1024 x 1024) to 2.32 s (x 4096) and 2.03 s (x 16384)
# for 1,000 x 100,000 x 300: every block hands the cores from OpenBLAS's threads to numba's and back, and each hand-off
# waits for the slowest thread. So blocks are large: 1024 x 8192 scores (32 MiB).
QUERY_BLOCK = 1024
TABLE_BLOCK = 8192
MAX_TABLE_BLOCK = 65536  # rows per block when there are few queries (a float16 block is widened: bounded memory)
METRICS = ("cosine", "dot")
#: Up to this many queries (a command line's handful of words) are searched by ``search_few``, with NumPy alone: a
#: one-word ``embedtool similar`` then imports no numba and loads no kernel (about 0.6 s here, several times its
#: search of 400,000 x 300). More queries go to ``search``, whose parallel scan then outweighs loading it.
FEW_QUERIES = 8
#: Rows per block in search_few: 1.2 MB of a 300-wide float32 table, still in cache for its squares. Larger blocks
#: hand the products to OpenBLAS's threads: on the 2-core machine under load, 400,000 x 300 took 1.0-5.1 s in blocks
#: of 2,048 or 4,096 rows, 0.21-0.30 s in blocks of 1,024.
FEW_BLOCK = 1024


# --------------------------------------------------------------------------------------------------------------
# The engine


def _compute_dtype(matrix) -> np.dtype:
    return np.dtype(np.float64 if matrix.dtype.itemsize == 8 else np.float32)


def row_norms(vectors) -> np.ndarray:
    """The L2 norm of every row of ``vectors.matrix``, computed once and kept on ``vectors``: a store is mapped anew
    on each open, so its norms are computed once per open (one parallel pass over the table; it is not copied)."""
    if vectors._norms is None:
        matrix = vectors.matrix
        norms = np.empty(len(matrix), _compute_dtype(matrix))
        if matrix.dtype.isnative and matrix.dtype != np.float16:
            from .similarity_kernels import row_norms as kernel

            kernel(matrix, norms)
        else:  # float16 or another byte order, which numba cannot read: a block at a time
            for i in range(0, len(matrix), 65536):
                norms[i : i + 65536] = _exact_norms(matrix[i : i + 65536], norms.dtype)
        vectors._norms = norms
    return vectors._norms


def _exact_norms(rows, dtype) -> np.ndarray:
    """The norms of ``rows`` as ``row_norms`` computes them, in NumPy: squares summed in float64, rounded once."""
    return np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64)).astype(dtype)


def _inverse(norms: np.ndarray) -> np.ndarray:
    inverse = np.zeros_like(norms)
    np.divide(1, norms, out=inverse, where=norms > 0)
    return inverse


def _unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; zero rows stay zero."""
    return rows * _inverse(np.linalg.norm(rows, axis=1))[:, None]


def search(matrix, queries, k, *, inverse_norms=None, exclude=None, limit=None, cosmul=False):
    """Exact top-k of ``queries @ matrix[:limit].T`` (each score times ``inverse_norms[row]`` when given).

    ``queries`` is ``[Q, D]`` (``[3Q, D]`` of a, b, c for ``cosmul``); ``exclude`` an ``[Q, E]`` int64 array of rows
    each query may not return (-1 pads). Returns ``(ids [Q, min(k, rows)] int64, scores float32/64)``.
    """
    rows = len(matrix) if limit is None else min(limit, len(matrix))
    dtype = _compute_dtype(matrix)
    queries = np.ascontiguousarray(queries, dtype)
    nq = len(queries) // 3 if cosmul else len(queries)
    width = min(k, rows)
    best_s = np.full((nq, width), -np.inf, dtype)
    best_i = np.full((nq, width), -1, np.int64)
    if width == 0 or nq == 0:
        return best_i, best_s
    if exclude is None:
        exclude = np.full((nq, 1), -1, np.int64)
    scale = np.ones(rows, dtype) if inverse_norms is None else np.asarray(inverse_norms[:rows], dtype)
    per = 3 if cosmul else 1
    qb = min(max(1, QUERY_BLOCK // per) * per, len(queries))
    # Fewer queries than a block: taller table blocks, as many scores per block (fewer calls for one query).
    tb = min(TABLE_BLOCK * max(1, QUERY_BLOCK // qb), max(TABLE_BLOCK, MAX_TABLE_BLOCK), rows)
    buffer = np.empty(qb * tb, dtype)
    from .similarity_kernels import top_k_block, top_k_cosmul_block

    kernel = top_k_cosmul_block if cosmul else top_k_block
    for t0 in range(0, rows, tb):
        t1 = min(t0 + tb, rows)
        block = matrix[t0:t1]
        if block.dtype != dtype or not block.dtype.isnative:
            block = block.astype(dtype)
        for q0 in range(0, len(queries), qb):
            q1 = min(q0 + qb, len(queries))
            scores = buffer[: (q1 - q0) * (t1 - t0)].reshape(q1 - q0, t1 - t0)
            np.matmul(queries[q0:q1], block.T, out=scores)
            kernel(scores, scale[t0:t1], t0, exclude[q0 // per : q1 // per], best_s[q0 // per : q1 // per],
                   best_i[q0 // per : q1 // per])
    return best_i, best_s


def search_few(matrix, queries, k, *, cosine=False, norms=None, exclude=None):
    """``search`` of a few queries with NumPy alone (no numba to import), the same scores and ids: ``queries @
    matrix.T``, divided by the row norms for ``cosine`` (``norms``, or computed here).

    Without ``norms`` it is one pass over the table: each block's products and its rows' float32 sums of squares
    while the block is in cache. Cosines from those norms lie within a proven bound of the exact ones, so only the
    rows whose bound reaches a query's k-th best get exact (float64-summed) norms, the rest are left out unseen.
    """
    rows, dim = matrix.shape
    dtype = _compute_dtype(matrix)
    queries = np.ascontiguousarray(queries, dtype)
    width = min(k, rows)
    best_s = np.full((len(queries), width), -np.inf, dtype)
    best_i = np.full((len(queries), width), -1, np.int64)
    if width == 0 or len(queries) == 0:
        return best_i, best_s
    dots = np.empty((len(queries), rows), dtype)
    squares = np.empty(rows, dtype) if cosine and norms is None else None
    work, ones = np.empty((min(FEW_BLOCK, rows), dim), dtype), np.ones(dim, dtype)
    for t0 in range(0, rows, FEW_BLOCK):
        block = matrix[t0 : t0 + FEW_BLOCK]
        if block.dtype != dtype or not block.dtype.isnative:
            block = block.astype(dtype)
        t1 = t0 + len(block)
        np.matmul(queries, block.T, out=dots[:, t0:t1])
        if squares is not None:
            with np.errstate(over="ignore"):  # an overflowing sum is never ruled out (_cosine_candidates)
                np.square(block, out=work[: t1 - t0])
                np.matmul(work[: t1 - t0], ones, out=squares[t0:t1])
    if cosine and norms is not None:
        dots *= _inverse(np.asarray(norms, dtype))  # the scan's score times scale, in the same dtype
    for q in range(len(queries)):
        own = np.zeros(0, np.int64) if exclude is None else exclude[q][exclude[q] >= 0]
        if squares is None:
            ids, scores = _best(np.arange(rows), dots[q], width, own)
        else:
            ids = _cosine_candidates(dots[q], squares, dim, width, own)
            exact = np.empty(len(ids), dtype)  # a block at a time: a zero query ties every row, all candidates
            for i in range(0, len(ids), FEW_BLOCK):
                exact[i : i + FEW_BLOCK] = _exact_norms(matrix[ids[i : i + FEW_BLOCK]], dtype)
            ids, scores = _best(ids, dots[q, ids] * _inverse(exact), width, own)
        best_i[q, : len(ids)] = ids
        best_s[q, : len(ids)] = scores
    return best_i, best_s


def _cosine_candidates(dots, squares, dim, width, own) -> np.ndarray:
    """The rows whose exact cosine (``dots`` over the float64-summed norm) can be among the ``width`` best, from
    the sums of squares ``squares`` in the table's dtype. A sum of D rounded squares is within about (D + 1) u of the
    exact sum in any order (u: the unit roundoff), its square root within half that plus u, the inverse and the
    product add u each, the exact score u: ``(D + 16) 2u`` bounds the difference of the two scores with room to
    spare. Sums below the square root of the smallest normal number (underflowed squares could matter) or
    not finite are never ruled out."""
    finfo = np.finfo(squares.dtype)
    with np.errstate(invalid="ignore"):  # inf times 0: not finite, never ruled out
        approx = dots * _inverse(np.sqrt(squares))
    margin = np.abs(approx) * ((dim + 16) * finfo.eps)  # eps = 2u
    sure = np.isfinite(approx) & (squares >= np.sqrt(finfo.tiny)) & np.isfinite(squares)
    low = np.where(sure, approx - margin, -np.inf)
    low[own] = -np.inf  # an excluded row must not raise the bar
    bar = -np.inf if width >= len(low) else np.partition(low, len(low) - width)[len(low) - width]
    return np.flatnonzero(~sure | (approx + margin >= bar))


def _best(ids, scores, width, own):
    """The ``width`` best (ids, scores), by score then by the lower id, without the rows ``own`` and without NaN or
    -inf scores: what the compiled scan keeps (it takes a score only when it beats the k-th, from -inf)."""
    keep = scores > -np.inf
    if len(own):
        keep &= ~np.isin(ids, own)
    ids, scores = ids[keep], scores[keep]
    if len(scores) > width:
        keep = scores >= np.partition(scores, len(scores) - width)[len(scores) - width]
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:width]
    return ids[order], scores[order]


# --------------------------------------------------------------------------------------------------------------
# The API (``Vectors`` methods delegate here)


@dataclass
class Neighbors:
    """``ids`` and ``scores`` ``[Q, k]`` (best first; id -1 where a query has fewer candidates) and the table
    searched, whose ``tokens`` names the ids."""

    ids: np.ndarray
    scores: np.ndarray
    table: object = field(repr=False)

    @property
    def tokens(self) -> list[list[str]] | None:
        """The token of each id (None for -1), or None when the table has no vocabulary."""
        if not self.table.has_vocab:
            return None
        names = self.table.tokens.take(from_numpy(np.maximum(self.ids.ravel(), 0))).to_pylist()  # (numpy: pandas)
        w = self.ids.shape[1]
        return [[n if i >= 0 else None for n, i in zip(names[r * w : (r + 1) * w], self.ids[r])]
                for r in range(len(self.ids))]


def _check_k(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InvalidArgumentError(f"k must be an integer >= 0, got {k!r}")
    return int(k)


def _query_rows(vectors, queries):
    """(query vectors [Q, D], their own rows [Q] or None) for tokens, row ids or vectors, one or a batch. A subword
    model's tokens not in the vocabulary get their subword vectors (own row -1), as gensim's FastTextKeyedVectors."""
    if isinstance(queries, str):
        queries = [queries]
    if isinstance(queries, (int, np.integer)) and not isinstance(queries, (bool, np.bool_)):
        queries = [queries]
    if isinstance(queries, np.ndarray) and queries.dtype.kind == "f":
        q = queries[None, :] if queries.ndim == 1 else queries
        if q.ndim != 2:
            raise InvalidArgumentError(f"query vectors must be [Q, D] or [D], got the shape {queries.shape}")
        return q, None
    queries = list(queries) if not isinstance(queries, np.ndarray) else queries
    if len(queries) and all(isinstance(x, str) for x in queries):
        if vectors.subwords:
            return vectors.vectors_of(queries), vectors.token_ids(queries)
        ids = vectors.ids(queries)
    else:
        ids = np.asarray(queries)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(vectors)):
            raise InvalidArgumentError(f"queries must be tokens, row ids 0..{len(vectors) - 1} or float vectors")
        ids = ids.astype(np.int64).reshape(-1)
    return vectors.matrix[ids], ids


def most_similar(vectors, queries, k=10, metric="cosine", against=None) -> Neighbors:
    """The ``k`` rows of ``against`` (default: ``vectors``) nearest to each query (tokens, row ids or vectors of
    ``vectors``); a token or id query never returns itself when searching its own table."""
    k = _check_k(k)
    if metric not in METRICS:
        raise InvalidArgumentError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    table = vectors if against is None else against
    q, own = _query_rows(vectors, queries)
    if q.shape[1] != table.dim:
        raise InvalidArgumentError(f"queries have {q.shape[1]} dimensions but the table searched has {table.dim}")
    dtype = _compute_dtype(table.matrix)
    q = np.asarray(q, dtype)
    cosine = metric == "cosine"
    if cosine:
        q = _unit(q)
    exclude = own[:, None] if own is not None and table is vectors else None
    if len(q) <= FEW_QUERIES:
        ids, scores = search_few(table.matrix, q, k, cosine=cosine, norms=table._norms, exclude=exclude)
    else:
        inverse = _inverse(row_norms(table)) if cosine else None
        ids, scores = search(table.matrix, q, k, inverse_norms=inverse, exclude=exclude)
    return Neighbors(ids, scores, table)


def _analogy_queries(vectors, a, b, c, method):
    """The query vectors of analogies ``a : b :: c : ?`` (row ids), built as gensim builds them."""
    norms = row_norms(vectors)
    dtype = norms.dtype
    units = [np.asarray(vectors.matrix[i], dtype) * _inverse(norms[i])[:, None] for i in (a, b, c)]
    if method == "mul":
        return np.stack(units, axis=1).reshape(-1, vectors.dim)  # a, b, c of each analogy in turn
    mean = (units[1].astype(np.float64) + units[2] - units[0]) / 3  # get_mean_vector(pre/post_normalize=True)
    return _unit(mean).astype(dtype)


def _analogy_ids(vectors, a, b, c, k, method, limit):
    if method not in ("add", "mul"):
        raise InvalidArgumentError(f"method must be 'add' or 'mul', got {method!r}")
    queries = _analogy_queries(vectors, a, b, c, method)
    inverse = _inverse(row_norms(vectors))
    exclude = np.stack([a, b, c], axis=1)
    return search(vectors.matrix, queries, k, inverse_norms=inverse, exclude=exclude, limit=limit,
                  cosmul=method == "mul")


def analogy(vectors, a, b, c, k=10, method="add") -> Neighbors:
    """``a`` is to ``b`` as ``c`` is to ?: the ``k`` best rows by 3CosAdd (``"add"``) or 3CosMul (``"mul"``), a, b
    and c excluded. Each of a, b, c is a token or a sequence of tokens (a batch of analogies)."""
    k = _check_k(k)
    words = [[x] if isinstance(x, str) else list(x) for x in (a, b, c)]
    if not len(words[0]) == len(words[1]) == len(words[2]):
        raise InvalidArgumentError("a, b and c must hold as many tokens each")
    ids, scores = _analogy_ids(vectors, *(vectors.ids(w) for w in words), k, method, None)
    return Neighbors(ids, scores, vectors)


# --------------------------------------------------------------------------------------------------------------
# Evaluation


def _ok_vocab(vectors, restrict_vocab, case_insensitive) -> dict:
    """gensim's ``ok_vocab``: the first ``restrict_vocab`` tokens (case-folded), each to its lowest row."""
    if not vectors.has_vocab:
        raise InvalidArgumentError(f"{vectors.metadata.get('source', 'this table')} has no vocabulary to evaluate")
    names = vectors.tokens[:restrict_vocab].to_pylist()
    ok = {}
    for i, name in enumerate(names):
        ok.setdefault(name.upper() if case_insensitive else name, i)
    return ok


def _read_lines(path, encoding="utf-8"):
    path = Path(path)
    try:
        with open(path, encoding=encoding, errors="strict", newline="") as f:
            return f.read().splitlines(keepends=True)
    except FileNotFoundError:
        raise InputFormatError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise InputFormatError(f"{path}: not {encoding} text ({e.reason} at byte {e.start})") from None


@dataclass
class AnalogyScores:
    """``accuracy`` over all sections; ``sections``: ``{"section", "correct", "incorrect"}`` with the lists of
    (a, b, c, expected) as gensim returns them, the last being "Total accuracy"; ``oov_ratio`` in percent."""

    accuracy: float
    sections: list
    oov_ratio: float


def evaluate_analogies(vectors, path, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False,
                       method="add") -> AnalogyScores:
    """Analogy accuracy on a questions-words file (``: section`` lines, then ``a b c expected``), as gensim's
    ``evaluate_word_analogies``: only the first ``restrict_vocab`` rows count, each answer is the best of the top 5
    that is not a, b or c, OOV questions are skipped (or wrong with ``dummy4unknown``)."""
    ok = _ok_vocab(vectors, restrict_vocab, case_insensitive)
    sections, section, questions, oov, total_questions = [], None, [], 0, 0
    for line_no, line in enumerate(_read_lines(path)):
        if line.startswith(": "):
            if section:
                sections.append(section)
            section = {"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []}
            continue
        if not section:
            raise InputFormatError(f"{path}:{line_no + 1}: a question before the first ': section' line")
        words = [w.upper() for w in line.split()] if case_insensitive else line.split()
        if len(words) != 4:
            continue  # gensim skips lines that are not four words
        total_questions += 1
        known = all(w in ok for w in words)
        oov += not known
        if known or dummy4unknown:  # an OOV question counts as wrong with dummy4unknown, else not at all
            questions.append((section, tuple(words), known))
    if section:
        sections.append(section)
    asked = [words for _, words, known in questions if known]
    if asked:
        a, b, c = (np.array([ok[words[i]] for words in asked], np.int64) for i in range(3))
        ids, _ = _analogy_ids(vectors, a, b, c, 5, method, restrict_vocab)
        names = vectors.tokens.take(np.maximum(ids.ravel(), 0)).to_pylist()
    n = 0
    for sec, words, known in questions:  # in file order, as gensim fills its lists
        predicted = None
        if known:
            for i, name in zip(ids[n], names[n * ids.shape[1] : (n + 1) * ids.shape[1]]):
                if i < 0:
                    break
                predicted = name.upper() if case_insensitive else name
                if predicted in ok and predicted not in words[:3]:
                    break
            n += 1
        sec["correct" if known and predicted == words[3] else "incorrect"].append(words)
    correct = [q for s in sections for q in s["correct"]]
    incorrect = [q for s in sections for q in s["incorrect"]]
    sections.append({"section": "Total accuracy", "correct": correct, "incorrect": incorrect})
    if not total_questions:
        raise InputFormatError(f"{path}: no analogy questions")
    accuracy = len(correct) / (len(correct) + len(incorrect)) if correct or incorrect else 0.0
    return AnalogyScores(accuracy, sections, oov / total_questions * 100)


@dataclass
class PairScores:
    """Pearson and Spearman correlations of the model's cosines with the file's scores, over ``pairs`` pairs;
    ``oov_ratio`` in percent."""

    pearson: float
    spearman: float
    oov_ratio: float
    pairs: int


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank (scipy's ``rankdata``)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator else float("nan")


def evaluate_pairs(vectors, path, delimiter="\t", encoding="utf-8", restrict_vocab=300000, case_insensitive=True,
                   dummy4unknown=False) -> PairScores:
    """Correlation of cosine similarity with human scores on a word-pair file (``a<TAB>b<TAB>score``; ``#`` lines
    are comments), as gensim's ``evaluate_word_pairs``: pairs with a word outside the first ``restrict_vocab`` rows
    are skipped, or scored 0 with ``dummy4unknown``; the OOV ratio counts them."""
    ok = _ok_vocab(vectors, restrict_vocab, case_insensitive)
    gold, left, right, oov = [], [], [], 0
    for line in _read_lines(path, encoding):
        if not line or line.startswith("#"):
            continue
        fields = line.split(delimiter)
        if len(fields) != 3:
            continue
        a, b = (f.upper() for f in fields[:2]) if case_insensitive else fields[:2]
        try:
            score = float(fields[2])
        except ValueError:
            continue
        if a not in ok or b not in ok:
            oov += 1
            if dummy4unknown:
                gold.append(score)
                left.append(-1)
                right.append(-1)
            continue
        gold.append(score)
        left.append(ok[a])
        right.append(ok[b])
    if not gold:
        raise InputFormatError(f"{path}: no pair has both words in the vocabulary")
    left, right = np.array(left), np.array(right)
    known = left >= 0
    model = np.zeros(len(gold))
    u, v = (_unit(np.asarray(vectors.matrix[i[known]], np.float64)) for i in (left, right))
    model[known] = np.einsum("ij,ij->i", u, v)
    gold = np.array(gold)
    ratio = oov / len(gold) * 100 if dummy4unknown else oov / (len(gold) + oov) * 100
    return PairScores(_pearson(gold, model), _pearson(_ranks(gold), _ranks(model)), ratio, len(gold))


# --------------------------------------------------------------------------------------------------------------
# Files of queries (``embedtool similar WEIGHTS QUERIES -o OUT``)

NEIGHBORS_TYPE = pa.list_(pa.struct([("id", pa.int64()), ("token", pa.string()), ("score", pa.float32())]))
QUERY_BATCH = 8192  # queries per pass over the table


def neighbors_array(result: Neighbors, valid: np.ndarray | None = None) -> pa.Array:
    """``list<struct<id, token, score>>``, one list per query (best first, without the -1 padding); null where
    ``valid`` is False (an unknown token, a null query)."""
    ids, scores = result.ids, result.scores
    found = ids >= 0
    if valid is not None:
        found &= valid[:, None]
    offsets = np.zeros(len(ids) + 1, np.int32)
    np.cumsum(found.sum(axis=1), out=offsets[1:])
    flat = ids[found]
    tokens = result.table.tokens.take(flat) if result.table.has_vocab else pa.nulls(len(flat), pa.string())
    values = pa.StructArray.from_arrays([pa.array(flat), tokens, pa.array(scores[found].astype(np.float32))],
                                        fields=list(NEIGHBORS_TYPE.value_type))
    mask = None if valid is None else pa.array(~valid)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def _query_batches(path: Path, column, keep):
    """(total rows, kept fields, batches of (query column, kept columns)) of a text file of words (one a line) or
    an Arrow IPC / Parquet file with a column of tokens, row ids or vectors."""
    suffix = path.suffix.lower()
    if suffix in (".arrow", ".feather", ".ipc", ".parquet"):
        import pyarrow.dataset as ds

        try:
            dataset = ds.dataset(str(path), format="parquet" if suffix == ".parquet" else "ipc")
        except (pa.ArrowInvalid, OSError) as e:
            raise InputFormatError(f"{path}: not a readable {suffix[1:]} file ({e})") from None
        schema = dataset.schema
        names = ", ".join(schema.names)
        for k in keep:
            if k not in schema.names or k == "neighbors":
                raise InvalidArgumentError(f"{path}: cannot --keep {k!r} (columns: {names}; 'neighbors' is the output)")
        usable = [f.name for f in schema if f.name not in keep and _query_kind(f.type)]
        if column is None:
            if len(usable) != 1:
                raise InvalidArgumentError(f"{path}: say which column holds the queries with --column (columns: {names})")
            column = usable[0]
        elif column not in schema.names:
            raise InvalidArgumentError(f"{path}: no column {column!r} (columns: {names})")
        elif not _query_kind(schema.field(column).type):
            raise InputFormatError(f"{path}: column {column!r} has type {schema.field(column).type}; expected "
                                   "tokens (strings), row ids (integers) or vectors (lists of floats)")
        batches = dataset.to_batches(columns=list(dict.fromkeys([column, *keep])), batch_size=QUERY_BATCH)
        kept = [schema.field(k) for k in keep]
        return dataset.count_rows(), kept, ((b.column(column), [b.column(k) for k in keep]) for b in batches)
    if keep:
        raise InvalidArgumentError(f"{path}: --keep needs Arrow or Parquet queries (a text file has no columns)")
    if column is not None:
        raise InvalidArgumentError(f"{path}: --column needs Arrow or Parquet queries (a text file has no columns)")
    lines = [line.strip() for line in _read_lines(path)]
    words = pa.array([w or None for w in lines], pa.string())
    return len(words), [], ((words.slice(i, QUERY_BATCH), []) for i in range(0, len(words), QUERY_BATCH))


def _query_kind(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.types.is_floating(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)


def _batch_queries(vectors, column: pa.Array):
    """(queries for ``most_similar``, valid [Q] bool): null, unknown or out-of-range entries are not valid."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        ids = vectors.token_ids(column.fill_null(""))
    elif pa.types.is_integer(column.type):
        ids = np.asarray(column.fill_null(-1).to_numpy(), np.int64)
        ids[ids >= len(vectors)] = -1
    else:
        dims = pa.compute.list_value_length(column).fill_null(vectors.dim).to_numpy()
        if (dims != vectors.dim).any():
            row = int(np.flatnonzero(dims != vectors.dim)[0])
            raise InputFormatError(f"query row {row} has {dims[row]} values; the table has {vectors.dim} dimensions")
        flat = column.fill_null(pa.scalar([0.0] * vectors.dim, column.type)).flatten().to_numpy()
        return np.asarray(flat, np.float64 if flat.dtype == np.float64 else np.float32).reshape(-1, vectors.dim), valid
    valid &= ids >= 0
    return np.where(valid, ids, 0), valid


def similar_path(vectors, queries, output, k=10, metric="cosine", against=None, column=None, keep=(),
                 progress=None) -> tuple[int, int]:
    """Write the ``k`` nearest rows of every query in the file ``queries`` to ``output`` (.arrow/.feather,
    .arrows or .parquet, atomically; ``-``: an IPC stream on stdout), as the column ``neighbors`` after the ``keep``
    columns. Returns (queries, queries without neighbours: null, unknown tokens, ids out of range)."""
    import contextlib

    from .atomic import atomic_path
    from .progress import progress_bar
    from .writers import BatchWriter, output_kind, stdout_sink

    queries = Path(queries)
    if not queries.is_file():
        raise InputFormatError(f"{queries}: no such file")
    to_stdout = str(output) == "-"
    tables = [t for t in (vectors, against) if t is not None and "source" in t.metadata]
    inputs = {queries.resolve(), *(Path(t.metadata["source"]).resolve() for t in tables)}
    if not to_stdout and Path(output).resolve() in inputs:
        raise InvalidArgumentError(f"{output}: the output would overwrite an input")
    fmt = output_kind(str(output))
    total, kept_fields, batches = _query_batches(queries, column, keep)
    rows = missing = 0
    target = contextlib.nullcontext(stdout_sink()) if to_stdout else atomic_path(output)
    with target as sink, progress_bar("similar", total, "queries", progress) as bar:
        schema = pa.schema([*kept_fields, pa.field("neighbors", NEIGHBORS_TYPE)])
        writer = BatchWriter(sink if to_stdout else str(sink), schema, fmt)
        for query_column, kept in batches:
            q, valid = _batch_queries(vectors, query_column)
            result = most_similar(vectors, q, k, metric, against)
            writer.write(pa.RecordBatch.from_arrays([*kept, neighbors_array(result, valid)], schema=schema))
            rows += len(valid)
            missing += int((~valid).sum())
            bar.advance(len(valid))
        writer.close()
    return rows, missing
