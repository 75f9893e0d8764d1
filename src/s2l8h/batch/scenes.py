"""What a batch run works on: scenes (local folders or STAC items), an AOI, one output grid.

- :class:`SceneSpec`: one Landsat acquisition, either a local scene folder (read by
  :func:`s2l8h.io.landsat.open_scene`) or a Level-2 STAC item with its matching Level-1 item
  (pan band and MTL); plain data, so it travels to dask workers.
- :func:`scenes_from_folders`, :func:`scenes_from_items`, :func:`scenes_from_item_collection`
  (a file as ``s2l8h search`` writes it) and :func:`scenes_from_search` (a STAC API).
- :func:`parse_aoi`: a lon/lat bounding box or a GeoJSON file/dict as an
  :class:`odc.geo.geom.Geometry` in EPSG:4326.
- :func:`aoi_grid`: the one output grid of a run: by default the Sentinel-2 10 m grid (pixel
  edges on multiples of 10 m) of the AOI's UTM zone covering the AOI, so outputs stack.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box, unary_union

from s2l8h.errors import OptionError
from s2l8h.inference.options import check_crs, check_resolution, default_resolution
from s2l8h.io.errors import InputError
from s2l8h.io.grid import grid_like
from s2l8h.io.mtl import LandsatMetadata, find_value, read_metadata

_LEVEL2_ID = re.compile(r"_L2S[PR]_", re.IGNORECASE)
_LEVEL1_ID = re.compile(r"_L1(TP|GT|GS)_", re.IGNORECASE)
_MTL = re.compile(r"_MTL\.(txt|json)$", re.IGNORECASE)


@dataclass(frozen=True)
class SceneSpec:
    """One Landsat acquisition to harmonize.

    Exactly one of ``folder`` (a local scene folder) and ``item`` (a Level-2 STAC item as a
    dict; ``level1`` its matching Level-1 item, for the pan band and MTL) is set. ``id`` names
    the output (``<id>.tif``); ``datetime`` is ISO 8601 (UTC).
    """

    id: str
    folder: str | None = None
    item: dict[str, Any] | None = None
    level1: dict[str, Any] | None = None
    datetime: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What identifies the inputs, for provenance: the folder's files (name and size), or
        the items' ids and asset hrefs (without query strings, which hold expiring
        signatures)."""
        if self.folder is not None:
            folder = Path(self.folder)
            files = sorted(folder.iterdir()) if folder.is_dir() else [folder]
            return {"folder": str(folder.resolve()),
                    "files": [[p.name, p.stat().st_size] for p in files if p.is_file()]}
        items = [self.item] + ([self.level1] if self.level1 else [])
        return {"items": [{"id": item["id"], "collection": item.get("collection"),
                           "assets": {name: asset["href"].split("?")[0]
                                      for name, asset in sorted(item["assets"].items())}}
                          for item in items]}

    def sources(self) -> list[dict[str, str | None]]:
        """The source items (id, collection, self href) or the folder, for the catalogue."""
        if self.folder is not None:
            return [{"id": self.id, "collection": None,
                     "href": Path(self.folder).resolve().as_uri()}]
        found = []
        for item in [self.item] + ([self.level1] if self.level1 else []):
            href = next((link["href"] for link in item.get("links", [])
                         if link.get("rel") == "self"), None)
            found.append({"id": item["id"], "collection": item.get("collection"),
                          "href": href})
        return found


def _unique(scenes: list[SceneSpec]) -> list[SceneSpec]:
    counts = Counter(scene.id for scene in scenes)
    duplicated = sorted(name for name, count in counts.items() if count > 1)
    if duplicated:
        where = "; ".join(f"{name}: " + ", ".join(scene.folder or "a catalogue item"
                                                  for scene in scenes if scene.id == name)
                          for name in duplicated)
        raise OptionError(f"several inputs are the same scene (one output each): {where}")
    return scenes


