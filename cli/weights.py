"""The weight-reading options, defined once: every command that reads a weight table (``embed``, ``bag``, ``info``,
``lookup``, ``convert``, ``similar``, ``analogy``, ``evaluate``) is decorated with ``weight_options`` and receives
them as ``loading``, the keyword arguments of ``load_vectors``."""

from __future__ import annotations

import functools
import inspect
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class Format(str, Enum):
    arrow = "arrow"
    parquet = "parquet"
    npy = "npy"
    safetensors = "safetensors"
    glove = "glove"
    word2vec = "word2vec"
    word2vec_binary = "word2vec-binary"
    fasttext_bin = "fasttext-bin"
    static_model = "static-model"


class Duplicates(str, Enum):
    first = "first"
    last = "last"
    error = "error"


class OnBadRow(str, Enum):
    error = "error"
    skip = "skip"


class Errors(str, Enum):
    strict = "strict"
    replace = "replace"
    ignore = "ignore"


# readable=False: Typer's own check would answer an unreadable file with its usage box and exit 2; load_vectors
# names it in one line, exit 1, as for any input.
WeightsArg = Annotated[Path, typer.Argument(readable=False, help=(
    "Weight table: the .arrow/.feather store (opens instantly), .npy or .safetensors (memory-mapped; tokens from "
    "NAME.vocab.txt or vocab.txt beside it), .parquet, GloVe .txt, word2vec/fastText .vec, word2vec .bin; text "
    "may be .gz/.bz2/.xz. Text is parsed on every open: `embedtool convert` it once to .arrow. Also a fastText "
    ".bin/.ftz model (OOV words get subword vectors) or a model2vec/StaticEmbedding model directory (text is split "
    "by its own tokenizer)."))]
From = Annotated[
    Optional[Format], typer.Option("--from", help="The weights' format (default: from the first bytes and suffix).")
]
Tensor = Annotated[
    Optional[str],
    typer.Option("--tensor", help="The safetensors tensor to read (default: the only 2-D one); "
                 "convert also writes it under this name."),
]
Vocab = Annotated[
    Optional[Path],
    typer.Option("--vocab", readable=False, help="Tokens, one per line, for a table without them "
                 "(default: NAME.vocab.txt or vocab.txt beside it)."),
]
DuplicatesOpt = Annotated[
    Duplicates, typer.Option("--duplicates", help="A repeated token keeps its first or its last row, or is an error.")
]
OnBadRowOpt = Annotated[
    OnBadRow, typer.Option("--on-bad-row", help="Text rows that break the rules: stop at the first, or skip them.")
]
ErrorsOpt = Annotated[
    Errors, typer.Option("--errors", help="Tokens that do not decode: stop, or replace or drop the bad bytes.")
]
Encoding = Annotated[str, typer.Option("--encoding", help="The tokens' encoding (ASCII-compatible).")]
AllowNonfinite = Annotated[bool, typer.Option("--allow-nonfinite", help="Accept NaN and inf values in text.")]


Normalize = Annotated[
    Optional[bool],
    typer.Option("--normalize/--no-normalize", help="A static model directory: L2-normalise each pooled vector "
                 "(default: as its config.json says)."),
]
MaxLength = Annotated[
    Optional[int],
    typer.Option("--max-length", min=1, help="A static model directory: the most tokens of a text "
                 "(default: its config's, else 512)."),
]


def model_options(normalize=None, max_length=None) -> dict:
    """The static model options given, as ``load_vectors`` keyword arguments."""
    return {k: v for k, v in (("normalize", normalize), ("max_length", max_length)) if v is not None}


_OPTIONS = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default)
            for name, annotation, default in [
                ("from_", From, None), ("tensor", Tensor, None), ("vocab", Vocab, None),
                ("duplicates", DuplicatesOpt, Duplicates.first), ("on_bad_row", OnBadRowOpt, OnBadRow.error),
                ("errors", ErrorsOpt, Errors.strict), ("encoding", Encoding, "utf-8"),
                ("allow_nonfinite", AllowNonfinite, False)]]


def weight_options(command):
    """Give ``command`` the weight options where its signature has ``loading``, and call it with ``loading`` set to
    their ``load_vectors`` keyword arguments. Typer reads a command's options from its signature, so the wrapper
    shows Typer that signature with the options in place of ``loading``."""
    signature = inspect.signature(command, eval_str=True)
    parameters = list(signature.parameters.values())
    at = [p.name for p in parameters].index("loading")

    @functools.wraps(command)
    def with_loading(**options):
        from_, tensor, vocab, duplicates, on_bad_row, errors, encoding, allow_nonfinite = (
            options.pop(p.name) for p in _OPTIONS)
        loading = dict(format=from_.value if from_ else None, tensor=tensor, vocab=vocab, duplicates=duplicates.value,
                       on_bad_row=on_bad_row.value, errors=errors.value, encoding=encoding,
                       allow_nonfinite=allow_nonfinite)
        return command(**options, loading=loading)

    with_loading.__signature__ = signature.replace(parameters=parameters[:at] + _OPTIONS + parameters[at + 1:])
    return with_loading
