"""Plain-dict round trips for frozen config dataclasses."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT", bound="DictConfig")


class DictConfig:
    """``to_dict`` / ``from_dict`` (unknown keys are an error) for a dataclass."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**values)