def scenes_from_folders(folders: Sequence[str | os.PathLike[str]]) -> list[SceneSpec]:
    """One scene per folder, named by the product id of its MTL (Level-2 first), else by the
    folder's name; the acquisition time comes from the MTL (``DATE_ACQUIRED`` and
    ``SCENE_CENTER_TIME`` to the second; midnight UTC where the time is missing)."""
    scenes = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise InputError(folder, "not a scene folder")
        name, date, clock, level2 = folder.name, None, None, False
        for path in sorted(folder.iterdir()):
            if not _MTL.search(path.name):
                continue
            metadata = read_metadata(path)
            is_level2 = metadata.processing_level.startswith("L2")
            if metadata.scene_id and (date is None or (is_level2 and not level2)):
                name, level2 = metadata.scene_id, is_level2
                date = metadata.date_acquired or date
                clock = _center_time(metadata) or clock
        when = f"{date}T{clock or '00:00:00'}Z" if date else None
        scenes.append(SceneSpec(id=name, folder=str(folder), datetime=when))
    return _unique(scenes)


def _center_time(metadata: LandsatMetadata) -> str | None:
    """The MTL's ``SCENE_CENTER_TIME`` as ``HH:MM:SS`` (UTC), or ``None``."""
    value = find_value(metadata.document, "SCENE_CENTER_TIME")
    found = re.match(r"\s*(\d{2}:\d{2}:\d{2})", str(value)) if value else None
    return found.group(1) if found else None


def landsat_level(item: Any) -> str | None:
    """``"L2"`` or ``"L1"`` for a Landsat-8/9 STAC item (``landsat:correction``, else the
    product id), ``None`` for anything else (e.g. Sentinel-2)."""
    properties = item.properties
    platform = str(properties.get("platform", "")).lower()
    if platform not in ("landsat-8", "landsat-9"):
        return None
    correction = str(properties.get("landsat:correction", "")).upper()
    if correction.startswith("L2") or _LEVEL2_ID.search(item.id):
        return "L2"
    if correction.startswith("L1") or _LEVEL1_ID.search(item.id):
        return "L1"
    return None


def scenes_from_items(items: Sequence[Any], aoi: Geometry | None = None,
                      sign: Callable[[Any], Any] | None = None) -> list[SceneSpec]:
    """Landsat Level-2 items of ``items`` (pystac Items; others ignored), each with its
    Level-1 item when one is among them, and whose footprint meets ``aoi`` (lon/lat).
    ``sign`` (e.g. ``planetary_computer.sign_inplace``) is applied to every item."""
    from s2l8h.data.stac import match_level1

    items = [sign(item) or item for item in items] if sign else list(items)
    level2 = [item for item in items if landsat_level(item) == "L2"]
    level1 = [item for item in items if landsat_level(item) == "L1"]
    if aoi is not None:
        level2 = [item for item in level2 if item.bbox is None
                  or box(*item.bbox, "EPSG:4326").intersects(aoi)]
    matched = match_level1(level2, level1)
    scenes = []
    for item in sorted(level2, key=lambda i: (i.datetime or dt.datetime.min, i.id)):
        pair = matched.get(item.id)
        properties = {key: item.properties[key] for key in
                      ("platform", "eo:cloud_cover", "landsat:wrs_path", "landsat:wrs_row")
                      if key in item.properties}
        scenes.append(SceneSpec(
            id=item.id, item=item.to_dict(), level1=pair.to_dict() if pair else None,
            datetime=item.datetime.isoformat() if item.datetime else None,
            properties=properties))
    return _unique(scenes)


def scenes_from_item_collection(path: str | os.PathLike[str], aoi: Geometry | None = None,
                                sign: Callable[[Any], Any] | None = None) -> list[SceneSpec]:
    """The Landsat scenes of a STAC ItemCollection file (``items.json`` of ``s2l8h
    search``)."""
    import pystac

    try:
        collection = pystac.ItemCollection.from_file(str(path))
    except (OSError, ValueError, KeyError, TypeError, pystac.STACError) as error:
        raise InputError(path, f"not a readable STAC ItemCollection "
                         f"({type(error).__name__}: {error})") from None
    return scenes_from_items(list(collection), aoi, sign)


