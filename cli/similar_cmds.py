"""The similarity commands ``similar``, ``analogy`` and ``evaluate`` (``app.py`` registers them).

They call ``embedtool.similarity`` (through ``Vectors``); numba and the library are imported inside the command
bodies, so ``embedtool --help`` stays fast.
"""

from __future__ import annotations

import unicodedata
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .weights import weight_options


class Metric(str, Enum):
    cosine = "cosine"
    dot = "dot"


class Method(str, Enum):
    add = "add"
    mul = "mul"


Weights = Annotated[Path, typer.Argument(help="The weight table, in any format embedtool reads.")]
K = Annotated[int, typer.Option("-k", "--k", min=0, help="How many neighbours per query.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _open(path, loading: dict):
    from embedtool.vectors import load_vectors

    return load_vectors(path, **loading)


def _cells(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _print_neighbors(queries, result, json_: bool) -> None:
    """One table (or JSON object) per query: rank, id, token and score of each neighbour. Plain text, not rich:
    tokens such as ``[CLS]`` or ``[/x]`` are printed as they are (rich reads them as markup), and rich's import
    would be a tenth of a one-word call."""
    tokens = result.tokens
    found = [[(int(i), tokens[r][j] if tokens else None, float(s))
              for j, (i, s) in enumerate(zip(result.ids[r], result.scores[r])) if i >= 0]
             for r in range(len(queries))]
    if json_:
        import json

        typer.echo(json.dumps([{"query": q, "neighbors": [{"id": i, "token": t, "score": s} for i, t, s in rows]}
                               for q, rows in zip(queries, found)], ensure_ascii=False))
        return
    lines = []
    for query, rows in zip(queries, found):
        cells = [("#", "id", "token", "score"),
                 *((str(rank), str(i), t if t is not None else "", f"{s:.4f}") for rank, (i, t, s) in enumerate(rows, 1))]
        widths = [max(_cells(row[c]) for row in cells) for c in range(4)]
        lines.append(query)
        for row in cells:  # the token left-aligned, numbers right-aligned
            lines.append("  ".join(v + " " * (w - _cells(v)) if c == 2 else " " * (w - _cells(v)) + v
                                  for c, (v, w) in enumerate(zip(row, widths))).rstrip())
        lines.append("")
    typer.echo("\n".join(lines), nl=False)


@weight_options
def similar(
    weights: Weights,
    queries: Annotated[List[str], typer.Argument(help="Words (row ids for a table without tokens); with -o, one "
                                                 "file of queries: text (a word a line), .arrow/.feather or .parquet "
                                                 "(a column of tokens, row ids or vectors).")],
    k: K = 10,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the neighbours of every query in "
                                                  "the QUERIES file here: .arrow/.feather, .arrows, .parquet, or - for "
                                                  "an IPC stream on stdout.")] = None,
    column: Annotated[Optional[str], typer.Option("--column", help="The queries' column (default: the only usable "
                                                  "one).")] = None,
    keep: Annotated[List[str], typer.Option("--keep", help="Carry this input column to the output (repeatable).")] = [],
    against: Annotated[Optional[Path], typer.Option("--against", help="Search this table instead (queries are "
                                                    "looked up in WEIGHTS).")] = None,
    metric: Annotated[Metric, typer.Option("--metric", help="Cosine similarity or the plain dot product.")] = Metric.cosine,
    json_: Json = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")] = False,
):
    """The nearest rows to each word, by cosine (exact: every row is compared). A word never finds itself.

    Example:

        embedtool similar glove.arrow king queen -k 5

        embedtool similar glove.arrow words.txt -o nn.arrow

        embedtool similar glove.arrow sentences.arrow --column embedding --keep id -o nn.parquet --against labels.arrow
    """
    from embedtool.errors import InvalidArgumentError

    vectors = _open(weights, loading)
    other = None
    if against is not None:  # read by the same text rules; its format, tensor and vocabulary are its own
        other = _open(against, {**loading, "format": None, "tensor": None, "vocab": None})
    if output is None:
        if column is not None or keep:
            raise InvalidArgumentError("--column and --keep apply to a file of queries written with -o")
        ids = queries
        if not vectors.has_vocab:
            if not all(q.isascii() and q.isdigit() for q in queries):
                raise InvalidArgumentError(f"{weights} has no tokens: give row ids, or a vocab with --vocab")
            ids = [int(q) for q in queries]
        _print_neighbors(queries, vectors.most_similar(ids, k, metric.value, other), json_)
        return
    if len(queries) != 1:
        raise InvalidArgumentError(f"with -o, give one file of queries (got {len(queries)} arguments)")
    import time

    from embedtool.similarity import similar_path

    started = time.perf_counter()
    rows, missing = similar_path(vectors, queries[0], output, k, metric.value, other, column, keep,
                                 False if quiet else None)
    if not quiet and output != "-":
        if missing:
            typer.echo(f"Note: {missing:,} queries are null or not in the table: their neighbors are null", err=True)
        typer.echo(f"Wrote {output}: {rows:,} queries in {time.perf_counter() - started:.2f} s", err=True)


@weight_options
def analogy(
    weights: Weights,
    a: Annotated[str, typer.Argument(help="a is to ...")],
    b: Annotated[str, typer.Argument(help="... b as ...")],
    c: Annotated[str, typer.Argument(help="... c is to ?")],
    k: K = 10,
    method: Annotated[Method, typer.Option("--method", help="3CosAdd (gensim's most_similar) or 3CosMul "
                                           "(most_similar_cosmul).")] = Method.add,
    json_: Json = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
):
    """a is to b as c is to ?: the best answers, a, b and c excluded.

    Example:

        embedtool analogy glove.arrow man king woman
    """
    vectors = _open(weights, loading)
    _print_neighbors([f"{a} : {b} :: {c} : ?"], vectors.analogy(a, b, c, k, method.value), json_)


@weight_options
def evaluate(
    weights: Weights,
    analogies: Annotated[List[Path], typer.Option("--analogies", help="A questions-words file (': section' lines, "
                                                   "then 'a b c expected'); repeatable.")] = [],
    pairs: Annotated[List[Path], typer.Option("--pairs", help="A word-pair file (a<TAB>b<TAB>score, '#' comments), "
                                               "such as WordSim353 or SimLex-999; repeatable.")] = [],
    restrict_vocab: Annotated[int, typer.Option("--restrict-vocab", min=1, help="Only the first N rows count (as "
                                                "gensim's default).")] = 300000,
    case_sensitive: Annotated[bool, typer.Option("--case-sensitive", help="Match words exactly (default: "
                                                 "upper-cased, as gensim).")] = False,
    dummy4unknown: Annotated[bool, typer.Option("--dummy4unknown", help="Count questions with unknown words as "
                                                "wrong and pairs as 0, instead of skipping them.")] = False,
    json_: Json = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
):
    """Analogy accuracy and word-pair correlation, the numbers gensim's evaluate_word_analogies and
    evaluate_word_pairs give.

    Example:

        embedtool evaluate glove.arrow --analogies questions-words.txt --pairs wordsim353.tsv
    """
    from embedtool.errors import InvalidArgumentError

    if not analogies and not pairs:
        raise InvalidArgumentError("give --analogies FILE or --pairs FILE (or both)")
    vectors = _open(weights, loading)
    options = {"restrict_vocab": restrict_vocab, "case_insensitive": not case_sensitive, "dummy4unknown": dummy4unknown}
    report = {"analogies": [], "pairs": []}
    for path in analogies:
        scores = vectors.evaluate_analogies(path, **options)
        report["analogies"].append({
            "file": str(path), "accuracy": scores.accuracy, "oov_ratio": scores.oov_ratio,
            "sections": [{"section": s["section"], "correct": len(s["correct"]),
                          "total": len(s["correct"]) + len(s["incorrect"])} for s in scores.sections]})
    for path in pairs:
        scores = vectors.evaluate_pairs(path, **options)
        report["pairs"].append({"file": str(path), "pearson": scores.pearson, "spearman": scores.spearman,
                                "oov_ratio": scores.oov_ratio, "pairs": scores.pairs})
    if json_:
        import json

        typer.echo(json.dumps(report))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for entry in report["analogies"]:
        table = Table(title=f"{entry['file']}: {entry['accuracy']:.2%} ({entry['oov_ratio']:.1f}% of questions OOV)",
                      title_justify="left", box=None, padding=(0, 1))
        for name in ("section", "correct", "total", "accuracy"):
            table.add_column(name, justify="left" if name == "section" else "right")
        for s in entry["sections"]:
            table.add_row(s["section"], f"{s['correct']:,}", f"{s['total']:,}",
                          f"{s['correct'] / s['total']:.2%}" if s["total"] else "-")
        console.print(table)
    if report["pairs"]:
        table = Table(box=None, padding=(0, 1))
        for name in ("pairs file", "pearson", "spearman", "pairs", "OOV"):
            table.add_column(name, justify="left" if name == "pairs file" else "right")
        for entry in report["pairs"]:
            table.add_row(entry["file"], f"{entry['pearson']:.4f}", f"{entry['spearman']:.4f}",
                          f"{entry['pairs']:,}", f"{entry['oov_ratio']:.1f}%")
        console.print(table)
