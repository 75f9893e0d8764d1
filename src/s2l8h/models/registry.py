"""The model registry, in the manner of timm: models (architectures) and weight releases apart.

- A **model** is a named network configuration: a network family of :data:`ARCHITECTURES`
  (``unet``, ``lite``), its config and its input convention, e.g. ``unet5-upsample`` or
  ``lite2``. Models are registered with :func:`register_model`, as a decorator on a function
  that returns the :class:`ModelSpec` (or called with the spec).
- A **release** is one set of trained weights of a model, named ``model.tag`` as timm names
  pretrained weights: ``lite.virginia-sim``, ``lite2.realistic``, ``unet5-upsample.paper``. It
  lives in a folder bundled with the package or on the Hugging Face hub; registered with
  :func:`register_release`, one call each.
- A bare model name where weights are asked for (``load_model("lite2")``, ``create_model(
  "lite2", pretrained=True)``, ``--model lite2``) stands for the model's **default release**:
  its first registered release.

Names and paths are never ambiguous: a registered name (a model name or ``model.tag``) always
means the registry, even where a file or folder of that name exists (write ``./lite2`` for
the folder); anything else is a file, a folder or a hub id (:func:`s2l8h.models.load_model`).
Model names and tags contain no ``.`` and no path separator. An unknown name raises
:class:`~s2l8h.errors.UnknownModelError`, which lists the registered names.

This module knows names and configurations only; loading weights is
:mod:`s2l8h.models.loading` (which imports this module, never the reverse).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from torch import nn

from s2l8h.defaults import DEFAULT_MODEL
from s2l8h.errors import ModelLoadError, UnknownModelError
from s2l8h.models.convention import NATIVE_CONVENTION, PUBLISHED_CONVENTION, InputConvention
from s2l8h.models.lite import LiteConfig, LiteNet
from s2l8h.models.unet import UNet, UNetConfig
from s2l8h.models.views import VIEWS

#: Network families: name (``Harmonizer.architecture``) -> (network class, config class).
ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "unet": (UNet, UNetConfig),
    "lite": (LiteNet, LiteConfig),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a model name or a tag: no ".", no "/"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: network family (``architecture``), its config (a plain dict) and
    input convention.

    :func:`get_spec` of a release name (or of a bare name, for the default release) fills in
    the release: ``tag``, ``hub_id`` or ``bundled`` (a weights folder inside the package) and
    ``release_description``; a spec without a release has them ``None``/empty.
    """

    name: str
    architecture: str
    config: dict[str, Any]
    convention: InputConvention = PUBLISHED_CONVENTION
    description: str = ""
    tag: str | None = None
    hub_id: str | None = None
    bundled: str | None = None
    release_description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def release(self) -> str | None:
        """The release name ``model.tag``, or ``None`` for a spec without a release."""
        return f"{self.name}.{self.tag}" if self.tag is not None else None


@dataclass(frozen=True)
class Release:
    """Trained weights of model ``model``: ``bundled`` (folder under ``s2l8h/weights``) or
    ``hub_id`` (Hugging Face repository), named ``model.tag``."""

    model: str
    tag: str
    hub_id: str | None = None
    bundled: str | None = None
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"


@dataclass(frozen=True)
class EnsembleRelease:
    """A named ensemble of registered models or releases (``members``): where weights are
    asked for by this name, all members load and their predictions combine (mean; variance
    = spread of the means + mean head variance, times ``variance_scale``, plus
    ``noise_variance_scale`` times the square of the input's estimated noise per band, plus
    ``level_variance_scale`` times the square of the level departure from the input per tile
    and band, plus ``pan_variance_scale`` times the square of the pan's disagreement with the
    bands per pixel, the sum times ``band_variance_factors`` per band: the ensemble's σ
    calibration, fitted on validation data; :mod:`s2l8h.inference.uncertainty`,
    :mod:`s2l8h.inference.consistency`)."""

    name: str
    members: tuple[str, ...]
    description: str = ""
    variance_scale: float = 1.0
    noise_variance_scale: float = 0.0
    level_variance_scale: float = 0.0
    #: The view of the tile each member sees (:mod:`s2l8h.models.views`); () all ``identity``.
    member_views: tuple[str, ...] = ()
    pan_variance_scale: float = 0.0
    #: A factor per output band (the members' order, B02 B03 B04 B8A B11 B12) on the whole
    #: σ²; () all 1.
    band_variance_factors: tuple[float, ...] = ()


