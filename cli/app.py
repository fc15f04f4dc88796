"""The ``embedtool`` command line: a thin Typer layer over the ``embedtool`` library.

Commands only parse options and call the library. Heavy modules (numba, the kernels, pyarrow) are imported inside
command bodies so that ``embedtool --help`` stays fast. Library errors (``EmbedtoolError``) become one line
``Error: ...`` on stderr and exit status 1, in one place: ``_Group.invoke``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup


class _Group(TyperGroup):
    """Maps the library's errors to ``Error: <message>`` and exit 1, without a traceback."""

    def invoke(self, ctx):
        from embedtool.errors import EmbedtoolError

        try:
            return super().invoke(ctx)
        except EmbedtoolError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(1) from None
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


WeightsArg = Annotated[Path, typer.Argument(help="Weight table: .npy [N, D] float16/32/64 (memory-mapped).")]
PaddingIdx = Annotated[
    Optional[int], typer.Option("--padding-idx", help="Positions with this index embed to zeros (negative: from the end).")
]
MaxNorm = Annotated[
    Optional[float], typer.Option("--max-norm", help="Scale rows whose norm exceeds this down to it (the table is not changed).")
]
NormType = Annotated[float, typer.Option("--norm-type", help="The p of the max-norm norm: > 0, or inf.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary.")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="Threads for the kernels (default: all cores).")]


@app.command()
def embed(
    weights: WeightsArg,
    input: Annotated[Path, typer.Argument(help="Indices: .npy of any integer dtype and rank (memory-mapped).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Output: .arrow/.feather (IPC file), .arrows (IPC stream), .parquet, or - for stdout.")],
    padding_idx: PaddingIdx = None,
    max_norm: MaxNorm = None,
    norm_type: NormType = 2.0,
    batch_rows: Annotated[Optional[int], typer.Option("--batch-rows", min=1, help="Input rows per record batch (default: about 32 MB of output).")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
):
    """Embed an index file: one output row per input row, column ``embedding``.

    A 1-D input of n indices gives n rows of fixed_size_list<float>[D]; a k-D input of shape (d0, d1, ...) gives d0
    rows of the arrow.fixed_shape_tensor type with shape [d1, ..., D].

    Example:

        embedtool embed weights.npy ids.npy -o vectors.arrow --padding-idx 0
    """
    from embedtool.pipeline import embed_file

    summary = embed_file(
        weights,
        input,
        output,
        padding_idx=padding_idx,
        max_norm=max_norm,
        norm_type=norm_type,
        batch_rows=batch_rows,
        threads=threads,
        progress=False if quiet else None,
    )
    if not quiet:
        _print_summary(summary)


def _print_summary(summary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_row("input", f"{summary.input}  shape {summary.input_shape}")
    table.add_row("weights", f"shape {summary.weight_shape}  {summary.dtype}")
    table.add_row("output", f"{summary.output}  {summary.rows:,} rows")
    table.add_row("speed", f"{summary.lookups:,} lookups in {summary.seconds:.3f} s, {summary.lookups_per_second:,.0f} rows/s")
    Console(stderr=True).print(table)


@app.command()
def info(
    weights: WeightsArg,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Describe a weight table: shape, dtype, bytes, all-zero rows, rows with NaN or inf, row norms.

    Example:

        embedtool info weights.npy --json
    """
    from embedtool.info import table_info
    from embedtool.vectors import load_vectors

    stats = {"path": str(weights), **table_info(load_vectors(weights).matrix)}
    if json_:
        import json

        typer.echo(json.dumps(stats))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 1))
    for key, value in stats.items():
        table.add_row(key, f"{value:,.6g}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    app()
