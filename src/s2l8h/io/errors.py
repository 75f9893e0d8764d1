"""Errors that name the file and the problem."""

from __future__ import annotations

import os
from pathlib import Path


class InputError(ValueError):
    """A bad input file: ``str(error)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class OutputError(OSError):
    """The output cannot be written (exists, unwritable folder, ...)."""
