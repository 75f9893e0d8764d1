"""Defaults named in more than one place, in a module that imports nothing (so the command
line can show them without loading torch).

``DEFAULT_MODEL`` is the model ``s2l8h harmonize`` and ``s2l8h demo`` use when none is given:
a name of the registry (:mod:`s2l8h.models.registry`): a bare model name (its default
release), a release ``model.tag`` or a registered ensemble. Changing the default is
changing this line.
"""

from __future__ import annotations

DEFAULT_MODEL = "lite2.real-wald8"

__all__ = ["DEFAULT_MODEL"]