_MODELS: dict[str, ModelSpec] = {}
_RELEASES: dict[str, Release] = {}  # "model.tag" -> release, in registration order
_ENSEMBLES: dict[str, EnsembleRelease] = {}

SpecFactory = TypeVar("SpecFactory", bound=Callable[[], ModelSpec])


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"{kind} {name!r}: letters, digits, '-' and '_' only (no '.' or '/')")


def register_model(spec: ModelSpec | SpecFactory) -> Any:
    """Register a model: as a decorator on a function returning its :class:`ModelSpec` (the
    function is returned unchanged), or called with the spec (returned). Releases are
    registered apart, with :func:`register_release`."""
    if callable(spec) and not isinstance(spec, ModelSpec):
        register_model(spec())
        return spec
    _check_name("model name", spec.name)
    if spec.architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {spec.architecture!r}; known: "
                         f"{', '.join(sorted(ARCHITECTURES))}")
    if spec.tag is not None or spec.hub_id is not None or spec.bundled is not None:
        raise ValueError(f"model {spec.name!r}: register its weights with register_release")
    _MODELS[spec.name] = spec
    return spec


def register_release(model: str, tag: str, *, hub_id: str | None = None,
                     bundled: str | None = None, description: str = "") -> Release:
    """Register weights of ``model`` as ``model.tag``: exactly one of ``hub_id`` or
    ``bundled`` (a folder name under ``s2l8h/weights``). A model's first release is its
    default (what the bare model name loads)."""
    _check_name("release tag", tag)
    if model not in _MODELS:
        raise ValueError(f"release {model}.{tag}: register the model {model!r} first")
    if (hub_id is None) == (bundled is None):
        raise ValueError(f"release {model}.{tag}: give exactly one of hub_id and bundled")
    release = Release(model, tag, hub_id, bundled, description)
    if release.name in _ENSEMBLES:
        raise ValueError(f"release {release.name}: the name is an ensemble's already")
    _RELEASES[release.name] = release
    return release


def list_models(releases: bool = False) -> list[str]:
    """Registered model names, sorted; with ``releases``, the release names ``model.tag``."""
    return sorted(_RELEASES if releases else _MODELS)


def list_releases(model: str | None = None) -> list[Release]:
    """The releases (of ``model``, default all), each model's default first."""
    return [release for release in _RELEASES.values() if model in (None, release.model)]


def default_release(model: str) -> Release | None:
    """The release a bare model name loads: the model's first registered one."""
    return next(iter(list_releases(model)), None)


def register_ensemble(name: str, members: tuple[str, ...], description: str = "",
                      variance_scale: float = 1.0, noise_variance_scale: float = 0.0,
                      level_variance_scale: float = 0.0,
                      member_views: tuple[str, ...] = (),
                      pan_variance_scale: float = 0.0,
                      band_variance_factors: tuple[float, ...] = ()) -> EnsembleRelease:
    """Register ``name`` (a model-like name, or ``model.tag`` when all members are releases
    of that model) for the ensemble of ``members`` (registered model or release names, at
    least two, one input convention); ``variance_scale`` multiplies its variance, to which
    ``noise_variance_scale`` times the input's estimated noise variance and
    ``level_variance_scale`` times the square of the level departure from the input and
    ``pan_variance_scale`` times the square of the pan's disagreement with the bands are
    added; ``band_variance_factors`` (one per output band, or () for none) multiply the sum
    per band; ``member_views``: the view of the tile each member sees
    (:mod:`s2l8h.models.views`, one per member)."""
    _check_name("ensemble name", name.replace(".", "-", 1))
    if len(members) < 2:
        raise ValueError(f"ensemble {name!r}: at least two members")
    unknown = [member for member in members if member not in _MODELS and
               member not in _RELEASES]
    if unknown:
        raise ValueError(f"ensemble {name!r}: register {unknown} first")
    if name in _MODELS or name in _RELEASES:
        raise ValueError(f"ensemble {name!r}: the name is a model or release already")
    if not variance_scale > 0:
        raise ValueError(f"ensemble {name!r}: variance_scale must be > 0")
    for label, value in (("noise_variance_scale", noise_variance_scale),
                         ("level_variance_scale", level_variance_scale),
                         ("pan_variance_scale", pan_variance_scale)):
        if not value >= 0:
            raise ValueError(f"ensemble {name!r}: {label} must be >= 0")
    if member_views and (len(member_views) != len(members)
                         or any(view not in VIEWS for view in member_views)):
        raise ValueError(f"ensemble {name!r}: member_views must name one view per member "
                         f"({', '.join(VIEWS)})")
    output_bands = get_spec(members[0]).convention.output_bands
    if band_variance_factors and (len(band_variance_factors) != len(output_bands)
                                  or not all(value > 0 for value in band_variance_factors)):
        raise ValueError(f"ensemble {name!r}: band_variance_factors must give one factor > 0 "
                         f"per output band ({' '.join(output_bands)})")
    ensemble = EnsembleRelease(name, tuple(members), description, float(variance_scale),
                               float(noise_variance_scale), float(level_variance_scale),
                               tuple(member_views), float(pan_variance_scale),
                               tuple(float(value) for value in band_variance_factors))
    _ENSEMBLES[name] = ensemble
    return ensemble


