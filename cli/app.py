"""The ``embedtool`` command line: a thin Typer layer over the ``embedtool`` library.

Commands only parse options and call the library. Heavy modules (numba, the kernels, pyarrow) are imported inside
command bodies so that ``embedtool --help`` stays fast. Library errors (``EmbedtoolError``) become one line
``Error: ...`` on stderr and exit status 1, in one place: ``_Group.invoke``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from .weights import MaxLength, Normalize, WeightsArg, model_options, weight_options


class _Group(TyperGroup):
    """Maps the library's errors to ``Error: <message>`` and exit 1 (2 for a ``UsageError``), without a traceback."""

    def invoke(self, ctx):
        from embedtool import kernel_cache
        from embedtool.errors import EmbedtoolError, UsageError

        # A first compile says so on stderr where a person watches it, as the progress bar does (``_run``: --progress
        # shows it anywhere, --quiet never): in a script, an error stays the only line.
        kernel_cache.announce = sys.stderr is not None and sys.stderr.isatty()

        try:
            return super().invoke(ctx)
        except EmbedtoolError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(2 if isinstance(e, UsageError) else 1) from None
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (``| head``): stop quietly
            raise typer.Exit(1) from None
        except OSError as e:
            typer.echo(f"Error: {e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
    help="Embedding lookups from the shell: token ids or words in, vectors out as Arrow.",
)


