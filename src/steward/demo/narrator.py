"""How the demo tells its story on a console: one line per event, a progress bar per phase."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["Narrator"]


class Narrator:
    """Tells the story: one line per event, a progress bar per phase (on a terminal).

    >>> Narrator(Console(width=60, color_system=None)).say("v1 registered")
    ✓ v1 registered
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self._progress: Progress | None = None

    def say(self, line: str, mark: str = "[green]✓[/]") -> None:
        """Print one line of the story (above the progress bar when one is showing)."""
        target = self._progress.console if self._progress is not None else self.console
        target.print(f"{mark} {line}", highlight=False)

    def warn(self, line: str) -> None:
        """A line that is a problem in the story (an alert, a drop)."""
        self.say(line, mark="[bold red]![/]")

    @contextmanager
    def phase(self, description: str, total: int) -> Iterator[Callable[[float], None]]:
        """A progress bar for one phase; yields ``advance(steps)``."""
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            self._progress = progress
            task = progress.add_task(description, total=total)
            try:

                def advance(steps: float = 1.0) -> None:
                    progress.advance(task, steps)

                yield advance
            finally:
                self._progress = None
