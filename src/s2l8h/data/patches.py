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
``crs``, ``valid_fraction``. ``pair_type`` is ``Train``, ``Validation`` or ``Test``; splits are
spatially disjoint regions of each scene.

Quality (the paper's cloud/change filter): SSIM and PSNR (data range 1) between the
Sentinel-2 patch and the bicubic ×3 Landsat patch; kept when ``ssim >= 0.81`` and
``psnr > 22`` (configurable).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from torch.utils.data import Dataset

from s2l8h.errors import InputError
from s2l8h.evaluate.metrics import psnr, ssim
from s2l8h.io.grid import WorkingGrids, warp

SPLITS = ("Train", "Validation", "Test")
CSV_NAME = "patches.csv"
COLUMNS = ("patch_id", "pair_path", "location", "date", "geometry", "ssim", "psnr",
           "pair_type", "scene_landsat", "scene_sentinel2", "bounds", "crs", "valid_fraction")


@dataclass(frozen=True)
class QualityFilter:
    min_ssim: float = 0.81
    min_psnr: float = 22.0
    min_valid_fraction: float = 1.0

    def keeps(self, row: dict) -> bool:
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


def extract_patches(
    multispectral: np.ndarray, pan: np.ndarray, target: np.ndarray, grid30: GeoBox, *,
    size: int = 32, stride: int = 16, splits: dict[str, tuple[int, int]] | None = None,
    scene_landsat: str = "", scene_sentinel2: str = "", date: str = "",
) -> Iterator[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(row, l8_image, l8_pan, s2_image)`` for patches of ``size`` 30 m pixels every
    ``stride`` pixels; a patch belongs to the split whose row band contains it entirely
    (patches across a boundary are dropped, so splits never share a pixel)."""
    splits = splits or split_rows(multispectral.shape[1])
    affine = grid30.affine
    for split, (row_start, row_stop) in splits.items():
        for row0 in range(row_start, row_stop - size + 1, stride):
            for col0 in range(0, multispectral.shape[2] - size + 1, stride):
                l8 = multispectral[:, row0:row0 + size, col0:col0 + size]
                l8_pan = pan[:, 2 * row0:2 * (row0 + size), 2 * col0:2 * (col0 + size)]
                s2 = target[:, 3 * row0:3 * (row0 + size), 3 * col0:3 * (col0 + size)]
                finite = np.isfinite(l8).all(axis=0)
                s2_finite = np.isfinite(s2).all(axis=0)
                valid_fraction = float(min(finite.mean(), s2_finite.mean()))
                quality = upsampled_quality(l8, s2) if valid_fraction == 1.0 else (0.0, 0.0)
                left, top = affine.c + col0 * affine.a, affine.f + row0 * affine.e
                right, bottom = left + size * affine.a, top + size * affine.e
                patch_id = f"{scene_landsat or 'scene'}_r{row0:05d}_c{col0:05d}"
                row = {
                    "patch_id": patch_id, "pair_path": f"{scene_landsat}|{scene_sentinel2}",
                    "location": scene_sentinel2, "date": date,
                    "geometry": (f"POLYGON (({left} {bottom}, {right} {bottom}, {right} {top}, "
                                 f"{left} {top}, {left} {bottom}))"),
                    "ssim": quality[0], "psnr": quality[1], "pair_type": split,
                    "scene_landsat": scene_landsat, "scene_sentinel2": scene_sentinel2,
                    "bounds": f"{left},{bottom},{right},{top}", "crs": str(grid30.crs),
                    "valid_fraction": valid_fraction,
                }
                yield row, l8, l8_pan, s2


def write_patch(folder: Path, row: dict, l8_image: np.ndarray, l8_pan: np.ndarray,
                s2_image: np.ndarray) -> Path:
    """Write one patch file (temporary name, then rename)."""
    scene = row["scene_landsat"] or "scene"
    path = folder / "patches" / row["pair_type"] / scene / f"{row['patch_id']}.h5"
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


def write_table(folder: Path, rows: Iterable[dict]) -> Path:
    path = folder / CSV_NAME
    partial = folder / f".{CSV_NAME}.partial"
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
    return path


def read_table(folder: str | os.PathLike[str]) -> list[dict]:
    path = Path(folder) / CSV_NAME
    if not path.is_file():
        raise InputError(path, "no patch table (build a dataset first)")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def patch_path(folder: Path, row: dict) -> Path:
    return folder / "patches" / row["pair_type"] / (row["scene_landsat"] or "scene") / \
        f"{row['patch_id']}.h5"


def read_patch(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as handle:
        return (handle["l8_image"][()], handle["l8_pan"][()], handle["s2_image"][()])


class PatchDataset(Dataset):
    """Patches of one split that pass the quality filter, as tensors
    ``(l8_image, l8_pan, s2_image)``; with ``augment`` the same random flip/rotation (one of
    the eight symmetries of the square) is applied to all three."""

    def __init__(self, folder: str | os.PathLike[str], split: str = "Train", *,
                 quality: QualityFilter = QualityFilter(), augment: bool = False,
                 in_memory: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.folder = Path(folder)
        self.rows = [row for row in read_table(self.folder)
                     if row["pair_type"] == split and quality.keeps(row)]
        self.augment = augment
        self.cache = [read_patch(patch_path(self.folder, row)) for row in self.rows] \
            if in_memory else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        arrays = self.cache[index] if self.cache is not None else \
            read_patch(patch_path(self.folder, self.rows[index]))
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        if self.augment:
            # torch's generator: seeded per worker by Lightning's seed_everything(workers=True)
            rotations = int(torch.randint(4, ()))
            flip = bool(torch.randint(2, ()))
            tensors = [dihedral(t, rotations, flip) for t in tensors]
        return tensors[0], tensors[1], tensors[2]


def dihedral(image: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    """Rotate (C, H, W) by ``rotations`` × 90° and optionally flip left-right."""
    image = torch.rot90(image, rotations, dims=(-2, -1))
    return torch.flip(image, dims=(-1,)) if flip else image
