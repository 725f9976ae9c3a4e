"""The progress display of `sscn colorize` / `sscn palette`: a rich bar on stderr (a terminal only), one-line errors
above it either way."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

from .errors import fail


class RateColumn(ProgressColumn):
    """Images (or video frames) colorized per second; failures and skips do not count."""

    def render(self, task) -> Text:
        elapsed = task.elapsed or 0.0
        return Text(f"{task.fields['images'] / elapsed:.1f} img/s" if elapsed > 0 else "- img/s")


class Display:
    """A rich progress bar on stderr when it is a terminal; one-line errors either way."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.progress = None
        if enabled:
            self.progress = Progress(TextColumn("[bold]colorize"), BarColumn(), MofNCompleteColumn(),
                                     RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.task = self.progress.add_task("colorize", total=total, images=0)
        self.images = 0

    def __enter__(self) -> "Display":
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()

    def advance(self, count: int = 1, colorized: int = 0) -> None:
        """`count` items (or frames) finished, `colorized` of them colorized (not failed or skipped)."""
        if colorized:       # only the main thread colorizes; skipped frames are counted from the decoder's
            self.images += colorized
        if self.progress:
            self.progress.update(self.task, advance=count, images=self.images)

    def grow(self, count: int) -> None:
        if self.progress and count:
            self.progress.update(self.task, total=self.progress.tasks[0].total + count)

    def error(self, message: str) -> None:
        if self.progress:
            self.progress.console.print(f"sscn: error: {message}", markup=False, highlight=False, soft_wrap=True)
        else:
            fail(message)