def find_ensemble(name: str) -> EnsembleRelease | None:
    """The registered ensemble ``name``; ``None`` for any other name or path."""
    return _ENSEMBLES.get(name)


def ensemble_members(name: str) -> tuple[str, ...]:
    """The members of a registered ensemble; ``(name,)`` for any other name or path."""
    ensemble = find_ensemble(name)
    return (name,) if ensemble is None else ensemble.members


def ensemble_variance_scale(name: str) -> float:
    """The registered σ² factor of ensemble ``name``; 1 for any other name."""
    ensemble = find_ensemble(name)
    return 1.0 if ensemble is None else ensemble.variance_scale


def ensemble_noise_variance_scale(name: str) -> float:
    """The registered factor on the input's noise variance that ensemble ``name`` adds to its
    σ²; 0 for any other name."""
    ensemble = find_ensemble(name)
    return 0.0 if ensemble is None else ensemble.noise_variance_scale


def ensemble_level_variance_scale(name: str) -> float:
    """The registered factor on the square of the level departure from the input that
    ensemble ``name`` adds to its σ²; 0 for any other name."""
    ensemble = find_ensemble(name)
    return 0.0 if ensemble is None else ensemble.level_variance_scale


def ensemble_member_views(name: str) -> tuple[str, ...]:
    """The views registered for the members of ensemble ``name``; () for any other name."""
    ensemble = find_ensemble(name)
    return () if ensemble is None else ensemble.member_views


def list_ensembles() -> list[EnsembleRelease]:
    """Registered ensembles, in registration order."""
    return list(_ENSEMBLES.values())


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered model, release or ensemble name (then it never means
    a path)."""
    return name in _MODELS or name in _RELEASES or name in _ENSEMBLES


def _unknown(name: str) -> UnknownModelError:
    model, _, tag = name.partition(".")
    if tag and model in _MODELS:
        tags = ", ".join(release.name for release in list_releases(model)) or "none"
        ensembles = [ensemble.name for ensemble in list_ensembles()
                     if ensemble.name.startswith(f"{model}.")]
        return UnknownModelError(f"unknown release {name!r}; releases of {model}: {tags}"
                                 + (f"; ensembles of its releases: {', '.join(ensembles)}"
                                    if ensembles else ""))
    return UnknownModelError(f"unknown model {name!r}; known models: "
                             f"{', '.join(list_models())}; releases: "
                             f"{', '.join(list_models(releases=True))}; ensembles: "
                             f"{ensemble_names()}")


def ensemble_names() -> str:
    """The registered ensembles' names, for messages."""
    return ", ".join(ensemble.name for ensemble in list_ensembles())


def get_spec(name: str) -> ModelSpec:
    """The spec of a model name (filled in with its default release, if any) or of a release
    name ``model.tag``; :class:`~s2l8h.errors.UnknownModelError` for anything else."""
    if name in _ENSEMBLES:
        raise UnknownModelError(f"{name!r} is an ensemble of {', '.join(_ENSEMBLES[name].members)}"
                                "; ask for its members one by one")
    if name in _RELEASES:
        release: Release | None = _RELEASES[name]
    elif name in _MODELS:
        release = default_release(name)
    else:
        raise _unknown(name)
    spec = _MODELS[release.model if release else name]
    if release is None:
        return spec
    return dataclasses.replace(spec, tag=release.tag, hub_id=release.hub_id,
                               bundled=release.bundled,
                               release_description=release.description)


