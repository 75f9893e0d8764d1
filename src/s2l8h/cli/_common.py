"""Shared CLI helpers: consoles, tables that never truncate, and clean failures."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from s2l8h.errors import S2L8HError

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)

Command = TypeVar("Command", bound=Callable[..., Any])


def fail(message: object, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    error_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def one_line_errors(command: Command) -> Command:
    """Wrap a command so that the project's own errors (:class:`s2l8h.errors.S2L8HError`)
    become ``error: ...`` and exit code 2; anything else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except S2L8HError as error:
            fail(error)

    return wrapper  # type: ignore[return-value]


def print_table(table: Table) -> None:
    """Print ``table`` whole: on a terminal as rich lays it out; piped or redirected, at the
    width it needs (never cut to 80 columns with "…")."""
    if console.is_terminal:
        console.print(table)
        return
    needed = Measurement.get(console, console.options.update_width(100_000), table).maximum
    # Console.print caps the width at the console's: print through a console that wide.
    Console(width=max(needed, console.width), soft_wrap=True).print(table)


def print_json(document: object) -> None:
    """Print ``document`` as JSON on stdout (machine-readable, no markup)."""
    typer.echo(json.dumps(document, indent=2))
