"""The weight-table commands ``convert`` and ``lookup`` (``app.py`` registers them).

The weight-reading options come from ``weights.py``, shared with the other commands. Heavy modules are imported
inside the command bodies.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .weights import Format, WeightsArg, weight_options


class DType(str, Enum):
    float16 = "float16"
    float32 = "float32"
    float64 = "float64"


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")]


def _notes(vectors) -> None:
    """What loading dropped, on stderr."""
    if vectors.metadata.get("skipped_rows"):
        typer.echo(f"Note: skipped {vectors.metadata['skipped_rows']:,} bad rows", err=True)
    if vectors.metadata.get("duplicates"):
        typer.echo(f"Note: dropped {vectors.metadata['duplicates']:,} rows of repeated tokens", err=True)


@weight_options
def convert(
    src: Annotated[Path, typer.Argument(readable=False, help="The table to read, in any format embedtool reads.")],
    dst: Annotated[Path, typer.Argument(readable=False,
                                        help="The file to write; its format from its suffix unless --to names it.")],
    loading: dict = None,  # the weight options, in their place (weight_options)
    to: Annotated[Optional[Format], typer.Option("--to", help="The destination's format (default: its suffix).")] = None,
    dtype: Annotated[Optional[DType], typer.Option("--dtype", help="The values' type (default: the source's).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Only the first N rows.")] = None,
    quiet: Quiet = False,
):
    """Convert a weight table from one format to another; the output appears complete or not at all.

    Formats: the store (.arrow/.feather, opens in milliseconds at any size), .parquet, .npy (+ NAME.vocab.txt),
    .safetensors (+ NAME.vocab.txt), GloVe text (.txt), word2vec/fastText text (.vec), word2vec binary (.bin);
    text may be .gz/.bz2/.xz compressed. Text is parsed on every open: convert it once to the store.

    Example:

    \b
        embedtool convert glove.840B.300d.txt glove.arrow --on-bad-row skip
        embedtool convert model.safetensors words.npy --tensor embeddings.word_embeddings.weight --vocab vocab.txt
    """
    import time

    from embedtool.vectors import check_destination, load_vectors, save_vectors, weight_files

    started = time.perf_counter()
    show = False if quiet else None
    check_destination(dst, to.value if to else None, weight_files(src, loading["vocab"], what="source"))
    vectors = load_vectors(src, **loading, dtype=dtype.value if dtype else None, limit=limit, progress=show)
    save_vectors(vectors, dst, format=to.value if to else None, tensor=loading["tensor"] or "weight", progress=show)
    if not quiet:
        _notes(vectors)
        typer.echo(f"Wrote {dst}: {len(vectors):,} x {vectors.dim} {vectors.dtype} "
                   f"in {time.perf_counter() - started:.2f} s", err=True)


@weight_options
def lookup(
    weights: WeightsArg,
    tokens: Annotated[List[str], typer.Argument(help="Tokens to look up (row ids, for a table without tokens).")],
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON list (unknown tokens with id null).")] = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
):
    """Print the row id and the vector of each token: token<TAB>id<TAB>values.

    Tokens not in the vocabulary are named on stderr and make the exit status 1; a fastText model gives them their
    subword vectors instead, with the id "-" (null in --json).

    Example:

    \b
        embedtool lookup glove.arrow king queen
        embedtool lookup weights.npy 0 17 --json
        embedtool lookup cc.en.300.bin misspeling
    """
    import json

    import numpy as np
    import pyarrow as pa

    from embedtool.errors import InputFormatError, InvalidArgumentError
    from embedtool.arrays import from_numpy
    from embedtool.vectors import load_vectors

    vectors = load_vectors(weights, **loading)
    if vectors.has_vocab:
        ids = vectors.token_ids(tokens)
    else:
        if not all(t.isascii() and t.isdigit() for t in tokens):
            raise InvalidArgumentError(f"{weights} has no tokens: give row ids, or a vocab with --vocab")
        ids = np.array([int(t) if int(t) < len(vectors) else -1 for t in tokens], np.int64)
    found = np.arange(len(ids)) if vectors.subwords else np.flatnonzero(ids >= 0)  # the tokens that get a vector
    matrix = vectors.vectors_of(tokens) if vectors.subwords else vectors.matrix[ids[found]]
    values = from_numpy(np.asarray(matrix, np.float32 if matrix.dtype == np.float16 else None)
                        .reshape(-1)).cast(pa.string()).to_pylist()  # not pa.array: it imports pandas (0.4 s)
    dim = vectors.dim
    has_vector = np.zeros(len(ids), bool)
    has_vector[found] = True
    rows, k = [], 0
    for token, i, has in zip(tokens, ids, has_vector):
        rows.append((token, int(i) if i >= 0 else None, values[k * dim : (k + 1) * dim] if has else None))
        k += int(has)
    if json_:
        typer.echo(json.dumps([{"token": t, "id": i, "vector": None if v is None else [float(x) for x in v]}
                               for t, i, v in rows], ensure_ascii=False))
    else:
        for t, i, v in rows:
            if v is not None:
                typer.echo(f"{t}\t{'-' if i is None else i}\t{' '.join(v)}")
    missing = [t for t, _, v in rows if v is None]
    if missing:
        what = "in the vocabulary" if vectors.has_vocab else f"in the table ({len(vectors)} rows)"
        raise InputFormatError(f"not {what}: {', '.join(map(repr, missing))}")
