"""Building patch datasets: from simulated pairs, and from real pairs found in STAC catalogues."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from s2l8h.data.patches import (
    CSV_NAME,
    SPLITS,
    GridSampler,
    QualityFilter,
    aligned_inputs,
    extract_patches,
    patch_path,
    read_table,
    split_rows,
    write_patches,
    write_table,
)
from s2l8h.data.simulate import simulate_landsat
from s2l8h.errors import S2L8HWarning, warn
from s2l8h.io.errors import CatalogError, OptionError, OutputError
from s2l8h.io.sentinel2 import read_sentinel2


def build_simulated_dataset(
    sentinel2: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    size: int = 32,
    stride: int = 16,
    fractions: tuple[float, float, float] = (0.6, 0.1, 0.3),
    offset: float = 0.0,
    platform: str = "S2A",
    noise_std: float = 0.0,
    sun_elevation: float = 50.0,
    name: str = "simulated",
    quality: QualityFilter = QualityFilter(),
    overwrite: bool = False,
) -> dict[str, int]:
    """Simulate Landsat from one Sentinel-2 scene and cut it into patches of ``size`` 30 m
    pixels (Sentinel-2 patches of ``3 size``) every ``stride`` pixels; the top ``fractions[0]``
    of the rows is Train, then Validation, then Test (spatially disjoint bands). Returns the
    number of patches per split that pass ``quality``."""
    output_dir = Path(output_dir)
    if (output_dir / "patches.csv").exists() and not overwrite:
        raise OutputError(f"{output_dir}: already holds a dataset; pass --overwrite "
                          "(overwrite=True) to replace it")
    reflectance, valid, grid = read_sentinel2(sentinel2, offset=offset)
    simulated = simulate_landsat(reflectance, valid, grid, platform=platform,
                                 noise_std=noise_std, sun_elevation=sun_elevation)
    multispectral, pan, grid30 = aligned_inputs(simulated.multispectral,
                                                simulated.lowres_grid, simulated.pan,
                                                simulated.pan_grid, grid)
    target = simulated.target[:, :3 * grid30.height, :3 * grid30.width]
    splits = split_rows(grid30.height, fractions)
    source = sentinel2 if isinstance(sentinel2, str | os.PathLike) else \
        Path(sentinel2[0]).parent
    check_splits_hold_patches(splits, grid30.width, size, stride, source)
    output_dir.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_patches(output_dir)
    patches = extract_patches(multispectral, pan, target, grid30, size=size, stride=stride,
                              splits=splits, scene_landsat=name,
                              scene_sentinel2=Path(source).name)
    rows = write_patches(output_dir, patches, quality.min_valid_fraction)
    counts = _counts(rows, quality)
    write_table(output_dir, rows)
    written = {patch_path(output_dir, row) for row in rows}
    for path in earlier:  # the replaced dataset's patches that this one does not have
        if path not in written:
            path.unlink(missing_ok=True)
    warn_empty_splits(counts, output_dir)
    settings = {"sentinel2": str(sentinel2), "size": size, "stride": stride,
                "fractions": list(fractions), "offset": offset, "platform": platform,
                "noise_std": noise_std, "sun_elevation": sun_elevation,
                "pan_sun_sine": math.sin(math.radians(sun_elevation)),
                "grid30": {"crs": str(grid30.crs), "transform": list(grid30.affine)[:6],
                           "shape": list(grid30.shape)},
                "counts_passing_quality": counts}
    (output_dir / "dataset.json").write_text(json.dumps(settings, indent=2) + "\n")
    return counts


def build_pair_dataset(
    pairs: Sequence,
    bbox: tuple[float, float, float, float],
    output_dir: str | os.PathLike[str],
    *,
    size: int = 32,
    stride: int = 16,
    fractions: tuple[float, float, float] = (0.6, 0.1, 0.3),
    quality: QualityFilter = QualityFilter(),
    requester_pays: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Cut real Landsat/Sentinel-2 pairs (:func:`s2l8h.data.stac.find_pairs`) into patches.

    Each pair is loaded onto common grids (:func:`s2l8h.data.stac.load_pair`); pixels that
    QA_PIXEL or SCL do not call clear are left out (a patch needs ``min_valid_fraction`` of
    clear pixels). Resumable: a pair's patches and its table part (``tables/<pair>.csv``) are
    written before the next pair starts, finished pairs are skipped on a rerun, and
    ``patches.csv`` (with ``dataset.json`` saying ``complete``) appears only when every pair is
    done, so an interrupted dataset never looks complete.
    """
    import csv

    import numpy as np
    from tqdm.auto import tqdm

    from s2l8h.data import stac
    from s2l8h.data.patches import write_rows

    output_dir = Path(output_dir)
    parts = output_dir / "tables"
    parts.mkdir(parents=True, exist_ok=True)
    for pair in tqdm(pairs, desc="pairs", unit="pair", disable=not progress):
        name = f"{pair.landsat.id}__{pair.sentinel2.id}"
        part = parts / f"{name}.csv"
        if part.exists():
            continue
        loaded = stac.load_pair(pair, bbox, requester_pays=requester_pays)
        if loaded.pan is None:
            raise CatalogError(f"pair {name}: no Level-1 item, so no pan band")
        _, landsat_clear = stac.classify_qa_pixel(loaded.qa_pixel)
        _, sentinel2_clear = stac.classify_scl(loaded.scl)
        landsat = np.where(landsat_clear, loaded.landsat, np.nan)
        sentinel2 = np.where(sentinel2_clear, loaded.sentinel2, np.nan)
        patches = extract_patches(
            landsat, loaded.pan[None], sentinel2, loaded.grid30, size=size, stride=stride,
            splits=split_rows(loaded.grid30.height, fractions),
            scene_landsat=pair.landsat.id, scene_sentinel2=pair.sentinel2.id,
            date=str(pair.landsat.datetime.date()))
        write_rows(part, write_patches(output_dir, patches, quality.min_valid_fraction))
    every = []
    for part in sorted(parts.glob("*.csv")):
        with part.open(newline="") as handle:
            every.extend(csv.DictReader(handle))
    write_table(output_dir, every)
    counts = _counts(every, quality)
    (output_dir / "dataset.json").write_text(json.dumps(
        {"complete": True, "pairs": [f"{p.landsat.id}__{p.sentinel2.id}" for p in pairs],
         "bbox": list(bbox), "size": size, "stride": stride, "fractions": list(fractions),
         "counts_passing_quality": counts}, indent=2) + "\n")
    return counts


