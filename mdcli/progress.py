"""Rich progress bars with rate and ETA; silent with --quiet."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

err_console = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Items per second, with the unit of the work (e.g. 'spec/s')."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task):
        speed = task.finished_speed or task.speed
        text = f"{speed:,.1f} {self.unit}/s" if speed else f"-- {self.unit}/s"
        return Text(text, style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str = "it", quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n=1, completed=None)` callable; shows a bar on stderr unless quiet.

    `completed` sets the position without counting it as work done (a resumed run starts its bar at
    the checkpoint's step, and its rate and ETA come from the steps it actually runs).
    """
    if quiet:
        yield lambda n=1, completed=None: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    # The bar appears at the first advance, not before: a command that fails while it still checks its inputs
    # prints its one error line alone. A bar that ends in an error is cleared, so the error stays one line.
    progress = Progress(*columns, console=err_console, transient=False)
    task = None

    def advance(n: int = 1, completed: int | None = None) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(description, total=total)
        if completed is not None:
            progress.reset(task, completed=completed)  # clears the rate samples too
        progress.advance(task, n)

    try:
        yield advance
    except BaseException:
        progress.live.transient = True
        raise
    finally:
        if task is not None:
            progress.stop()
