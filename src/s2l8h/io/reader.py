"""Reading a Landsat scene onto the model's working grids, strip by strip.

Multispectral bands and pan are warped with GDAL's cubic convolution (``WarpedVRT``) onto the
30 m and 15 m working grids; quality bands with nearest neighbour onto the 10 m grid. Only the
rows asked for are read.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from s2l8h.bands import PAN_RADIOMETRY, PAN_TOA_NO_SUN_CORRECTION, PAN_TOA_SUN_CORRECTED
from s2l8h.io.cog import MASK_FLAGGED, MASK_NODATA, MASK_VALID
from s2l8h.io.errors import InputError
from s2l8h.io.landsat import LandsatScene
from s2l8h.io.quality import DEFAULT_MASK_FLAGS, quality_mask

#: How the pan is read onto the model's 15 m grid. Landsat's pan pixels are centred on the
#: band pixels (its grid sits 7.5 m, half a pan pixel, off the nested one), so every real
#: scene's pan is interpolated half a pixel: Lanczos keeps more of its detail than cubic
#: (validation rows with a pan on Landsat's phase: 0.10 dB lost to cubic, 0.05 to Lanczos;
#: the identity where the grids coincide, as cubic).
PAN_RESAMPLING = Resampling.lanczos


class PanRequest(Protocol):
    """What the reader needs of a model's input convention: whether to read the pan, and as
    which radiometry (a name of :data:`s2l8h.bands.PAN_RADIOMETRY`). A model's
    ``InputConvention`` is one; :class:`ReadInputs` is one without a model."""

    @property
    def use_pan(self) -> bool: ...

    @property
    def pan_radiometry(self) -> str: ...


@dataclass(frozen=True)
class ReadInputs:
    """A :class:`PanRequest` for reads without a model (checks, tests)."""

    use_pan: bool = True
    pan_radiometry: str = PAN_TOA_NO_SUN_CORRECTION

    def __post_init__(self) -> None:
        if self.pan_radiometry not in PAN_RADIOMETRY:
            raise ValueError(f"pan_radiometry must be one of {PAN_RADIOMETRY}, got "
                             f"{self.pan_radiometry!r}")


@dataclass
class Strip:
    """Inputs of rows ``[row0, row0 + rows)``, columns ``[col0, col0 + W)`` of the 30 m
    working grid.

    ``multispectral`` (6, rows, W) and ``pan`` (1, 2 rows, 2 W) are reflectance with invalid
    pixels set to 0; ``valid`` (rows, W) is True where all six bands have data.
    """

    row0: int
    col0: int
    multispectral: np.ndarray
    pan: np.ndarray | None
    valid: np.ndarray

    def window(self, row: int, col: int, rows: int, cols: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Bands (6, rows, cols) and data mask of the 30 m pixels ``[row, row + rows)`` x
        ``[col, col + cols)`` (working-grid indices; cut short where the strip ends)."""
        first, left = row - self.row0, col - self.col0
        return (self.multispectral[:, first:first + rows, left:left + cols],
                self.valid[first:first + rows, left:left + cols])

    def fine_valid(self, out_row0: int, out_col0: int, rows: int, cols: int,
                   scale: int) -> np.ndarray:
        """The data mask on ``rows`` x ``cols`` pixels of the fine grid (``scale`` x
        ``scale`` per 30 m pixel) from fine pixel ``(out_row0, out_col0)``, ``out_col0`` a
        multiple of ``scale``: each 30 m pixel's flag over the fine pixels inside it."""
        first = out_row0 // scale - self.row0
        left = out_col0 // scale - self.col0
        valid30 = self.valid[first:first + math.ceil(rows / scale) + 1,
                             left:left + math.ceil(cols / scale)]
        valid = valid30.repeat(scale, axis=0).repeat(scale, axis=1)
        offset = out_row0 - scale * (self.row0 + first)
        return valid[offset:offset + rows, :cols]

    def output_mask(self, out_row0: int, out_col0: int, mean: np.ndarray, fill: np.ndarray,
                    flagged: np.ndarray, scale: int) -> np.ndarray:
        """Mask band values of the output block ``mean`` (6, rows, cols) at fine pixel
        ``(out_row0, out_col0)``: :data:`~s2l8h.io.cog.MASK_NODATA` where the 30 m input or
        the prediction has no data or the quality band says ``fill``,
        :data:`~s2l8h.io.cog.MASK_FLAGGED` where it flags the pixel, else ``MASK_VALID``."""
        rows, cols = mean.shape[1:]
        valid = self.fine_valid(out_row0, out_col0, rows, cols, scale) & \
            np.isfinite(mean).all(axis=0) & ~fill
        mask = np.full(valid.shape, MASK_NODATA, dtype=np.uint8)
        mask[valid] = MASK_VALID
        mask[valid & flagged] = MASK_FLAGGED
        return mask


def _bounds_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class ReaderClosedError(InputError):
    """A read was asked of a :class:`SceneReader` after it was closed (a run being torn
    down)."""


