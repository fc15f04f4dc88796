"""``embedtool compile``: the CPU kernels compiled and cached ahead of time. Imports nothing heavy at import time."""

from __future__ import annotations

from typing import Annotated

import typer


def compile_kernels(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Say nothing unless it fails.")] = False,
):
    """Compile the kernels for this CPU and cache them, so that no later run waits for a compile.

    For container images and shared installs: run it once where the cache will live (the package's directory, or
    NUMBA_CACHE_DIR). Small inputs never need the kernels; large ones otherwise compile the ones they use on their
    first run, once. Tables of uncommon widths still compile their pooling kernel on first use.

    Example:

        embedtool compile
    """
    import os

    from embedtool import kernel_cache
    from embedtool.precompile import compile_kernels as run

    kernel_cache.announce = False
    say = (lambda line: None) if quiet else (lambda line: typer.echo(f"compiling: {line}", err=True))
    seconds = run(say)
    if not quiet:
        where = kernel_cache.cache_dir or os.environ.get("NUMBA_CACHE_DIR") or "the package's __pycache__"
        typer.echo(f"kernels compiled in {seconds:.1f} s and cached in {where}" if kernel_cache.cache_dir != ""
                   else f"kernels compiled in {seconds:.1f} s (nowhere writable to cache them)", err=True)
