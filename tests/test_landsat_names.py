"""The one table of Landsat file-name patterns: real names parse into the right groups, and
near misses are not taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DATA, FLORIDA, L1_PRODUCT, PRODUCT
from s2l8h.data.simulate import SIMULATED_PRODUCT
from s2l8h.io.landsat import FILE_PATTERNS, acquisition_from_name, classify_file

MARBURG_ID = "LC08_L1TP_195025_20130707_20170503_01_T1"
FLORIDA_ID = "LC80200392015216LGN00"
#: Groups of the product ids the examples use.
MARBURG = {"scheme": "collection", "sensor": "LC", "satellite": "8", "level": "L1TP",
           "wrs_path": 195, "wrs_row": 25, "date": "2013-07-07", "collection": "01",
           "tier": "T1", "stem": MARBURG_ID}
FLORIDA_GROUPS = {"scheme": "pre-collection", "sensor": "LC", "satellite": "8", "level": None,
                  "wrs_path": 20, "wrs_row": 39, "date": "2015-08-04", "collection": None,
                  "tier": None, "stem": FLORIDA_ID}
LEVEL2 = {"scheme": "collection", "sensor": "LC", "satellite": "8", "level": "L2SP",
          "wrs_path": 195, "wrs_row": 25, "date": "2023-07-07", "collection": "02",
          "tier": "T1", "stem": PRODUCT}
LEVEL1 = {**LEVEL2, "level": "L1TP", "stem": L1_PRODUCT}
LANDSAT9 = "LC09_L2SP_014034_20230601_20230603_02_T1"
UNNAMED = {"scheme": "unnamed", "sensor": None, "satellite": None, "level": None,
           "wrs_path": None, "wrs_row": None, "date": None, "collection": None, "tier": None}

EXAMPLES = [
    # Collection 1 Level 1 (the Marburg crop in tests/data)
    (f"{MARBURG_ID}_B8.TIF", "pan", 8, MARBURG),
    (f"{MARBURG_ID}_B2.TIF", "band", 2, MARBURG),
    (f"{MARBURG_ID}_B10.TIF", "band", 10, MARBURG),
    (f"{MARBURG_ID}_BQA.TIF", "bqa", None, MARBURG),
    (f"{MARBURG_ID}_MTL.txt", "mtl", None, MARBURG),
    # pre-collection (the Florida crop in src/s2l8h/examples, data/)
    (f"{FLORIDA_ID}_B8.TIF", "pan", 8, FLORIDA_GROUPS),
    (f"{FLORIDA_ID}_B7.TIF", "band", 7, FLORIDA_GROUPS),
    (f"{FLORIDA_ID}_BQA.TIF", "bqa", None, FLORIDA_GROUPS),
    (f"{FLORIDA_ID}_MTL.txt", "mtl", None, FLORIDA_GROUPS),
    # Collection 2 Level 2 per-band SR + Level 1 pan and MTL JSON (tests/conftest.py)
    (f"{PRODUCT}_SR_B2.TIF", "sr_band", 2, LEVEL2),
    (f"{PRODUCT}_SR_B7.TIF", "sr_band", 7, LEVEL2),
    (f"{PRODUCT}_QA_PIXEL.TIF", "qa_pixel", None, LEVEL2),
    (f"{PRODUCT}_QA_RADSAT.TIF", "qa_radsat", None, LEVEL2),
    (f"{PRODUCT}_MTL.json", "mtl", None, LEVEL2),
    (f"{L1_PRODUCT}_B8.TIF", "pan", 8, LEVEL1),
    (f"{L1_PRODUCT}_MTL.json", "mtl", None, LEVEL1),
    # an MTL named like the product, a stacked SR GeoTIFF (tests/test_io, test_validation)
    (f"{L1_PRODUCT}.json", "text", None, LEVEL1),
    (f"{PRODUCT}_SR.tif", "raster", None, {**LEVEL2, "stem": f"{PRODUCT}_SR"}),
    ("stack.tif", "raster", None, {**UNNAMED, "stem": "stack"}),
    ("dem.tif", "raster", None, {**UNNAMED, "stem": "dem"}),
    ("notes.txt", "text", None, {**UNNAMED, "stem": "notes"}),
    # Landsat-9, lower-case extension
    (f"{LANDSAT9}_SR_B5.tif", "sr_band", 5,
     {**LEVEL2, "satellite": "9", "wrs_path": 14, "wrs_row": 34, "date": "2023-06-01",
      "stem": LANDSAT9}),
    # the simulated scenes data.simulate writes (WRS path/row 000/000)
    (SIMULATED_PRODUCT.format(date="20170216") + "_SR_B4.TIF", "sr_band", 4,
     {**LEVEL2, "wrs_path": 0, "wrs_row": 0, "date": "2017-02-16",
      "stem": SIMULATED_PRODUCT.format(date="20170216")}),
]


@pytest.mark.parametrize(("name", "kind", "band", "groups"), EXAMPLES,
                         ids=[example[0] for example in EXAMPLES])
def test_real_names_parse_into_their_groups(name: str, kind: str, band: int | None,
                                            groups: dict) -> None:
    parsed = classify_file(Path("/some/folder") / name)
    assert parsed is not None
    assert (parsed.kind, parsed.band) == (kind, band)
    assert {key: getattr(parsed, key) for key in groups} == groups


def test_examples_are_real_files_and_cover_every_kind() -> None:
    for folder, product in ((DATA / "marburg", MARBURG_ID), (FLORIDA, FLORIDA_ID)):
        names = {path.name for path in folder.glob(f"{product}_*")}
        assert {name for name, *_ in EXAMPLES if name.startswith(product)} <= names
    assert {kind for _, kind, *_ in EXAMPLES} == {pattern.kind for pattern in FILE_PATTERNS}


@pytest.mark.parametrize(("name", "kind", "not_taken"), [
    # a band number beyond the SR bands: a Level-1 band, not SR
    (f"{PRODUCT}_SR_B1.TIF", "band", "sr_band"),
    # three digits: no band at all, just some GeoTIFF
    (f"{MARBURG_ID}_B123.TIF", "raster", "band"),
    # QA_PIXEL misspelt
    (f"{PRODUCT}_QA_PIXELS.TIF", "raster", "qa_pixel"),
    # an MTL in XML, a GDAL sidecar: nothing Landsat reads
    (f"{PRODUCT}_MTL.xml", None, "mtl"),
    (f"{MARBURG_ID}_B8.TIF.aux.xml", None, "pan"),
    (f"{MARBURG_ID}_B8.jp2", None, "pan"),
])
def test_near_miss_kinds_are_not_taken(name: str, kind: str | None, not_taken: str) -> None:
    parsed = classify_file(name)
    assert (parsed.kind if parsed is not None else None) == kind != not_taken


@pytest.mark.parametrize(("name", "scheme"), [
    # five-digit path/row
    ("LC08_L2SP_19502_20230707_20230717_02_T1_SR_B2.TIF", "collection"),
    # acquisition date with seven digits
    ("LC08_L2SP_195025_2023077_20230717_02_T1_SR_B2.TIF", "collection"),
    # a Landsat-7 product: not Landsat-8/9
    ("LE07_L2SP_195025_20230707_20230717_02_T1_SR_B2.TIF", "unnamed"),
    # pre-collection id with a two-digit day of year
    ("LC8020039201521LGN00_B8.TIF", "unnamed"),
    # a STAC item id without the processing date
    ("LC09_L2SP_014034_20230601_02_T1_SR_B2.TIF", "collection"),
])
def test_near_miss_ids_give_no_acquisition(name: str, scheme: str) -> None:
    parsed = classify_file(name)
    assert parsed is not None and parsed.scheme == scheme
    assert (parsed.date, parsed.wrs_path, parsed.wrs_row) == (None, None, None)
    assert acquisition_from_name(Path(name)) is None


def test_acquisition_from_pre_collection_day_of_year() -> None:
    acquisition = acquisition_from_name(FLORIDA / f"{FLORIDA_ID}_B8.TIF")
    assert acquisition is not None
    assert acquisition.describe() == "Landsat-8, path/row 020/039, acquired 2015-08-04"
