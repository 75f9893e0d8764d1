"""The project's error classes: one base, :class:`S2L8HError`, and one subclass per kind.

The command line turns these, and only these, into a one-line ``error: ...`` message with a
non-zero exit code; any other exception is a bug and keeps its traceback. Each class also
derives from the built-in exception a caller would expect (``ValueError`` for bad values,
``OSError`` for files that cannot be written, as rasterio does), so ``except ValueError`` code
keeps working.

This module imports nothing from the package, so every layer (``io`` and ``models`` at the
bottom included) can import it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path


class S2L8HError(Exception):
    """Base class of every error s2l8h reports to its user as a one-line message."""


class InputError(S2L8HError, ValueError):
    """A bad input file: ``str(error)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class OutputError(S2L8HError, OSError):
    """The output cannot be written (exists, unwritable folder, one of the run's inputs, ...)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output exists and replacing it was not asked for (``--overwrite``)."""


class OptionError(S2L8HError, ValueError):
    """An option or argument has a value the tool cannot use; the message names the option."""


class ModelError(S2L8HError, ValueError):
    """A model or its weights cannot be loaded or used; the message names the file or id."""


class ModelLoadError(ModelError):
    """Weights or their description could not be loaded; the message names the file."""


class UnknownModelError(ModelLoadError, KeyError):
    """A name that is not registered (nor a file, folder or hub id); the message lists the
    registered names. Also a ``KeyError``, as a missing registry key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(S2L8HError, ValueError):
    """A configuration value is missing, unknown or of the wrong type; says which."""


class CatalogError(S2L8HError, RuntimeError):
    """A catalogue could not be searched (unreachable, server errors, timeouts)."""


__all__ = ["CatalogError", "ConfigError", "InputError", "ModelError", "ModelLoadError",
           "OptionError", "OutputError", "OutputExistsError", "S2L8HError", "UnknownModelError"]
