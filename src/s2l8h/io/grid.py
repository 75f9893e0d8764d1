"""Output grids and the model's working grids, as :class:`odc.geo.geobox.GeoBox` objects.

The model runs on a 10 m grid M. Its inputs are read onto two grids that share M's outer
edges: a 30 m grid (3 x 3 M pixels per pixel) for the multispectral bands and a 15 m grid
(2 x 2 pixels per 30 m pixel) for the pan. ``harmonize`` nests M in the scene's own 30 m
band grid (:func:`native_model_grid`), so the bands are read unresampled and only the
finished 10 m output is warped onto the requested grid (Landsat pixel edges sit at 15 m
modulo 30 m, Sentinel-2's at multiples of 10 m: resampling the 30 m input by that half pixel
cost the networks 0.3 to 1 dB). Reads go through a ``WarpedVRT`` (cubic convolution for
the bands, Lanczos for the pan: ``s2l8h.io.reader.PAN_RESAMPLING``), the exact identity
where the grids coincide; quality bands use nearest neighbour.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from odc.geo import res_, xy_
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import reproject, transform_bounds

from s2l8h.io.errors import InputError

SENTINEL2_RESOLUTION = 10.0


def sentinel2_grid(bounds: tuple[float, float, float, float], crs: object,
                   resolution: float = SENTINEL2_RESOLUTION) -> GeoBox:
    """The grid with pixel edges on multiples of ``resolution`` that covers ``bounds``
    (left, bottom, right, top in ``crs`` units), snapped outwards."""
    return GeoBox.from_bbox(bounds, crs, resolution=resolution)


def crs_name(crs: object) -> str:
    """``EPSG:n`` where ``crs`` (anything odc-geo's ``CRS`` takes, rasterio's included) has
    an EPSG code, else its WKT."""
    from odc.geo import CRS

    crs = CRS(crs)
    return f"EPSG:{crs.epsg}" if crs.epsg is not None else crs.to_wkt()


def extent_meets(grid: GeoBox, footprint: Geometry) -> bool:
    """Whether ``grid``'s extent meets ``footprint`` (any CRS; a scene's, in a projected
    one): compared in the footprint's CRS, the grid's edges densified before they are
    projected (odc-geo), so that edges curved by the projection and a footprint across the
    antimeridian are taken as they are; and, should that projection fail or give nothing (a
    grid far larger than a UTM zone), the footprint compared in the grid's CRS. ``False``
    where neither projection is finite (far apart)."""
    attempts = (lambda: grid.extent.to_crs(footprint.crs, resolution="auto")
                .intersects(footprint),
                lambda: footprint.to_crs(grid.crs, resolution="auto", wrapdateline=True)
                .intersects(grid.extent))
    for attempt in attempts:
        try:
            if attempt():
                return True
        except (ValueError, RuntimeError):
            continue
    return False


def grid_like(path: str | os.PathLike[str]) -> GeoBox:
    """The exact grid (CRS, transform, shape) of an existing raster."""
    try:
        with rasterio.open(path) as dataset:
            if dataset.crs is None:
                raise InputError(path, "raster has no CRS")
            return GeoBox.from_rio(dataset)
    except RasterioIOError as error:
        raise InputError(path, f"not a readable raster ({error})") from None


def valid_bounds(path: str | os.PathLike[str], band: int = 1,
                 nodata: float | None = 0) -> tuple[tuple[float, float, float, float], object]:
    """Bounds (in the raster's CRS) of the pixels that are not ``nodata``, and the CRS.

    Read from the coarsest overview-sized decimation that keeps >= 512 rows, so it is cheap on
    whole scenes; the result is widened by one decimated pixel to stay conservative.
    """
    with rasterio.open(path) as dataset:
        factor = max(1, min(dataset.height, dataset.width) // 512)
        shape = (math.ceil(dataset.height / factor), math.ceil(dataset.width / factor))
        values = dataset.read(band, out_shape=shape, resampling=rasterio.enums.Resampling.nearest)
        fill = dataset.nodata if dataset.nodata is not None else nodata
        valid = np.isfinite(values) if fill is None else (values != fill) & ~np.isnan(values)
        if not valid.any():
            raise InputError(path, "the scene has no valid pixels (all nodata)")
        rows = np.flatnonzero(valid.any(axis=1))
        cols = np.flatnonzero(valid.any(axis=0))
        scale_y, scale_x = dataset.height / shape[0], dataset.width / shape[1]
        row0 = max(0, (rows[0] - 1) * scale_y)
        row1 = min(dataset.height, (rows[-1] + 2) * scale_y)
        col0 = max(0, (cols[0] - 1) * scale_x)
        col1 = min(dataset.width, (cols[-1] + 2) * scale_x)
        left, top = rasterio.transform.xy(dataset.transform, row0, col0, offset="ul")
        right, bottom = rasterio.transform.xy(dataset.transform, row1, col1, offset="ul")
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom)), \
            dataset.crs


def check_north_up(grid: GeoBox) -> None:
    affine = grid.affine
    if affine.b != 0 or affine.d != 0 or affine.a <= 0 or affine.e >= 0:
        raise ValueError(f"output grid must be north-up and axis-aligned, got {affine}")


def model_grid(output: GeoBox, resolution: float = SENTINEL2_RESOLUTION,
               projected_crs: object | None = None) -> GeoBox:
    """The 10 m grid the model runs on for ``output``: ``output`` itself when it is a 10 m
    grid, else a 10 m grid from the same top-left corner covering it. For an output in a
    geographic CRS (degrees) it is the Sentinel-2 10 m grid in ``projected_crs`` (the scene's
    UTM zone) covering the output's footprint; the writer warps it onto the output."""
    check_north_up(output)
    if output.crs is not None and output.crs.geographic:
        if projected_crs is None:
            raise ValueError("a geographic output grid needs a projected CRS for the model")
        footprint = transform_bounds(output.crs.to_wkt(), projected_crs,
                                     *output.boundingbox, densify_pts=21)
        return sentinel2_grid(footprint, projected_crs, resolution)
    affine = output.affine
    if math.isclose(affine.a, resolution) and math.isclose(-affine.e, resolution):
        return output
    height = math.ceil(output.height * -affine.e / resolution - 1e-9)
    width = math.ceil(output.width * affine.a / resolution - 1e-9)
    return GeoBox((height, width), Affine(resolution, 0, affine.c, 0, -resolution, affine.f),
                  output.crs)


#: 10 m model pixels per 30 m band pixel (the pan's 15 m pixels are half a band pixel).
SCALE = 3


def bounds_in(grid: GeoBox, crs) -> tuple[float, float, float, float]:
    """``grid``'s bounds (left, bottom, right, top) in ``crs`` (an odc-geo CRS): as they are
    in its own CRS, else transformed with 21 points along each edge."""
    if grid.crs == crs:
        return tuple(grid.boundingbox)
    return transform_bounds(grid.crs.to_wkt(), crs.to_wkt(), *grid.boundingbox, densify_pts=21)


def native_model_grid(output: GeoBox, bands: GeoBox, scale: int = SCALE) -> GeoBox:
    """The 10 m model grid for ``output`` nested in the scene's own band grid ``bands``
    (30 m, its CRS and pixel edges): whole band pixels covering ``output``'s footprint
    (snapped outwards by odc-geo's ``GeoBox.from_bbox`` with the band grid's phase as the
    anchor), each split into ``scale`` x ``scale``. ``output`` itself when it already is
    such a grid. A band grid that is not north-up, projected and ``scale`` x 10 m (a scene
    warped by someone else) gets :func:`model_grid` instead: its bands are then resampled
    onto the model's grid as they are read."""
    affine = bands.affine
    resolution = scale * SENTINEL2_RESOLUTION
    if bands.crs is None or bands.crs.geographic or affine.b != 0 or affine.d != 0 or \
            not math.isclose(affine.a, resolution) or not math.isclose(-affine.e, resolution):
        return model_grid(output, projected_crs=bands.crs)
    pixel = affine.a
    footprint = bounds_in(output, bands.crs)
    anchor = xy_((bands.affine.c % pixel) / pixel, (bands.affine.f % pixel) / pixel)
    coarse = GeoBox.from_bbox(footprint, bands.crs, resolution=res_(pixel), anchor=anchor)
    fine = coarse.zoom_out(1 / scale)
    if output.crs == bands.crs and output.shape == fine.shape and \
            output.affine.almost_equals(fine.affine, 1e-6):
        return output
    return fine


def moved_grid(grid: GeoBox, shift: tuple[float, float]) -> GeoBox:
    """``grid`` with its georeference moved back by ``shift`` (dx east, dy north, CRS units):
    what lay ``shift`` away from its place on the ground is put back (odc-geo's
    ``translate_pix``, in pixels of ``grid``)."""
    return grid.translate_pix(-shift[0] / grid.resolution.x, -shift[1] / grid.resolution.y)


def registered_model_grid(output: GeoBox, bands: GeoBox,
                          shift: tuple[float, float] = (0.0, 0.0)) -> GeoBox:
    """:func:`native_model_grid` of a scene whose content lies ``shift`` (dx east, dy north,
    metres of the band grid's projected CRS) from its place: nested in the band grid
    ``bands`` where the scene's own georeference places ``output``'s footprint, then moved
    back by ``shift``. The scene's pixels are then read where they belong without being
    resampled between each other; the output is warped onto ``output`` from it."""
    if tuple(shift) == (0.0, 0.0):
        return native_model_grid(output, bands)
    if bands.crs is None or bands.crs.geographic:
        raise ValueError("a scene shift in metres needs the scene's bands in a projected CRS")
    # The footprint in the band grid's CRS, whose metres the shift is in.
    left, bottom, right, top = bounds_in(output, bands.crs)
    footprint = GeoBox.from_bbox((left + shift[0], bottom + shift[1], right + shift[0],
                                  top + shift[1]), bands.crs, resolution=res_(SENTINEL2_RESOLUTION))
    return moved_grid(native_model_grid(footprint, bands), shift)


#: Side (band pixels) of the window the input checks and the registration measure on at the
#: least: a scene-wide property (the pan's registration, the scene's shift) measured on a
#: small area alone follows its content (:func:`context_grid`).
CONTEXT_PIXELS = 256


def context_grid(footprint: GeoBox, bands: GeoBox, size: int = CONTEXT_PIXELS,
                 largest: int = 768) -> GeoBox | None:  # 768: the checks' central window
    """The window of a scene's band grid ``bands`` (projected, north-up) centred on
    ``footprint``'s centre, on each axis as long as the footprint but at least ``size`` and
    at most ``largest`` pixels, cut to ``bands``: where the checks measure for an output
    area under ``size`` pixels on a side. ``None`` where it would add no pixel of ``bands``
    to those under ``footprint`` (the output covers the scene, or is as large), or where
    ``bands`` is not in a projected CRS."""
    if bands.crs is None or bands.crs.geographic:
        return None
    left, bottom, right, top = bounds_in(footprint, bands.crs)
    inverse = ~bands.affine
    col_left, row_top = inverse * (left, top)
    col_right, row_bottom = inverse * (right, bottom)
    height, width = bands.shape

    def span(first: float, last: float, length: int) -> tuple[int, int]:
        side = min(largest, max(size, math.ceil(last - first)))
        start = math.floor((first + last) / 2 - side / 2 + 0.5)
        return max(0, start), min(length, start + side)

    rows, cols = span(row_top, row_bottom, height), span(col_left, col_right, width)
    under = (max(0, math.floor(row_top)), min(height, math.ceil(row_bottom)),
             max(0, math.floor(col_left)), min(width, math.ceil(col_right)))
    if rows[0] >= rows[1] or cols[0] >= cols[1] or (
            rows[0] >= under[0] and rows[1] <= under[1] and cols[0] >= under[2]
            and cols[1] <= under[3]):
        return None
    return bands[rows[0]:rows[1], cols[0]:cols[1]]


#: Side of the blocks (band pixels) of the pan's registration block by block.
PAN_BLOCK = 160


def block_cover(footprint: GeoBox, bands: GeoBox, block: int = PAN_BLOCK) -> GeoBox | None:
    """The part of a scene's band grid ``bands`` (projected, north-up) covered by the
    blocks of the lattice that ``footprint`` meets (the pan's registration block by block,
    :mod:`s2l8h.inference.panreg`): block edges every ``block`` pixels from
    the grid's pixel phase (its origin modulo a pixel), the same for any window of the same
    grid; cut to ``bands``. ``None`` where ``bands`` is not projected or nothing is met."""
    if bands.crs is None or bands.crs.geographic:
        return None
    pixel = bands.resolution.x
    side = block * pixel
    phase_x, phase_y = bands.affine.c % pixel, bands.affine.f % pixel
    left, bottom, right, top = bounds_in(footprint, bands.crs)
    west = phase_x + side * math.floor((left - phase_x) / side)
    east = phase_x + side * math.ceil((right - phase_x) / side)
    south = phase_y + side * math.floor((bottom - phase_y) / side)
    north = phase_y + side * math.ceil((top - phase_y) / side)
    col0 = max(0, round((west - bands.affine.c) / pixel))
    col1 = min(bands.width, round((east - bands.affine.c) / pixel))
    row0 = max(0, round((bands.affine.f - north) / pixel))
    row1 = min(bands.height, round((bands.affine.f - south) / pixel))
    if col0 >= col1 or row0 >= row1:
        return None
    return bands[row0:row1, col0:col1]


@dataclass(frozen=True)
class WorkingGrids:
    """The three grids a scene is read onto, sharing their outer edges (north-up, pixel
    edges, not centres, at the transforms' origins): ``fine`` the 10 m model grid
    (``scale`` x ``scale`` pixels per band pixel), ``bands`` the 30 m multispectral grid and
    ``pan`` the 15 m panchromatic grid (2 x 2 pixels per band pixel).

    Built with odc-geo's own zooms and crops (``zoom_out``, ``zoom_to``, ``crop``,
    ``pad_wh``), so the transforms are the odc-geo ones: resolutions are multiplied by the
    zoom factor, origins are unchanged.
    """

    fine: GeoBox
    bands: GeoBox
    pan: GeoBox
    scale: int = SCALE

    def __post_init__(self) -> None:
        rows, cols = self.bands.shape
        if self.fine.shape != (self.scale * rows, self.scale * cols) or \
                self.pan.shape != (2 * rows, 2 * cols):
            raise ValueError(f"working grids do not nest: fine {self.fine.shape}, bands "
                             f"{self.bands.shape}, pan {self.pan.shape} (scale {self.scale})")

    @classmethod
    def from_fine(cls, fine: GeoBox, scale: int = SCALE, align: int = 1) -> WorkingGrids:
        """The grids from ``fine``'s top-left corner: ``bands`` covers ``fine`` (its rows and
        columns rounded up to whole band pixels, then to multiples of ``align`` band pixels),
        ``fine`` is extended to the same outer edges."""
        bands = fine.zoom_out(scale).pad_wh(align)
        rows, cols = bands.shape
        return cls(fine.crop((scale * rows, scale * cols)), bands,
                   fine.zoom_out(scale / 2).crop((2 * rows, 2 * cols)), scale)

    @classmethod
    def from_bands(cls, bands: GeoBox, scale: int = SCALE) -> WorkingGrids:
        """The grids of a given band grid: the fine and pan grids with its outer edges."""
        rows, cols = bands.shape
        return cls(bands.zoom_to((scale * rows, scale * cols)), bands,
                   bands.zoom_to((2 * rows, 2 * cols)), scale)

    def crop(self, rows: int, cols: int) -> WorkingGrids:
        """The same grids cropped (or extended) at the bottom and right to ``rows`` x
        ``cols`` band pixels; the top-left corner and the transforms stay."""
        return WorkingGrids(self.fine.crop((self.scale * rows, self.scale * cols)),
                            self.bands.crop((rows, cols)), self.pan.crop((2 * rows, 2 * cols)),
                            self.scale)


def warp(image: np.ndarray, source: GeoBox, target: GeoBox,
         resampling: Resampling) -> np.ndarray:
    """Warp (bands, h, w) or (h, w) float32 from ``source`` to ``target`` (NaN nodata)."""
    squeeze = image.ndim == 2
    image = image[None] if squeeze else image
    output = np.full((image.shape[0], target.height, target.width), np.nan, dtype=np.float32)
    reproject(np.ascontiguousarray(image, dtype=np.float32), output,
              src_transform=source.affine, src_crs=source.crs.to_wkt(), src_nodata=np.nan,
              dst_transform=target.affine, dst_crs=target.crs.to_wkt(), dst_nodata=np.nan,
              resampling=resampling)
    return output[0] if squeeze else output
