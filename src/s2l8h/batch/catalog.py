"""A STAC catalogue of harmonized products (pystac), loadable with ``odc.stac.load``.

One item per product: footprint and bbox of its grid in lon/lat, the acquisition datetime,
the ``proj`` extension (code, shape, transform, bbox), one COG asset whose ``raster:bands``
give each band's data type, nodata, scale and offset (as written in the file) and whose
``eo:bands`` name them (B02 ... B12 with Sentinel-2 common names and centre wavelengths, the
``*_std`` bands, ``mask``), ``s2l8h:radiometry`` (surface reflectance, or reflectance from
Level-1 TOA input, which is not: the asset's title and the bands' descriptions say the same),
``s2l8h:level_shift`` and ``s2l8h:level_shift_max`` (the networks' level minus the input's
per band and its largest size, where ``harmonize`` recorded it), ``s2l8h:geolocation`` (what
the scene's MTL says of its geolocation: Level-1 processing level, collection, tier,
GEOMETRIC_RMSE_MODEL in metres), ``s2l8h:valid_percent``, ``s2l8h:flagged_percent`` and
``s2l8h:nodata_percent`` (the mask band's shares, to 0.1) and ``derived_from`` links to
the source Landsat items (a STAC item's JSON, or the scene folder). Everything is read back
from the written files (their grid, encodings and provenance tags).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pystac
import rasterio
from odc.geo.geobox import GeoBox
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension

from s2l8h import __version__
from s2l8h.inference.checks import LEVEL_SHIFT_TAG
from s2l8h.io.cog import band_quantity, mask_percentages

DATETIME_TAG = "S2L8H_DATETIME"
SOURCES_TAG = "S2L8H_SOURCE_ITEMS"
PROPERTIES_TAG = "S2L8H_PROPERTIES"
#: Sentinel-2A common names and centre wavelengths (micrometres) of the output bands.
SENTINEL2_BANDS = {"B02": ("blue", 0.492), "B03": ("green", 0.560), "B04": ("red", 0.665),
                   "B8A": ("nir08", 0.865), "B11": ("swir16", 1.614),
                   "B12": ("swir22", 2.202)}
ASSET = "harmonized"


def product_item(path: str | os.PathLike[str]) -> pystac.Item:
    """The STAC item of one harmonized COG (asset href absolute; made relative on save)."""
    path = Path(path).resolve()
    with rasterio.open(path) as dataset:
        grid = GeoBox.from_rio(dataset)
        tags = dataset.tags()
        descriptions = dataset.descriptions
        dtypes, nodata = dataset.dtypes, dataset.nodata
        scales, offsets = dataset.scales, dataset.offsets
    footprint = grid.extent.to_crs("EPSG:4326")
    when = tags.get(DATETIME_TAG)
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    properties = json.loads(tags.get(PROPERTIES_TAG, "{}"))
    levels = json.loads(tags.get(LEVEL_SHIFT_TAG, "null"))
    properties.update({
        "s2l8h:models": json.loads(tags.get("S2L8H_MODELS", "[]")),
        "s2l8h:uncertainty": tags.get("S2L8H_UNCERTAINTY"),
        "s2l8h:version": tags.get("S2L8H_VERSION", __version__),
        "s2l8h:source_items": [s["id"] for s in json.loads(tags.get(SOURCES_TAG, "[]"))],
        "s2l8h:radiometry": band_quantity(tags.get("S2L8H_LEVEL", "")),
    })
    if isinstance(levels, dict):
        # The networks' level minus the input's per band (B02 ... B12, reflectance) and its
        # largest size: a season's products can be filtered on it
        # (:data:`s2l8h.inference.checks.LEVEL_SHIFT_WARNING`).
        medians = levels.get("median") or []
        properties["s2l8h:level_shift"] = medians
        properties["s2l8h:level_shift_max"] = max(
            (abs(value) for value in medians if value is not None), default=None)
    if "mask" in descriptions:  # a season's products can be filtered on how much is left
        for name, percent in mask_percentages(path).items():
            properties[f"s2l8h:{name}_percent"] = percent
    geolocation = json.loads(tags.get("S2L8H_GEOLOCATION", "null"))
    if isinstance(geolocation, dict):
        properties["s2l8h:geolocation"] = geolocation
    # STAC needs a datetime or a range: where the MTL date was missing, a range of nothing.
    unknown = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) if moment is None else None
    item = pystac.Item(id=path.stem, geometry=footprint.json, bbox=list(footprint.boundingbox),
                       datetime=moment, properties=properties, start_datetime=unknown,
                       end_datetime=unknown)
    asset = pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"],
                         title=f"Sentinel-2-like {properties['s2l8h:radiometry']}, σ and "
                               "mask (s2l8h)")
    item.add_asset(ASSET, asset)
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    if grid.crs.epsg is not None:
        projection.code = f"EPSG:{grid.crs.epsg}"
    else:
        projection.wkt2 = grid.crs.to_wkt()
    projection.shape = [grid.height, grid.width]
    projection.transform = list(grid.affine)[:6]
    projection.bbox = list(grid.boundingbox)
    raster_bands, eo_bands = [], []
    for index, name in enumerate(descriptions):
        # NaN as the extension spells it ("nan"): JSON has no NaN, and strict parsers
        # refuse the bare token json.dumps would write.
        band = RasterBand.create(data_type=dtypes[index], nodata="nan" if nodata is not None
                                 and math.isnan(nodata) else nodata)
        if (scales[index], offsets[index]) != (1.0, 0.0):
            band.scale, band.offset = scales[index], offsets[index]
        raster_bands.append(band)
        base = (name or f"b{index + 1}").removesuffix("_std")
        if name in SENTINEL2_BANDS:
            common, centre = SENTINEL2_BANDS[name]
            eo_bands.append(Band.create(name=name, common_name=common, center_wavelength=centre,
                                        description=f"{properties['s2l8h:radiometry']}, "
                                                    f"{base}"))
        else:
            eo_bands.append(Band.create(name=name or f"b{index + 1}", description=(
                f"standard deviation of {base} reflectance" if name and name.endswith("_std")
                else "0 no data, 1 valid, 2 flagged by the quality band")))
    RasterExtension.ext(asset, add_if_missing=True).bands = raster_bands
    EOExtension.ext(asset, add_if_missing=True).bands = eo_bands
    for source in json.loads(tags.get(SOURCES_TAG, "[]")):
        href = source.get("href")
        if href:  # a STAC item's JSON, or a scene folder (no media type)
            item.add_link(pystac.Link("derived_from", href, title=source.get("id"),
                                      media_type=None if href.startswith("file:")
                                      else pystac.MediaType.JSON))
    return item


def write_catalog(products: Sequence[str | os.PathLike[str]], folder: str | os.PathLike[str],
                  title: str = "s2l8h harmonized products") -> Path:
    """Write a self-contained catalogue of ``products`` to ``folder`` (``catalog.json`` and
    ``<id>/<id>.json``, asset hrefs relative); built aside and swapped in, so a reader sees
    the old or the new catalogue. Returns the path of ``catalog.json``."""
    folder = Path(folder).resolve()
    catalog = pystac.Catalog(id="s2l8h-harmonized", title=title,
                             description="Landsat-8/9 harmonized to Sentinel-2-like 10 m "
                                         "reflectance with uncertainty (s2l8h; each item's "
                                         "s2l8h:radiometry says which)")
    for path in sorted(map(Path, products)):
        catalog.add_item(product_item(path))
    # No dot in these names: pystac takes a root href with an extension for a file.
    staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}-staging-", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # as a folder made by mkdir (mkdtemp makes it private)
    try:
        # The staging folder sits beside ``folder``: relative hrefs stay right after the swap.
        catalog.normalize_hrefs(str(staging))
        catalog.make_all_asset_hrefs_relative()
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
        old = folder.with_name(f"{folder.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / "catalog.json"
