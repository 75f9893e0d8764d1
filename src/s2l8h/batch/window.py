"""Reading only the AOI window of a scene's remote assets into a small local scene folder.

For a STAC scene, each asset the model needs (six SR bands, QA_PIXEL, the Level-1 pan band)
is opened through GDAL's virtual file systems (``https://`` -> ``/vsicurl/``, ``s3://`` ->
``/vsis3/``; requester-pays and signed URLs as configured) and only the block of native
pixels that :func:`s2l8h.inference.harmonize.harmonize` reads for the output grid is fetched
(HTTP range requests on a COG) and written unchanged (same pixels, same grid) to a local
GeoTIFF named as USGS names its files. The region is the model's padded 30 m working grid
plus a margin of :data:`KERNEL_MARGIN` pixels (the cubic kernel, the pan's margin), and what
``harmonize`` measures on before the run (:func:`measured_regions`: for an AOI under 256 band
pixels a side the scene's pixels around it, and the blocks of the pan's registration), so
``harmonize`` on the window folder gives exactly what it gives on the whole scene. MTL files
are small and copied whole.
"""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rasterio
from odc.geo.geobox import GeoBox
from odc.geo.overlap import compute_reproject_roi
from rasterio.errors import RasterioError
from rasterio.windows import Window

from s2l8h.batch.scenes import SceneSpec
from s2l8h.io.errors import InputError
from s2l8h.io.grid import WorkingGrids, block_cover, context_grid, model_grid

#: STAC asset keys of each file, in the naming of USGS LandsatLook, Planetary Computer and
#: Earth Search (first match wins), and the file-name suffix ``open_scene`` recognizes.
LEVEL2_ASSETS: dict[str, tuple[tuple[str, ...], str]] = {
    "blue": (("blue", "SR_B2"), "SR_B2.TIF"),
    "green": (("green", "SR_B3"), "SR_B3.TIF"),
    "red": (("red", "SR_B4"), "SR_B4.TIF"),
    "nir08": (("nir08", "SR_B5"), "SR_B5.TIF"),
    "swir16": (("swir16", "SR_B6"), "SR_B6.TIF"),
    "swir22": (("swir22", "SR_B7"), "SR_B7.TIF"),
    "qa_pixel": (("qa_pixel", "QA_PIXEL"), "QA_PIXEL.TIF"),
}
OPTIONAL_LEVEL2_ASSETS = {"qa_radsat": (("qa_radsat", "QA_RADSAT"), "QA_RADSAT.TIF")}
PAN_ASSET = (("pan", "B8"), "B8.TIF")
MTL_ASSETS = ("mtl.json", "MTL_JSON", "mtl.txt", "MTL_TXT", "MTL.json", "MTL.txt")
KERNEL_MARGIN = 10  # 30 m pixels around: cubic needs 2, the pan's 16-pixel margin 8 + 2


def read_region(grid: GeoBox, alignment: int, scale: int = 3) -> GeoBox:
    """The area ``harmonize`` reads for output ``grid``: its 30 m working grid (the 10 m model
    grid's rows and columns / ``scale``, rounded up to ``alignment``) padded by
    :data:`KERNEL_MARGIN` pixels."""
    return WorkingGrids.from_fine(model_grid(grid), scale, alignment).bands.pad(KERNEL_MARGIN)


def _local(href: str) -> str:
    if href.startswith("file://"):
        return urllib.request.url2pathname(urllib.parse.urlparse(href).path)
    return href


def _error(href: str, problem: str) -> InputError:
    """An :class:`InputError` naming the asset (its local path, or its URL unmangled)."""
    local = _local(href)
    return InputError(local, problem) if "://" not in local else \
        InputError(None, f"{href}: {problem}")


def _asset(item: dict[str, Any], names: tuple[str, ...]) -> str | None:
    assets = item.get("assets", {})
    return next((assets[name]["href"] for name in names if name in assets), None)


def copy_window(href: str, region: GeoBox | Sequence[GeoBox], destination: Path) -> Path:
    """Write the native pixels of ``href`` that cover ``region`` (or the smallest window
    that covers every region given; plus 2 pixels) to ``destination`` (GeoTIFF, same grid,
    dtype and nodata)."""
    regions = [region] if isinstance(region, GeoBox) else list(region)
    try:
        with rasterio.open(_local(href)) as source:
            if source.crs is None:
                raise _error(href, "raster has no CRS")
            native = GeoBox.from_rio(source)
            found = [compute_reproject_roi(native, part, padding=2).roi_src
                     for part in regions]
            if any(rows.stop <= rows.start or cols.stop <= cols.start
                   for rows, cols in found[:1]):
                raise _error(href, "does not overlap the AOI")
            found = [(rows, cols) for rows, cols in found
                     if rows.stop > rows.start and cols.stop > cols.start]
            rows = slice(min(r.start for r, _ in found), max(r.stop for r, _ in found))
            cols = slice(min(c.start for _, c in found), max(c.stop for _, c in found))
            window = Window.from_slices(rows, cols)
            data = source.read(window=window)
            profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1],
                       "count": data.shape[0], "dtype": data.dtype, "crs": source.crs,
                       "transform": source.window_transform(window), "nodata": source.nodata,
                       "tiled": data.shape[1] >= 256 and data.shape[2] >= 256}
    except RasterioError as error:
        raise _error(href, f"cannot read the AOI window ({error})") from None
    with rasterio.open(destination, "w", **profile) as target:
        target.write(data)
    return destination


