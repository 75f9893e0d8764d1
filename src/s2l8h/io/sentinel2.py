"""Sentinel-2 bands (L1C or L2A) as per-band GeoTIFF/JP2 files, onto one 10 m grid.

Reflectance = (DN + offset) / 10000, where the offset (``BOA_ADD_OFFSET`` for L2A,
``RADIO_ADD_OFFSET`` for L1C) is -1000 from processing baseline 04.00 (25 January 2022) and 0
before (the constants live in :mod:`s2l8h.bands`); DN 0 is no data. The 20 m bands (B8A,
B11, B12) are brought to the 10 m grid by nearest neighbour (each 20 m pixel becomes 2 x 2,
as an odc-stac load at 10 m does by default), through GDAL, so a 20 m grid offset from the
10 m one (as in the Virginia example) is handled.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import reproject

from s2l8h.bands import SENTINEL2_BANDS, SENTINEL2_OFFSET_DATE, SENTINEL2_QUANTIFICATION
from s2l8h.io.errors import InputError

_BAND = re.compile(r"_(B0[2-4]|B08|B8A|B11|B12)(_\d{2}m)?\.(tiff?|jp2)$", re.IGNORECASE)
OFFSET_BASELINE_DATE = SENTINEL2_OFFSET_DATE.isoformat()  # "2022-01-25"


def find_sentinel2_bands(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                         b08_as_b8a: bool = False) -> dict[str, Path]:
    """Map B02, B03, B04, B8A, B11, B12 to their files in a folder (searched recursively, as in
    a SAFE) or a list of files. ``b08_as_b8a``: the broad NIR band B08 (10 m, 785-900 nm)
    stands in for the narrow B8A (20 m, 855-875 nm), for a scene shipped without B8A; its
    bandpass and resolution differ, so B8A scores from it are not B8A's."""
    items = [Path(inputs)] if isinstance(inputs, str | os.PathLike) else [Path(p) for p in inputs]
    files: list[Path] = []
    for item in items:
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.is_file()))
        elif item.is_file():
            files.append(item)
        else:
            raise InputError(item, "no such file or folder")
    bands: dict[str, Path] = {}
    for path in files:
        if match := _BAND.search(path.name):
            bands.setdefault(match.group(1).upper(), path)
    if b08_as_b8a:
        if "B8A" in bands:
            raise InputError(bands["B8A"], "the scene has B8A: B08 stands in for B8A only in "
                             "a scene without it")
        if "B08" not in bands:
            raise InputError(items[0], "no B08 file (ending in _B08.tif, .tiff or .jp2) to "
                             "stand in for B8A")
        bands["B8A"] = bands["B08"]
    missing = [band for band in SENTINEL2_BANDS if band not in bands]
    if missing:
        raise InputError(items[0], f"Sentinel-2 bands missing: {missing} (expected files "
                         "ending in _B02.tif, _B03, _B04, _B8A, _B11, _B12)")
    return {band: bands[band] for band in SENTINEL2_BANDS}


def read_sentinel2(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    offset: float = 0.0,
    grid: GeoBox | None = None,
    b08_as_b8a: bool = False,
) -> tuple[np.ndarray, np.ndarray, GeoBox]:
    """Read the six bands as reflectance on ``grid`` (default: the B02 file's 10 m grid).

    Returns ``(reflectance (6, H, W) float32 with NaN nodata, valid (H, W), grid)``.
    ``offset`` is the additive DN offset (0, or -1000 for processing baseline >= 04.00);
    ``b08_as_b8a``: see :func:`find_sentinel2_bands`.
    """
    bands = find_sentinel2_bands(inputs, b08_as_b8a)
    try:
        if grid is None:
            with rasterio.open(bands["B02"]) as reference:
                grid = GeoBox.from_rio(reference)
        stack = np.full((6, grid.height, grid.width), np.nan, dtype=np.float32)
        for index, band in enumerate(SENTINEL2_BANDS):
            with rasterio.open(bands[band]) as dataset:
                if dataset.crs is None:
                    raise InputError(bands[band], "raster has no CRS")
                fill = dataset.nodata if dataset.nodata is not None else 0
                digital_numbers = np.zeros((grid.height, grid.width), dtype=np.float32)
                reproject(rasterio.band(dataset, 1), digital_numbers, src_nodata=fill,
                          dst_transform=grid.affine, dst_crs=grid.crs.to_wkt(), dst_nodata=0,
                          resampling=Resampling.nearest)
                valid = digital_numbers != 0
                stack[index][valid] = ((digital_numbers[valid] + offset)
                                       / SENTINEL2_QUANTIFICATION)
    except RasterioIOError as error:
        raise InputError(bands[band], f"not a readable raster ({error})") from None
    valid = np.isfinite(stack).all(axis=0)
    if not valid.any():
        raise InputError(bands["B02"], "no valid pixels")
    return stack, valid, grid
