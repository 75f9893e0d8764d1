"""Finding, pairing and loading Landsat-8/9 and Sentinel-2 acquisitions from STAC APIs.

- :func:`search` queries one or several catalogues (pystac-client) for Landsat Collection-2
  Level-2 surface reflectance, the matching Level-1 item of each scene (pan band and MTL),
  and Sentinel-2 L2A, over an AOI (lon/lat bounding box) and a period.
- :func:`find_pairs` pairs Landsat and Sentinel-2 items acquired on the same day (or within
  ``max_days``) whose footprints cover the AOI, with the AOI-level valid and clear fractions
  read from QA_PIXEL and SCL (not only the scenes' cloud cover).
- :func:`load_pair` loads a pair with odc-stac: Sentinel-2 on its 10 m grid in its UTM zone,
  Landsat on the 30 m and 15 m grids that share that grid's edges; Sentinel-2 reflectance with
  the processing-baseline offset handled from the item's properties.

Catalogue URLs and collection names are configurable (:class:`Catalog`); a URL signer (e.g.
``planetary_computer.sign_inplace``) and requester-pays S3 access are options. Network
failures raise :class:`CatalogError` (after retries) naming the catalogue.

:func:`clearest_sentinel2`, :func:`write_reference` and :func:`season_reference` make a
co-registration reference for ``harmonize --reference`` from Sentinel-2 items.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from odc.geo.geobox import GeoBox
from odc.geo.geom import BoundingBox
from rasterio.warp import transform_bounds
from urllib3.util.retry import Retry

from s2l8h.bands import (
    LANDSAT_BANDS,
    QA_PIXEL_BITS,
    SENTINEL2_BANDS,
    SENTINEL2_BASELINE_OFFSET,
    SENTINEL2_OFFSET_BASELINE,
    SENTINEL2_OFFSET_DATE,
    SENTINEL2_QUANTIFICATION,
    SR_OFFSET,
    SR_SCALE,
)
from s2l8h.errors import CatalogError, OptionError, OutputError  # also stac.CatalogError

#: SCL classes counted as clear: vegetation, not vegetated, water (and dark area, unclassified
#: are not clear, as in the paper's filter they are treated as unreliable).
SCL_CLEAR = (4, 5, 6)
SCL_NODATA = (0,)
#: QA_PIXEL bits that make a pixel not clear: fill, dilated cloud, cirrus, cloud, shadow.
QA_NOT_CLEAR_BITS = tuple(QA_PIXEL_BITS[flag] for flag in
                          ("fill", "dilated_cloud", "cirrus", "cloud", "shadow"))
LANDSAT_PLATFORMS = ("landsat-8", "landsat-9")


@dataclass(frozen=True)
class Catalog:
    """One STAC API and the collection names it uses."""

    url: str
    landsat_l2: str | None = None
    landsat_l1: str | None = None
    sentinel2: str | None = None
    sign: Callable[[Any], Any] | None = None  # e.g. planetary_computer.sign_inplace
    requester_pays: bool = False
    headers: dict[str, str] = field(default_factory=dict)


#: Public catalogues: Landsat from USGS LandsatLook, Sentinel-2 from Earth Search (AWS).
USGS_LANDSATLOOK = Catalog("https://landsatlook.usgs.gov/stac-server",
                           landsat_l2="landsat-c2l2-sr", landsat_l1="landsat-c2l1",
                           requester_pays=True)
EARTH_SEARCH = Catalog("https://earth-search.aws.element84.com/v1",
                       sentinel2="sentinel-2-l2a")
DEFAULT_CATALOGS = (USGS_LANDSATLOOK, EARTH_SEARCH)


def _client(catalog: Catalog, timeout: float, retries: int):
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    retry = Retry(total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=None)
    io = StacApiIO(headers=catalog.headers, timeout=timeout, max_retries=retry)
    try:
        return Client.open(catalog.url, stac_io=io, modifier=catalog.sign, timeout=timeout)
    except Exception as error:  # requests/urllib3/pystac-client errors alike
        raise CatalogError(f"{catalog.url}: cannot open the STAC API "
                           f"({type(error).__name__}: {error})") from None


def _search(client, catalog: Catalog, collection: str, bbox, period: str, limit: int
            ) -> list[pystac.Item]:
    try:
        return list(client.search(collections=[collection], bbox=bbox, datetime=period,
                                  max_items=limit).items())
    except Exception as error:
        raise CatalogError(f"{catalog.url}: search in {collection} failed "
                           f"({type(error).__name__}: {error})") from None


@dataclass
class SearchResult:
    """Items found, by role. ``landsat_l1[id]`` is the Level-1 item of Level-2 item ``id``."""

    landsat: list[pystac.Item]
    landsat_l1: dict[str, pystac.Item]
    sentinel2: list[pystac.Item]

    def write(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """``items.csv`` (one row per item) and ``items.json`` (a STAC ItemCollection)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        items = [*self.landsat, *self.landsat_l1.values(), *self.sentinel2]
        table = folder / "items.csv"
        with table.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "collection", "datetime", "platform", "eo:cloud_cover",
                             "wrs_path", "wrs_row", "epsg", "s2:processing_baseline",
                             "level1_item"])
            for item in items:
                properties = item.properties
                writer.writerow([
                    item.id, item.collection_id, properties.get("datetime"),
                    properties.get("platform"), properties.get("eo:cloud_cover"),
                    properties.get("landsat:wrs_path"), properties.get("landsat:wrs_row"),
                    item_epsg(item), properties.get("s2:processing_baseline"),
                    self.landsat_l1[item.id].id if item.id in self.landsat_l1 else ""])
        collection = folder / "items.json"
        collection.write_text(json.dumps(pystac.ItemCollection(items).to_dict(), indent=1))
        return table, collection


