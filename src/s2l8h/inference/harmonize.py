"""The main job: a Landsat scene in, a Sentinel-2-like 10 m COG with uncertainty out.

read -> align to the output grid -> tile -> model(s) -> blend -> uncertainty -> write.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import torch
from odc.geo.geobox import GeoBox
from tqdm.auto import tqdm

from s2l8h import __version__
from s2l8h.inference.checks import (
    Consistency,
    InputCheckWarning,
    central_window,
    check_inputs,
    consistency_messages,
    to_landsat,
)
from s2l8h.inference.options import check_device, check_grid_size, check_options
from s2l8h.inference.tiling import (
    MAX_BLOCK_WIDTH,
    BackgroundEmitter,
    Precision,
    plan_tiles,
    run_tiled,
)
from s2l8h.inference.uncertainty import UncertaintyMethod, make_predictor
from s2l8h.io.cog import (
    MASK_FLAGGED,
    MASK_NODATA,
    MASK_VALID,
    CogWriter,
    OutputDtype,
    check_not_an_input,
    check_output_path,
    gdal_cache_bytes,
)
from s2l8h.io.errors import InputError, ModelError, OptionError
from s2l8h.io.grid import (
    WorkingGrids,
    grid_like,
    model_grid,
    sentinel2_grid,
    valid_bounds,
)
from s2l8h.io.landsat import describe_inputs, open_scene
from s2l8h.io.quality import DEFAULT_MASK_FLAGS
from s2l8h.io.reader import SceneReader, Strip
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.loading import load_model

PUBLISHED_ENSEMBLE: tuple[str, ...] = ("unet5-upsample", "unet5-shuffle", "unet6-upsample",
                                       "unet6-shuffle")
#: The default model: the bundled lite2 weights (variance head), see src/s2l8h/weights.
DEFAULT_MODELS: tuple[str, ...] = ("lite2",)


@dataclass
class HarmonizeResult:
    """What :func:`harmonize` wrote and how."""

    path: Path
    grid: GeoBox
    models: list[str]
    uncertainty: str
    tiles: int
    seconds: float
    extra: dict[str, object] = field(default_factory=dict)

    def open(self):
        """The written COG as an ``xarray.DataArray`` (per-band scale/offset applied, nodata as
        NaN, the ``band`` coordinate holding the band names: ``B02`` ... ``mask``)."""
        import warnings

        import rioxarray

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="(Scales|Offsets) differ across bands")
            image = rioxarray.open_rasterio(self.path, mask_and_scale=True)
        return image.assign_coords(band=list(image.attrs["long_name"]))


def resolve_models(models: Sequence[str | os.PathLike[str] | Harmonizer] | None,
                   dropout: float | None = None) -> list[Harmonizer]:
    """Load models from names, paths or hub ids (instances pass through); ``published``
    stands for the ensemble of the four published UNets."""
    sources: list = []
    for source in (list(models) if models else list(DEFAULT_MODELS)):
        sources.extend(PUBLISHED_ENSEMBLE if source == "published" else [source])
    overrides = {"dropout": dropout} if dropout else None
    loaded = []
    for source in sources:
        if isinstance(source, Harmonizer):
            loaded.append(source)
        else:
            loaded.append(load_model(source, overrides=overrides))
    conventions = {(m.convention.scale, m.convention.use_pan, m.convention.pan_radiometry,
                    m.convention.multispectral_radiometry, m.convention.output_bands)
                   for m in loaded}
    if len(conventions) > 1:
        raise ModelError("the models given do not share one input convention; run them apart")
    return loaded


def output_grid(scene_files: Sequence[Path], *, like: str | os.PathLike[str] | None = None,
                crs: object | None = None,
                bounds: tuple[float, float, float, float] | None = None,
                resolution: float | None = None) -> GeoBox:
    """The output grid: ``like`` (exactly that raster's grid), ``bounds`` (+ ``crs``, default
    the scene's) snapped outwards to multiples of ``resolution``, or by default the
    Sentinel-2 10 m grid in the scene's CRS covering the scene's valid data. ``resolution``
    is in CRS units; ``None`` is 10 m (in a geographic CRS, 10 m at the equator in degrees)."""
    if like is not None:
        if bounds is not None or crs is not None:
            raise OptionError("--like cannot be combined with --crs/--bounds")
        return grid_like(like)
    scene_bounds, scene_crs = valid_bounds(scene_files[0])
    if resolution is None:
        resolution = default_resolution(crs or scene_crs)
    if bounds is None:
        if crs is not None and str(crs) != str(scene_crs):
            from rasterio.warp import transform_bounds

            scene_bounds = transform_bounds(scene_crs, crs, *scene_bounds)
        return sentinel2_grid(scene_bounds, crs or scene_crs, resolution)
    return sentinel2_grid(bounds, crs or scene_crs, resolution)


def default_resolution(crs: object) -> float:
    """10 m in the units of ``crs``: metres, or degrees (10 m of arc at the equator) in a
    geographic CRS."""
    from odc.geo import CRS

    return 10.0 / 111_320.0 if CRS(crs).geographic else 10.0


def harmonize(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    models: Sequence[str | os.PathLike[str] | Harmonizer] | None = None,
    uncertainty: UncertaintyMethod = "auto",
    like: str | os.PathLike[str] | None = None,
    crs: object | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    resolution: float | None = None,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    device: str = "cpu",
    threads: int | None = None,
    dtype: OutputDtype = "uint16",
    mask_flags: tuple[str, ...] = DEFAULT_MASK_FLAGS,
    keep_flagged: bool = False,
    toa: bool = False,
    mc_passes: int = 20,
    dropout: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
    block_width: int = MAX_BLOCK_WIDTH,
    register_pan: bool = True,
    tags: dict[str, str] | None = None,
    precision: Precision = "fp32",
) -> HarmonizeResult:
    """Harmonize one Landsat-8/9 scene into a Sentinel-2-like COG.

    ``inputs``: a scene folder or its files. ``models``: registered names, paths or hub ids
    (default: ``lite``, the bundled demo weights; ``published``: the ensemble of the four
    published UNets). ``uncertainty``: ``auto``, ``ensemble``, ``mc-dropout``, ``head`` or
    ``none``. ``tile``/``overlap`` in output pixels.
    Pixels flagged by the quality band (``mask_flags``) get mask 2 and nodata, unless
    ``keep_flagged``. ``block_width`` (output pixels) bounds the width of the column blocks
    processed at a time, and so the memory. ``tags``: extra file tags to record (e.g. a batch
    run's provenance). ``precision``: ``fp32`` (exact), ``bf16`` or ``fp16`` (automatic
    mixed precision; faster where the hardware has it, slightly different values). Reading,
    the model and writing run overlapped, one strip each. Nothing is written unless the whole
    run succeeds.

    Before the run, the pan's registration against the bands and the input noise are measured
    on a central window (:mod:`s2l8h.inference.checks`); with ``register_pan`` a pan shift
    above 2 m is corrected. The output's consistency with its input (bias, RMSE, spectral
    angle, residual shift at 30 m in OLI radiometry) is measured as it is written. All of it
    goes into the tags (``s2l8h qa`` prints them); large findings are warned about.
    """
    started = time.perf_counter()
    check_options(tile=tile, overlap=overlap, batch_size=batch_size, threads=threads,
                  resolution=resolution, mc_passes=mc_passes, dtype=dtype,
                  uncertainty=uncertainty, dropout=dropout)
    torch_device = check_device(device)
    if threads:
        torch.set_num_threads(threads)
    check_output_path(output, overwrite)
    loaded = resolve_models(models, dropout)
    predictor = make_predictor(loaded, uncertainty, mc_passes=mc_passes)
    convention = loaded[0].convention
    scene = open_scene(inputs, toa=toa, need_pan=convention.use_pan)
    check_not_an_input(output, [*scene.files(), *([like] if like is not None else [])])
    grid = output_grid(scene.multispectral, like=like, crs=crs, bounds=bounds,
                       resolution=resolution)
    check_grid_size(grid)
    fine = model_grid(grid, projected_crs=scene.crs())
    check_grid_size(fine, "10 m grid the model runs on")
    scale = convention.scale
    plan = plan_tiles(math.ceil(fine.height / scale), math.ceil(fine.width / scale), tile,
                      overlap, predictor.alignment, scale)
    grids = WorkingGrids.from_fine(fine, scale).crop(plan.rows.padded, plan.cols.padded)
    lowres, pan_grid, fine_padded = grids.bands, grids.pan, grids.fine

    window = central_window(lowres.height, lowres.width)

    def read_window():
        with SceneReader(scene, lowres, pan_grid, fine_padded, convention,
                         mask_flags) as window_reader:
            strip = window_reader.read_strip(*window)
        return strip.multispectral, strip.pan, strip.valid

    checks = check_inputs(read_window, register_pan)
    for message in checks.messages():
        warnings.warn(f"{scene.name}: {message}", InputCheckWarning, stacklevel=2)
    consistency = Consistency(window=window)
    predictor.to(torch_device)
    names = [model.name or str(model.provenance.get("weights", "?")) for model in loaded]
    tags = {
        "S2L8H_VERSION": __version__,
        "S2L8H_MODELS": json.dumps(names),
        "S2L8H_MODEL_PROVENANCE": json.dumps([model.provenance for model in loaded]),
        "S2L8H_UNCERTAINTY": predictor.method,
        "S2L8H_INPUTS": json.dumps(describe_inputs(scene)),
        "S2L8H_SCENE": scene.name,
        "S2L8H_LEVEL": "L2 surface reflectance" if scene.level == "L2" else
        "L1 TOA reflectance (TOA mode)",
        "S2L8H_OPTIONS": json.dumps({"tile": tile, "overlap": overlap, "mask_flags":
                                     list(mask_flags), "keep_flagged": keep_flagged,
                                     "dtype": dtype, "mc_passes": mc_passes,
                                     "register_pan": register_pan,
                                     "precision": precision}),
        **checks.tags(),
        **(tags or {}),
    }
    writer = CogWriter(output, grid, fine, convention.output_bands, predictor.gives_variance,
                       dtype, tags, overwrite)
    any_valid = False
    # Busy seconds per stage (read and write run in their own threads, so they overlap).
    stages = {"read": 0.0, "model": 0.0, "write": 0.0, "cog": 0.0, "wait_read": 0.0,
              "emit": 0.0}
    try:
        with rasterio.Env(GDAL_CACHEMAX=gdal_cache_bytes()), \
                SceneReader(scene, lowres, pan_grid, fine_padded, convention,
                            mask_flags, checks.corrected_m) as reader:
            # run_tiled emits once per strip read, in order; reads run one strip ahead.
            strips: deque[Strip] = deque()

            def read_strip(row0: int, rows: int, col0: int, cols: int):
                began = time.perf_counter()
                strip = reader.read_strip(row0, rows, col0, cols)
                strips.append(strip)
                stages["read"] += time.perf_counter() - began
                return strip.multispectral, strip.pan, strip.valid

            def write(strip: Strip, out_row0: int, out_col0: int, mean: np.ndarray,
                      variance: np.ndarray | None) -> None:  # in the writer thread
                nonlocal any_valid
                began = time.perf_counter()
                fill, flagged = reader.read_quality(out_row0, mean.shape[1], out_col0,
                                                    mean.shape[2])
                mask = output_mask(strip, out_row0, out_col0, mean, fill, flagged, scale)
                any_valid |= bool((mask == MASK_VALID).any()) or \
                    (keep_flagged and bool((mask == MASK_FLAGGED).any()))
                add_consistency(consistency, strip, out_row0, out_col0, mean, mask, scale)
                keep = (mask == MASK_VALID) | (keep_flagged & (mask == MASK_FLAGGED))
                std = None if variance is None else np.sqrt(np.maximum(variance, 0))
                writer.write_rows(out_row0, mean, std, mask, keep, col0=out_col0)
                stages["write"] += time.perf_counter() - began

            with tqdm(total=plan.count, desc="tiles", unit="tile", disable=not progress) as bar, \
                    BackgroundEmitter(write) as background:

                def emit(out_row0: int, out_col0: int, mean: np.ndarray,
                         variance: np.ndarray | None) -> None:
                    strip = strips.popleft()
                    if out_row0 < fine.height and out_col0 < fine.width:
                        background.submit(strip, out_row0, out_col0, mean, variance)

                run_tiled(predictor, plan, read_strip, emit, batch_size=batch_size,
                          device=torch_device, progress=bar.update,
                          max_block_width=block_width, precision=precision,
                          timings=stages)
            if not any_valid:
                raise InputError(scene.multispectral[0], "no valid pixel in the output grid "
                                 "(all nodata, or all flagged by the quality band)")
            report = consistency.report()
            writer.add_tags({"S2L8H_CONSISTENCY": json.dumps(report)})
            for message in consistency_messages(report):
                warnings.warn(f"{scene.name}: {message}", InputCheckWarning, stacklevel=2)
            began = time.perf_counter()
            path = writer.commit()
            stages["cog"] = time.perf_counter() - began
    except BaseException:
        writer.abort()
        raise
    return HarmonizeResult(path=path, grid=grid, models=names, uncertainty=predictor.method,
                           tiles=plan.count, seconds=time.perf_counter() - started,
                           extra={"input_checks": checks, "consistency": report,
                                  "stage_seconds": stages})


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
    first, left = row30 - strip.row0, col30 - strip.col0
    landsat = strip.multispectral[:, first:first + rows, left:left + cols]
    if landsat.shape[1:] != degraded.shape[1:]:
        return
    valid30 = degraded_valid & strip.valid[first:first + rows, left:left + cols]
    consistency.add(row30, col30, degraded, landsat, valid30)


def output_mask(strip: Strip, out_row0: int, out_col0: int, mean: np.ndarray,
                fill: np.ndarray, flagged: np.ndarray, scale: int) -> np.ndarray:
    """Mask band values of the output block at ``(out_row0, out_col0)`` (``out_col0`` a
    multiple of ``scale``): 0 where the 30 m input (repeated ``scale`` x ``scale``) or the
    prediction has no data or the quality band says fill, 2 where it flags the pixel, else 1."""
    rows, cols = mean.shape[1:]
    first = out_row0 // scale - strip.row0
    left = out_col0 // scale - strip.col0
    valid30 = strip.valid[first:first + math.ceil(rows / scale) + 1,
                          left:left + math.ceil(cols / scale)]
    valid = valid30.repeat(scale, axis=0).repeat(scale, axis=1)
    offset = out_row0 - scale * (strip.row0 + first)
    valid = valid[offset:offset + rows, :cols] & np.isfinite(mean).all(axis=0) & ~fill
    mask = np.full(valid.shape, MASK_NODATA, dtype=np.uint8)
    mask[valid] = MASK_VALID
    mask[valid & flagged] = MASK_FLAGGED
    return mask
