"""A base for the frozen option dataclasses (:class:`s2l8h.inference.options.HarmonizeOptions`,
:class:`s2l8h.evaluate.benchmark.BenchmarkOptions`): made from keyword arguments with the
names checked, so that a typo is an :class:`s2l8h.errors.OptionError`, never ignored.

Imports nothing heavy (no PyTorch, no rasterio)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from s2l8h.errors import OptionError

T = TypeVar("T", bound="Options")


class Options:
    """Mixin of a frozen dataclass of options; ``WHAT`` names them in error messages."""

    WHAT: ClassVar[str] = "option"

    @classmethod
    def names(cls) -> set[str]:
        """The option names (the dataclass fields)."""
        return {option.name for option in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def build(cls: type[T], options: T | None = None, **changes: Any) -> T:
        """``options`` (default: all defaults) with ``changes`` (keyword arguments named as
        the fields) applied; an unknown name is an :class:`~s2l8h.errors.OptionError`."""
        unknown = sorted(set(changes) - cls.names())
        if unknown:
            raise OptionError(f"unknown {cls.WHAT} option(s): {', '.join(unknown)}")
        if options is None:
            return cls(**changes)
        return dataclasses.replace(options, **changes) if changes else options  # type: ignore
