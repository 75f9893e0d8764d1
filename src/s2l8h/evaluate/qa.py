"""The trust report of a product: what ``harmonize`` measured on its inputs and the output's
consistency with them (:mod:`s2l8h.inference.checks`), read from its tags, or computed for any
Sentinel-2-like raster against the Landsat scene it came from."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling

from s2l8h.bands import SENTINEL2_BANDS
from s2l8h.evaluate.benchmark import read_prediction
from s2l8h.inference.checks import (
    LEVEL_SHIFT_TAG,
    Consistency,
    InputChecks,
    central_window,
    consistency_messages,
    geolocation_messages,
    geolocation_reasons,
    level_shift_messages,
    shift_magnitude,
    to_landsat,
)
from s2l8h.io.cog import mask_percentages
from s2l8h.io.errors import InputError
from s2l8h.io.grid import (
    WorkingGrids,
    extent_meets,
    model_grid,
    registered_model_grid,
    warp,
)
from s2l8h.io.landsat import TOA_MODE_MESSAGE, open_scene
from s2l8h.io.mtl import Geolocation
from s2l8h.io.reader import ReadInputs, SceneReader

REPORT_TAGS = ("S2L8H_CHECK_WINDOW", "S2L8H_PAN_SHIFT_M", "S2L8H_PAN_SHIFT_CORRECTED_M",
               "S2L8H_PAN_SHIFT_LOCAL", "S2L8H_SCENE_SHIFT", "S2L8H_INPUT_NOISE",
               "S2L8H_SIGMA_CALIBRATION", "S2L8H_CONSISTENCY", "S2L8H_GEOLOCATION",
               LEVEL_SHIFT_TAG)


def read_report(path: str | os.PathLike[str]) -> dict[str, object]:
    """The checks ``harmonize`` wrote into ``path``'s tags (keys without the prefix),
    ``level``, the input's processing level and radiometry (``S2L8H_LEVEL``), and
    ``pixels_percent``, the product's valid, flagged and nodata pixels
    (:func:`pixel_percentages`)."""
    try:
        with rasterio.open(path) as dataset:
            tags = dataset.tags()
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"not a readable raster ({error})") from None
    found = {}
    for key in REPORT_TAGS:
        if key in tags:
            try:
                found[key.removeprefix("S2L8H_").lower()] = json.loads(tags[key])
            except ValueError:
                raise InputError(path, f"tag {key} is not valid JSON") from None
    if not found:
        raise InputError(path, "has no s2l8h check tags (not written by s2l8h harmonize); "
                         "give the Landsat scene to compute the consistency")
    if "S2L8H_LEVEL" in tags:
        found = {"level": tags["S2L8H_LEVEL"], **found}
    shares = pixel_percentages(path)
    if shares is not None:
        found["pixels_percent"] = shares
    return found


def pixel_percentages(path: str | os.PathLike[str]) -> dict[str, float] | None:
    """The percentages of ``path``'s pixels that are valid, flagged by the quality band and
    nodata (:func:`s2l8h.io.cog.mask_percentages`); ``None`` for a raster without a
    ``mask`` band."""
    try:
        return mask_percentages(path)
    except InputError:
        return None


def recorded_for_scene(path: str | os.PathLike[str], scene_name: str
                       ) -> tuple[dict[str, object], str | None]:
    """What ``harmonize`` recorded in ``path``'s tags (:func:`read_report`, without its
    consistency and measuring window, which ``qa --scene`` measures anew) when the product
    was made from the scene named ``scene_name``, else ``{}``; and the scene it was made
    from (its ``S2L8H_SCENE`` tag; ``None`` for a product without s2l8h's tags)."""
    try:
        with rasterio.open(path) as dataset:
            made_from = dataset.tags().get("S2L8H_SCENE")
    except rasterio.errors.RasterioIOError as error:
        raise InputError(path, f"not a readable raster ({error})") from None
    if made_from is None or made_from != scene_name:
        return {}, made_from
    recorded = read_report(path)
    return {key: value for key, value in recorded.items()
            if key not in ("consistency", "check_window")}, made_from


def report_messages(report: dict[str, object]) -> list[str]:
    """The warnings a trust report (:func:`read_report`, :func:`consistency_with_scene`)
    calls for, as ``harmonize`` gave them: TOA mode, pan shift and noisy input (where the
    report has them), the MTL's geolocation (unless the scene's shift against a reference
    was measured), level shift, consistency."""
    found: list[str] = [TOA_MODE_MESSAGE] if "TOA" in str(report.get("level", "")) else []
    shift, noise = report.get("pan_shift_m"), report.get("input_noise")
    if shift is not None or noise:
        corrected = report.get("pan_shift_corrected_m") or (0.0, 0.0)
        found += InputChecks(None if shift is None else tuple(shift), tuple(corrected),
                             list(noise or [])).messages()
    geolocation = report.get("geolocation")
    if isinstance(geolocation, dict) and geolocation_flags(report) != "registered":
        found += geolocation_messages(Geolocation.from_dict(geolocation))
    levels = report.get("level_shift")
    found += level_shift_messages(levels if isinstance(levels, dict) else None)
    consistency = report.get("consistency")
    if isinstance(consistency, dict):
        found += consistency_messages(consistency)
    return found


def summary_row(report: dict[str, object]) -> dict[str, object]:
    """One product's trust report in a few figures (``None`` where the report lacks one): the
    pan's shift against the bands as measured (m), the least-textured band's input noise σ,
    the largest level shift (its size and band), the consistency's largest |bias|, spectral
    angle (degrees) and residual shift (m), what of the MTL's geolocation is warned about
    (:func:`geolocation_flags`; ``None`` without the tag), the percentages of valid and
    flagged pixels, and the number of warnings (:func:`report_messages`)."""
    shift = report.get("pan_shift_m")
    pixels = report.get("pixels_percent")
    pixels = pixels if isinstance(pixels, dict) else {}
    noise = report.get("input_noise")
    levels = report.get("level_shift")
    medians = levels.get("median") if isinstance(levels, dict) else None
    consistency = report.get("consistency")
    consistency = consistency if isinstance(consistency, dict) else {}
    bias, residual = consistency.get("bias"), consistency.get("shift_m")
    largest = None
    if medians:
        band, value = max(((b, v) for b, v in zip(SENTINEL2_BANDS, medians, strict=False)
                           if v is not None), key=lambda item: abs(item[1]), default=(None, None))
        largest = None if band is None else {"band": band, "value": value}
    return {"pan_shift_m": None if shift is None else round(shift_magnitude(tuple(shift)), 2),
            "input_noise": min(noise) if noise else None,
            "level_shift": largest,
            "bias": max(bias, key=abs) if bias else None,
            "sam_degrees": consistency.get("sam_degrees"),
            "shift_m": None if not residual else round(shift_magnitude(tuple(residual)), 2),
            "geolocation": geolocation_flags(report),
            "valid_percent": pixels.get("valid"), "flagged_percent": pixels.get("flagged"),
            "warnings": len(report_messages(report))}


def geolocation_flags(report: dict[str, object]) -> str | None:
    """The MTL's geolocation in a few characters, as the season's table shows it: the flags
    of :func:`~s2l8h.inference.checks.geolocation_reasons` (the level without ground
    control, ``RMSE <m> m``, ``C1``/``pre-C``, ``T2``), ``ok`` for none,
    ``registered`` where a reference measured the shift; ``None`` without the tag or where
    the MTL said nothing of it."""
    registration = report.get("scene_shift")
    if isinstance(registration, dict) and registration.get("shift_m") is not None \
            and not registration.get("refused"):
        return "registered"
    values = report.get("geolocation")
    if not isinstance(values, dict) or not any(value is not None for value in values.values()):
        return None
    reasons = geolocation_reasons(Geolocation.from_dict(values))
    return ", ".join(flag for flag, _ in reasons) or "ok"


def consistency_with_scene(output: str | os.PathLike[str],
                           scene_inputs: str | os.PathLike[str] | Sequence[str],
                           *, toa: bool = False) -> dict[str, object]:
    """The consistency of a Sentinel-2-like raster (B02 ... B12 by description, or its first
    six bands; 10 m grid) with the Landsat scene's 30 m bands (module docstring of
    :mod:`s2l8h.inference.checks`), with the scene's name (``scene``). An output of
    ``harmonize --reference`` is compared with the scene moved by the shift it corrected
    (its ``S2L8H_SCENE_SHIFT`` tag)."""
    with rasterio.open(output) as dataset:
        grid = GeoBox.from_rio(dataset)
        registration = json.loads(dataset.tags().get("S2L8H_SCENE_SHIFT", "null"))
        made_from = dataset.tags().get("S2L8H_SCENE")
    if model_grid(grid) != grid:
        raise InputError(output, "consistency needs an output on a 10 m grid")
    shift = tuple(registration["corrected_m"]) if registration else (0.0, 0.0)
    scene = open_scene(scene_inputs, toa=toa, need_pan=False)
    if not extent_meets(grid, scene.bands_grid().extent):
        raise InputError(output, f"does not overlap the scene {scene.name} given with "
                         "--scene" + (f" (it was made from {made_from})"
                                      if made_from and made_from != scene.name else ""))
    reflectance, _, valid = read_prediction(output)
    # As harmonize measures it: on the 10 m grid nested in the scene's own band grid, so the
    # 30 m bands are compared unresampled; an output on another phase is warped onto it.
    fine = registered_model_grid(grid, scene.bands_grid(), shift)
    if fine != grid:
        reflectance = warp(np.where(valid, reflectance, np.nan), grid, fine, Resampling.cubic)
        valid = np.isfinite(reflectance).all(axis=0)
    rows, cols = fine.height // 3, fine.width // 3
    grids = WorkingGrids.from_fine(fine).crop(rows, cols)
    convention = ReadInputs(use_pan=False)
    with SceneReader(scene, grids.bands, grids.pan, grids.fine,
                     convention, (), scene_shift_m=shift) as reader:
        strip = reader.read_strip(0, rows)
    reflectance = reflectance[:, :3 * rows, :3 * cols]
    valid = valid[:3 * rows, :3 * cols]
    degraded, degraded_valid = to_landsat(np.nan_to_num(reflectance), valid)
    consistency = Consistency(window=central_window(rows, cols))
    consistency.add(0, 0, degraded, strip.multispectral, degraded_valid & strip.valid)
    return {"scene": scene.name, "consistency": consistency.report(),
            **({"scene_shift_corrected_m": list(shift)} if registration else {})}
