"""Networks, the model registry (models and their weight releases), and weight loading."""

from s2l8h.bands import LANDSAT_BANDS, SENTINEL2_BANDS
from s2l8h.errors import ModelLoadError, UnknownModelError
from s2l8h.models.complexity import count_parameters, macs_per_output_pixel
from s2l8h.models.convention import PUBLISHED_CONVENTION, InputConvention
from s2l8h.models.factory import create_model
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.loading import load_model, load_release, read_state_dict, save_pretrained
from s2l8h.models.registry import (
    DEFAULT_MODEL,
    PUBLISHED_MODELS,
    ModelSpec,
    Release,
    get_spec,
    list_models,
    list_releases,
    register_model,
    register_release,
)
from s2l8h.models.unet import UNet, UNetConfig

__all__ = [
    "DEFAULT_MODEL",
    "LANDSAT_BANDS",
    "PUBLISHED_CONVENTION",
    "PUBLISHED_MODELS",
    "SENTINEL2_BANDS",
    "Harmonizer",
    "InputConvention",
    "ModelLoadError",
    "ModelSpec",
    "Release",
    "UNet",
    "UNetConfig",
    "UnknownModelError",
    "count_parameters",
    "create_model",
    "get_spec",
    "list_models",
    "list_releases",
    "load_model",
    "load_release",
    "macs_per_output_pixel",
    "read_state_dict",
    "register_model",
    "register_release",
    "save_pretrained",
]
