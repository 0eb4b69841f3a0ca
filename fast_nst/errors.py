"""The one exception type that means "the user gave us something we cannot use"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


class UserError(Exception):
    """A problem with the user's input or environment, shown as one line with no traceback."""


def failures_listed(console: Console, failed: Sequence[str], summary: str) -> UserError:
    """A batch's bad files, a line each, and the one error that ends the command: a batch goes on
    past a bad file and says so at the end."""
    console.print(f"[bold red]{len(failed)} failed:[/]")
    for line in failed:
        console.print(f"  {line}", soft_wrap=True, markup=False)
    return UserError(f"{summary} (listed above)")
