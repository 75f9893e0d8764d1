"""s2l8h: Landsat-8/9 to Sentinel-2-like 10 m imagery with deep learning and uncertainty."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public functions load on first use, so that ``import s2l8h`` (and ``s2l8h --version``)
# does not import PyTorch, rasterio or SciPy.
_LAZY = {
    "harmonize": "s2l8h.inference.harmonize",
    "HarmonizeOptions": "s2l8h.inference.options",
    "create_model": "s2l8h.models",
    "list_models": "s2l8h.models",
    "load_model": "s2l8h.models",
    "save_pretrained": "s2l8h.models",
}

if TYPE_CHECKING:
    from s2l8h.inference.harmonize import harmonize
    from s2l8h.inference.options import HarmonizeOptions
    from s2l8h.models import create_model, list_models, load_model, save_pretrained


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 's2l8h' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "HarmonizeOptions",
    "__version__",
    "create_model",
    "harmonize",
    "list_models",
    "load_model",
    "save_pretrained",
]
