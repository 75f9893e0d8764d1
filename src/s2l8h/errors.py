"""The project's error classes: one base, :class:`S2L8HError`, and one subclass per kind.

The command line turns these, and only these, into a one-line ``error: ...`` message with a
non-zero exit code; any other exception is a bug and keeps its traceback. Each class also
derives from the built-in exception a caller would expect (``ValueError`` for bad values,
``OSError`` for files that cannot be written, as rasterio does), so ``except ValueError`` code
keeps working.

Warnings have one base too, :class:`S2L8HWarning`; :func:`warn` gives one and
:func:`collect_warnings` keeps what is given inside it (per :mod:`contextvars` context: each
thread has its own, so a dask worker running several scenes at once in its threads keeps each
scene's apart).

This module imports nothing from the package, so every layer (``io`` and ``models`` at the
bottom included) can import it without importing each other.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any


class S2L8HError(Exception):
    """Base class of every error s2l8h reports to its user as a one-line message."""


class InputError(S2L8HError, ValueError):
    """A bad input file: ``str(error)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as made (dask sends errors back)
        return type(self), (self.path, self.problem), self.__dict__


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


class TrainingError(S2L8HError, RuntimeError):
    """Training cannot go on (a loss that is not finite); says where and why."""


class CatalogError(S2L8HError, RuntimeError):
    """A catalogue could not be searched (unreachable, server errors, timeouts)."""


class S2L8HWarning(UserWarning):
    """Base class of s2l8h's warnings to its user (input checks, TOA mode, stale temporary
    folders)."""


#: The lists :func:`collect_warnings` keeps messages in, innermost last (per contextvars
#: context: each thread's own, or a copy of it for an asyncio task or ``copy_context().run``).
_COLLECTORS: ContextVar[tuple[list[str], ...]] = ContextVar("s2l8h_warning_collectors",
                                                            default=())


def warn(message: str, category: type[S2L8HWarning], stacklevel: int = 1) -> None:
    """``warnings.warn(message, category)`` (``stacklevel`` as there, counted from the
    caller), and keep ``message`` in every :func:`collect_warnings` around the call. The
    filters decide only what is shown: a message is kept even where it is ignored or shown
    once."""
    for collected in _COLLECTORS.get():
        collected.append(message)
    warnings.warn(message, category, stacklevel=stacklevel + 1)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Keep the messages :func:`warn` gives inside the block, in order (a list that fills as
    they come; nested blocks each keep their own). Messages given in another thread are kept
    only where that thread runs in a copy of this context (``contextvars.copy_context().run``,
    ``asyncio.to_thread``); a thread started plainly has a context of its own (before Python
    3.14's free-threaded builds, which copy it)."""
    collected: list[str] = []
    token = _COLLECTORS.set((*_COLLECTORS.get(), collected))
    try:
        yield collected
    finally:
        _COLLECTORS.reset(token)


__all__ = ["CatalogError", "ConfigError", "InputError", "ModelError", "ModelLoadError",
           "OptionError", "OutputError", "OutputExistsError", "S2L8HError", "S2L8HWarning",
           "TrainingError", "UnknownModelError", "collect_warnings", "warn"]
