"""The STAC catalogue of harmonized products (``s2l8h.batch.catalog``) on tiny generated
COG-like rasters: what it says the pixels are, its links to the sources, its permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from s2l8h.batch.catalog import DATETIME_TAG, SOURCES_TAG, product_item, write_catalog

BANDS = ["B02", "B03", "B04", "B8A", "B11", "B12"]


def _product(path: Path, level: str, sources: list[dict], dtype: str = "uint16",
             when: str = "2015-08-04T16:19:21Z") -> Path:
    """A 13-band raster tagged as ``harmonize`` tags its output (the tags the catalogue
    reads): uint16 with nodata 0, or float32 with NaN."""
    profile = {"driver": "GTiff", "width": 8, "height": 6, "count": 13, "dtype": dtype,
               "crs": "EPSG:32616", "transform": Affine(10, 0, 452480, 0, -10, 3408640),
               "nodata": 0 if dtype == "uint16" else np.nan}
    with rasterio.open(path, "w", **profile) as dataset:
        values = np.full((13, 6, 8), 1200 if dtype == "uint16" else 0.02, dtype=dtype)
        values[-1] = 1
        dataset.write(values)
        for index, name in enumerate([*BANDS, *(f"{b}_std" for b in BANDS), "mask"], start=1):
            dataset.set_band_description(index, name)
        dataset.update_tags(S2L8H_LEVEL=level, **{DATETIME_TAG: when,
                                                  SOURCES_TAG: json.dumps(sources)})
    return path


def test_a_float32_product_and_one_without_a_date_give_strict_json(tmp_path: Path) -> None:
    """NaN nodata is written as the raster extension spells it ("nan"), not as a bare NaN no
    strict JSON parser reads; a product whose scene had no date gets a range, not an
    error."""
    path = _product(tmp_path / "p.tif", "L2 surface reflectance", [], dtype="float32",
                    when="")
    item = product_item(path)
    document = json.dumps(item.to_dict(), allow_nan=False)  # raises on a bare NaN
    bands = json.loads(document)["assets"]["harmonized"]["raster:bands"]
    assert [band["nodata"] for band in bands] == ["nan"] * 13
    assert item.datetime is None
    assert item.common_metadata.start_datetime == item.common_metadata.end_datetime
    assert item.properties["s2l8h:valid_percent"] == 100.0


@pytest.mark.parametrize(("level", "radiometry"), [
    ("L2 surface reflectance", "surface reflectance"),
    ("L1 TOA reflectance (TOA mode)",
     "reflectance (from Level-1 TOA input, not surface reflectance)")])
def test_an_item_says_what_its_pixels_are(tmp_path: Path, level: str, radiometry: str) -> None:
    path = _product(tmp_path / "p.tif", level, [])
    item = product_item(path)
    assert item.properties["s2l8h:radiometry"] == radiometry
    asset = item.assets["harmonized"]
    assert asset.title == f"Sentinel-2-like {radiometry}, σ and mask (s2l8h)"
    descriptions = [band["description"] for band in asset.extra_fields["eo:bands"]][:6]
    assert descriptions == [f"{radiometry}, {name}" for name in BANDS]
    if "TOA" in level:
        assert all("not surface reflectance" in text for text in descriptions)


def test_source_links_and_the_catalogues_permissions(tmp_path: Path) -> None:
    folder = tmp_path / "LC08_L1TP_020039_20150804"
    folder.mkdir()
    sources = [{"id": "LC08_L2SP_020039", "collection": "landsat-c2-l2",
                "href": "https://stac.example/collections/landsat-c2-l2/items/LC08_L2SP"},
               {"id": folder.name, "collection": None, "href": folder.resolve().as_uri()}]
    path = _product(tmp_path / "p.tif", "L2 surface reflectance", sources)
    umask = os.umask(0o022)
    try:
        written = write_catalog([path], tmp_path / "stac")
    finally:
        os.umask(umask)
    item = next(pystac.Catalog.from_file(str(written)).get_items(recursive=True))
    links = {link.title: link for link in item.links if link.rel == "derived_from"}
    assert links["LC08_L2SP_020039"].media_type == pystac.MediaType.JSON
    assert links[folder.name].media_type is None  # a folder is not JSON
    assert links[folder.name].href == folder.resolve().as_uri()
    # Readable by others, as a folder made by mkdir under the umask (not mkdtemp's 0700).
    assert stat.S_IMODE((tmp_path / "stac").stat().st_mode) == 0o755
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_a_scene_folders_time_is_the_mtls_scene_centre_time() -> None:
    from conftest import DATA, FLORIDA
    from s2l8h.batch.scenes import scenes_from_folders

    florida, marburg = scenes_from_folders([FLORIDA, DATA / "marburg"])
    assert florida.datetime == "2015-08-04T16:19:21Z"  # SCENE_CENTER_TIME 16:19:21.79Z
    assert marburg.datetime == "2013-07-07T10:17:42Z"


def test_two_folders_of_one_scene_are_named_in_the_error(tmp_path: Path) -> None:
    import shutil

    from conftest import FLORIDA
    from s2l8h.batch.scenes import scenes_from_folders
    from s2l8h.errors import OptionError

    copy = tmp_path / "again"
    shutil.copytree(FLORIDA, copy)
    with pytest.raises(OptionError, match="same scene") as raised:
        scenes_from_folders([FLORIDA, copy])
    assert f"LC80200392015216LGN00: {FLORIDA}, {copy}" in str(raised.value)
