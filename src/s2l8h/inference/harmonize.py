"""The main job: a Landsat scene in, a Sentinel-2-like 10 m COG with uncertainty out.

plan (:func:`plan_harmonize`: models, scene, grids, tiles) -> check the inputs
(:func:`check_plan_inputs`) -> run (:func:`run_plan`: read, tile, model(s), blend,
uncertainty, write, streamed strip by strip) -> finish (:func:`finish`: consistency, commit).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from odc.geo.geobox import GeoBox
from tqdm.auto import tqdm

from s2l8h.defaults import DEFAULT_MODEL
from s2l8h.errors import S2L8HWarning, collect_warnings, warn
from s2l8h.inference.checks import (
    LEVEL_SHIFT_TAG,
    Consistency,
    InputChecks,
    InputCheckWarning,
    central_window,
    check_inputs,
    consistency_messages,
    geolocation_messages,
    level_shift_messages,
    to_landsat,
)
from s2l8h.inference.consistency import ConsistentPredictor
from s2l8h.inference.coregister import SceneRegistration, register_scene
from s2l8h.inference.options import (
    HarmonizeOptions,
    check_device,
    check_grid_size,
    default_resolution,
)
from s2l8h.inference.panreg import PAN_MARGIN, PanShiftMap, measure_pan_map
from s2l8h.inference.tiling import BackgroundEmitter, TilePlan, plan_tiles, run_tiled
from s2l8h.inference.uncertainty import Predictor, SigmaCalibration, make_predictor
from s2l8h.io.cog import (
    MASK_FLAGGED,
    MASK_VALID,
    CogWriter,
    check_not_an_input,
    check_output_path,
    gdal_cache_bytes,
    mask_shares,
)
from s2l8h.io.errors import InputError, ModelError, OptionError
from s2l8h.io.grid import (
    WorkingGrids,
    context_grid,
    crs_name,
    extent_meets,
    grid_like,
    registered_model_grid,
    sentinel2_grid,
    valid_bounds,
)
from s2l8h.io.landsat import LandsatScene, describe_file, open_scene
from s2l8h.io.provenance import consistency_tags, provenance_tags
from s2l8h.io.reader import SceneReader, Strip
from s2l8h.models.convention import InputConvention
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.loading import load_model
from s2l8h.models.registry import EnsembleRelease, ensemble_members, find_ensemble

#: The default model (s2l8h.defaults.DEFAULT_MODEL; an ensemble name loads its members).
DEFAULT_MODELS: tuple[str, ...] = (DEFAULT_MODEL,)


@dataclass
class HarmonizeResult:
    """What :func:`harmonize` wrote and how. ``extra``: the input checks, registration, pan
    map, consistency report, busy seconds per stage, level shift, ``mask_shares`` (the
    output's shares of valid, flagged and nodata pixels, :func:`~s2l8h.io.cog.mask_shares`)
    and ``warnings``: every
    warning s2l8h gave during the run (:class:`~s2l8h.errors.S2L8HWarning`: input checks, TOA
    mode, stale temporary folders), once each, in order, whether or not the warning filters
    showed it."""

    path: Path
    grid: GeoBox
    models: list[str]
    uncertainty: str
    tiles: int
    seconds: float
    extra: dict[str, object] = field(default_factory=dict)

    def open(self):
        """The written COG as a lazily read ``xarray.DataArray`` (per-band scale/offset
        applied, nodata as NaN, the ``band`` coordinate holding the band names: ``B02`` ...
        ``mask``; the mask's 0, no data, is NaN too: ``.sel(band="mask").fillna(0)`` gives
        0 no data, 1 valid, 2 flagged)."""
        import warnings

        import rioxarray

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="(Scales|Offsets) differ across bands")
            image = rioxarray.open_rasterio(self.path, mask_and_scale=True)
        return image.assign_coords(band=list(image.attrs["long_name"]))


def resolve_models(models: Sequence[str | os.PathLike[str] | Harmonizer] | None,
                   dropout: float | None = None) -> list[Harmonizer]:
    """Load models from names, paths or hub ids (instances pass through); a registered
    ensemble name (``published``: the four published UNets) stands for its members, which
    remember it (``Harmonizer.ensemble``, for the ensemble's σ calibration)."""
    overrides = {"dropout": dropout} if dropout else None
    loaded = []
    for source in (list(models) if models else list(DEFAULT_MODELS)):
        if isinstance(source, Harmonizer):
            loaded.append(source)
            continue
        members = ensemble_members(source) if isinstance(source, str) else (source,)
        group = [load_model(member, overrides=overrides) for member in members]
        if len(members) > 1:
            for model in group:
                model.ensemble = str(source)
        loaded.extend(group)
    conventions = {(m.convention.scale, m.convention.use_pan, m.convention.pan_radiometry,
                    m.convention.multispectral_radiometry, m.convention.output_bands)
                   for m in loaded}
    if len(conventions) > 1:
        raise ModelError("the models given do not share one input convention; run them apart")
    return loaded


def _registered_ensemble(models: Sequence[Harmonizer]) -> EnsembleRelease | None:
    """The registered ensemble ``models`` are, all of its members and only them
    (:func:`resolve_models` marks them); ``None`` for any other set of models."""
    names = {model.ensemble for model in models}
    if len(names) != 1 or None in names:
        return None
    ensemble = find_ensemble(names.pop())  # type: ignore[arg-type]
    if ensemble is None or len(models) != len(ensemble.members):
        return None
    return ensemble


def ensemble_calibration(models: Sequence[Harmonizer]) -> SigmaCalibration:
    """The σ calibration of the registered ensemble ``models`` are
    (:func:`_registered_ensemble`); none (factor 1, no noise or level term) for any other set
    of models."""
    ensemble = _registered_ensemble(models)
    if ensemble is None:
        return SigmaCalibration()
    return SigmaCalibration(ensemble.variance_scale, ensemble.noise_variance_scale,
                            ensemble.level_variance_scale, ensemble.pan_variance_scale,
                            ensemble.band_variance_factors)


def ensemble_views(models: Sequence[Harmonizer]) -> tuple[str, ...]:
    """The views in which the members of the registered ensemble ``models`` see the tile
    (:mod:`s2l8h.models.views`); () (all ``identity``) for any other set of models."""
    ensemble = _registered_ensemble(models)
    return () if ensemble is None else ensemble.member_views


def build_predictor(models: Sequence[Harmonizer], uncertainty: str = "auto", *,
                    mc_passes: int = 20, consistency: bool = True,
                    filter_input_noise: bool = True) -> Predictor:
    """The predictor a run uses for loaded ``models``: :func:`make_predictor` with a
    registered ensemble's σ factor (:func:`ensemble_calibration`; its noise term is added per
    scene, :func:`noise_variance`) and its members' views (:func:`ensemble_views`), then the
    consistency step (:mod:`s2l8h.inference.consistency`, two back-projections, which adds the
    calibration's level and pan terms and applies its per-band factors) unless
    ``consistency`` is false (then only those terms, so σ keeps the form it was fitted in).
    With ``filter_input_noise`` (the default since 2026-12-07) the networks see the 30 m bands
    and the pan after the input noise filter (:mod:`s2l8h.inference.denoise`), the
    consistency step checks their output against the filtered bands (at first against the
    bands as they are, which put part of the filtered noise back), and the output's detail is
    shrunk against the input's noise (:func:`s2l8h.inference.consistency.shrink_detail`)."""
    calibration = ensemble_calibration(models)
    predictor = make_predictor(models, uncertainty, mc_passes=mc_passes,  # type: ignore[arg-type]
                               variance_scale=calibration.variance_scale,
                               views=ensemble_views(models))
    terms = {"level_variance_scale": calibration.level_variance_scale,
             "pan_variance_scale": calibration.pan_variance_scale,
             "band_variance_factors": calibration.band_variance_factors}
    if not consistency and not filter_input_noise and not any(terms.values()):
        return predictor
    return ConsistentPredictor(predictor, steps=2 if consistency else 0,
                               filter_input=filter_input_noise, **terms)


def noise_variance(predictor: Predictor, noise: Sequence[float] | None) -> np.ndarray | None:
    """(bands, 1, 1) what a registered ensemble adds to its variance for a scene whose
    estimated input noise per band is ``noise`` (:class:`SigmaCalibration`); ``None`` for a
    predictor without variance or a calibration without a noise term."""
    if not predictor.gives_variance:
        return None
    return ensemble_calibration(predictor.models).noise_variance(noise)


def output_grid(scene_files: Sequence[Path], *, like: str | os.PathLike[str] | None = None,
                crs: object | None = None,
                bounds: tuple[float, float, float, float] | None = None,
                resolution: float | None = None) -> GeoBox:
    """The output grid: ``like`` (exactly that raster's grid), ``bounds`` (+ ``crs``, default
    the scene's) snapped outwards to multiples of ``resolution``, or by default the
    Sentinel-2 10 m grid in the scene's CRS covering the scene's valid data. ``resolution``
    is in CRS units; ``None`` is 10 m (in a geographic CRS, 10 m at the equator in degrees)."""
    if like is not None and (bounds is not None or crs is not None or resolution is not None):
        raise OptionError("--like cannot be combined with --crs/--bounds/--resolution (it "
                          "gives the grid exactly)")
    scene_bounds, scene_crs = valid_bounds(scene_files[0])
    if like is not None:
        grid = grid_like(like)
        check_grid_meets_scene(grid, scene_bounds, scene_crs, scene_files[0].parent,
                               f"--like {like}")
        return grid
    if resolution is None:
        resolution = default_resolution(crs or scene_crs)
    if bounds is None:
        if crs is not None and str(crs) != str(scene_crs):
            from rasterio.warp import transform_bounds

            scene_bounds = transform_bounds(scene_crs, crs, *scene_bounds)
        return sentinel2_grid(scene_bounds, crs or scene_crs, resolution)
    grid = sentinel2_grid(bounds, crs or scene_crs, resolution)
    check_grid_meets_scene(grid, scene_bounds, scene_crs, scene_files[0].parent,
                           "--bounds " + ",".join(f"{value:.10g}" for value in bounds))
    return grid


def check_grid_meets_scene(grid: GeoBox, scene_bounds: tuple[float, float, float, float],
                           scene_crs: object, folder: Path, asked: str) -> None:
    """Raise :class:`OptionError` naming ``asked`` (the option as given) and the scene's
    ``folder`` when ``grid`` misses the bounding box of the scene's valid pixels
    (``scene_bounds`` in ``scene_crs``, :func:`~s2l8h.io.grid.valid_bounds`; a grid within
    the box but on its nodata corners passes). Compared in the scene's CRS
    (:func:`~s2l8h.io.grid.extent_meets`)."""
    from odc.geo.geom import box

    footprint = box(*scene_bounds, scene_crs)
    if extent_meets(grid, footprint):
        return

    def spans(bbox: tuple[float, ...], geographic: bool) -> str:
        return ", ".join(f"{value:.{5 if geographic else 0}f}" for value in bbox)

    hint = ""
    if not grid.crs.geographic and all(abs(value) <= 360 for value in grid.boundingbox):
        hint = "; these look like degrees: give --crs EPSG:4326 with them"
    raise OptionError(
        f"{asked}: outside the scene {folder} (its valid data spans "
        f"{spans(footprint.boundingbox, footprint.crs.geographic)} in "
        f"{crs_name(footprint.crs)}; the grid asked for spans "
        f"{spans(grid.boundingbox, grid.crs.geographic)} in {crs_name(grid.crs)}{hint})")


def pixel_size_m(grid: GeoBox) -> float:
    """The smaller side of ``grid``'s pixels in metres: CRS units converted by the CRS's
    own factor (feet, kilometres ...); in a geographic CRS, degrees at the grid's central
    latitude (111.32 km of longitude at the equator, times its cosine; 110.57 km of
    latitude)."""
    width, height = abs(grid.affine.a), abs(grid.affine.e)
    if grid.crs.geographic:
        latitude = math.radians(grid.extent.centroid.coords[0][1])
        return min(width * 111_320.0 * math.cos(latitude), height * 110_574.0)
    return min(width, height) * grid.crs.proj.axis_info[0].unit_conversion_factor


def warn_finer_than_the_model(grid: GeoBox) -> None:
    """Warn where the output's pixels are finer than the 10 m the networks predict by more
    than 5 % (:func:`pixel_size_m`; the default lon/lat grid, 10 m of longitude at the
    equator, is 9.93 m of latitude): they get the prediction resampled, no finer detail."""
    size = pixel_size_m(grid)
    if size < 9.5:
        warn(f"the output's {size:.3g} m pixels are finer than the 10 m the networks predict: "
             "they hold the 10 m prediction resampled (cubic), no finer detail", S2L8HWarning,
             stacklevel=4)


@dataclass(frozen=True)
class HarmonizePlan:
    """What a run will do, settled before any pixel is read: the scene, the loaded models and
    their predictor, the output grid, the 10 m grid the model fills (``model``: the output
    grid itself when it is a 10 m grid) and the working grids padded to the tiles."""

    scene: LandsatScene
    output: Path
    options: HarmonizeOptions
    models: list[Harmonizer]
    predictor: Predictor
    device: torch.device
    grid: GeoBox
    model: GeoBox
    grids: WorkingGrids
    tiles: TilePlan

    @property
    def convention(self) -> InputConvention:
        return self.models[0].convention

    @property
    def names(self) -> list[str]:
        return [model.name or str(model.provenance.get("weights", "?"))
                for model in self.models]

    @property
    def window(self) -> tuple[int, int, int, int]:
        """The central window (30 m pixels) of the working grid: the consistency figures',
        and the input checks' unless :attr:`context` is wider."""
        return central_window(self.grids.bands.height, self.grids.bands.width)

    @property
    def context(self) -> GeoBox | None:
        """For an output area under :data:`s2l8h.io.grid.CONTEXT_PIXELS` band pixels a side,
        the scene's band grid around it that the input checks and the registration measure
        on instead (:func:`s2l8h.io.grid.context_grid`); ``None`` otherwise, or where the
        working grids are not in the scene's CRS."""
        bands = self.scene.bands_grid()
        return context_grid(self.grid, bands) if self.grids.bands.crs == bands.crs else None

    def reader(self, pan_shift_m: tuple[float, float] = (0.0, 0.0),
               scene_shift_m: tuple[float, float] = (0.0, 0.0),
               grids: WorkingGrids | None = None, pan_margin: int = 0) -> SceneReader:
        """A reader of the scene on the working grids, or on ``grids`` (the pan moved by
        ``pan_shift_m`` against the bands, everything by ``scene_shift_m``; ``pan_margin``:
        as :class:`~s2l8h.io.reader.SceneReader` takes it)."""
        grids = grids or self.grids
        return SceneReader(self.scene, grids.bands, grids.pan, grids.fine, self.convention,
                           self.options.mask_flags, pan_shift_m, scene_shift_m, pan_margin)


#: Output names of other formats than the GeoTIFF harmonize writes (lower case).
NOT_GEOTIFF_SUFFIXES = (".png", ".jpg", ".jpeg", ".jp2", ".webp", ".nc", ".h5", ".hdf",
                        ".vrt", ".img", ".zarr", ".json", ".txt", ".csv")


def plan_harmonize(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                   output: str | os.PathLike[str], options: HarmonizeOptions) -> HarmonizePlan:
    """Check the output, load the models, open the scene and lay out grids and tiles."""
    device = check_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    # An existing output among the inputs given (or in a folder given) may be one of the
    # scene's files: whether it may be replaced is said once that is known; otherwise at once.
    given = [Path(item).resolve() for item in
             ([inputs] if isinstance(inputs, str | os.PathLike) else inputs)]
    given += [Path(item).resolve() for item in (options.like, options.reference)
              if item is not None]
    target = Path(output).resolve()
    among_inputs = Path(output).exists() and (target in given or target.parent in given)
    check_output_path(output, options.overwrite or among_inputs)
    models = resolve_models(options.models, options.dropout)
    predictor = build_predictor(models, options.uncertainty, mc_passes=options.mc_passes,
                                consistency=options.consistency,
                                filter_input_noise=options.filter_input_noise)
    convention = models[0].convention
    scene = open_scene(inputs, toa=options.toa, need_pan=convention.use_pan)
    like = [options.like] if options.like is not None else []
    reference = [options.reference] if options.reference is not None else []
    if reference and not os.path.isfile(options.reference):
        raise InputError(options.reference, "reference: no such file")
    check_not_an_input(output, [*scene.files(), *like, *reference])
    if Path(output).suffix.lower() in NOT_GEOTIFF_SUFFIXES:
        raise OptionError(f"{output}: harmonize writes a Cloud-Optimized GeoTIFF; name it "
                          f".tif, not {Path(output).suffix}")
    check_output_path(output, options.overwrite)
    grid = output_grid(scene.multispectral, like=options.like, crs=options.crs,
                       bounds=options.bounds, resolution=options.resolution)
    check_grid_size(grid)
    warn_finer_than_the_model(grid)
    fine, grids, tiles = _model_grids(grid, scene, convention.scale, options,
                                      predictor.alignment)
    return HarmonizePlan(scene, Path(output), options, models, predictor, device, grid, fine,
                         grids, tiles)


def _model_grids(grid: GeoBox, scene: LandsatScene, scale: int, options: HarmonizeOptions,
                 alignment: int, shift_m: tuple[float, float] = (0.0, 0.0)
                 ) -> tuple[GeoBox, WorkingGrids, TilePlan]:
    """The 10 m model grid for the output grid ``grid``, nested in the scene's band grid, its
    working grids and tiles. With ``shift_m`` (the scene's content that far from its place,
    :mod:`s2l8h.inference.coregister`) the model grid is nested in the band grid as the
    scene's georeference places ``grid``'s footprint, then moved back by the shift: the
    networks see the scene's pixels as they are, not resampled between them, and the output
    is warped onto ``grid``."""
    fine = registered_model_grid(grid, scene.bands_grid(), shift_m)
    check_grid_size(fine, "10 m grid the model runs on")
    tiles = plan_tiles(math.ceil(fine.height / scale), math.ceil(fine.width / scale),
                       options.tile, options.overlap, alignment, scale)
    grids = WorkingGrids.from_fine(fine, scale).crop(tiles.rows.padded, tiles.cols.padded)
    return fine, grids, tiles


def registered_plan(plan: HarmonizePlan, shift_m: tuple[float, float]) -> HarmonizePlan:
    """``plan`` with its model grid, working grids and tiles laid out for a scene whose
    content sits ``shift_m`` (dx east, dy north, metres) from its place (:func:`_model_grids`);
    ``plan`` itself for no shift."""
    if tuple(shift_m) == (0.0, 0.0):
        return plan
    fine, grids, tiles = _model_grids(plan.grid, plan.scene, plan.convention.scale,
                                      plan.options, plan.predictor.alignment, shift_m)
    return replace(plan, model=fine, grids=grids, tiles=tiles)


@dataclass(frozen=True)
class MeasuringWindow:
    """The inputs the input checks and the registration measure on, their 30 m grid, and
    where the quality band flags a pixel (``mask_flags``: clouds and their shadows by
    default), which they leave out: clouds stand high above the ground, and between the pan
    and the bands, seen from slightly different angles along the track, they are displaced
    (on the Florida scene the 6 % flagged pixels made the pan's shift (-2.4, -6.6) m; without
    them it is (-0.3, -1.2) m)."""

    strip: Strip
    grid: GeoBox
    flagged: np.ndarray

    @property
    def usable(self) -> np.ndarray:
        """Pixels with data in all six bands that the quality band does not flag."""
        return self.strip.valid & ~self.flagged

    def tags(self) -> dict[str, str]:
        """``S2L8H_CHECK_WINDOW``: where they measured (CRS, bounds, 30 m pixels)."""
        crs = self.grid.crs
        return {"S2L8H_CHECK_WINDOW": json.dumps({
            "crs": f"EPSG:{crs.epsg}" if crs.epsg else crs.to_wkt(),
            "bounds": [round(v, 3) for v in self.grid.boundingbox],
            "shape": [self.grid.height, self.grid.width]})}


def read_central_window(plan: HarmonizePlan) -> MeasuringWindow:
    """What the input checks and the registration measure on, as georeferenced: the central
    window of the working grid (:attr:`HarmonizePlan.window`), or for a small output area
    the scene around it (:attr:`HarmonizePlan.context`)."""
    context = plan.context
    if context is None:
        row0, rows, col0, cols = plan.window
        with plan.reader() as reader:
            return MeasuringWindow(reader.read_strip(*plan.window),
                                   plan.grids.bands[row0:row0 + rows, col0:col0 + cols],
                                   reader.read_flagged(*plan.window))
    grids = WorkingGrids.from_bands(context, plan.convention.scale)
    with plan.reader(grids=grids) as reader:
        return MeasuringWindow(reader.read_strip(0, context.height), context,
                               reader.read_flagged(0, context.height))


def measure_plan_pan(plan: HarmonizePlan, checks: InputChecks) -> PanShiftMap | None:
    """With ``register_pan`` and ``pan_blocks``: the pan's corrections block by block
    (:func:`s2l8h.inference.panreg.measure_pan_map`, the scene's correction where a block's
    own is not believed); warn where they differ across the scene. ``None`` otherwise,
    without a pan, or where the working grids are not the scene's own pixels (bands already
    on another grid), on which the blocks are laid."""
    options = plan.options
    if not (options.register_pan and options.pan_blocks and plan.convention.use_pan):
        return None
    bands = plan.scene.bands_grid()
    if plan.grids.bands.crs != bands.crs or plan.grids.bands.resolution != bands.resolution:
        return None
    pan_map = measure_pan_map(plan.scene, plan.grid, plan.convention, options.mask_flags,
                              checks.corrected_m)
    for message in pan_map.messages() if pan_map is not None else []:
        warn_input_check(plan, message)
    return pan_map


def check_plan_inputs(plan: HarmonizePlan, window: MeasuringWindow | None = None
                      ) -> InputChecks:
    """Measure the pan's registration and the input noise on :func:`read_central_window`'s
    window (``window``, read if not given; its flagged pixels left out); warn about large
    findings, and about quality flags asked for from a scene without a quality band."""
    if plan.options.mask_flags and plan.scene.qa is None:
        warn_input_check(plan, f"no quality band (QA_PIXEL or BQA) among the inputs: nothing "
                               f"is flagged, so {', '.join(plan.options.mask_flags)} pass "
                               "through as data; give the scene's quality band, or --mask '' "
                               "to go without")
    window = window if window is not None else read_central_window(plan)
    strip = window.strip
    checks = check_inputs(lambda: (strip.multispectral, strip.pan, window.usable),
                          plan.options.register_pan)
    for message in checks.messages():
        warn_input_check(plan, message)
    return checks


def register_plan(plan: HarmonizePlan, window: MeasuringWindow | None = None
                  ) -> SceneRegistration | None:
    """With ``options.reference``: measure the whole scene's shift against it on
    :func:`read_central_window`'s window (``window``, read if not given) and decide whether
    to correct it (:mod:`s2l8h.inference.coregister`); warn about a correction or a
    refusal. ``None`` without a reference."""
    if plan.options.reference is None:
        return None
    scene_crs = plan.scene.bands_grid().crs
    if scene_crs is None or scene_crs.geographic or plan.grids.bands.crs != scene_crs or \
            scene_crs.units[0] not in ("metre", "meter", "m"):
        # The shift, measured on the working grid, moves each file's georeference: both must
        # be one projected CRS in metres (not so for bands already warped onto another grid).
        registration = SceneRegistration(
            str(plan.options.reference), None, (0.0, 0.0),
            described=describe_file(plan.options.reference),
            refused="the scene's bands are not on a 30 m grid in a projected CRS in metres, "
                    "which the registration measures and moves them in")
        warn_input_check(plan, registration.messages()[0])
        return registration
    window = window if window is not None else read_central_window(plan)
    registration = register_scene(lambda: (window.strip.multispectral, window.usable),
                                  window.grid, plan.options.reference)
    for message in registration.messages():
        warn_input_check(plan, message)
    return registration


def check_plan_geolocation(plan: HarmonizePlan,
                           registration: SceneRegistration | None) -> None:
    """Warn where the scene's MTL says its geolocation may be further off Sentinel-2's than σ
    allows for (:func:`~s2l8h.inference.checks.geolocation_messages`); not when the scene's
    shift against a reference was measured (corrected, or within the tolerance), which
    tells more than the MTL does. A refused registration leaves the warning."""
    if registration is not None and registration.shift_m is not None \
            and not registration.refused:
        return
    for message in geolocation_messages(plan.scene.geolocation()):
        warn_input_check(plan, message)


def sigma_tags(predictor: Predictor, noise: Sequence[float] | None) -> dict[str, str]:
    """``S2L8H_SIGMA_CALIBRATION`` for a registered ensemble's σ: its factor on the members'
    variance, its factor on the input's noise variance and the σ that term adds per band
    (reflectance), the factors on the square of the level departure per tile and on the
    square of the pan's disagreement with the bands per pixel, which the consistency step adds,
    and the per-band factors on the whole (empty: all 1); nothing for other predictors."""
    calibration = ensemble_calibration(predictor.models)
    if not predictor.gives_variance or calibration == SigmaCalibration():
        return {}
    added = calibration.noise_variance(noise)
    return {"S2L8H_SIGMA_CALIBRATION": json.dumps({
        "variance_scale": calibration.variance_scale,
        "noise_variance_scale": calibration.noise_variance_scale,
        "level_variance_scale": predictor.level_variance_scale
        if isinstance(predictor, ConsistentPredictor) else 0.0,
        "pan_variance_scale": predictor.pan_variance_scale
        if isinstance(predictor, ConsistentPredictor) else 0.0,
        "band_variance_factors": list(predictor.band_variance_factors)
        if isinstance(predictor, ConsistentPredictor) else [],
        "noise_sigma_added": [] if added is None else
        [round(float(value), 6) for value in np.sqrt(added[:, 0, 0])]})}


def geolocation_tags(scene: LandsatScene) -> dict[str, str]:
    """``S2L8H_GEOLOCATION``: what the scene's MTL says of its geolocation (Level-1
    processing level, collection, tier, ``GEOMETRIC_RMSE_MODEL`` in metres;
    :class:`~s2l8h.io.mtl.Geolocation`); nothing without an MTL."""
    geolocation = scene.geolocation()
    return {} if geolocation is None else \
        {"S2L8H_GEOLOCATION": json.dumps(geolocation.to_dict())}


def open_writer(plan: HarmonizePlan, checks: InputChecks,
                registration: SceneRegistration | None = None,
                window: MeasuringWindow | None = None,
                pan_map: PanShiftMap | None = None) -> CogWriter:
    """The output's writer (a temporary file until committed), with the provenance tags
    (``window``: where the checks measured; ``pan_map``: the pan's corrections)."""
    options = plan.options
    found = {**checks.tags(), **(window.tags() if window is not None else {}),
             **(pan_map.tags() if pan_map is not None else {}),
             **sigma_tags(plan.predictor, checks.noise),
             **geolocation_tags(plan.scene),
             **(registration.tags() if registration is not None else {})}
    tags = provenance_tags(plan.scene, models=plan.names,
                           model_provenance=[model.provenance for model in plan.models],
                           uncertainty=plan.predictor.method, options=options.record(),
                           checks=found, extra=options.tags)
    return CogWriter(plan.output, plan.grid, plan.model, plan.convention.output_bands,
                     plan.predictor.gives_variance, options.dtype, tags, options.overwrite,
                     keep_flagged=options.keep_flagged)


def run_plan(plan: HarmonizePlan, reader: SceneReader, writer: CogWriter,
             consistency: Consistency, stages: dict[str, float],
             added_variance: np.ndarray | None = None, pan_map: PanShiftMap | None = None,
             scene_shift: tuple[float, float] = (0.0, 0.0)) -> bool:
    """Stream the tiles: read a strip (a thread, one ahead), run the model, write the
    finished rows with their mask (another thread); ``added_variance`` (bands, 1, 1) is
    added to the predictor's variance (:func:`noise_variance`). With ``pan_map`` each
    strip's pan, read without correction (``reader`` with a pan margin), is moved by its
    corrections (:mod:`s2l8h.inference.panreg`; ``scene_shift``: the reader's). Busy seconds
    per stage add up in ``stages``. True if any pixel is kept (valid, or flagged with
    ``keep_flagged``)."""
    options, scale = plan.options, plan.convention.scale
    kept = False

    def read_strip(row0: int, rows: int, col0: int, cols: int) -> Strip:
        began = time.perf_counter()
        # With a map the pan is read once, with its margin, by the map.
        strip = reader.read_strip(row0, rows, col0, cols, pan_map is None)
        if pan_map is not None:
            strip = pan_map.apply(strip, reader, plan.grids.pan, scene_shift)
        stages["read"] += time.perf_counter() - began
        return strip

    def write(strip: Strip, out_row0: int, out_col0: int, mean: np.ndarray,
              variance: np.ndarray | None) -> None:  # in the writer thread
        nonlocal kept
        began = time.perf_counter()
        mask = reader.block_mask(strip, out_row0, out_col0, mean, scale)
        keep = (mask == MASK_VALID) | (options.keep_flagged & (mask == MASK_FLAGGED))
        kept |= bool(keep.any())
        add_consistency(consistency, strip, out_row0, out_col0, mean, mask, scale)
        if variance is not None and added_variance is not None:
            variance = variance + added_variance.astype(variance.dtype)
        std = None if variance is None else np.sqrt(np.maximum(variance, 0))
        writer.write_rows(out_row0, mean, std, mask, keep, col0=out_col0)
        stages["write"] += time.perf_counter() - began

    with tqdm(total=plan.tiles.count, desc="tiles", unit="tile",
              disable=not options.progress) as bar, BackgroundEmitter(write) as background:

        def emit(strip: Strip, out_row0: int, out_col0: int, mean: np.ndarray,
                 variance: np.ndarray | None) -> None:
            if out_row0 < plan.model.height and out_col0 < plan.model.width:
                background.submit(strip, out_row0, out_col0, mean, variance)

        run_tiled(plan.predictor, plan.tiles, read_strip, emit,
                  batch_size=options.batch_size, device=plan.device, progress=bar.update,
                  max_block_width=options.block_width, precision=options.precision,
                  timings=stages)
    return kept


def warn_input_check(plan: HarmonizePlan, message: str) -> None:
    """Warn about an input check's finding (:class:`InputCheckWarning`, the scene named;
    :func:`harmonize` keeps it for its result)."""
    warn(f"{plan.scene.name}: {message}", InputCheckWarning, stacklevel=4)


def level_shift_summary(predictor: Predictor) -> dict[str, object] | None:
    """How far the networks would move each band's level over the tiles ``predictor`` ran
    (:meth:`~s2l8h.inference.consistency.LevelShifts.summary`); ``None`` where nothing
    measured it (``--no-consistency`` with ``--no-denoise``, unless a calibrated ensemble's σ
    has a level or pan term) or no tile had enough data."""
    return predictor.level_shifts.summary() if isinstance(predictor, ConsistentPredictor) \
        else None


def finish(plan: HarmonizePlan, writer: CogWriter, consistency: Consistency, kept: bool,
           stages: dict[str, float]) -> tuple[Path, dict, dict | None]:
    """Refuse an output without a kept pixel; tag and warn about the consistency and the
    networks' level shift; commit. Returns the path, the consistency report and the level
    shift's summary (:func:`level_shift_summary`)."""
    if not kept:
        raise InputError(plan.scene.multispectral[0], "no valid pixel in the output grid "
                         "(all nodata, or all flagged by the quality band)")
    report = consistency.report()
    writer.add_tags(consistency_tags(report))
    levels = level_shift_summary(plan.predictor)
    if levels is not None:
        writer.add_tags({LEVEL_SHIFT_TAG: json.dumps(levels, allow_nan=False)})
    for message in consistency_messages(report) + level_shift_messages(levels):
        warn_input_check(plan, message)
    began = time.perf_counter()
    path = writer.commit()
    stages["cog"] = time.perf_counter() - began
    return path, report, levels


def harmonize(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: HarmonizeOptions | None = None,
    **changes: Any,
) -> HarmonizeResult:
    """Harmonize one Landsat-8/9 scene into a Sentinel-2-like COG.

    ``inputs``: a scene folder or its files. ``options``: a :class:`HarmonizeOptions`, and/or
    its fields as keyword arguments (``models=``, ``tile=``, ``uncertainty=`` ..., which
    override ``options``'s); see there. Reading, the model and writing run overlapped, one
    strip each. Nothing is written unless the whole run succeeds.

    Before the run, the pan's registration against the bands and the input noise are measured
    on a central window, or around a small output area (:mod:`s2l8h.inference.checks`,
    :attr:`HarmonizePlan.context`); with ``register_pan`` a pan shift above 2 m is corrected,
    with ``pan_blocks`` block by block (:mod:`s2l8h.inference.panreg`). With ``reference``
    the whole scene is registered to that Sentinel-2 image first
    (:mod:`s2l8h.inference.coregister`). The output's consistency
    with its input (bias, RMSE, spectral angle, residual shift at 30 m in OLI radiometry) is
    measured as it is written. All of it
    goes into the tags (``s2l8h qa`` prints them); large findings are warned about.
    """
    started = time.perf_counter()
    with collect_warnings() as given:
        plan = plan_harmonize(inputs, output, HarmonizeOptions.build(options, **changes))
        window = read_central_window(plan)
        checks = check_plan_inputs(plan, window)
        registration = register_plan(plan, window)
        check_plan_geolocation(plan, registration)
        scene_shift = registration.corrected_m if registration is not None else (0.0, 0.0)
        plan = registered_plan(plan, scene_shift)
        consistency = Consistency(window=plan.window)
        plan.predictor.to(plan.device)
        pan_map = measure_plan_pan(plan, checks)
        writer = open_writer(plan, checks, registration, window, pan_map)
        # Busy seconds per stage (read and write run in their own threads, so they overlap).
        stages = dict.fromkeys(("read", "model", "write", "cog", "wait_read", "emit"), 0.0)
        try:
            # With a map the pan is moved block by block as each strip is read, so the reader
            # leaves it as it is and reads a margin around it.
            with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes()), \
                    plan.reader((0.0, 0.0) if pan_map else checks.corrected_m, scene_shift,
                                pan_margin=PAN_MARGIN if pan_map else 0) as reader:
                kept = run_plan(plan, reader, writer, consistency, stages,
                                noise_variance(plan.predictor, checks.noise), pan_map,
                                scene_shift)
                path, report, levels = finish(plan, writer, consistency, kept, stages)
        except BaseException:
            writer.abort()
            raise
        return HarmonizeResult(path=path, grid=plan.grid, models=plan.names,
                               uncertainty=plan.predictor.method, tiles=plan.tiles.count,
                               seconds=time.perf_counter() - started,
                               extra={"input_checks": checks, "registration": registration,
                                      "pan_map": pan_map,
                                      "consistency": report, "stage_seconds": stages,
                                      "level_shift": levels,
                                      "mask_shares": mask_shares(path),
                                      "warnings": list(dict.fromkeys(given))})


def add_consistency(consistency: Consistency, strip: Strip, out_row0: int, out_col0: int,
                    mean: np.ndarray, mask: np.ndarray, scale: int) -> None:
    """Add an output block (at 10 m ``(out_row0, out_col0)``, ``out_col0`` a multiple of
    ``scale``) to the consistency sums: its whole 30 m pixels against the strip's input."""
    skip = (-out_row0) % scale
    rows = (mean.shape[1] - skip) // scale
    cols = mean.shape[2] // scale
    if rows <= 0 or cols <= 0:
        return
    block = mean[:, skip:skip + rows * scale, :cols * scale]
    valid = mask[skip:skip + rows * scale, :cols * scale] == MASK_VALID
    degraded, degraded_valid = to_landsat(block, valid, scale)
    row30, col30 = (out_row0 + skip) // scale, out_col0 // scale
    landsat, landsat_valid = strip.window(row30, col30, rows, cols)
    if landsat.shape[1:] != degraded.shape[1:]:
        return
    consistency.add(row30, col30, degraded, landsat, degraded_valid & landsat_valid)
