"""Progress bars: rich, on stderr, only when stderr is a terminal (or when asked), never on stdout."""

from __future__ import annotations

import contextlib
import sys


class _NoProgress:
    def advance(self, amount: float) -> None:
        pass


class _RichProgress:
    def __init__(self, progress, task):
        self._progress = progress
        self._task = task

    def advance(self, amount: float) -> None:
        self._progress.update(self._task, advance=amount)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None, unit: str = "rows", show: bool | None = None):
    """Yield an object with ``advance(n)``; ``unit`` is "bytes" or a word such as "rows".

    ``show=None`` means: when stderr is a terminal. The bar is transient and drawn on stderr only.
    """
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield _NoProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} {unit}/s" if task.speed else f"? {unit}/s")

    if unit == "bytes":
        counts = [DownloadColumn(), TransferSpeedColumn()]
    else:
        counts = [TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"), RateColumn()]
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), *counts, TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _RichProgress(progress, progress.add_task(description, total=total))
