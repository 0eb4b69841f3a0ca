"""The one progress line every long command shows: what it does, a bar, how far, a live figure, time."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    label: str, console: Console, field: str | None = None, count: bool = True, eta: bool = True
) -> Progress:
    """label may use {task.description}; `field` names the task field shown after the count (the
    losses, the file, the frame rate); count=False shows a percentage (a total that is a guess);
    eta=False shows the time elapsed (when the remaining time would mislead)."""
    columns = [
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn() if count else TaskProgressColumn(),
    ]
    if field is not None:
        columns.append(TextColumn(f"{{task.fields[{field}]}}"))
    columns.append(TimeRemainingColumn() if eta else TimeElapsedColumn())
    return Progress(*columns, console=console)