def _earlier_patches(output_dir: Path) -> list[Path]:
    """The patch files the dataset in ``output_dir`` lists (its ``patches.csv``), those only
    that lie under its ``patches/`` folder and end in ``.h5``: what replacing it may remove."""
    if not (output_dir / CSV_NAME).exists():
        return []
    root = (output_dir / "patches").resolve()
    found = []
    for row in read_table(output_dir):
        if not all(row.get(key) for key in ("pair_type", "patch_id")):
            continue
        path = patch_path(output_dir, row)
        if path.suffix == ".h5" and path.resolve().is_relative_to(root):
            found.append(path)
    return found


def check_splits_hold_patches(splits: dict[str, tuple[int, int]], width: int, size: int,
                              stride: int, source: object) -> None:
    """Raise :class:`OptionError` where a split's rows, or the scene's width, hold no patch
    of ``size`` 30 m pixels (training needs Train and Validation patches)."""
    if width < size:
        raise OptionError(f"{source}: the scene is {width} Landsat pixels (30 m) wide, "
                          f"less than a patch (--size {size}): no patch fits")
    empty = [f"{split} ({stop - start} rows)" for split, (start, stop) in splits.items()
             if split != "Test" and len(GridSampler({split: (start, stop)}, width, size=size,
                                                    stride=stride)) == 0]
    if empty:
        raise OptionError(f"{source}: {' and '.join(empty)} hold no patch of --size {size} "
                          "Landsat pixels; training needs Train and Validation patches: give "
                          "a larger scene, a smaller --size or other --fractions")


def warn_empty_splits(counts: dict[str, int], where: Path) -> None:
    """Warn where no Train or no Validation patch passes the default quality filter."""
    empty = [split for split in ("Train", "Validation") if not counts.get(split)]
    if empty:
        warn(f"{where}: no {' and no '.join(empty)} patch passes the quality filter "
             "(SSIM and PSNR against bicubic Landsat); s2l8h train needs both (lower "
             "data.min_ssim / data.min_psnr, or give more of the scene)", S2L8HWarning)


def _counts(rows: Sequence[dict], quality: QualityFilter) -> dict[str, int]:
    """Patches per split that pass ``quality``."""
    return {split: sum(1 for row in rows if row["pair_type"] == split and quality.keeps(row))
            for split in SPLITS}
