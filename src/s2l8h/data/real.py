"""Real Landsat scenes for training and scoring by the reduced-resolution protocol (Wald et
al. 1997, Photogramm. Eng. Remote Sens. 63(6), 691-699).

A real scene's 30 m bands and 15 m pan are degraded 3 x (:func:`~s2l8h.resolution.
reduce_resolution`: the Gaussian PSF with modulation 0.3 at the coarse Nyquist frequency, then
the 3 x 3 area average: 90 m bands, 45 m pan); the real 30 m bands are the target. No
Sentinel-2 image is needed, so the network learns from real Landsat radiometry, noise, pan
response and registration (self-supervised, as PNN and PanNet train pansharpening networks),
under the protocol's usual assumption that the mapping holds across a 3 x change of scale.

:class:`RealWaldPairs` returns TorchGeo-style sample dicts with the keys of
:class:`~s2l8h.data.pairs.SimulatedPairs` (so both mix in one batch):

- ``image`` (6, s, s) reflectance of the 90 m bands, ``pan`` (1, 2s, 2s) of the 45 m pan (in
  the model's pan convention), ``target`` (6, 3s, 3s) the real 30 m bands brought to
  Sentinel-2 radiometry by the inverse HLS bandpass (S2A), so that a network predicting
  Sentinel-2 is scored as the Wald benchmark scores it (``msi_to_oli`` of the prediction
  against the real bands, up to the bandpass slopes, 0.98-1.005);
- ``valid`` (1, 3s, 3s): target pixels with data and not flagged by the quality band (cloud,
  shadow, fill): losses are averaged over these only;
- ``crs``, ``bounds`` (left, bottom, right, top of the 30 m target window, before the
  symmetry), ``scene``, ``noise_scale`` (NaN: real noise, not drawn).

Each of the Train / Validation / Test bands of rows (top down) is degraded on its own, so no
input pixel sees rows of another band.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import rasterio
import torch
from odc.geo.geobox import GeoBox
from torch.utils.data import Dataset

from s2l8h.bandpass import oli_to_msi
from s2l8h.data.patches import SPLITS, split_rows
from s2l8h.data.transforms import dihedral
from s2l8h.errors import InputError
from s2l8h.io.grid import WorkingGrids
from s2l8h.io.landsat import LandsatScene, open_scene
from s2l8h.io.quality import DEFAULT_MASK_FLAGS
from s2l8h.io.reader import SceneReader
from s2l8h.models.convention import InputConvention
from s2l8h.resolution import reduce_resolution

#: Reduced-resolution factor of the protocol.
FACTOR = 3
#: A window is drawn when at least this share of its target pixels is scored.
MIN_SCORED = 0.8


@dataclass
class RealScene:
    """A real Landsat scene read for the reduced-resolution protocol.

    ``bands`` (6, H, W) reflectance on ``grid30`` (the bands' own 30 m grid, H and W multiples
    of 9), ``pan`` (1, 2H, 2W) on ``grid15`` (same outer edges; the model's pan convention),
    ``has_data`` (H, W) where every band and the pan have data, ``scored`` (H, W) has data and
    is not flagged by the quality band, ``sun_sine`` the sine of the sun elevation.
    """

    scene: LandsatScene
    bands: np.ndarray
    pan: np.ndarray
    has_data: np.ndarray
    scored: np.ndarray
    grid30: GeoBox
    grid15: GeoBox
    sun_sine: float


def _crop(grid: GeoBox, bounds: tuple[float, float, float, float]) -> GeoBox:
    """The part of ``grid`` inside ``bounds`` (left, bottom, right, top; whole pixels)."""
    affine = grid.affine
    col0 = max(0, math.ceil((bounds[0] - affine.c) / affine.a - 1e-9))
    col1 = min(grid.width, math.floor((bounds[2] - affine.c) / affine.a + 1e-9))
    row0 = max(0, math.ceil((bounds[3] - affine.f) / affine.e - 1e-9))
    row1 = min(grid.height, math.floor((bounds[1] - affine.f) / affine.e + 1e-9))
    if row1 <= row0 or col1 <= col0:
        raise InputError(None, f"bounds {bounds} do not overlap the scene")
    return grid[row0:row1, col0:col1]


def read_real_scene(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                    toa: bool = False, convention: InputConvention | None = None,
                    mask_flags: tuple[str, ...] = DEFAULT_MASK_FLAGS,
                    bounds: tuple[float, float, float, float] | None = None) -> RealScene:
    """Read a real scene's bands, pan and masks (see :class:`RealScene`), cropped to
    ``bounds`` (CRS units) and to multiples of 9 pixels of 30 m (so that the 90 m grid nests
    it and the 45 m grid has whole pixels)."""
    scene = open_scene(inputs, toa=toa, need_pan=True)
    convention = convention or InputConvention(input_grid="native")
    with rasterio.open(scene.multispectral[0]) as dataset:
        native = GeoBox.from_rio(dataset)
    if bounds is not None:
        native = _crop(native, bounds)
    rows, cols = (native.height // 9) * 9, (native.width // 9) * 9
    if rows == 0 or cols == 0:
        raise InputError(scene.multispectral[0], "too small for the reduced-resolution "
                         "protocol (needs at least 9 x 9 pixels of 30 m)")
    grids = WorkingGrids.from_bands(native.crop((rows, cols)))
    grid30, grid15, grid10 = grids.bands, grids.pan, grids.fine
    with SceneReader(scene, grid30, grid15, grid10, convention, mask_flags) as reader:
        strip = reader.read_strip(0, rows)
        fill, flagged = reader.read_quality(0, 3 * rows, 0, 3 * cols)
    excluded = (fill | flagged).reshape(rows, 3, cols, 3).any(axis=(1, 3))
    pan_valid = strip.pan[0] != 0
    has_data = strip.valid & pan_valid.reshape(rows, 2, cols, 2).all(axis=(1, 3))
    scored = has_data & ~excluded
    if not scored.any():
        raise InputError(scene.multispectral[0], "no valid pixel (all no data or flagged)")
    assert scene.pan_metadata is not None
    return RealScene(scene, strip.multispectral, strip.pan, has_data, scored, grid30, grid15,
                     scene.pan_metadata.sun_elevation_sine)


def reduce_scene(real: RealScene, rows: slice | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The protocol's inputs for ``rows`` (30 m rows, start and length multiples of 3; all by
    default): 90 m bands (6, h, w) float32, 45 m pan (1, 2h, 2w) float32 and the 90 m data
    mask (h, w)."""
    rows = rows or slice(0, real.bands.shape[1])
    pan_rows = slice(2 * rows.start, 2 * rows.stop)
    bands90, valid90 = reduce_resolution(real.bands[:, rows], real.has_data[rows],
                                         real.grid30.affine.a, FACTOR)
    pan = real.pan[:, pan_rows]
    pan45, _ = reduce_resolution(pan, pan[0] != 0, real.grid15.affine.a, FACTOR)
    return bands90.astype(np.float32), pan45.astype(np.float32), valid90


@dataclass(frozen=True)
class RealSource:
    """A real Landsat scene for reduced-resolution training pairs: ``path`` (scene folder or
    files), ``toa`` (Level-1 scene read as TOA reflectance), ``fractions`` (Train,
    Validation, Test shares of the rows, top down), ``radiometry`` and ``source``
    (provenance) as the model card states them."""

    path: str
    toa: bool = False
    fractions: tuple[float, float, float] = (0.55, 0.17, 0.28)
    radiometry: str = ""
    source: str = ""


@dataclass
class _SplitArrays:
    bands90: np.ndarray
    pan45: np.ndarray
    valid90: np.ndarray
    target: np.ndarray  # (6, 3h, 3w) Sentinel-2 radiometry
    scored: np.ndarray  # (3h, 3w)
    grid30: GeoBox
    name: str


@dataclass
class _Windows:
    arrays: _SplitArrays
    starts: list[tuple[int, int]] = field(default_factory=list)


def _split_arrays(real: RealScene, first: int, last: int, name: str) -> _SplitArrays:
    first, last = math.ceil(first / FACTOR) * FACTOR, (last // FACTOR) * FACTOR
    rows = slice(first, last)
    bands90, pan45, valid90 = reduce_scene(real, rows)
    target = oli_to_msi(np.where(real.has_data[rows], real.bands[:, rows], 0).astype(
        np.float32))
    return _SplitArrays(bands90, pan45, valid90, target, real.scored[rows],
                        real.grid30[first:last], name)


class RealWaldPairs(Dataset):
    """Reduced-resolution pairs from the ``split`` rows of real Landsat ``sources``.

    ``size``: window size in 90 m (input) pixels; ``length``: samples per epoch; ``fixed``:
    draws fixed by ``seed`` and the index (validation/test) instead of random; ``augment``:
    random dihedral symmetry; ``convention``: the model's input convention (pan radiometry).
    A window is used when its input has data everywhere and at least :data:`MIN_SCORED` of
    its target pixels are scored. ``noise_free_twin``: the samples also hold
    ``image_noise_free`` and ``pan_noise_free`` as :class:`s2l8h.data.pairs.SimulatedPairs`
    gives them, here the input itself (its noise is unknown; ``noise_scale`` is NaN), so the
    two datasets can share batches.
    """

    def __init__(self, sources: Sequence[RealSource], split: str = "Train", *,
                 size: int = 32, length: int = 512, fixed: bool = False, seed: int = 0,
                 augment: bool = True, convention: InputConvention | None = None,
                 transforms: Callable[[dict], dict] | None = None,
                 noise_free_twin: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split, self.size, self.length = split, size, length
        self.fixed, self.seed, self.augment, self.transforms = fixed, seed, augment, transforms
        self.noise_free_twin = noise_free_twin
        self.windows: list[_Windows] = []
        for source in sources:
            real = read_real_scene(source.path, toa=source.toa, convention=convention)
            first, last = split_rows(real.bands.shape[1], tuple(source.fractions))[split]
            arrays = _split_arrays(real, first, last, real.scene.name)
            windows = _Windows(arrays)
            rows, cols = arrays.valid90.shape
            for row in range(rows - size + 1):
                for col in range(cols - size + 1):
                    scored = arrays.scored[3 * row:3 * (row + size), 3 * col:3 * (col + size)]
                    if arrays.valid90[row:row + size, col:col + size].all() and \
                            scored.mean() >= MIN_SCORED:
                        windows.starts.append((row, col))
            if windows.starts:
                self.windows.append(windows)
        if not self.windows:
            raise InputError(None, f"no real scene has a {size} px window of 90 m with "
                             f"{MIN_SCORED:.0%} clear pixels in its {split} rows (scenes: "
                             + ", ".join(source.path for source in sources) + ")")
        counts = np.array([len(windows.starts) for windows in self.windows], dtype=float)
        self.weights = counts / counts.sum()

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        if self.fixed:
            return np.random.default_rng([self.seed, SPLITS.index(self.split), index, 7])
        return np.random.default_rng(int(torch.randint(2**62, ())))

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        windows = self.windows[int(rng.choice(len(self.windows), p=self.weights))]
        row, col = windows.starts[int(rng.integers(len(windows.starts)))]
        arrays, size = windows.arrays, self.size
        fine = (slice(3 * row, 3 * (row + size)), slice(3 * col, 3 * (col + size)))
        tensors = {
            "image": arrays.bands90[:, row:row + size, col:col + size],
            "pan": arrays.pan45[:, 2 * row:2 * (row + size), 2 * col:2 * (col + size)],
            "target": arrays.target[(slice(None), *fine)],
            "valid": arrays.scored[fine][None],
        }
        rotations, flip = (int(rng.integers(4)), bool(rng.integers(2))) if self.augment \
            else (0, False)
        sample: dict = {key: dihedral(torch.from_numpy(np.ascontiguousarray(value)),
                                      rotations, flip) for key, value in tensors.items()}
        window = arrays.grid30[fine]
        sample.update(crs=f"EPSG:{window.crs.epsg}" if window.crs.epsg else window.crs.wkt,
                      bounds=tuple(window.boundingbox), scene=arrays.name,
                      noise_scale=float("nan"))
        if self.noise_free_twin:
            sample.update(image_noise_free=sample["image"], pan_noise_free=sample["pan"])
        return self.transforms(sample) if self.transforms is not None else sample