def item_epsg(item: pystac.Item) -> int | None:
    properties = item.properties
    if "proj:epsg" in properties and properties["proj:epsg"] is not None:
        return int(properties["proj:epsg"])
    code = properties.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        return int(code.split(":")[1])
    return None


def _scene_key(item: pystac.Item) -> tuple[str, str, str, str]:
    properties = item.properties
    return (str(properties.get("platform", "")).lower(),
            str(properties.get("landsat:wrs_path", "")).zfill(3),
            str(properties.get("landsat:wrs_row", "")).zfill(3),
            str(item.datetime.date() if item.datetime else ""))


def match_level1(landsat: Sequence[pystac.Item], level1: Sequence[pystac.Item]
                 ) -> dict[str, pystac.Item]:
    """The Level-1 item of each Level-2 item (same platform, WRS path/row and date), by
    Level-2 item id; Level-2 items without one are left out."""
    by_scene = {_scene_key(item): item for item in level1}
    return {item.id: by_scene[_scene_key(item)] for item in landsat
            if _scene_key(item) in by_scene}


def check_period(start: str, end: str) -> None:
    """``--start`` and ``--end``: ISO dates (or date-times), the start not after the end;
    checked before any catalogue is asked."""
    moments = []
    for option, text in (("--start", start), ("--end", end)):
        try:
            moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise OptionError(f"{option} must be a date YYYY-MM-DD, got {text!r}") from None
        if moment.tzinfo is not None:  # compared in UTC; a bare date is taken as UTC
            moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
        moments.append(moment)
    if moments[0] > moments[1]:
        raise OptionError(f"--start ({start}) is after --end ({end})")


def search(bbox: tuple[float, float, float, float], start: str, end: str, *,
           max_cloud: float | None = None, catalogs: Sequence[Catalog] = DEFAULT_CATALOGS,
           limit: int = 500, timeout: float = 30.0, retries: int = 3) -> SearchResult:
    """Search every catalogue for its collections over ``bbox`` (lon/lat) from ``start`` to
    ``end`` (ISO dates). ``max_cloud`` filters on ``eo:cloud_cover`` (percent, scene level)."""
    check_period(start, end)
    period = f"{start}/{end}"
    landsat: list[pystac.Item] = []
    level1: list[pystac.Item] = []
    sentinel2: list[pystac.Item] = []
    for catalog in catalogs:
        client = _client(catalog, timeout, retries)
        for collection, bucket in ((catalog.landsat_l2, landsat), (catalog.landsat_l1, level1),
                                   (catalog.sentinel2, sentinel2)):
            if collection:
                bucket.extend(_search(client, catalog, collection, bbox, period, limit))
    if max_cloud is not None:
        landsat = [i for i in landsat if i.properties.get("eo:cloud_cover", 0) <= max_cloud]
        sentinel2 = [i for i in sentinel2 if i.properties.get("eo:cloud_cover", 0) <= max_cloud]
    landsat = [i for i in landsat if str(i.properties.get("platform", "")).lower()
               in LANDSAT_PLATFORMS]
    matched = match_level1(landsat, level1)
    key = lambda item: (item.datetime, item.id)  # noqa: E731
    return SearchResult(sorted(landsat, key=key), matched, sorted(sentinel2, key=key))