def _architecture(architecture: str) -> tuple[Callable[..., nn.Module], Any]:
    """(network class, config class) of a registered architecture; ValueError otherwise."""
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def build_network(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` from a plain config dict (validated by its config class)."""
    network_cls, config_cls = _architecture(architecture)
    return network_cls(config_cls.from_dict(config))


def full_config(architecture: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every field of ``architecture``'s config class (the default for each
    field it lacks, as a config saved before that field existed is built)."""
    return _architecture(architecture)[1].from_dict(config).to_dict()


def find_spec(architecture: str, config: dict[str, Any]) -> ModelSpec | None:
    """The registered model with exactly this architecture and config, if any (no release:
    the weights are not known to be a release's)."""
    for spec in _MODELS.values():
        if spec.architecture == architecture and spec.config == config:
            return spec
    return None


def bundled_weights(spec: ModelSpec | Release) -> str:
    """Path of a release's weights folder shipped inside the package."""
    if spec.bundled is None:
        raise ModelLoadError(f"{spec.name}: no bundled weights")
    return str(resources.files("s2l8h") / "weights" / spec.bundled)


# --- the models -------------------------------------------------------------------------

def _register_published() -> tuple[str, ...]:
    """The paper's four UNets and their releases ``<name>.paper`` on the hub."""
    for depth in (5, 6):
        for up_mode in ("upsample", "shuffle"):
            spec = register_model(ModelSpec(
                name=f"unet{depth}-{up_mode}",
                architecture="unet",
                config=UNetConfig(depth=depth, growth_factor=6, up_mode=up_mode).to_dict(),
                description=(f"Published UNet, depth {depth}, {up_mode} decoder "
                             "(Sambandham et al. 2024)"),
            ))
            register_release(spec.name, "paper",
                             hub_id=f"venkatesh-thiru/s2l8h-UNet-{depth}depth-{up_mode}",
                             description="the paper's weights, trained on real L8/S2 pairs")
    return tuple(list_models())


PUBLISHED_MODELS: tuple[str, ...] = _register_published()
register_ensemble("published", ("unet5-upsample", "unet5-shuffle", "unet6-upsample",
                               "unet6-shuffle"),
                  description="the paper's ensemble: mean of the four published UNets")


@register_model
def lite() -> ModelSpec:
    """48 channels, 8 residual blocks at 30 m, variance head."""
    return ModelSpec(
        name="lite",
        architecture="lite",
        config=LiteConfig(width=48, blocks=8, variance_head=True).to_dict(),
        convention=NATIVE_CONVENTION,
        description="Efficient network on the native 30 m / 15 m grids with a variance head "
                    "(s2l8h)",
    )


@register_model
def lite2() -> ModelSpec:
    """64 channels, 8 residual blocks at 30 m, local pan matching (7 px), variance head."""
    return ModelSpec(
        name="lite2",
        architecture="lite",
        config=LiteConfig(width=64, blocks=8, variance_head=True, pan_norm=7).to_dict(),
        convention=NATIVE_CONVENTION,
        description="lite, wider, with local pan matching and a variance head (s2l8h)",
    )


# --- the bundled releases: one call each; a model's first release is its default -----------

register_release("lite", "virginia-sim", bundled="lite-virginia-sim",
                 description="demo weights trained on simulated Landsat from Sentinel-2")
register_release("lite2", "realistic", bundled="lite2-realistic",
                 description="trained on Landsat simulated from Sentinel-2 L1C scenes with "
                             "realistic degradations (noise, PSF, misregistration, "
                             "atmosphere, Level-1 pan)")
for _member, _shift in (("a", "band/truth shifts up to 15 m"),
                        ("b", "band/truth shifts up to 3 m")):
    register_release("lite2", f"real-wald-{_member}", bundled=f"lite2-real-wald-{_member}",
                     description="lite2.realistic fine-tuned on simulated pairs "
                                 f"({_shift}) mixed with reduced-resolution (Wald) pairs of "
                                 "real Landsat-8")
register_ensemble("lite2.real-wald", ("lite2.real-wald-a", "lite2.real-wald-b"),
                  description="two lite2 members trained on simulated and real-Landsat "
                              "(Wald) pairs; σ = member spread + mean variance head")
for _member in ("a", "b"):
    register_release("lite2", f"real-wald3-{_member}", bundled=f"lite2-real-wald3-{_member}",
                     description=f"lite2.real-wald-{_member} trained 9 epochs more with three "
                                 "fifths real-Landsat (Wald) pairs")
# variance_scale: fitted on validation rows only (scripts/calibrate_ensemble.py): σ x 0.79.
register_ensemble("lite2.real-wald3", ("lite2.real-wald3-a", "lite2.real-wald3-b"),
                  description="lite2.real-wald after a third training stage (previous default); "
                              "σ² = 0.62 x (member spread + mean variance head)",
                  variance_scale=0.6241)
for _member, _psf in (("a", "with PSF widths drawn from 0.55-1.45 x nominal"),
                      ("b", "with stage 3's recipe")):
    register_release("lite2", f"real-wald4-{_member}", bundled=f"lite2-real-wald4-{_member}",
                     description=f"lite2.real-wald3-{_member} trained 9 epochs more {_psf}")
# variance_scale: fitted on validation rows only (scripts/calibrate_ensemble.py): σ x 0.81.
register_ensemble("lite2.real-wald4", ("lite2.real-wald4-a", "lite2.real-wald4-b"),
                  description="lite2.real-wald3 after a fourth training stage (member A: a "
                              "wider PSF range; an earlier default); σ² = 0.66 x (member spread "
                              "+ mean variance head)",
                  variance_scale=0.6561)
for _member in ("a", "b"):
    register_release("lite2", f"real-wald5-{_member}", bundled=f"lite2-real-wald5-{_member}",
                     description=f"lite2.real-wald4-{_member} trained 9 epochs more with PSF "
                                 "widths drawn from 0.55-1.45 x nominal")
# Member B sees each tile rotated by 180° (s2l8h.models.views): on the validation rows +0.03 to
# +0.06 dB in every condition tried and on Florida, at no cost. σ fitted on validation rows only
# (scripts/calibrate_ensemble.py ... --views identity,rot180), with the two consistency steps
# that restore each band's level (s2l8h.inference.consistency): σ² = 0.2025 x the members' variance
# + 2.43 x the square of the networks' level departure from the input + 3.24 x the input's
# estimated noise variance.
register_ensemble("lite2.real-wald5", ("lite2.real-wald5-a", "lite2.real-wald5-b"),
                  description="the previous default: lite2.real-wald4 after a fifth training stage "
                              "(both members: a wider PSF range; member B sees each tile "
                              "rotated by 180°); σ² = 0.2025 x (member spread + mean variance "
                              "head) + 2.43 x squared level departure from the input + 3.24 x "
                              "the input's noise variance",
                  variance_scale=0.2025, noise_variance_scale=3.24, level_variance_scale=2.43,
                  member_views=("identity", "rot180"))
for _member in ("a", "b"):
    register_release("lite2", f"real-wald6-{_member}", bundled=f"lite2-real-wald6-{_member}",
                     description=f"lite2.real-wald5-{_member} trained 9 epochs more with blue, "
                                 "green and red as residuals on a local MTF-GLP pansharpening "
                                 "(glp_window 7, glp_bands 3)")
# As lite2.real-wald5: member B sees each tile rotated by 180°; σ fitted on validation rows only
# (scripts/calibrate_ensemble.py lite2.real-wald6-a lite2.real-wald6-b --views identity,rot180):
# σ² = 0.25 x the members' variance + 2.0 x the square of the networks' level departure from
# the input + 2.0 x the input's estimated noise variance.
register_ensemble("lite2.real-wald6", ("lite2.real-wald6-a", "lite2.real-wald6-b"),
                  description="lite2.real-wald5 after a sixth training stage (blue, green and "
                              "red as residuals on a local MTF-GLP pansharpening; member B "
                              "sees each tile rotated by 180°); σ² = 0.25 x (member spread + "
                              "mean variance head) + 2.0 x squared level departure from the "
                              "input + 2.0 x the input's noise variance",
                  variance_scale=0.25, noise_variance_scale=2.0, level_variance_scale=2.0,
                  member_views=("identity", "rot180"))
for _member in ("a", "b"):
    register_release("lite2", f"real-wald7-{_member}", bundled=f"lite2-real-wald7-{_member}",
                     description=f"lite2.real-wald6-{_member} trained 9 epochs more with its "
                                 "stage-6 recipe (a new seed)")
# As lite2.real-wald6, plus a term for the pan's disagreement with the bands per pixel
# (s2l8h.inference.consistency.pan_disagreement); σ fitted on validation rows only
# (scripts/calibrate_ensemble.py lite2.real-wald7-a lite2.real-wald7-b --views identity,rot180):
# σ² = 0.2809 x the members' variance + 2.2472 x the square of the networks' level departure
# from the input + 2.2472 x the square of the pan's disagreement (the fit gives the input's
# noise variance no weight once the pan term is there), all of it times a factor per band
# fitted by the same script on the conditions without per-band offsets (since 2026-12-07;
# before, all 1: blue's σ was too wide, NIR's and SWIR's too narrow). Refitted with the input
# noise filter on (harmonize's default since 2026-12-07; s2l8h.inference.denoise) and refitted
# again once the consistency step checked the output against the filtered bands and the filter
# took the visible and the infrared bands apart: the common factors came out the same each
# time, the band factors 0.62 / 0.74 / 0.98 / 1.77 / 1.23 / 1.23 (with the filter's first
# form: 0.61 / 0.72 / 0.98 / ...; without the filter: 0.62 / 0.74 / 0.94 / ...). Refitted
# once more when the pan's disagreement came to be regressed over a fixed window rather than
# the whole tile (2026-12-07, so that σ does not shrink on small scenes): σ² = 0.2601 x the
# members' variance + 2.0808 x L² + 4.1616 x R², band factors 0.61 / 0.72 / 0.96 / 1.85 /
# 1.25 / 1.23 (before: 0.2809 / 2.2472 / 2.2472, 0.62 / 0.74 / 0.98 / 1.77 / 1.23 / 1.23).
register_ensemble("lite2.real-wald7", ("lite2.real-wald7-a", "lite2.real-wald7-b"),
                  description="lite2.real-wald6 after a seventh training stage (9 more epochs "
                              "of the same recipe; member B sees each tile rotated by 180°); "
                              "σ² = (0.2601 x (member spread + mean variance head) + 2.0808 x "
                              "squared level departure from the input + 4.1616 x the squared "
                              "disagreement of the pan with the bands) x 0.61 / 0.72 / 0.96 / "
                              "1.85 / 1.25 / 1.23 (B02 B03 B04 B8A B11 B12)",
                  variance_scale=0.2601, level_variance_scale=2.0808,
                  member_views=("identity", "rot180"), pan_variance_scale=4.1616,
                  band_variance_factors=(0.6084, 0.7225, 0.9604, 1.8496, 1.2544, 1.2321))

for _member in ("a", "b"):
    register_release("lite2", f"real-wald8-{_member}", bundled=f"lite2-real-wald8-{_member}",
                     description=f"lite2.real-wald7-{_member} trained 9 epochs more with its "
                                 "stage-7 recipe and a third Sentinel-2 scene, the Level-2A "
                                 "Zurich scene's training rows (a new seed)")

# As lite2.real-wald7; σ fitted on validation rows only, with the Zurich scene's validation
# rows added (scripts/calibrate_ensemble.py lite2.real-wald8-a lite2.real-wald8-b --views
# identity,rot180 --extra data/s2_l2a_zurich_20190530=472480,5249860,483500,5251480):
# σ² = (0.25 x the members' variance + 2.0 x L² + 4.0 x R²) x a factor per band.
register_ensemble("lite2.real-wald8", ("lite2.real-wald8-a", "lite2.real-wald8-b"),
                  description="lite2.real-wald7 after an eighth training stage (9 more epochs "
                              "with a third, Level-2A scene: Zurich; member B sees each tile "
                              "rotated by 180°); σ² = (0.25 x (member spread + mean variance "
                              "head) + 2.0 x squared level departure from the input + 4.0 x "
                              "the squared disagreement of the pan with the bands) x 0.66 / "
                              "0.85 / 0.86 / 1.80 / 1.19 / 1.19 (B02 B03 B04 B8A B11 B12)",
                  variance_scale=0.25, level_variance_scale=2.0,
                  member_views=("identity", "rot180"), pan_variance_scale=4.0,
                  band_variance_factors=(0.6561, 0.8464, 0.8649, 1.7956, 1.1881, 1.1881))

if not is_registered(DEFAULT_MODEL):  # pragma: no cover - a mistake in s2l8h.defaults
    raise _unknown(DEFAULT_MODEL)

__all__ = ["ARCHITECTURES", "DEFAULT_MODEL", "PUBLISHED_MODELS", "EnsembleRelease", "ModelSpec",
           "Release", "build_network", "bundled_weights", "default_release",
           "ensemble_level_variance_scale", "ensemble_member_views", "ensemble_members",
           "ensemble_noise_variance_scale", "ensemble_variance_scale", "find_ensemble",
           "find_spec", "full_config", "get_spec", "is_registered", "list_ensembles",
           "list_models", "list_releases", "register_ensemble", "register_model",
           "register_release"]
