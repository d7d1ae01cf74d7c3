"""Terminal tables for the CLI's reports: one look for every command, full width when piped."""

from __future__ import annotations

import sys

from rich import box
from rich.console import Console
from rich.table import Table


def table(*columns: str, note: str | None = None) -> Table:
    """Names in the first column (left-aligned), figures in the others (right-aligned, never
    wrapped); `note` adds a last, left-aligned column for remarks that only some rows have."""
    out = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for i, title in enumerate(columns):
        out.add_column(title, justify="left" if i == 0 else "right", no_wrap=i > 0)
    if note is not None:
        out.add_column(note, justify="left")
    return out


def print_tables(*parts: str | Table) -> None:
    """Lines and tables on stdout; piped, at full width (a table is never wrapped to 80 columns)
    and without the padding a short last cell leaves at the end of its line."""
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 1000)
    for part in parts:
        if isinstance(part, Table):
            with console.capture() as shown:
                console.print(part)
            print("\n".join(line.rstrip() for line in shown.get().splitlines()))
        else:
            print(part)