def _asset(item: pystac.Item, names: Sequence[str]) -> str:
    for name in names:
        if name in item.assets:
            return item.assets[name].href
    raise CatalogError(f"item {item.id} has none of the assets {list(names)}")


def aoi_fractions(href: str, bbox: tuple[float, float, float, float],
                  classify: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
                  ) -> tuple[float, float]:
    """(valid fraction, clear fraction of the AOI) read from a mask asset over ``bbox``
    (lon/lat); ``classify`` maps mask values to (valid, clear) booleans. Pixels of the AOI
    outside the raster count as not valid."""
    with rasterio.open(href) as dataset:
        left, bottom, right, top = transform_bounds("EPSG:4326", dataset.crs, *bbox)
        window = rasterio.windows.from_bounds(left, bottom, right, top, dataset.transform)
        window = window.round_offsets().round_lengths()
        values = dataset.read(1, window=window, boundless=True, fill_value=0)
    valid, clear = classify(values)
    return float(valid.mean()), float(clear.mean())


def classify_qa_pixel(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = values.astype(np.int64) & 0xFFFF
    valid = (values & 1) == 0
    bad = np.zeros(values.shape, dtype=bool)
    for bit in QA_NOT_CLEAR_BITS:
        bad |= ((values >> bit) & 1).astype(bool)
    return valid, valid & ~bad


def classify_scl(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = ~np.isin(values, SCL_NODATA)
    return valid, np.isin(values, SCL_CLEAR)


PAIR_COLUMNS = ("landsat", "landsat_l1", "sentinel2", "days_apart", "landsat_valid",
                "landsat_clear", "sentinel2_valid", "sentinel2_clear")


@dataclass
class Pair:
    landsat: pystac.Item
    landsat_l1: pystac.Item | None
    sentinel2: pystac.Item
    days_apart: int
    landsat_valid: float
    landsat_clear: float
    sentinel2_valid: float
    sentinel2_clear: float

    def row(self) -> dict[str, object]:
        return {"landsat": self.landsat.id,
                "landsat_l1": self.landsat_l1.id if self.landsat_l1 else "",
                "sentinel2": self.sentinel2.id, "days_apart": self.days_apart,
                "landsat_valid": self.landsat_valid, "landsat_clear": self.landsat_clear,
                "sentinel2_valid": self.sentinel2_valid,
                "sentinel2_clear": self.sentinel2_clear}


def _covers(item: pystac.Item, bbox: tuple[float, float, float, float]) -> bool:
    if item.bbox is None:
        return True
    left, bottom, right, top = item.bbox
    return left < bbox[2] and bbox[0] < right and bottom < bbox[3] and bbox[1] < top


def find_pairs(result: SearchResult, bbox: tuple[float, float, float, float], *,
               max_days: int = 0, min_clear: float = 0.0) -> list[Pair]:
    """Landsat/Sentinel-2 pairs within ``max_days`` whose AOI clear fractions (QA_PIXEL for
    Landsat, SCL for Sentinel-2) are both at least ``min_clear``."""
    pairs: list[Pair] = []
    for landsat in result.landsat:
        if not _covers(landsat, bbox) or landsat.datetime is None:
            continue
        landsat_valid, landsat_clear = aoi_fractions(
            _asset(landsat, ("qa_pixel", "QA_PIXEL")), bbox, classify_qa_pixel)
        for sentinel2 in result.sentinel2:
            if not _covers(sentinel2, bbox) or sentinel2.datetime is None:
                continue
            days = abs((sentinel2.datetime.date() - landsat.datetime.date()).days)
            if days > max_days:
                continue
            s2_valid, s2_clear = aoi_fractions(_asset(sentinel2, ("scl", "SCL")), bbox,
                                               classify_scl)
            if min(landsat_clear, s2_clear) < min_clear:
                continue
            pairs.append(Pair(landsat, result.landsat_l1.get(landsat.id), sentinel2, days,
                              landsat_valid, landsat_clear, s2_valid, s2_clear))
    return pairs


def sentinel2_offset(item: pystac.Item) -> float:
    """The DN offset to add before dividing by 10000: -1000 from processing baseline 04.00
    (25 January 2022), unless the catalogue says it already applied it; else 0."""
    properties = item.properties
    if properties.get("earthsearch:boa_offset_applied") is True:
        return 0.0
    baseline = properties.get("s2:processing_baseline")
    if baseline is not None:
        try:
            return SENTINEL2_BASELINE_OFFSET if float(baseline) >= SENTINEL2_OFFSET_BASELINE \
                else 0.0
        except ValueError:
            pass
    date = item.datetime.date() if item.datetime else None
    return SENTINEL2_BASELINE_OFFSET if date is not None and date >= SENTINEL2_OFFSET_DATE \
        else 0.0


S2_ASSETS = {"B02": ("blue", "B02"), "B03": ("green", "B03"), "B04": ("red", "B04"),
             "B8A": ("nir08", "B8A"), "B11": ("swir16", "B11"), "B12": ("swir22", "B12"),
             "SCL": ("scl", "SCL")}
LANDSAT_ASSETS = {"blue": ("blue", "SR_B2"), "green": ("green", "SR_B3"),
                  "red": ("red", "SR_B4"), "nir08": ("nir08", "SR_B5"),
                  "swir16": ("swir16", "SR_B6"), "swir22": ("swir22", "SR_B7"),
                  "qa_pixel": ("qa_pixel", "QA_PIXEL")}


def _band_names(item: pystac.Item, wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
    names = {}
    for label, candidates in wanted.items():
        found = next((name for name in candidates if name in item.assets), None)
        if found is None:
            raise CatalogError(f"item {item.id} has no asset for {label} ({candidates})")
        names[label] = found
    return names


def level1_pan_rescaling(item: pystac.Item) -> tuple[float, float]:
    """(mult, add) of band 8 from the Level-1 item's MTL asset (JSON or text)."""
    from s2l8h.io.mtl import read_metadata

    href = _asset(item, ("mtl.json", "MTL_JSON", "mtl.txt", "MTL_TXT"))
    if "://" in href and not href.startswith("file://"):
        import tempfile
        import urllib.request

        with urllib.request.urlopen(href, timeout=30) as response, \
                tempfile.NamedTemporaryFile(suffix="_MTL.json", delete=False) as handle:
            handle.write(response.read())
        href = handle.name
    return read_metadata(href.removeprefix("file://")).reflectance_rescaling(8)


@dataclass
class LoadedPair:
    """A pair on common grids: ``sentinel2`` (6, H, W) reflectance and ``scl`` on ``grid``
    (10 m); ``landsat`` (6, h, w) SR reflectance and ``qa_pixel`` on ``grid30``; ``pan``
    (2h, 2w) ρ' on ``grid15`` (``None`` without a Level-1 item)."""

    sentinel2: np.ndarray
    scl: np.ndarray
    grid: GeoBox
    landsat: np.ndarray
    qa_pixel: np.ndarray
    grid30: GeoBox
    pan: np.ndarray | None
    grid15: GeoBox
    sentinel2_offset: float


def pair_grid(pair: Pair, bbox: tuple[float, float, float, float]) -> GeoBox:
    """The Sentinel-2 10 m grid of the Sentinel-2 item's UTM zone covering ``bbox`` (lon/lat),
    with a size that is a multiple of 3 pixels (whole 30 m pixels)."""
    epsg = item_epsg(pair.sentinel2)
    if epsg is None:
        raise CatalogError(f"item {pair.sentinel2.id} has no proj:epsg / proj:code")
    crs = f"EPSG:{epsg}"
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, *bbox)
    grid = GeoBox.from_bbox(BoundingBox(left, bottom, right, top, crs), crs, resolution=10)
    return grid.pad_wh(3)


def load_pair(pair: Pair, bbox: tuple[float, float, float, float], *,
              requester_pays: bool = False) -> LoadedPair:
    """Load a pair with odc-stac onto the Sentinel-2 10 m grid and the Landsat 30 m / 15 m
    grids with the same edges (bilinear for reflectance, nearest for masks)."""
    import odc.stac

    from s2l8h.io.grid import WorkingGrids

    grid = pair_grid(pair, bbox)
    grids = WorkingGrids.from_fine(grid)
    grid30, grid15 = grids.bands, grids.pan
    environment = {"AWS_REQUEST_PAYER": "requester"} if requester_pays else {}
    offset = sentinel2_offset(pair.sentinel2)
    with rasterio.Env(**environment):
        s2_names = _band_names(pair.sentinel2, S2_ASSETS)
        s2 = odc.stac.load([pair.sentinel2], bands=list(s2_names.values()), geobox=grid,
                           resampling={"*": "bilinear", s2_names["SCL"]: "nearest"},
                           dtype="float32", fail_on_error=True)
        l_names = _band_names(pair.landsat, LANDSAT_ASSETS)
        landsat = odc.stac.load([pair.landsat], bands=list(l_names.values()), geobox=grid30,
                                resampling={"*": "cubic", l_names["qa_pixel"]: "nearest"},
                                dtype="float32", fail_on_error=True)
        pan = None
        if pair.landsat_l1 is not None:
            pan_name = next(n for n in ("pan", "B8") if n in pair.landsat_l1.assets)
            level1 = odc.stac.load([pair.landsat_l1], bands=[pan_name], geobox=grid15,
                                   resampling="cubic", dtype="float32", fail_on_error=True)
            mult, add = level1_pan_rescaling(pair.landsat_l1)
            dn = level1[pan_name].values[0]
            pan = np.where(dn > 0, mult * dn + add, np.nan).astype(np.float32)
    s2_dn = np.stack([s2[s2_names[b]].values[0] for b in SENTINEL2_BANDS])
    sentinel2 = np.where(s2_dn > 0, (s2_dn + offset) / SENTINEL2_QUANTIFICATION,
                         np.nan).astype(np.float32)
    sr_dn = np.stack([landsat[l_names[b]].values[0] for b in LANDSAT_BANDS])
    reflectance = np.where(sr_dn > 0, sr_dn * SR_SCALE + SR_OFFSET, np.nan).astype(np.float32)
    return LoadedPair(sentinel2, s2[s2_names["SCL"]].values[0].astype(np.uint8), grid,
                      reflectance, landsat[l_names["qa_pixel"]].values[0].astype(np.uint16),
                      grid30, pan, grid15, offset)



#: Assets a co-registration reference is taken from, in order of preference: the 10 m NIR
#: (most structure over land), then the 10 m red.
REFERENCE_ASSETS = ("nir", "B08", "red", "B04")
#: Metres around the AOI a reference covers: half of the 256 Landsat pixels (7.7 km) around
#: a small output area on which ``harmonize`` registers it
#: (:data:`s2l8h.io.grid.CONTEXT_PIXELS`), and a little more.
REFERENCE_MARGIN_M = 4500.0


def clearest_sentinel2(items: Sequence[pystac.Item], bbox: tuple[float, float, float, float]
                       ) -> tuple[pystac.Item, float]:
    """The Sentinel-2 item with the largest clear fraction of the AOI (``bbox``, lon/lat; its
    SCL asset), then the least scene cloud cover, then the latest; and that fraction."""
    ranked = []
    for item in items:
        if not _covers(item, bbox):
            continue
        _, clear = aoi_fractions(_asset(item, ("scl", "SCL")), bbox, classify_scl)
        ranked.append((clear, -float(item.properties.get("eo:cloud_cover", 100.0)),
                       item.datetime.isoformat() if item.datetime else "", item.id, item))
    if not ranked or max(ranked, key=lambda row: row[:4])[0] == 0.0:
        raise CatalogError("no Sentinel-2 item has a clear pixel over the AOI")
    best = max(ranked, key=lambda row: row[:4])
    return best[4], best[0]


def write_reference(item: pystac.Item, bbox: tuple[float, float, float, float],
                    path: str | os.PathLike[str], *, margin: float = REFERENCE_MARGIN_M,
                    overwrite: bool = False) -> Path:
    """A co-registration reference for ``harmonize --reference``: the item's 10 m NIR (or red)
    band over the AOI (``bbox``, lon/lat) plus ``margin`` metres, as stored (digital numbers,
    nodata 0), with every pixel its SCL does not call clear (clouds, shadows, snow, water,
    no data; nearest 20 m value) set to 0; tagged with the item, its date and the asset.
    Written under a temporary name, then renamed; an existing file is kept unless
    ``overwrite``."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from s2l8h.io.cog import check_output_path

    path = Path(path)
    check_output_path(path, overwrite)
    name = next((name for name in REFERENCE_ASSETS if name in item.assets), None)
    if name is None:
        raise CatalogError(f"item {item.id} has none of the assets {list(REFERENCE_ASSETS)}")
    with rasterio.open(item.assets[name].href) as dataset:
        left, bottom, right, top = transform_bounds("EPSG:4326", dataset.crs, *bbox)
        window = rasterio.windows.from_bounds(left - margin, bottom - margin, right + margin,
                                              top + margin, dataset.transform)
        window = window.round_offsets().round_lengths()
        band = dataset.read(1, window=window, boundless=True, fill_value=0)
        crs, transform = dataset.crs, dataset.window_transform(window)
    scl = np.zeros(band.shape, dtype=np.uint8)
    with rasterio.open(_asset(item, ("scl", "SCL"))) as dataset:
        reproject(rasterio.band(dataset, 1), scl, dst_transform=transform, dst_crs=crs,
                  resampling=Resampling.nearest)
    band = np.where(classify_scl(scl)[1], band, 0).astype(band.dtype)
    partial = path.with_name(f".{path.name}.partial")
    profile = {"driver": "GTiff", "width": band.shape[1], "height": band.shape[0], "count": 1,
               "dtype": band.dtype, "crs": crs, "transform": transform, "nodata": 0,
               "compress": "deflate", "tiled": True}
    try:
        with rasterio.open(partial, "w", **profile) as target:
            target.write(band, 1)
            target.update_tags(S2L8H_REFERENCE_ITEM=item.id, S2L8H_REFERENCE_ASSET=name,
                               S2L8H_REFERENCE_DATETIME=str(item.datetime or ""))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def sentinel2_items(items: Sequence[pystac.Item]) -> list[pystac.Item]:
    """The Sentinel-2 items among ``items`` (platform ``sentinel-2*``, or a collection whose
    name says Sentinel-2)."""
    return [item for item in items
            if str(item.properties.get("platform", "")).lower().startswith("sentinel-2")
            or "sentinel-2" in str(item.collection_id or "").lower()]


def season_reference(items: Sequence[pystac.Item], bbox: tuple[float, float, float, float],
                     folder: str | os.PathLike[str]) -> tuple[Path, pystac.Item, float]:
    """One co-registration reference for a season's scenes over the AOI (``bbox``,
    lon/lat): :func:`clearest_sentinel2` of the Sentinel-2 ``items``, written by
    :func:`write_reference` to ``folder/<item id>.tif``, or that file as an earlier run
    wrote it (a rerun reuses it, so its outputs keep their provenance). Returns the path,
    the item and the AOI's clear fraction in it."""
    item, clear = clearest_sentinel2(sentinel2_items(items), bbox)
    path = Path(folder) / f"{item.id}.tif"
    if path.exists():
        try:
            with rasterio.open(path) as dataset:
                made_from = dataset.tags().get("S2L8H_REFERENCE_ITEM")
        except rasterio.errors.RasterioIOError:
            made_from = None
        if made_from != item.id:
            raise OutputError(f"{path}: exists and is not the reference made from {item.id}; "
                              "remove it or choose another output folder")
        return path, item, clear
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_reference(item, bbox, path), item, clear