def _version(value: bool):
    if value:
        from embedtool import __version__

        typer.echo(f"embedtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    """Embedding lookups from the shell: token ids or words in, vectors out as Arrow."""


InputArg = Annotated[
    str,
    typer.Argument(
        help="Input: .npy ids, a text file of ids or tokens (one sequence per line), .arrow/.arrows/.parquet, "
        "a directory of shards, a raw .bin of token ids, or - for stdin (text or an Arrow IPC stream)."
    ),
]
OutputOpt = Annotated[
    str,
    typer.Option("--output", "-o", help="Output: .arrow/.feather (IPC file), .arrows (IPC stream), .parquet, - for "
                 "an IPC stream on stdout; a directory when the input is a directory."),
]
PaddingIdx = Annotated[
    Optional[int], typer.Option("--padding-idx", help="Positions with this index embed to zeros (negative: from the end).")
]
MaxNorm = Annotated[
    Optional[float], typer.Option("--max-norm", help="Scale rows whose norm exceeds this down to it (the table is not changed).")
]
NormType = Annotated[float, typer.Option("--norm-type", help="The p of the max-norm norm: > 0, or inf.")]
InputFormat = Annotated[
    Optional[str],
    typer.Option("--input-format", help="Read a text input as ids or tokens, or a raw file as u16, u32, i32 or i64 "
                 "(default: from the file; text is tokens when the weights have a vocabulary)."),
]
Column = Annotated[Optional[str], typer.Option("--column", help="Arrow/Parquet column holding the ids or tokens.")]
Keep = Annotated[list[str], typer.Option("--keep", help="Carry this input column to the output (repeatable).")]
Tokenizer = Annotated[str, typer.Option("--tokenizer", help="How token lines split: space, whitespace, chars, word "
                                        "(words and punctuation, as Hugging Face's Whitespace+Punctuation) or the path "
                                        "of a tokenizer.json (needs embedtool[text]); the tokens are looked up in the "
                                        "vocabulary. A static model directory uses its own tokenizer.")]
Lowercase = Annotated[bool, typer.Option("--lowercase", help="Lower-case text before --tokenizer word splits it.")]
SeqLen = Annotated[Optional[int], typer.Option("--seq-len", min=1, help="Rows of this many tokens for raw .bin input.")]
Oov = Annotated[
    Optional[str],
    typer.Option("--oov", help="Tokens not in the vocabulary: error, unk, padding, skip, zero or subword "
                 "(default: subword for a fastText .bin, whose n-grams give every word a vector; else unk when the "
                 "vocabulary has <unk> or [UNK], else error)."),
]
BagPaddingIdx = Annotated[
    Optional[int], typer.Option("--padding-idx", help="Entries with this index are skipped and not counted "
                                "(negative: from the end).")
]
BagOov = Annotated[
    Optional[str],
    typer.Option("--oov", help="Tokens not in the vocabulary: error, unk, padding (skipped as padding is), skip or "
                 "subword (default: subword for a fastText .bin; else unk when the vocabulary has <unk> or [UNK], "
                 "else error)."),
]
UnkToken = Annotated[Optional[str], typer.Option("--unk-token", help="The unknown token (default <unk> or [UNK]).")]
LowercaseFallback = Annotated[bool, typer.Option("--lowercase-fallback", help="Retry OOV tokens in lower case.")]
OutputDtype = Annotated[Optional[str], typer.Option("--output-dtype", help="Cast the vectors: float16 or float32.")]
VectorType = Annotated[
    str,
    typer.Option("--vector-type", help="fixed: fixed_size_list vectors (fixed_shape_tensor rows); list: plain nested "
                 "lists, for readers such as Spark that take no fixed-size types. Same values either way."),
]
BatchRows = Annotated[
    Optional[int], typer.Option("--batch-rows", min=1, help="Input rows (lines) per record batch (default: about 32 MB of output).")
]
MaxLineBytes = Annotated[
    Optional[int], typer.Option("--max-line-bytes", min=1, help="The longest line of a text input, in bytes "
                                "(default 64 MiB): a line is one row, held whole in memory; a longer one is an error.")
]
Threads = Annotated[
    Optional[int], typer.Option("--threads", min=1, help="Threads for the kernels (default: all cores but one).")
]
Device = Annotated[
    str,
    typer.Option("--device", help="auto: the GPU when one is usable, else the CPU (and the CPU for a small input); "
                 "cuda: the GPU or an error; cpu."),
]
Scheduler = Annotated[
    Optional[str],
    typer.Option("--scheduler", help="Run a directory of shards on Dask: a scheduler's address (tcp://host:8786), or "
                 "local:N for a cluster of N local worker processes for this run. Needs embedtool[distributed]."),
]
Resume = Annotated[bool, typer.Option("--resume", help="Skip the shards of a directory whose output already exists.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no OOV report and no summary: only notes "
                                      "and errors.")]
Progress = Annotated[bool, typer.Option("--progress", help="Show the progress bar even when stderr is not a terminal.")]


def _run(weights, input, output, quiet, progress, scheduler, loading: dict, **options) -> None:
    """Run the pipeline (on Dask with ``--scheduler``) and report on stderr: notes (data left out, a fallback)
    always; the OOV counts and the summary, which report progress, unless --quiet."""
    show = False if quiet else (True if progress else None)
    if quiet or progress:
        from embedtool import kernel_cache

        kernel_cache.announce = not quiet
    if scheduler is None:
        from embedtool.pipeline import embed_path

        summary = embed_path(weights, input, output, progress=show, weight_options=loading, **options)
    else:
        from embedtool.distributed import embed_on_scheduler

        summary = embed_on_scheduler(scheduler, weights, input, output, progress=show,
                                     weight_options=loading, **options)
    for note in summary.notes:
        typer.echo(f"Note: {note}", err=True)
    if quiet:
        return
    if summary.oov:
        typer.echo(summary.oov, err=True)
    _print_summary(summary)


@app.command()
@weight_options
def embed(
    weights: WeightsArg,
    input: InputArg,
    output: OutputOpt,
    padding_idx: PaddingIdx = None,
    max_norm: MaxNorm = None,
    norm_type: NormType = 2.0,
    input_format: InputFormat = None,
    column: Column = None,
    keep: Keep = [],
    tokenizer: Tokenizer = "space",
    lowercase: Lowercase = False,
    seq_len: SeqLen = None,
    oov: Oov = None,
    unk_token: UnkToken = None,
    lowercase_fallback: LowercaseFallback = False,
    output_dtype: OutputDtype = None,
    vector_type: VectorType = "fixed",
    batch_rows: BatchRows = None,
    max_line_bytes: MaxLineBytes = None,
    threads: Threads = None,
    device: Device = "auto",
    scheduler: Scheduler = None,
    resume: Resume = False,
    quiet: Quiet = False,
    progress: Progress = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
    max_length: MaxLength = None,
):
    """Embed every sequence of an input: one output row per input row, column "embedding".

    A 1-D input of n ids gives n rows of fixed_size_list<float>[D]; a k-D input of shape (d0, d1, ...) gives d0
    rows of arrow.fixed_shape_tensor with shape [d1, ..., D]; sequences (text lines, list columns) give
    list<fixed_size_list<float>[D]>. --vector-type list writes plain lists instead (list<float>, nested lists).

    Examples:

    \b
        embedtool embed weights.npy ids.npy -o vectors.arrow --padding-idx 0      # .npy ids, any rank
        embedtool embed weights.npy ids.txt -o vectors.parquet                    # text: ids per line
        embedtool embed glove.arrow sentences.txt -o vectors.arrow --oov skip     # text: tokens per line
        embedtool embed glove.arrow docs.parquet -o out.arrow --column tokens --keep doc_id   # Arrow/Parquet
        embedtool embed weights.npy shards/ -o out/                               # a directory of shards
        embedtool embed weights.npy train.bin -o out.arrows --input-format u16 --seq-len 1024  # raw token ids
        cat ids.txt | embedtool embed weights.npy - -o - | next-step              # stdin to stdout
        embedtool embed glove.txt text.txt -o out.arrow --tokenizer word --lowercase  # raw text
        embedtool embed cc.en.300.bin words.txt -o out.arrow       # fastText: OOV words from their subwords
    """
    _run(weights, input, output, quiet, progress, scheduler, {**loading, **model_options(max_length=max_length)},
         padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type, input_format=input_format, column=column,
         keep=keep, tokenizer=tokenizer, lowercase=lowercase, seq_len=seq_len, oov=oov, unk_token=unk_token,
         lowercase_fallback=lowercase_fallback, output_dtype=output_dtype, vector_type=vector_type,
         batch_rows=batch_rows, max_line_bytes=max_line_bytes, threads=threads, device=device,
         resume=resume)


@app.command()
@weight_options
def bag(
    weights: WeightsArg,
    input: InputArg,
    output: OutputOpt,
    mode: Annotated[str, typer.Option("--mode", help="How a sequence's vectors pool: mean, sum or max.")] = "mean",
    weights_column: Annotated[Optional[str], typer.Option(
        "--weights-column", help="Arrow/Parquet column of per-sample weights (a number per id, lists as long as the "
        "ids' lists) that scale each vector of a --mode sum.")] = None,
    padding_idx: BagPaddingIdx = None,
    max_norm: MaxNorm = None,
    norm_type: NormType = 2.0,
    input_format: InputFormat = None,
    column: Column = None,
    keep: Keep = [],
    tokenizer: Tokenizer = "space",
    lowercase: Lowercase = False,
    seq_len: SeqLen = None,
    oov: BagOov = None,
    unk_token: UnkToken = None,
    lowercase_fallback: LowercaseFallback = False,
    output_dtype: OutputDtype = None,
    vector_type: VectorType = "fixed",
    batch_rows: BatchRows = None,
    max_line_bytes: MaxLineBytes = None,
    threads: Threads = None,
    device: Device = "auto",
    scheduler: Scheduler = None,
    resume: Resume = False,
    quiet: Quiet = False,
    progress: Progress = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
    normalize: Normalize = None,
    max_length: MaxLength = None,
):
    """Pool each sequence into one vector (embedding_bag): one output row per input row, fixed_size_list<float>[D].

    Padding ids are skipped and not counted; an empty sequence gives zeros. --vector-type list writes list<float>.

    Examples:

    \b
        embedtool bag glove.arrow sentences.txt -o sentence_vectors.parquet --mode mean --oov skip
        embedtool bag weights.npy ids.npy -o pooled.arrow --mode max --padding-idx 0
        embedtool bag glove.arrow docs.parquet -o tfidf.arrow --mode sum --column tokens --weights-column tfidf
        embedtool bag potion-base-8M/ docs.parquet -o docs.arrow --column text   # a model2vec model: its encode
    """
    _run(weights, input, output, quiet, progress, scheduler, {**loading, **model_options(normalize, max_length)},
         mode=mode, weights_column=weights_column, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
         input_format=input_format, column=column, keep=keep, tokenizer=tokenizer, lowercase=lowercase,
         seq_len=seq_len, oov=oov,
         unk_token=unk_token, lowercase_fallback=lowercase_fallback, output_dtype=output_dtype,
         vector_type=vector_type, batch_rows=batch_rows, max_line_bytes=max_line_bytes, threads=threads,
         device=device, resume=resume)


def _print_summary(summary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 1))
    shape = f"  shape {summary.input_shape}" if summary.input_shape is not None else ""
    table.add_row("input", f"{summary.input}{shape}")
    table.add_row("weights", f"shape {summary.weight_shape}  {summary.dtype}  on the {summary.device.upper()}")
    shards = f"  ({summary.shards} shards" + (f", {summary.skipped} skipped" if summary.skipped else "") + ")"
    table.add_row("output", f"{summary.output}  {summary.rows:,} rows" + (shards if summary.shards > 1 or summary.skipped else ""))
    table.add_row("speed", f"{summary.lookups:,} lookups in {summary.seconds:.3f} s, {summary.lookups_per_second:,.0f} lookups/s")
    Console(stderr=True).print(table)


@app.command()
@weight_options
def info(
    weights: WeightsArg,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Also read every row: all-zero rows, rows with NaN or inf, "
                                        "row norms (a progress bar on a terminal).")] = False,
    loading: dict = None,  # the weight options, in their place (weight_options)
):
    """Describe a weight table from its header, at once: format, rows, dim, dtype, bytes, vocabulary (and a fastText
    model's buckets, n-gram lengths and quantization, a static model's tokenizer and normalisation); with --stats,
    also all-zero rows, rows with NaN or inf and row norms, from a pass over every row.

    Example:

    \b
        embedtool info weights.npy --json --stats
    """
    from embedtool.info import describe, table_stats
    from embedtool.vectors import load_vectors

    vectors = load_vectors(weights, **loading)
    found = {"path": str(weights), **describe(vectors)}
    if stats:
        found.update(table_stats(vectors.matrix))
    if json_:
        import json

        typer.echo(json.dumps(found))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 1))
    for key, value in found.items():
        text = (f"{value:,.6g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool)
                else f"{value:,}" if isinstance(value, int) else str(value))
        table.add_row(key, escape(text))
    Console().print(table)


def main() -> None:
    """Console-script entry point. SIGTERM (``kill``, a pipeline's timeout) and SIGHUP (a closed terminal) exit as
    Ctrl-C does, through the cleanup that removes a half-written output. Closed standard streams are handled."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    _occupy_closed_streams()
    try:
        app()
    except _Stopped as e:
        # Unwound through the cleanup; now end at once: the interpreter's own shutdown would abort (SIGABRT) if
        # the reader thread is blocked on stdin, holding its lock.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(e.code)


class _Stopped(SystemExit):
    """Raised in the main thread by SIGTERM or SIGHUP; the exit status is 128 + the signal's number."""


def _stop(signum, frame):
    raise _Stopped(128 + signum)


def _occupy_closed_streams() -> None:
    """Open /dev/null on a closed stdin, stdout or stderr (``<&-``, ``>&-``, ``2>&-``).

    Else the next file opened would take its number, and anything written to stderr (a warning from a library)
    would land in an output. ``sys.stdin``/``sys.stdout`` stay None, so that ``-`` is refused as closed; stderr
    becomes /dev/null: progress and summary go nowhere, the exit status still tells failure from success.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")


# The weight-table commands live in their own module; it imports nothing heavy at import time.
from . import compile_cmd, vectors_cmds  # noqa: E402

app.command()(vectors_cmds.convert)
app.command()(vectors_cmds.lookup)
app.command(name="compile")(compile_cmd.compile_kernels)

from . import similar_cmds  # noqa: E402

app.command()(similar_cmds.similar)
app.command()(similar_cmds.analogy)
app.command()(similar_cmds.evaluate)