class SceneReader:
    """Opens the scene's files once and reads windows of them on the working grids."""

    def __init__(self, scene: LandsatScene, lowres: GeoBox, pan_grid: GeoBox, fine: GeoBox,
                 convention: PanRequest,
                 mask_flags: tuple[str, ...] = DEFAULT_MASK_FLAGS,
                 pan_shift_m: tuple[float, float] = (0.0, 0.0),
                 scene_shift_m: tuple[float, float] = (0.0, 0.0), pan_margin: int = 0) -> None:
        """``lowres``, ``pan_grid``, ``fine``: the 30 m, 15 m and 10 m working grids;
        ``convention``: whether and how to read the pan (a model's ``InputConvention`` or a
        :class:`ReadInputs`); ``mask_flags``: quality flags read into the mask;
        ``pan_shift_m``: (dx east, dy north) metres by which the pan's content sits away
        from the bands'; the pan is read with its georeference moved back by that much.
        ``scene_shift_m``: the same for the whole scene against a reference (bands, pan and
        quality bands all moved back by it; :mod:`s2l8h.inference.coregister`).
        ``pan_margin``: pan pixels around ``pan_grid`` that :meth:`read_pan` may read too."""
        self.scene = scene
        self.pan_margin = pan_margin
        self.mask_flags = mask_flags
        self.pan_shift_m = pan_shift_m
        self.scene_shift_m = scene_shift_m
        self._stack = ExitStack()
        # Reads may run in other threads (prefetching, writing): close() waits for those in
        # flight, and a read after close() is an error, never a read of a closed dataset.
        self._reads = threading.Condition()
        self._active = 0
        self._closed = False
        try:
            self._open(scene, lowres, pan_grid, fine, convention)
        except BaseException:
            self._stack.close()
            raise

    def _vrt(self, path, grid: GeoBox, resampling: Resampling, nodata: float | None,
             shift_m: tuple[float, float] = (0.0, 0.0)):
        try:
            dataset = self._stack.enter_context(rasterio.open(path))
        except RasterioIOError as error:
            raise InputError(path, f"not a readable raster ({error})") from None
        if dataset.crs is None:
            raise InputError(path, "raster has no CRS")
        target = grid.boundingbox
        source = dataset.bounds
        from rasterio.warp import transform_bounds

        source_in_target = transform_bounds(dataset.crs, grid.crs.to_wkt(), *source)
        if not _bounds_overlap(source_in_target, tuple(target)):
            raise InputError(path, "does not overlap the output grid "
                             f"(raster bounds {tuple(round(v, 1) for v in source_in_target)}, "
                             f"grid bounds {tuple(round(v, 1) for v in target)})")
        fill = dataset.nodata if dataset.nodata is not None else nodata
        moved = {"src_transform": Affine.translation(-shift_m[0], -shift_m[1])
                 * dataset.transform} if tuple(shift_m) != (0.0, 0.0) else {}
        vrt = WarpedVRT(dataset, crs=grid.crs.to_wkt(), transform=grid.affine, width=grid.width,
                        height=grid.height, resampling=resampling, src_nodata=fill,
                        nodata=fill, **moved)
        return self._stack.enter_context(vrt), fill, dataset

    def _open(self, scene: LandsatScene, lowres: GeoBox, pan_grid: GeoBox, fine: GeoBox,
              convention: PanRequest) -> None:
        self.lowres = lowres
        self.fine = fine
        self.multispectral = []
        rescaling = scene.multispectral_rescaling()
        for (path, band), (scale, offset) in zip(scene.multispectral_sources(), rescaling,
                                                  strict=True):
            vrt, fill, dataset = self._vrt(path, lowres, Resampling.cubic, 0,
                                           self.scene_shift_m)
            if band > dataset.count:
                raise InputError(path, f"has {dataset.count} band(s), band {band} is needed")
            self.multispectral.append((vrt, band, fill, scale, offset, path))
        if scene.stacked:
            count = self.multispectral[0][0].count
            if count not in (6, 7):
                raise InputError(scene.multispectral[0], f"stacked SR file has {count} bands; "
                                 "expected 6 (blue, green, red, nir08, swir16, swir22)")
        self.pan = None
        if convention.use_pan:
            if scene.pan is None:
                raise InputError(None, "the model needs the panchromatic band; none was found")
            sun_corrected = convention.pan_radiometry == PAN_TOA_SUN_CORRECTED
            scale, offset = scene.pan_rescaling(sun_corrected)
            pan_shift = (self.pan_shift_m[0] + self.scene_shift_m[0],
                         self.pan_shift_m[1] + self.scene_shift_m[1])
            vrt, fill, _ = self._vrt(scene.pan, pan_grid.pad(self.pan_margin)
                                     if self.pan_margin else pan_grid, PAN_RESAMPLING, 0,
                                     pan_shift)
            self.pan = (vrt, 1, fill, scale, offset, scene.pan)
        self.quality = self.radsat = None
        if scene.qa is not None:
            self.quality, _, _ = self._vrt(scene.qa, fine, Resampling.nearest, None,
                                           self.scene_shift_m)
        if scene.radsat is not None and "saturated" in self.mask_flags:
            self.radsat, _, _ = self._vrt(scene.radsat, fine, Resampling.nearest, None,
                                          self.scene_shift_m)

    def close(self) -> None:
        """Close the files once no read is in flight."""
        with self._reads:
            self._closed = True
            while self._active:
                self._reads.wait()
        self._stack.close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._reads:
            if self._closed:
                raise ReaderClosedError(None, "the scene reader is closed")
            self._active += 1
        try:
            yield
        finally:
            with self._reads:
                self._active -= 1
                self._reads.notify_all()

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _read(source, window: Window) -> tuple[np.ndarray, np.ndarray]:
        vrt, band, fill, scale, offset, path = source
        digital_numbers = vrt.read(band, window=window)
        if np.issubdtype(digital_numbers.dtype, np.floating) and \
                np.isnan(digital_numbers).any():
            raise InputError(path, "contains NaN values; Landsat digital numbers are integers "
                             "(mark missing data with a nodata value)")
        valid = digital_numbers != fill if fill is not None else \
            np.ones(digital_numbers.shape, dtype=bool)
        reflectance = digital_numbers.astype(np.float32) * np.float32(scale) + np.float32(offset)
        reflectance[~valid] = 0.0
        return reflectance, valid

    def read_strip(self, row0: int, rows: int, col0: int = 0, cols: int | None = None,
                   with_pan: bool = True) -> Strip:
        """Reflectance (unitless) of rows ``[row0, row0 + rows)`` and ``cols`` columns from
        ``col0`` (default: to the right edge) of the 30 m grid, with the matching 15 m pan
        (none with ``with_pan`` false: a caller that reads it with :meth:`read_pan`)."""
        cols = self.lowres.width - col0 if cols is None else cols
        window = Window(col0, row0, cols, rows)
        bands, valid = [], np.ones((rows, cols), dtype=bool)
        with self._reading():
            for source in self.multispectral:
                reflectance, band_valid = self._read(source, window)
                bands.append(reflectance)
                valid &= band_valid
            pan = None
            if self.pan is not None and with_pan:
                pan = self._read_pan(row0, rows, col0, cols, 0)[None]
        return Strip(row0, col0, np.stack(bands), pan, valid)

    def read_pan(self, row0: int, rows: int, col0: int, cols: int, margin: int = 0
                 ) -> np.ndarray:
        """The pan's reflectance (2 rows + 2 margin, 2 cols + 2 margin; 0 = no data) under
        30 m rows ``[row0, row0 + rows)`` and columns ``[col0, col0 + cols)``, with
        ``margin`` pan pixels around (at most the reader's ``pan_margin``)."""
        if self.pan is None:
            raise InputError(None, "the scene was opened without its pan")
        if not 0 <= margin <= self.pan_margin:
            raise ValueError(f"a margin of {margin} pan pixels: 0 to the reader's pan_margin "
                             f"({self.pan_margin})")
        with self._reading():
            return self._read_pan(row0, rows, col0, cols, margin)

    def _read_pan(self, row0: int, rows: int, col0: int, cols: int, margin: int
                  ) -> np.ndarray:
        first = self.pan_margin - margin
        window = Window(2 * col0 + first, 2 * row0 + first, 2 * cols + 2 * margin,
                        2 * rows + 2 * margin)
        return self._read(self.pan, window)[0]

    def block_mask(self, strip: Strip, out_row0: int, out_col0: int, mean: np.ndarray,
                   scale: int) -> np.ndarray:
        """The mask band of the output block ``mean`` at fine pixel ``(out_row0,
        out_col0)``, made from ``strip`` (its data mask) and the quality band under the
        block (:meth:`Strip.output_mask`)."""
        fill, flagged = self.read_quality(out_row0, mean.shape[1], out_col0, mean.shape[2])
        return strip.output_mask(out_row0, out_col0, mean, fill, flagged, scale)

    def read_flagged(self, row0: int, rows: int, col0: int = 0, cols: int | None = None
                     ) -> np.ndarray:
        """Where the quality band flags any of ``mask_flags`` in a 30 m pixel (any of its 10 m
        pixels), rows ``[row0, row0 + rows)`` and ``cols`` columns from ``col0`` of the 30 m
        grid; all False without a quality band."""
        cols = self.lowres.width - col0 if cols is None else cols
        scale = round(self.lowres.resolution.x / self.fine.resolution.x)
        _, flagged = self.read_quality(scale * row0, scale * rows, scale * col0, scale * cols)
        return flagged.reshape(rows, scale, cols, scale).any(axis=(1, 3))

    def read_quality(self, row0: int, rows: int, col0: int, width: int
                     ) -> tuple[np.ndarray, np.ndarray]:
        """``(fill, masked)`` for rows ``[row0, row0 + rows)``, columns ``[col0, col0 +
        width)`` of the 10 m grid."""
        if self.quality is None or self.scene.qa_layout is None:
            none = np.zeros((rows, width), dtype=bool)
            return none, none
        window = Window(col0, row0, width, rows)
        with self._reading():
            qa = self.quality.read(self.scene.qa_band, window=window)
            radsat = self.radsat.read(1, window=window) if self.radsat is not None else None
        return quality_mask(qa, self.scene.qa_layout, self.mask_flags, radsat)
