"""Shared CLI helpers: consoles and clean failures."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


def fail(message: object, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    error_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)
