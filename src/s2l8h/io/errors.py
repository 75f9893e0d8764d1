"""Errors that name the file and the problem: the project's one hierarchy
(:mod:`s2l8h.errors`), re-exported here for the ``io`` layer and its callers."""

from s2l8h.errors import (
    CatalogError,
    ConfigError,
    InputError,
    ModelError,
    OptionError,
    OutputError,
    OutputExistsError,
    S2L8HError,
)

__all__ = ["CatalogError", "ConfigError", "InputError", "ModelError", "OptionError",
           "OutputError", "OutputExistsError", "S2L8HError"]
