"""A co-registration reference: any georeferenced raster of the scene's area, typically a
Sentinel-2 band or stack (Level-1C or Level-2A, any date), read onto a Landsat grid.

Only its geometry matters to the registration (:mod:`s2l8h.inference.coregister`): its
values are read as they are stored (digital numbers or reflectance, any scale), the mean of
its bands taken, and no radiometry is assumed.
"""

from __future__ import annotations

import os

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from s2l8h.errors import InputError


def read_reference(path: str | os.PathLike[str], grid: GeoBox) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """``(image (h, w) float64, valid (h, w))``: the mean of the reference's bands area-averaged
    onto ``grid`` (e.g. a 30 m Landsat window). Valid where every band has data: not its
    nodata value, not NaN, and above 0 (Sentinel-2 products store no data as 0). Raises
    :class:`~s2l8h.errors.InputError` naming the file when it cannot be read, has no CRS or
    does not overlap ``grid``."""
    try:
        dataset = rasterio.open(path)
    except RasterioIOError as error:
        raise InputError(path, f"reference: not a readable raster ({error})") from None
    with dataset:
        if dataset.crs is None:
            raise InputError(path, "reference: raster has no CRS")
        left, bottom, right, top = transform_bounds(dataset.crs, grid.crs.to_wkt(),
                                                    *dataset.bounds)
        g_left, g_bottom, g_right, g_top = grid.boundingbox
        if not (left < g_right and g_left < right and bottom < g_top and g_bottom < top):
            raise InputError(path, "reference: does not overlap the scene "
                             f"(its bounds {tuple(round(v, 1) for v in (left, bottom, right, top))}"
                             f", the scene window's {tuple(round(v, 1) for v in grid.boundingbox)}"
                             f" in {f'EPSG:{grid.crs.epsg}' if grid.crs.epsg else grid.crs})")
        # Each band's no data on its own (GDAL's default counts a pixel as no data only
        # where every band is), averaged as float with NaN outside; without a nodata tag
        # (Sentinel-2's JPEG 2000 bands), 0 is no data, so that a 30 m pixel half off the
        # image is an average of its data, not of its data and zeros.
        fill = dataset.nodata if dataset.nodata is not None else 0
        with WarpedVRT(dataset, crs=grid.crs.to_wkt(), transform=grid.affine,
                       width=grid.width, height=grid.height, resampling=Resampling.average,
                       src_nodata=fill, nodata=np.nan, dtype="float32",
                       UNIFIED_SRC_NODATA="NO") as vrt:
            bands = vrt.read().astype(np.float64)
    valid = np.isfinite(bands).all(axis=0) & (bands > 0).all(axis=0)
    image = np.where(valid, bands.mean(axis=0), 0.0)
    return image, valid