def scenes_from_search(aoi: Geometry, start: str, end: str, catalog: Any, *,
                       max_cloud: float | None = None, limit: int = 500) -> list[SceneSpec]:
    """Search ``catalog`` (a :class:`s2l8h.data.stac.Catalog` with Landsat collections) over
    the AOI's bounding box from ``start`` to ``end``."""
    from s2l8h.data import stac

    result = stac.search(tuple(aoi.boundingbox), start, end, max_cloud=max_cloud,
                         catalogs=[catalog], limit=limit)
    return scenes_from_items([*result.landsat, *result.landsat_l1.values()], aoi)


def parse_aoi(value: str | os.PathLike[str] | Sequence[float] | dict | Geometry) -> Geometry:
    """An AOI in EPSG:4326: (west, south, east, north) in degrees, the same as a
    ``"w,s,e,n"`` string, a GeoJSON file or dict (geometry, Feature or FeatureCollection;
    the union of its geometries), or an odc-geo Geometry (reprojected)."""
    if isinstance(value, Geometry):
        return value.to_crs("EPSG:4326")
    if isinstance(value, dict):
        return _geojson(value, None)
    if isinstance(value, str | os.PathLike) and Path(value).is_file():
        try:
            document = json.loads(Path(value).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(value, f"not a readable GeoJSON file ({error})") from None
        return _geojson(document, Path(value))
    try:
        numbers = tuple(float(v) for v in (value.split(",") if isinstance(value, str)
                                           else value))
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 4 or numbers[0] >= numbers[2] or numbers[1] >= numbers[3] \
            or min(numbers[0], numbers[2]) < -180 or max(numbers[0], numbers[2]) > 180 \
            or min(numbers[1], numbers[3]) < -90 or max(numbers[1], numbers[3]) > 90:
        raise OptionError(f"AOI must be west,south,east,north in degrees or a GeoJSON file, "
                         f"got {value!r}")
    return box(*numbers, "EPSG:4326")


def _geojson(document: Any, path: Path | None) -> Geometry:
    geometries = []

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "FeatureCollection":
            for feature in node.get("features", []):
                walk(feature)
        elif kind == "Feature":
            walk(node.get("geometry"))
        elif kind in ("Polygon", "MultiPolygon"):
            geometries.append(Geometry(node, "EPSG:4326"))

    walk(document)
    if not geometries:
        raise InputError(path, "no Polygon or MultiPolygon in the GeoJSON")
    return unary_union(geometries)


def aoi_grid(aoi: Geometry | None = None, *, crs: Any = None,
             resolution: float | None = None,
             like: str | os.PathLike[str] | None = None) -> GeoBox:
    """The output grid of a run: exactly ``like``'s grid, or the grid in ``crs`` (default:
    the UTM zone of the AOI's centroid) with pixel edges on multiples of ``resolution``
    (CRS units; ``None``: 10 m, in a geographic CRS in degrees as ``harmonize`` takes it)
    that covers ``aoi``."""
    if like is not None:
        if crs is not None or resolution is not None:
            raise OptionError("--like cannot be combined with --crs or --resolution (it gives "
                              "the grid exactly)")
        return grid_like(like)
    check_resolution(resolution)
    if aoi is None:
        raise OptionError("an AOI (or a raster to take the grid from) is needed")
    if crs is not None:
        target = check_crs(crs)
    else:
        try:
            target = CRS.utm(aoi.centroid)
        except ValueError:  # pyproj has no UTM zone there
            lon, lat = aoi.centroid.to_crs("EPSG:4326").coords[0]
            raise OptionError(f"no UTM zone covers the AOI's centre (longitude {lon:.4f}, "
                              f"latitude {lat:.4f}; UTM spans 80°S to 84°N): give the AOI as "
                              "west,south,east,north (longitude first), or an output CRS"
                              ) from None
    resolution = default_resolution(target) if resolution is None else resolution
    return GeoBox.from_geopolygon(aoi, resolution=resolution, crs=target)
