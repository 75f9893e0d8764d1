"""The pan registered to the bands block by block.

On real Landsat the pan's shift against the bands is not one number per scene. On the
Florida scene (pre-collection Level-1T, 2015), measured on blocks of 4.8 km with the pixels
its quality band flags as cloud or shadow left out, 9 of 16 blocks lie within 2 m of the
bands, four are shifted (-0.9 to -2.4, -3.3 to -5.7) m (east, north) and two the other way,
(+2.4 to +2.7, +4.5 to +4.8) m (``benchmarks/pan_registration.py`` prints the map). One shift
for the scene cannot be right in all of them.

So before the run :func:`measure_pan_map` measures the shift on every block of a fixed
lattice that the output's footprint meets: :data:`~s2l8h.io.grid.PAN_BLOCK` pixels square of
the scene's band grid, edges at multiples of the block from the grid's pixel phase, so that
a scene read whole and its window read for an AOI give the same blocks
(:func:`s2l8h.io.grid.block_cover`; ``harmonize-many`` fetches them). On each block the shift
is measured as the input checks measure the scene's
(:func:`s2l8h.inference.checks.measure_pan_shift`; pixels the quality band flags left out),
and believed only where moving the bands' intensity by it leaves at least
:data:`MIN_DECORRELATION_DROP` less of its decorrelation from the pan than the scene's
correction does: elsewhere (water, haze) the scene's correction stands. A block with too few
pixels to measure (cut by the scene's edge, under clouds) takes the correction of the nearest
measured block (one whose own shift was believed among equally near ones). None is applied
at or below 2 m. :meth:`PanShiftMap.apply` then moves each strip's pan by the correction
interpolated bilinearly between the blocks' centres (so near a boundary between parts it
passes from one to the other over a block's width), read with a margin so that no strip has
an edge of its own; cubic B-spline resampling (``scipy.ndimage.map_coordinates``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace

import numpy as np
from odc.geo.geobox import GeoBox
from scipy import ndimage

from s2l8h.inference.checks import (
    SHIFT_TOLERANCE_M,
    measure_pan_shift,
    pan_intensity,
    shift_magnitude,
)
from s2l8h.io.grid import PAN_BLOCK, WorkingGrids, block_cover
from s2l8h.io.landsat import LandsatScene
from s2l8h.io.reader import PanRequest, SceneReader, Strip

#: Fewest 30 m pixels with data in bands and pan, not flagged, for a block's measurement,
#: and its least extent on each axis (a block cut by the scene's edge to a strip of a few
#: dozen pixels is not measured).
MIN_BLOCK_PIXELS = 2048
MIN_BLOCK_SIDE = PAN_BLOCK // 4
#: Larger measured shifts (metres) are not a registration error of the pan: not believed.
MAX_PAN_SHIFT_M = 30.0
#: Least share of the decorrelation between pan and bands that a block's own shift must take
#: off, against the scene's correction, to be believed.
MIN_DECORRELATION_DROP = 0.05
#: The margin (pan pixels) read around each strip's pan to move it: the cubic B-spline's
#: prefilter is global, and over 16 pixels an edge's error falls below 1e-9.
PAN_MARGIN = 16


@dataclass(frozen=True)
class BlockShift:
    """One block: its centre (x, y in the band grid's CRS), the pan's shift measured there
    (dx east, dy north, metres; ``None``: too few pixels or beyond
    :data:`MAX_PAN_SHIFT_M`), whether it was believed, and the correction applied there."""

    x: float
    y: float
    measured: tuple[float, float] | None
    believed: bool
    corrected: tuple[float, float]


def decorrelation(bands: np.ndarray, pan: np.ndarray, usable: np.ndarray,
                  shifts: list[tuple[float, float]], pixel: float = 30.0) -> list[float]:
    """1 - r between the pan (2 x 2 mean) and the bands' fitted intensity
    (:func:`s2l8h.inference.checks.pan_intensity`) moved by each of ``shifts`` (dx east, dy
    north, metres; band pixels of ``pixel`` metres), over the usable pixels 3 away from the
    edges."""
    intensity, pan30 = pan_intensity(bands, pan, usable)
    inner = usable.copy()
    inner[:3], inner[-3:], inner[:, :3], inner[:, -3:] = False, False, False, False
    found = []
    for dx, dy in shifts:
        moved = ndimage.shift(intensity, (-dy / pixel, dx / pixel), order=3, mode="nearest")
        found.append(float(1.0 - np.corrcoef(moved[inner], pan30[inner])[0, 1])
                     if inner.sum() > 2 else math.nan)
    return found


def judge_block(bands: np.ndarray, pan: np.ndarray, usable: np.ndarray,
                fallback: tuple[float, float], tolerance: float = SHIFT_TOLERANCE_M,
                pixel: float = 30.0
                ) -> tuple[tuple[float, float] | None, bool, tuple[float, float]]:
    """One block's (measured shift or ``None``, believed, correction), on band pixels of
    ``pixel`` metres: its own shift where it has :data:`MIN_BLOCK_PIXELS` usable pixels and
    :data:`MIN_BLOCK_SIDE` on each axis, lies within :data:`MAX_PAN_SHIFT_M` and
    leaves at least :data:`MIN_DECORRELATION_DROP` less decorrelation than ``fallback`` (the
    scene's correction) does; else ``fallback``; none at or below ``tolerance``."""
    measured, believed = None, False
    if usable.sum() >= MIN_BLOCK_PIXELS and min(usable.shape) >= MIN_BLOCK_SIDE:
        shift = measure_pan_shift(bands, pan, usable, pixel)
        if shift_magnitude(shift) <= MAX_PAN_SHIFT_M:
            measured = shift
            own, scene = decorrelation(bands, pan, usable, [shift, fallback], pixel)
            believed = bool(own <= (1.0 - MIN_DECORRELATION_DROP) * scene)
    corrected = measured if believed and measured is not None else fallback
    if shift_magnitude(corrected) <= tolerance:
        corrected = (0.0, 0.0)
    return measured, believed, (float(corrected[0]), float(corrected[1]))


@dataclass
class PanShiftMap:
    """The corrections on a lattice of blocks (:func:`measure_pan_map`): ``blocks`` row by
    row from the north, ``shape`` (rows, columns) of blocks, ``origin`` the north-west corner
    of the first block and ``side`` a block's side (metres, the band grid's CRS)."""

    blocks: list[BlockShift]
    shape: tuple[int, int]
    origin: tuple[float, float]
    side: float
    _fields: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fields = np.array([block.corrected for block in self.blocks],
                                dtype=np.float64).reshape(*self.shape, 2)

    @property
    def corrects(self) -> bool:
        """Whether any block's pan is moved."""
        return bool(self._fields.any())

    def correction(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) metres at points ``x``, ``y`` (the band grid's CRS): bilinear between
        the blocks' centres, the nearest block's beyond them."""
        rows = (self.origin[1] - y) / self.side - 0.5
        cols = (x - self.origin[0]) / self.side - 0.5
        return tuple(ndimage.map_coordinates(self._fields[..., k], [rows, cols], order=1,
                                             mode="nearest") for k in range(2))

    def apply(self, strip: Strip, reader: SceneReader, pan_grid: GeoBox,
              offset: tuple[float, float] = (0.0, 0.0)) -> Strip:
        """``strip`` (read with or without its pan) with its pan, read by ``reader`` (opened
        with a pan margin of at least :data:`PAN_MARGIN`) with that margin around it and moved
        by the corrections; ``pan_grid`` the reader's 15 m grid; ``offset`` (metres) where
        the scene's content at a point of the working grids lies on the scene's own grid (a
        scene registered to a reference: its shift)."""
        if reader.pan is None:
            return strip
        rows, cols = (2 * side for side in strip.valid.shape)
        wide = reader.read_pan(strip.row0, rows // 2, strip.col0, cols // 2, PAN_MARGIN)
        if not self.corrects:
            pan = wide[PAN_MARGIN:PAN_MARGIN + rows, PAN_MARGIN:PAN_MARGIN + cols]
            return Strip(strip.row0, strip.col0, strip.multispectral, pan[None], strip.valid)
        row_index = np.arange(2 * strip.row0, 2 * strip.row0 + rows) + 0.5
        col_index = np.arange(2 * strip.col0, 2 * strip.col0 + cols) + 0.5
        xs, ys = pan_grid.affine * np.meshgrid(col_index, row_index)
        dx, dy = self.correction(xs + offset[0], ys + offset[1])
        grid_rows, grid_cols = np.meshgrid(np.arange(rows, dtype=np.float64) + PAN_MARGIN,
                                           np.arange(cols, dtype=np.float64) + PAN_MARGIN,
                                           indexing="ij")
        pan_pixel = pan_grid.resolution.x
        coordinates = np.stack([grid_rows - dy / pan_pixel, grid_cols + dx / pan_pixel])
        has_data = wide != 0
        filled = wide if has_data.all() else fill_nearest(wide, has_data)
        moved = ndimage.map_coordinates(filled.astype(np.float64), coordinates, order=3,
                                        mode="nearest").astype(wide.dtype)
        if not has_data.all():
            # A pixel has data where the pan pixel nearest to the point it samples has.
            moved[ndimage.map_coordinates(has_data, coordinates, order=0,
                                          mode="nearest") == 0] = 0
        return Strip(strip.row0, strip.col0, strip.multispectral, moved[None], strip.valid)

    def tags(self) -> dict[str, str]:
        """``S2L8H_PAN_SHIFT_LOCAL`` (the block side, how many blocks were measured, believed
        and corrected, the corrections' range) and ``S2L8H_PAN_SHIFT_BLOCKS`` (per block: x, y
        of its centre, measured dx, dy or nulls, believed, corrected dx, dy; metres)."""
        corrected = self._fields.reshape(-1, 2)
        return {
            "S2L8H_PAN_SHIFT_LOCAL": json.dumps({
                "block_m": self.side, "blocks": len(self.blocks),
                "measured": sum(block.measured is not None for block in self.blocks),
                "believed": sum(block.believed for block in self.blocks),
                "corrected": int(np.count_nonzero(corrected.any(axis=1))),
                "corrected_min_m": [round(float(v), 1) for v in corrected.min(axis=0)],
                "corrected_max_m": [round(float(v), 1) for v in corrected.max(axis=0)]}),
            "S2L8H_PAN_SHIFT_BLOCKS": json.dumps([
                [round(block.x), round(block.y),
                 *([round(v, 1) for v in block.measured] if block.measured else [None, None]),
                 block.believed, *[round(v, 1) for v in block.corrected]]
                for block in self.blocks])}

    def messages(self) -> list[str]:
        """A warning where the corrections differ across the scene by more than 5 m."""
        corrected = self._fields.reshape(-1, 2)
        spread = np.hypot(*(corrected.max(axis=0) - corrected.min(axis=0)))
        if spread <= 5.0:
            return []
        low, high = corrected.min(axis=0), corrected.max(axis=0)
        return [f"the pan's shift against the bands varies across the scene; corrected block "
                f"by block, from {low[0]:+.1f} to {high[0]:+.1f} m east and {low[1]:+.1f} to "
                f"{high[1]:+.1f} m north"]


def fill_nearest(image: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """``image`` with each pixel without data given its nearest pixel's value."""
    if not has_data.any():
        return image
    index = ndimage.distance_transform_edt(~has_data, return_distances=False,
                                           return_indices=True)
    return image[tuple(index)]


def measure_pan_map(scene: LandsatScene, footprint: GeoBox, convention: PanRequest,
                    mask_flags: tuple[str, ...], fallback: tuple[float, float],
                    tolerance: float = SHIFT_TOLERANCE_M, block: int = PAN_BLOCK
                    ) -> PanShiftMap | None:
    """The pan's corrections on the blocks ``footprint`` (the output grid) meets
    (:func:`block_cover` of the scene's band grid; module docstring), read from the scene
    block row by block row; pixels ``mask_flags`` flag are left out. ``fallback``: the
    scene's correction. ``None`` where the scene has no pan or the lattice meets nothing."""
    bands = scene.bands_grid()
    cover = block_cover(footprint, bands, block)
    if cover is None or scene.pan is None:
        return None
    pixel = bands.resolution.x
    side = block * pixel
    phase_x, phase_y = bands.affine.c % pixel, bands.affine.f % pixel
    west = phase_x + side * math.floor((cover.affine.c - phase_x) / side + 1e-9)
    north = phase_y + side * math.ceil((cover.affine.f - phase_y) / side - 1e-9)
    columns = math.ceil((cover.boundingbox.right - west) / side - 1e-9)
    rows = math.ceil((north - cover.boundingbox.bottom) / side - 1e-9)
    grids = WorkingGrids.from_bands(cover)
    blocks = []
    with SceneReader(scene, grids.bands, grids.pan, grids.fine, convention,
                     mask_flags) as reader:
        for i in range(rows):
            top = north - i * side
            row0 = max(0, round((cover.affine.f - top) / pixel))
            row1 = min(cover.height, round((cover.affine.f - top + side) / pixel))
            strip = reader.read_strip(row0, row1 - row0)
            pan = strip.pan[0]
            usable = strip.valid & ~reader.read_flagged(row0, row1 - row0) & (pan != 0).reshape(
                row1 - row0, 2, cover.width, 2).all(axis=(1, 3))
            for j in range(columns):
                left = west + j * side
                col0 = max(0, round((left - cover.affine.c) / pixel))
                col1 = min(cover.width, round((left + side - cover.affine.c) / pixel))
                measured, believed, corrected = judge_block(
                    strip.multispectral[:, :, col0:col1], pan[:, 2 * col0:2 * col1],
                    usable[:, col0:col1], fallback, tolerance, pixel)
                blocks.append(BlockShift(left + side / 2, top - side / 2, measured, believed,
                                         corrected))
    return PanShiftMap(_from_nearest_measured(blocks, (rows, columns)), (rows, columns),
                       (west, north), side)


def _from_nearest_measured(blocks: list[BlockShift], shape: tuple[int, int]
                           ) -> list[BlockShift]:
    """Blocks without a measurement (too few pixels: at the scene's edges, under clouds)
    given the correction of the nearest measured block, one whose own shift was believed
    among equally near ones (their mean if several), so that a sliver of a block at an edge
    does not pull its neighbours towards the scene's correction; as they are where no block
    was measured."""
    rows, cols = np.divmod(np.arange(len(blocks)), shape[1])
    measured = np.array([block.measured is not None for block in blocks])
    if measured.all() or not measured.any():
        return blocks
    believed = np.array([block.believed for block in blocks])
    corrections = np.array([block.corrected for block in blocks])
    found = []
    for index, block in enumerate(blocks):
        if measured[index]:
            found.append(block)
            continue
        distance = np.hypot(rows - rows[index], cols - cols[index])
        nearest = measured & (distance == distance[measured].min())
        if (nearest & believed).any():
            nearest &= believed
        shift = corrections[nearest].mean(axis=0)
        found.append(replace(block, corrected=(float(shift[0]), float(shift[1]))))
    return found


__all__ = ["MAX_PAN_SHIFT_M", "MIN_BLOCK_PIXELS", "MIN_BLOCK_SIDE", "MIN_DECORRELATION_DROP",
           "PAN_MARGIN", "BlockShift", "PanShiftMap", "decorrelation", "judge_block",
           "measure_pan_map"]
