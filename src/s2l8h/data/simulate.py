"""Simulating a Landsat-8 observation of a Sentinel-2 scene (reduced-resolution protocol).

1. Spectral: the HLS bandpass adjustment MSI -> OLI (S2A or S2B coefficients).
2. Optional sub-pixel shift (misregistration), by cubic spline, in metres.
3. Spatial: a Gaussian point-spread function whose modulation is 0.3 at the Landsat Nyquist
   frequency, σ = sqrt(-ln 0.3 / 2) / (π · 0.5 / 30 m) ≈ 14.8 m, then the exact area average
   over 30 m pixels whose edges sit at 15 m modulo 30 m (Landsat's convention), computed on a
   5 m sub-grid of the 10 m image.
4. Pan: 0.25·B02 + 0.40·B03 + 0.35·B04 (MSI), σ ≈ 7.4 m, area average over 15 m pixels of the
   same grid, stored as ρ' = ρ · sin(sun elevation) (Level-1 TOA without sun correction).
5. Optional Gaussian noise (reflectance units).

The Sentinel-2 image itself, on its 10 m grid, is the target.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage

from s2l8h.data.bandpass import Platform, msi_to_oli
from s2l8h.io.errors import OutputError
from s2l8h.io.landsat import SR_OFFSET, SR_SCALE

MTF_AT_NYQUIST = 0.3
PAN_WEIGHTS = (0.25, 0.40, 0.35)
PAN_MULT, PAN_ADD = 2.0e-5, -0.1
SIMULATED_PRODUCT = "LC08_L2SP_000000_{date}_{date}_02_T1"
SIMULATED_L1_PRODUCT = "LC08_L1TP_000000_{date}_{date}_02_T1"


def psf_sigma(pixel_size: float) -> float:
    """σ (metres) of the Gaussian PSF with modulation 0.3 at the Nyquist frequency of
    ``pixel_size`` (14.8 m for 30 m, 7.4 m for 15 m)."""
    return math.sqrt(-math.log(MTF_AT_NYQUIST) / 2) / (math.pi * 0.5 / pixel_size)


@dataclass
class SimulatedScene:
    """A Landsat-like observation and its Sentinel-2 target.

    ``multispectral`` (6, h, w) OLI surface reflectance on ``lowres_grid`` (30 m, edges at
    15 m modulo 30 m); ``pan`` (2h, 2w) ρ' on ``pan_grid`` (15 m, same outer edges);
    ``target`` (6, H, W) Sentinel-2 reflectance on ``target_grid`` (10 m); ``valid`` masks for
    both resolutions.
    """

    multispectral: np.ndarray
    pan: np.ndarray
    lowres_valid: np.ndarray
    lowres_grid: GeoBox
    pan_grid: GeoBox
    target: np.ndarray
    target_valid: np.ndarray
    target_grid: GeoBox
    sun_elevation: float
    platform: str


def landsat_grid(target: GeoBox, pixel: float = 30.0, phase: float = 15.0) -> tuple[GeoBox, int,
                                                                                     int]:
    """The largest 30 m grid with edges at ``phase`` modulo ``pixel`` inside ``target`` (10 m),
    and its offset from ``target``'s corner in 5 m sub-pixels (columns, rows)."""
    affine = target.affine
    left, top = affine.c, affine.f
    right, bottom = left + affine.a * target.width, top + affine.e * target.height
    x0 = left + (phase - left) % pixel
    y0 = top - (top - phase) % pixel
    cols = int((right - x0) // pixel)
    rows = int((y0 - bottom) // pixel)
    if rows < 1 or cols < 1:
        raise ValueError("the Sentinel-2 image is smaller than one Landsat pixel")
    grid = GeoBox((rows, cols), Affine(pixel, 0, x0, 0, -pixel, y0), target.crs)
    return grid, round((x0 - left) / 5), round((top - y0) / 5)


def _area_average(image10: np.ndarray, offset_cols: int, offset_rows: int, rows: int,
                  cols: int, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of 5 m sub-pixels (each 10 m pixel is 2 x 2 of
    them) starting ``offset`` sub-pixels from the corner: exact area integration."""
    fine = np.repeat(np.repeat(image10, 2, axis=-2), 2, axis=-1)
    fine = fine[..., offset_rows:offset_rows + rows * factor,
                offset_cols:offset_cols + cols * factor]
    shape = (*fine.shape[:-2], rows, factor, cols, factor)
    return fine.reshape(shape).mean(axis=(-3, -1))


def simulate_landsat(
    reflectance: np.ndarray,
    valid: np.ndarray,
    grid: GeoBox,
    *,
    platform: Platform = "S2A",
    shift_m: tuple[float, float] = (0.0, 0.0),
    noise_std: float = 0.0,
    sun_elevation: float = 50.0,
    seed: int = 0,
) -> SimulatedScene:
    """Simulate Landsat-8 from Sentinel-2 ``reflectance`` (6, H, W) on the 10 m ``grid``.

    ``shift_m`` (dx, dy) moves the scene content east/north by that many metres before the
    spatial degradation; ``noise_std`` adds Gaussian noise to every simulated band.
    """
    if reflectance.shape[0] != 6 or reflectance.shape[1:] != valid.shape:
        raise ValueError("reflectance must be (6, H, W) with a (H, W) valid mask")
    resolution = grid.affine.a
    if not math.isclose(resolution, 10.0) or not math.isclose(-grid.affine.e, 10.0):
        raise ValueError("simulate_landsat needs the Sentinel-2 10 m grid")
    filled = np.where(valid, reflectance, np.nanmean(reflectance[:, valid], axis=1)[:, None,
                                                                                     None])
    oli = msi_to_oli(filled.astype(np.float64), platform)
    pan10 = np.tensordot(np.asarray(PAN_WEIGHTS), filled[:3].astype(np.float64), axes=1)
    if shift_m != (0.0, 0.0):
        shift_px = (-shift_m[1] / resolution, shift_m[0] / resolution)
        oli = np.stack([ndimage.shift(band, shift_px, order=3, mode="nearest") for band in oli])
        pan10 = ndimage.shift(pan10, shift_px, order=3, mode="nearest")
    sigma30, sigma15 = psf_sigma(30.0) / resolution, psf_sigma(15.0) / resolution
    blurred = np.stack([ndimage.gaussian_filter(band, sigma30, mode="nearest") for band in oli])
    pan_blurred = ndimage.gaussian_filter(pan10, sigma15, mode="nearest")
    lowres_grid, offset_cols, offset_rows = landsat_grid(grid)
    rows, cols = lowres_grid.shape
    multispectral = _area_average(blurred, offset_cols, offset_rows, rows, cols, 6)
    pan = _area_average(pan_blurred, offset_cols, offset_rows, 2 * rows, 2 * cols, 3)
    invalid_fraction = _area_average((~valid).astype(np.float64), offset_cols, offset_rows,
                                     rows, cols, 6)
    lowres_valid = invalid_fraction == 0
    rng = np.random.default_rng(seed)
    if noise_std > 0:
        multispectral = multispectral + rng.normal(0, noise_std, multispectral.shape)
        pan = pan + rng.normal(0, noise_std, pan.shape)
    pan_prime = pan * math.sin(math.radians(sun_elevation))
    affine = lowres_grid.affine
    pan_grid = GeoBox((2 * rows, 2 * cols), Affine(15, 0, affine.c, 0, -15, affine.f),
                      lowres_grid.crs)
    target = np.where(valid, reflectance, np.nan).astype(np.float32)
    return SimulatedScene(multispectral.astype(np.float32), pan_prime.astype(np.float32),
                          lowres_valid, lowres_grid, pan_grid, target, valid, grid,
                          sun_elevation, platform)


def _write(path: Path, data: np.ndarray, grid: GeoBox, nodata: float | None,
           descriptions: list[str] | None = None) -> None:
    data = data if data.ndim == 3 else data[None]
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height,
                       count=data.shape[0], dtype=data.dtype, crs=grid.crs.to_wkt(),
                       transform=grid.affine, nodata=nodata, tiled=True, compress="deflate",
                       blockxsize=256, blockysize=256) as dataset:
        dataset.write(data)
        for index, name in enumerate(descriptions or [], start=1):
            dataset.set_band_description(index, name)


def write_simulated_scene(simulated: SimulatedScene, folder: str | os.PathLike[str],
                          date: str = "20000101", overwrite: bool = False) -> tuple[Path, Path]:
    """Write the simulation as a Collection-2 Level-2 scene folder (SR_B2..SR_B7, QA_PIXEL,
    Level-1 B8 and MTL JSON files, so ``s2l8h harmonize`` reads it unchanged) and the target
    as ``target_s2_10m.tif`` (float32 reflectance, NaN nodata). Returns (scene folder, target)."""
    folder = Path(folder)
    scene = folder / "landsat"
    target_path = folder / "target_s2_10m.tif"
    if (scene.exists() or target_path.exists()) and not overwrite:
        raise OutputError(f"{folder}: already holds a simulated scene; pass overwrite")
    scene.mkdir(parents=True, exist_ok=True)
    product = SIMULATED_PRODUCT.format(date=date)
    l1_product = SIMULATED_L1_PRODUCT.format(date=date)
    digital_numbers = np.clip(np.rint((simulated.multispectral - SR_OFFSET) / SR_SCALE), 1,
                              65535).astype(np.uint16)
    digital_numbers[:, ~simulated.lowres_valid] = 0
    for index, number in enumerate(range(2, 8)):
        _write(scene / f"{product}_SR_B{number}.TIF", digital_numbers[index],
               simulated.lowres_grid, 0)
    qa = np.where(simulated.lowres_valid, 21824, 1).astype(np.uint16)  # clear / fill
    _write(scene / f"{product}_QA_PIXEL.TIF", qa, simulated.lowres_grid, 1)
    pan_valid = np.kron(simulated.lowres_valid, np.ones((2, 2), dtype=bool))
    pan_dn = np.clip(np.rint((simulated.pan - PAN_ADD) / PAN_MULT), 1, 65535).astype(np.uint16)
    pan_dn[~pan_valid] = 0
    _write(scene / f"{l1_product}_B8.TIF", pan_dn, simulated.pan_grid, 0)
    rescaling = {}
    for band in range(1, 10):
        rescaling[f"REFLECTANCE_MULT_BAND_{band}"] = f"{PAN_MULT:.4E}"
        rescaling[f"REFLECTANCE_ADD_BAND_{band}"] = f"{PAN_ADD:.6f}"
    iso_date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    for name, level in ((product, "L2SP"), (l1_product, "L1TP")):
        document = {"LANDSAT_METADATA_FILE": {
            "PRODUCT_CONTENTS": {"LANDSAT_PRODUCT_ID": name, "PROCESSING_LEVEL": level,
                                 "ORIGIN": f"s2l8h simulation from Sentinel-2 "
                                           f"({simulated.platform})"},
            "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_8", "DATE_ACQUIRED": iso_date,
                                 "SUN_ELEVATION": f"{simulated.sun_elevation:.8f}"},
            "LEVEL1_RADIOMETRIC_RESCALING": rescaling}}
        (scene / f"{name}_MTL.json").write_text(json.dumps(document, indent=1))
    _write(target_path, simulated.target, simulated.target_grid, np.nan,
           ["B02", "B03", "B04", "B8A", "B11", "B12"])
    return scene, target_path
