"""s2l8h: Landsat-8/9 to Sentinel-2-like 10 m imagery with deep learning and uncertainty."""

__version__ = "0.1.0"

from s2l8h.inference.harmonize import harmonize
from s2l8h.models import (
    create_model,
    list_models,
    load_model,
    save_pretrained,
)

__all__ = [
    "__version__",
    "create_model",
    "harmonize",
    "list_models",
    "load_model",
    "save_pretrained",
]
