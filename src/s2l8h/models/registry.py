"""A registry of named model configurations, in the manner of ``timm.create_model``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from s2l8h.models.convention import PUBLISHED_CONVENTION, InputConvention
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.lite import LiteConfig, LiteNet
from s2l8h.models.unet import UNet, UNetConfig

# architecture name -> (network class, config class)
ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "unet": (UNet, UNetConfig),
    "lite": (LiteNet, LiteConfig),
}
NATIVE_CONVENTION = InputConvention(input_grid="native")


@dataclass(frozen=True)
class ModelSpec:
    """A named configuration: architecture, its config, input convention and release."""

    name: str
    architecture: str
    config: dict[str, Any]
    convention: InputConvention = PUBLISHED_CONVENTION
    hub_id: str | None = None
    description: str = ""
    bundled: str | None = None  # weights folder inside the package, for pretrained=True
    extra: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {spec.architecture!r}")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(list_models())
        raise KeyError(f"unknown model {name!r}; known models: {known}") from None


def build_network(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` from a plain config dict (validated by its config class)."""
    try:
        network_cls, config_cls = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None
    return network_cls(config_cls.from_dict(config))


def find_spec(architecture: str, config: dict[str, Any]) -> ModelSpec | None:
    """The registered spec with exactly this architecture and config, if any."""
    for spec in _REGISTRY.values():
        if spec.architecture == architecture and spec.config == config:
            return spec
    return None


def create_model(name: str, pretrained: bool | str | None = None, **overrides: Any) -> Harmonizer:
    """Build a registered model.

    ``pretrained``: ``None``/``False`` for random weights; ``True`` for the model's release
    (hub id, through the huggingface_hub cache); a path or hub id to load those weights instead
    (their architecture must match). ``overrides`` change config fields (e.g. ``dropout=0.1``;
    parameter-free fields only when loading weights).
    """
    spec = get_spec(name)
    config = {**spec.config, **overrides}
    if pretrained in (None, False):
        return Harmonizer(build_network(spec.architecture, config), spec.convention,
                          spec.architecture, name=spec.name,
                          provenance={"weights": "random initialization"})
    from s2l8h.models.loading import load_model

    if pretrained is True:
        if spec.bundled is not None:
            source: str = bundled_weights(spec)
        elif spec.hub_id is not None:
            source = spec.hub_id
        else:
            raise ValueError(f"model {name!r} has no published weights")
    else:
        source = str(pretrained)
    model = load_model(source, expect_architecture=(spec.architecture, spec.config),
                       overrides=overrides)
    model.name = spec.name
    return model


def _register_published() -> None:
    for depth in (5, 6):
        for up_mode in ("upsample", "shuffle"):
            register_model(ModelSpec(
                name=f"unet{depth}-{up_mode}",
                architecture="unet",
                config=UNetConfig(depth=depth, growth_factor=6, up_mode=up_mode).to_dict(),
                hub_id=f"venkatesh-thiru/s2l8h-UNet-{depth}depth-{up_mode}",
                description=(f"Published UNet, depth {depth}, {up_mode} decoder "
                             "(Sambandham et al. 2024), trained on real L8/S2 pairs"),
            ))


def bundled_weights(spec: ModelSpec) -> str:
    """Path of a spec's weights folder shipped inside the package."""
    from importlib import resources

    return str(resources.files("s2l8h") / "weights" / str(spec.bundled))


_register_published()
PUBLISHED_MODELS: tuple[str, ...] = tuple(list_models())
register_model(ModelSpec(
    name="lite",
    architecture="lite",
    config=LiteConfig(width=48, blocks=8, variance_head=True).to_dict(),
    convention=NATIVE_CONVENTION,
    description="Efficient network on the native 30 m / 15 m grids with a variance head "
                "(s2l8h); demo weights trained on simulated Landsat from Sentinel-2",
    bundled="lite-virginia-sim",
))
register_model(ModelSpec(
    name="lite2",
    architecture="lite",
    config=LiteConfig(width=64, blocks=8, variance_head=True, pan_norm=7).to_dict(),
    convention=NATIVE_CONVENTION,
    description="lite, wider, with local pan matching and a variance head (s2l8h); default "
                "weights trained on Landsat simulated from two Sentinel-2 L1C scenes with "
                "random realistic degradations (noise, PSF, misregistration, atmosphere, "
                "Level-1 pan)",
    bundled="lite2-realistic",
))