def copy_file(href: str, destination: Path, requester_pays: bool = False) -> Path:
    """Copy a small file (an MTL) from a path, ``file://``, ``http(s)://`` or any fsspec
    URL (``s3://`` needs s3fs)."""
    try:
        if "://" not in href or href.startswith("file://"):
            shutil.copyfile(_local(href), destination)
        elif href.startswith(("http://", "https://")):
            with urllib.request.urlopen(href, timeout=60) as response:
                destination.write_bytes(response.read())
        else:
            import fsspec

            options = {"requester_pays": True} if requester_pays and href.startswith("s3://") \
                else {}
            with fsspec.open(href, "rb", **options) as handle:
                destination.write_bytes(handle.read())
    except (OSError, ValueError, ImportError) as error:
        raise _error(href, f"cannot copy ({type(error).__name__}: {error})") from None
    return destination


def measured_regions(href: str, output: GeoBox) -> list[GeoBox]:
    """The scene's band pixels beyond the output's working grid that ``harmonize`` reads
    before the run, on the grid of the band ``href``, each padded by :data:`KERNEL_MARGIN`:
    around a small output area, where it measures the pan's shift, the noise and any
    registration (:func:`s2l8h.io.grid.context_grid`), and the blocks on which it measures
    the pan's shift block by block (:func:`s2l8h.io.grid.block_cover`)."""
    try:
        with rasterio.open(_local(href)) as source:
            if source.crs is None:
                raise _error(href, "raster has no CRS")
            bands = GeoBox.from_rio(source)
    except RasterioError as error:
        raise _error(href, f"cannot read its grid ({error})") from None
    found = (context_grid(output, bands), block_cover(output, bands))
    return [region.pad(KERNEL_MARGIN) for region in found if region is not None]


def fetch_window(scene: SceneSpec, region: GeoBox, folder: Path, *, need_pan: bool = True,
                 requester_pays: bool = False, output: GeoBox | None = None) -> Path:
    """Write the AOI window of a STAC scene's assets into ``folder`` as a Collection-2 scene
    folder that :func:`s2l8h.io.landsat.open_scene` reads; returns ``folder``. With the
    ``output`` grid, also what ``harmonize`` measures on beyond it (:func:`measured_regions`)."""
    if scene.item is None:
        raise InputError(None, f"scene {scene.id} has no STAC item")
    folder.mkdir(parents=True, exist_ok=True)
    name = scene.item["id"]
    environment = {"AWS_REQUEST_PAYER": "requester"} if requester_pays else {}
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", **environment):
        blue = _asset(scene.item, LEVEL2_ASSETS["blue"][0])
        regions = [region, *(measured_regions(blue, output)
                             if output is not None and blue else [])]
        for label, (keys, suffix) in {**LEVEL2_ASSETS, **OPTIONAL_LEVEL2_ASSETS}.items():
            href = _asset(scene.item, keys)
            if href is None:
                if label in LEVEL2_ASSETS:
                    raise InputError(None, f"STAC item {name} has no {label} asset "
                                     f"(looked for {list(keys)})")
                continue
            copy_window(href, regions, folder / f"{name}_{suffix}")
        mtl = _asset(scene.item, MTL_ASSETS)
        if mtl is not None:
            kind = "txt" if mtl.split("?")[0].lower().endswith(".txt") else "json"
            copy_file(mtl, folder / f"{name}_MTL.{kind}", requester_pays)
        if need_pan:
            if scene.level1 is None:
                raise InputError(None, f"no Level-1 item matches {name}: the model needs the "
                                 "pan band (Level-1 B8) and its MTL")
            level1 = scene.level1["id"]
            pan = _asset(scene.level1, PAN_ASSET[0])
            mtl1 = _asset(scene.level1, MTL_ASSETS)
            if pan is None or mtl1 is None:
                raise InputError(None, f"Level-1 item {level1} lacks the pan band or its MTL")
            copy_window(pan, regions, folder / f"{level1}_{PAN_ASSET[1]}")
            kind = "txt" if mtl1.split("?")[0].lower().endswith(".txt") else "json"
            copy_file(mtl1, folder / f"{level1}_MTL.{kind}", requester_pays)
    return folder
