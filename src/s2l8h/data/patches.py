"""Training patches on disk, in the layout of the paper's code, and a torch Dataset over them.

A dataset is a folder::

    patches.csv                                  # one row per patch (metadata, quality, split)
    patches/<Split>/<scene>/<patch_id>.h5         # s2_image, l8_image, l8_pan (float32)

Each HDF5 file holds ``s2_image`` (6, 3s, 3s) Sentinel-2 reflectance (B02 … B12) at 10 m,
``l8_image`` (6, s, s) Landsat reflectance (blue … swir22) at 30 m and ``l8_pan`` (1, 2s, 2s)
the pan ρ' at 15 m, all three on grids with the same outer edges (the Landsat bands warped onto
the 30 m grid that nests the Sentinel-2 pixels, as ``s2l8h harmonize`` reads them). The CSV
keeps the paper's columns (``patch_id``, ``pair_path``, ``location``, ``date``, ``geometry``,
``ssim``, ``psnr``, ``pair_type``) plus ``scene_landsat``, ``scene_sentinel2``, ``bounds``,
``crs``, ``valid_fraction`` (the least of the shares of 30 m pixels whose bands and pan,
and of 10 m pixels whose Sentinel-2 bands, are finite). ``pair_type`` is ``Train``,
``Validation`` or ``Test``; splits are spatially disjoint regions of each scene.

Quality (the paper's cloud/change filter): SSIM and PSNR (data range 1) between the
Sentinel-2 patch and the bicubic ×3 Landsat patch; kept when ``ssim >= 0.81`` and
``psnr > 22`` (configurable).

Writing a dataset is sampling (:class:`GridSampler` gives the windows, in 30 m pixels),
cutting (:func:`cut_patch`: the arrays and the table row of one window) and writing
(:func:`write_patch`, :func:`write_table`). Reading: :class:`PatchDataset` gives TorchGeo-style
sample dicts, like :class:`s2l8h.data.pairs.SimulatedPairs`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from torch.utils.data import Dataset

from s2l8h.data.transforms import dihedral as dihedral  # re-exported: data.pairs uses it
from s2l8h.errors import InputError
from s2l8h.io.grid import WorkingGrids, warp
from s2l8h.similarity import psnr, ssim

SPLITS = ("Train", "Validation", "Test")
CSV_NAME = "patches.csv"
COLUMNS = ("patch_id", "pair_path", "location", "date", "geometry", "ssim", "psnr",
           "pair_type", "scene_landsat", "scene_sentinel2", "bounds", "crs", "valid_fraction")


@dataclass(frozen=True)
class QualityFilter:
    """Which patches a dataset keeps: SSIM at least ``min_ssim``, PSNR (dB, data range 1)
    above ``min_psnr``, and at least ``min_valid_fraction`` of the pixels valid (0..1)."""

    min_ssim: float = 0.81
    min_psnr: float = 22.0
    min_valid_fraction: float = 1.0

    def keeps(self, row: dict) -> bool:
        """Whether the table row (values as numbers or their strings) passes."""
        return (float(row["ssim"]) >= self.min_ssim and float(row["psnr"]) > self.min_psnr
                and float(row["valid_fraction"]) >= self.min_valid_fraction)


def aligned_inputs(multispectral: np.ndarray, lowres: GeoBox, pan: np.ndarray,
                   pan_grid: GeoBox, target: GeoBox) -> tuple[np.ndarray, np.ndarray, GeoBox]:
    """Warp Landsat bands (on their own 30 m grid) and pan (15 m) onto the 30 m / 15 m grids
    that share ``target``'s corner (GDAL cubic, like the harmonize reader)."""
    grids = WorkingGrids.from_fine(target).crop(target.height // 3, target.width // 3)
    grid30, grid15 = grids.bands, grids.pan
    return (warp(multispectral, lowres, grid30, Resampling.cubic),
            warp(pan, pan_grid, grid15, Resampling.cubic)[None], grid30)


def split_rows(rows: int, fractions: tuple[float, float, float] = (0.6, 0.1, 0.3)
               ) -> dict[str, tuple[int, int]]:
    """Row ranges (30 m pixels) of the Train / Validation / Test bands of a scene, top down."""
    if abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    edges = np.round(np.cumsum((0, *fractions)) * rows).astype(int)
    return {split: (int(edges[i]), int(edges[i + 1])) for i, split in enumerate(SPLITS)}


def upsampled_quality(l8_image: np.ndarray, s2_image: np.ndarray) -> tuple[float, float]:
    """(SSIM, PSNR) of Sentinel-2 against the bicubic ×3 Landsat patch."""
    upsampled = F.interpolate(torch.from_numpy(l8_image)[None], scale_factor=3, mode="bicubic",
                              align_corners=False)[0].numpy()
    return ssim(upsampled, s2_image), psnr(upsampled, s2_image)


@dataclass(frozen=True)
class Window:
    """A square window of ``size`` × ``size`` 30 m pixels whose top-left pixel is (``row``,
    ``col``) of the 30 m grid, in ``split``; its pan and target windows are the same area
    on the 15 m and 10 m grids (2 and 3 times the pixels)."""

    split: str
    row: int
    col: int
    size: int


class GridSampler:
    """Windows of ``size`` 30 m pixels every ``stride`` pixels over a grid ``width`` pixels
    wide, split by split, top down and left to right (TorchGeo's ``GridGeoSampler`` idea, in
    pixels of one grid). ``splits`` maps a split to its row band ``(start, stop)``; a window
    lies entirely inside its band (windows across a boundary are not drawn, so splits never
    share a pixel)."""

    def __init__(self, splits: dict[str, tuple[int, int]], width: int, *, size: int = 32,
                 stride: int = 16) -> None:
        if size < 1 or stride < 1:
            raise ValueError(f"size and stride must be 1 or more, got {size} and {stride}")
        self.splits, self.width, self.size, self.stride = dict(splits), width, size, stride

    def _starts(self, start: int, stop: int) -> range:
        return range(start, stop - self.size + 1, self.stride)

    def __iter__(self) -> Iterator[Window]:
        for split, (row_start, row_stop) in self.splits.items():
            for row in self._starts(row_start, row_stop):
                for col in self._starts(0, self.width):
                    yield Window(split, row, col, self.size)

    def __len__(self) -> int:
        columns = len(self._starts(0, self.width))
        return sum(len(self._starts(*rows)) * columns for rows in self.splits.values())


def cut_patch(
    window: Window, multispectral: np.ndarray, pan: np.ndarray, target: np.ndarray,
    grid30: GeoBox, *, scene_landsat: str = "", scene_sentinel2: str = "", date: str = "",
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """``(row, l8_image, l8_pan, s2_image)`` of ``window``: reflectance (6, s, s) at 30 m,
    pan ρ' (1, 2s, 2s) at 15 m and Sentinel-2 reflectance (6, 3s, 3s) at 10 m, cut from
    arrays on the 30 m grid ``grid30`` and the 15 m / 10 m grids with its outer edges, and
    the patch's table row (``bounds``: left, bottom, right, top in CRS units; ``crs``;
    SSIM/PSNR and the valid fraction, see the module docstring)."""
    row0, col0, size = window.row, window.col, window.size
    l8 = multispectral[:, row0:row0 + size, col0:col0 + size]
    l8_pan = pan[:, 2 * row0:2 * (row0 + size), 2 * col0:2 * (col0 + size)]
    s2 = target[:, 3 * row0:3 * (row0 + size), 3 * col0:3 * (col0 + size)]
    # A 30 m pixel is valid where its six bands and its 2 x 2 pan pixels are finite.
    pan_finite = np.isfinite(l8_pan).all(axis=0).reshape(size, 2, size, 2).all(axis=(1, 3))
    finite = np.isfinite(l8).all(axis=0) & pan_finite
    s2_finite = np.isfinite(s2).all(axis=0)
    valid_fraction = float(min(finite.mean(), s2_finite.mean()))
    quality = upsampled_quality(l8, s2) if valid_fraction == 1.0 else (0.0, 0.0)
    affine = grid30.affine
    left, top = affine.c + col0 * affine.a, affine.f + row0 * affine.e
    right, bottom = left + size * affine.a, top + size * affine.e
    patch_id = f"{scene_landsat or 'scene'}_r{row0:05d}_c{col0:05d}"
    row = {
        "patch_id": patch_id, "pair_path": f"{scene_landsat}|{scene_sentinel2}",
        "location": scene_sentinel2, "date": date,
        "geometry": (f"POLYGON (({left} {bottom}, {right} {bottom}, {right} {top}, "
                     f"{left} {top}, {left} {bottom}))"),
        "ssim": quality[0], "psnr": quality[1], "pair_type": window.split,
        "scene_landsat": scene_landsat, "scene_sentinel2": scene_sentinel2,
        "bounds": f"{left},{bottom},{right},{top}", "crs": str(grid30.crs),
        "valid_fraction": valid_fraction,
    }
    return row, l8, l8_pan, s2


def extract_patches(
    multispectral: np.ndarray, pan: np.ndarray, target: np.ndarray, grid30: GeoBox, *,
    size: int = 32, stride: int = 16, splits: dict[str, tuple[int, int]] | None = None,
    scene_landsat: str = "", scene_sentinel2: str = "", date: str = "",
) -> Iterator[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield :func:`cut_patch` of every :class:`GridSampler` window: patches of ``size``
    30 m pixels every ``stride`` pixels, each inside one split's rows (``splits``, default
    :func:`split_rows` of the whole grid)."""
    splits = splits or split_rows(multispectral.shape[1])
    for window in GridSampler(splits, multispectral.shape[2], size=size, stride=stride):
        yield cut_patch(window, multispectral, pan, target, grid30,
                        scene_landsat=scene_landsat, scene_sentinel2=scene_sentinel2,
                        date=date)


def write_patch(folder: Path, row: dict, l8_image: np.ndarray, l8_pan: np.ndarray,
                s2_image: np.ndarray) -> Path:
    """Write one patch file at :func:`patch_path` (temporary name, then rename): the three
    arrays as float32 reflectance (pan: ρ'), gzip-compressed."""
    path = patch_path(folder, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with h5py.File(partial, "w") as handle:
        for name, data in (("s2_image", s2_image), ("l8_image", l8_image),
                           ("l8_pan", l8_pan)):
            handle.create_dataset(name, data=np.asarray(data, dtype=np.float32),
                                  compression="gzip", compression_opts=4)
        handle.attrs["units"] = "reflectance"
        handle.attrs["bands_s2"] = "B02,B03,B04,B8A,B11,B12"
        handle.attrs["bands_l8"] = "blue,green,red,nir08,swir16,swir22"
    os.replace(partial, path)
    return path


def write_patches(folder: Path,
                  patches: Iterable[tuple[dict, np.ndarray, np.ndarray, np.ndarray]],
                  min_valid_fraction: float = 1.0) -> list[dict]:
    """Write the patches (:func:`cut_patch` tuples) with at least ``min_valid_fraction`` of
    valid pixels; return their table rows."""
    rows = []
    for row, l8_image, l8_pan, s2_image in patches:
        if row["valid_fraction"] < min_valid_fraction:
            continue
        write_patch(folder, row, l8_image, l8_pan, s2_image)
        rows.append(row)
    return rows


def write_rows(path: Path, rows: Iterable[dict]) -> Path:
    """Write table rows (the :data:`COLUMNS`) as CSV at ``path`` (temporary name, then
    rename: a table is complete or absent)."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
    return path


def write_table(folder: Path, rows: Iterable[dict]) -> Path:
    """Write the dataset's table ``patches.csv`` in ``folder``."""
    return write_rows(folder / CSV_NAME, rows)


def read_table(folder: str | os.PathLike[str]) -> list[dict]:
    """The rows of ``folder``'s ``patches.csv`` (values as strings)."""
    path = Path(folder) / CSV_NAME
    if not path.is_file():
        raise InputError(path, "no patch table (build a dataset first)")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def patch_path(folder: Path, row: dict) -> Path:
    """``patches/<split>/<Landsat scene>/<patch_id>.h5`` under ``folder``."""
    return folder / "patches" / row["pair_type"] / (row.get("scene_landsat") or "scene") / \
        f"{row['patch_id']}.h5"


def read_patch(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(l8_image, l8_pan, s2_image)`` of a patch file, float32 reflectance (pan: ρ')."""
    with h5py.File(path, "r") as handle:
        return (handle["l8_image"][()], handle["l8_pan"][()], handle["s2_image"][()])


def georeference(row: dict, table: Path) -> dict[str, object]:
    """``crs`` (str) and ``bounds`` (left, bottom, right, top, CRS units) of a table row;
    empty when the row has neither (a hand-made table)."""
    crs, bounds = row.get("crs") or "", row.get("bounds") or ""
    if not crs and not bounds:
        return {}
    try:
        values = tuple(float(value) for value in bounds.split(","))
    except ValueError:
        values = ()
    if not crs or len(values) != 4:
        raise InputError(table, f"patch {row.get('patch_id')}: crs {crs!r} and bounds "
                         f"{bounds!r} are not a CRS and left,bottom,right,top")
    return {"crs": crs, "bounds": values}


class PatchDataset(Dataset):
    """Patches of one split that pass the quality filter, as TorchGeo-style sample dicts
    (the keys of :class:`s2l8h.data.pairs.SimulatedPairs`):

    - ``image``: (6, s, s) Landsat reflectance at 30 m (blue ... swir22), float32,
    - ``pan``: (1, 2s, 2s) pan ρ' at 15 m,
    - ``target``: (6, 3s, 3s) Sentinel-2 reflectance at 10 m (B02 ... B12),
    - ``crs`` (str, e.g. ``EPSG:32618``) and ``bounds`` (left, bottom, right, top of the
      patch in CRS units, metres for UTM), read from ``patches.csv``; a table whose rows
      leave both empty gives samples without these two keys (not ``None``, which torch's
      ``default_collate`` cannot batch),
    - ``patch_id`` (str).

    ``transforms``: a callable on the sample dict, applied last (for training e.g.
    :class:`s2l8h.data.transforms.RandomDihedral`). ``in_memory``: read every patch once.
    """

    def __init__(self, folder: str | os.PathLike[str], split: str = "Train", *,
                 quality: QualityFilter = QualityFilter(),
                 transforms: Callable[[dict], dict] | None = None,
                 in_memory: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(folder)
        self.rows = [row for row in read_table(self.folder)
                     if row["pair_type"] == split and quality.keeps(row)]
        self.georeference = [georeference(row, self.folder / CSV_NAME) for row in self.rows]
        self.transforms = transforms
        self.cache = [read_patch(patch_path(self.folder, row)) for row in self.rows] \
            if in_memory else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        arrays = self.cache[index] if self.cache is not None else \
            read_patch(patch_path(self.folder, self.rows[index]))
        image, pan, target = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
        sample = {"image": image, "pan": pan, "target": target,
                  **self.georeference[index], "patch_id": self.rows[index]["patch_id"]}
        return self.transforms(sample) if self.transforms is not None else sample
