"""``s2l8h demo``: the whole harmonize path on the bundled Landsat-8 crop."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import rasterio
from rasterio.errors import RasterioIOError

from s2l8h.inference.harmonize import HarmonizeResult, harmonize, resolve_models
from s2l8h.io.cog import check_output_path
from s2l8h.io.landsat import OUTPUT_TAG, open_scene
from s2l8h.io.quicklook import is_own_quicklook, write_quicklook
from s2l8h.models.registry import DEFAULT_MODEL, ensemble_members, get_spec

EXAMPLE = "florida_crop"
#: The tag that marks the demo's own output (which a rerun replaces).
DEMO_TAG = "S2L8H_DEMO"


def example_scene() -> Path:
    """Folder of the bundled example (Landsat-8 L1T crop, see its README)."""
    return Path(str(resources.files("s2l8h") / "examples" / EXAMPLE))


def demo_label(name: str = DEFAULT_MODEL) -> str:
    """How the demo names its weights: model, release (or ensemble) and what they were
    trained on."""
    members = ensemble_members(name)
    if len(members) > 1:  # the members' descriptions are in `s2l8h models list`
        return (f"default weights '{name}' (ensemble of {', '.join(members)}); "
                "a Level-1 scene in TOA mode")
    spec = get_spec(name)
    return (f"default weights '{spec.name}' ({spec.release}), "
            f"{spec.release_description}; a Level-1 scene in TOA mode")


def demo_models() -> tuple[list, str]:
    """The demo's models (the default weights, :data:`s2l8h.defaults.DEFAULT_MODEL`; an
    ensemble's members) and their label."""
    return resolve_models([DEFAULT_MODEL]), demo_label()


def _is_own_output(path: Path) -> bool:
    """A COG the demo wrote (tags ``S2L8H_VERSION`` and :data:`DEMO_TAG`; not any s2l8h
    output: a user's own ``harmonize`` run of the example is theirs)."""
    try:
        with rasterio.open(path) as dataset:
            tags = dataset.tags()
    except RasterioIOError:
        return False
    return OUTPUT_TAG in tags and tags.get(DEMO_TAG) == "1"


def run_demo(output_dir: str | os.PathLike[str] = "s2l8h-demo", *, overwrite: bool = False,
             progress: bool = True) -> tuple[HarmonizeResult, Path]:
    """Harmonize the bundled crop (TOA mode) into ``output_dir``/harmonized.tif and write
    ``quicklook.png``. A rerun replaces the demo's own earlier outputs (recognised by their
    tags: :data:`DEMO_TAG` on the COG); any other file of those names, an s2l8h output of
    another run included, is kept unless ``overwrite``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cog, png = output_dir / "harmonized.tif", output_dir / "quicklook.png"
    ours = (not cog.exists() or (cog.is_file() and _is_own_output(cog))) and \
        (not png.exists() or (png.is_file() and is_own_quicklook(png)))
    overwrite = overwrite or ours
    check_output_path(png, overwrite)
    check_output_path(cog, overwrite)
    models, label = demo_models()
    import warnings

    from s2l8h.io.landsat import ToaModeWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ToaModeWarning)  # the demo says so itself
        result = harmonize(example_scene(), cog, models=models, toa=True, overwrite=overwrite,
                           progress=progress, tags={DEMO_TAG: "1"})
        scene = open_scene(example_scene(), toa=True)
    write_quicklook(scene, cog, png, title=f"s2l8h demo: {label}")
    result.extra["label"] = label
    return result, png
