"""Networks, the model registry, and weight loading."""

from s2l8h.models.complexity import count_parameters, macs_per_output_pixel
from s2l8h.models.convention import (
    LANDSAT_BANDS,
    PUBLISHED_CONVENTION,
    SENTINEL2_BANDS,
    InputConvention,
)
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.loading import ModelLoadError, load_model, read_state_dict, save_pretrained
from s2l8h.models.registry import (
    PUBLISHED_MODELS,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    register_model,
)
from s2l8h.models.unet import UNet, UNetConfig

__all__ = [
    "LANDSAT_BANDS",
    "PUBLISHED_CONVENTION",
    "PUBLISHED_MODELS",
    "SENTINEL2_BANDS",
    "Harmonizer",
    "InputConvention",
    "ModelLoadError",
    "ModelSpec",
    "UNet",
    "UNetConfig",
    "count_parameters",
    "create_model",
    "get_spec",
    "list_models",
    "load_model",
    "macs_per_output_pixel",
    "read_state_dict",
    "register_model",
    "save_pretrained",
]
