"""Tiled inference, uncertainty, and the harmonize job."""

from s2l8h.inference.harmonize import DEFAULT_MODELS, HarmonizeResult, harmonize
from s2l8h.inference.options import HarmonizeOptions
from s2l8h.inference.tiling import plan_tiles, predict_array, run_tiled
from s2l8h.inference.uncertainty import (
    Ensemble,
    MCDropout,
    Predictor,
    SingleModel,
    make_predictor,
)

__all__ = [
    "DEFAULT_MODELS",
    "Ensemble",
    "HarmonizeOptions",
    "HarmonizeResult",
    "MCDropout",
    "Predictor",
    "SingleModel",
    "harmonize",
    "make_predictor",
    "plan_tiles",
    "predict_array",
    "run_tiled",
]
