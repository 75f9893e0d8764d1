"""STAC search, pairing and loading against a real STAC API (rustac) on loopback.

The catalogue serves three collections whose assets are local COGs made from the Virginia
Sentinel-2 example: Sentinel-2 L2A items (one before 25 January 2022 with no offset, one after
with DN + 1000 and ``s2:processing_baseline`` 05.09, one scene-level "clear" item whose SCL is
cloudy over the AOI, one far away), and Landsat C2 L2 / L1 items simulated from the same
Sentinel-2 scene.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.warp import transform_bounds

from s2l8h.data import stac
from s2l8h.data.simulate import simulate_landsat, write_simulated_scene
from s2l8h.io.sentinel2 import read_sentinel2

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"
RUSTAC = shutil.which("rustac")
pytestmark = pytest.mark.skipif(RUSTAC is None, reason="rustac (STAC API server) not installed")
CROP = GeoBox((300, 300), Affine(10, 0, 438730, 0, -10, 4176460), "EPSG:32618")
EPSG = 32618


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cog(path: Path, data: np.ndarray, transform: Affine, nodata=0) -> str:
    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype, crs=f"EPSG:{EPSG}", transform=transform,
                       nodata=nodata) as dataset:
        dataset.write(data, 1)
    return str(path)


def _lonlat(bounds) -> list[float]:
    return list(transform_bounds(f"EPSG:{EPSG}", "EPSG:4326", *bounds))


def _item(item_id, collection, date, bounds, assets, **properties) -> dict:
    west, south, east, north = _lonlat(bounds)
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                         [east, north], [west, north],
                                                         [west, south]]]},
        "properties": {"datetime": f"{date}T15:50:00Z", **properties},
        "links": [], "assets": {name: {"href": Path(href).as_uri(), "type": "image/tiff"}
                                for name, href in assets.items()},
    }


def serve(folder: Path, collections: list[str], items: list[dict]
          ) -> tuple[subprocess.Popen, str]:
    """Start ``rustac serve`` on loopback with these collection files and items; returns the
    server process and its URL once it accepts connections."""
    item_file = folder / "items.json"
    item_file.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    port = _free_port()
    server = subprocess.Popen([RUSTAC, "serve", "--addr", f"127.0.0.1:{port}", *collections,
                               str(item_file)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("rustac serve did not start")
    return server, f"http://127.0.0.1:{port}"


def collection_files(folder: Path, names: tuple[str, ...]) -> list[str]:
    """STAC collection documents (global extent) written to ``folder``."""
    paths = []
    for collection in names:
        document = {"type": "Collection", "stac_version": "1.0.0", "id": collection,
                    "description": collection, "license": "CC0-1.0", "links": [],
                    "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                               "temporal": {"interval": [[None, None]]}}}
        path = folder / f"{collection}.json"
        path.write_text(json.dumps(document))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("stac")
    reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=CROP)
    bounds = (438730.0, 4173460.0, 441730.0, 4176460.0)
    items = []
    # Sentinel-2: 20 m bands on a 20 m grid, 10 m bands on the 10 m grid, SCL at 20 m.
    transform10 = grid.affine
    transform20 = Affine(20, 0, grid.affine.c, 0, -20, grid.affine.f)
    names = ("B02", "B03", "B04", "B8A", "B11", "B12")

    def s2_item(item_id, date, baseline, dn_offset, scl_value, cloud_cover, shift=0.0):
        assets = {}
        for index, band in enumerate(names):
            dn = np.rint(reflectance[index] * 10000 + dn_offset).astype(np.uint16)
            if band in ("B8A", "B11", "B12"):
                dn = dn[::2, ::2]
                transform = transform20
            else:
                transform = transform10
            assets[band] = _cog(folder / f"{item_id}_{band}.tif", dn,
                                transform * Affine.translation(shift, 0))
        scl = np.full((150, 150), scl_value, dtype=np.uint8)
        assets["scl"] = _cog(folder / f"{item_id}_SCL.tif", scl,
                             transform20 * Affine.translation(shift, 0))
        shifted = (bounds[0] + 10 * shift, bounds[1], bounds[2] + 10 * shift, bounds[3])
        return _item(item_id, "sentinel-2-l2a", date, shifted, assets, platform="sentinel-2a",
                     **{"eo:cloud_cover": cloud_cover, "proj:code": f"EPSG:{EPSG}",
                        "s2:processing_baseline": baseline})

    items.append(s2_item("S2A_T18SVH_20210601", "2021-06-01", "03.00", 0, 4, 5.0))
    items.append(s2_item("S2A_T18SVH_20230601", "2023-06-01", "05.09", 1000, 4, 3.0))
    items.append(s2_item("S2B_T18SVH_20230601_cloudy", "2023-06-01", "05.09", 1000, 9, 10.0))
    items.append(s2_item("S2A_T18SVH_20230602", "2023-06-02", "05.09", 1000, 4, 90.0))
    items.append(s2_item("S2A_far_away_20230601", "2023-06-01", "05.09", 1000, 4, 1.0,
                         shift=100_000.0))
    # Landsat simulated from the same scene, for both dates.
    simulated = simulate_landsat(reflectance, valid, grid)
    for date, spacecraft in (("2021-06-01", "landsat-8"), ("2023-06-01", "landsat-9")):
        compact = date.replace("-", "")
        scene_dir, _ = write_simulated_scene(simulated, folder / f"landsat_{compact}",
                                             date=compact)
        lowres = simulated.lowres_grid.boundingbox
        level2 = {path.name.split("_")[-1].split(".")[0].lower(): str(path)
                  for path in scene_dir.glob("*L2SP*.TIF")}
        assets = {"blue": level2["b2"], "green": level2["b3"], "red": level2["b4"],
                  "nir08": level2["b5"], "swir16": level2["b6"], "swir22": level2["b7"],
                  "qa_pixel": level2["pixel"]}
        prefix = "LC09" if spacecraft == "landsat-9" else "LC08"
        common = {"platform": spacecraft, "eo:cloud_cover": 2.0, "landsat:wrs_path": "14",
                  "landsat:wrs_row": "34", "proj:epsg": EPSG}
        items.append(_item(f"{prefix}_L2SP_014034_{compact}_02_T1", "landsat-c2-l2", date,
                           tuple(lowres), assets, **common))
        level1 = {"pan": str(next(scene_dir.glob("*L1TP*_B8.TIF"))),
                  "mtl.json": str(next(scene_dir.glob("*L1TP*_MTL.json")))}
        items.append(_item(f"{prefix}_L1TP_014034_{compact}_02_T1", "landsat-c2-l1", date,
                           tuple(lowres), level1, **common))
    collections = collection_files(folder, ("sentinel-2-l2a", "landsat-c2-l2",
                                            "landsat-c2-l1"))
    server, url = serve(folder, collections, items)
    aoi = tuple(_lonlat((439030.0, 4173760.0, 441430.0, 4176160.0)))
    yield {"url": url, "aoi": aoi, "reflectance": reflectance, "grid": grid,
           "simulated": simulated}
    server.terminate()
    server.wait(timeout=10)


def _catalog(url: str) -> stac.Catalog:
    return stac.Catalog(url, landsat_l2="landsat-c2-l2", landsat_l1="landsat-c2-l1",
                        sentinel2="sentinel-2-l2a")


def test_search_finds_and_matches_items(catalog) -> None:
    result = stac.search(catalog["aoi"], "2021-01-01", "2023-12-31",
                         catalogs=[_catalog(catalog["url"])])
    assert [item.id for item in result.landsat] == ["LC08_L2SP_014034_20210601_02_T1",
                                                    "LC09_L2SP_014034_20230601_02_T1"]
    assert result.landsat_l1["LC09_L2SP_014034_20230601_02_T1"].id == \
        "LC09_L1TP_014034_20230601_02_T1"
    found = {item.id for item in result.sentinel2}
    assert "S2A_far_away_20230601" not in found  # outside the AOI
    assert found == {"S2A_T18SVH_20210601", "S2A_T18SVH_20230601",
                     "S2B_T18SVH_20230601_cloudy", "S2A_T18SVH_20230602"}
    clear_scenes = stac.search(catalog["aoi"], "2021-01-01", "2023-12-31", max_cloud=50,
                               catalogs=[_catalog(catalog["url"])])
    assert "S2A_T18SVH_20230602" not in {item.id for item in clear_scenes.sentinel2}


def test_search_results_table(catalog, tmp_path: Path) -> None:
    result = stac.search(catalog["aoi"], "2023-01-01", "2023-12-31",
                         catalogs=[_catalog(catalog["url"])])
    table, collection = result.write(tmp_path)
    text = table.read_text()
    assert "LC09_L2SP_014034_20230601_02_T1" in text and "05.09" in text
    assert len(json.loads(collection.read_text())["features"]) == 5  # 1 + 1 Landsat, 3 S2


def test_pairs_use_aoi_level_clear_fraction(catalog) -> None:
    result = stac.search(catalog["aoi"], "2021-01-01", "2023-12-31",
                         catalogs=[_catalog(catalog["url"])])
    same_day = stac.find_pairs(result, catalog["aoi"])
    names = {(p.landsat.id[:4] + p.landsat.id[17:25], p.sentinel2.id) for p in same_day}
    assert names == {("LC0820210601", "S2A_T18SVH_20210601"),
                     ("LC0920230601", "S2A_T18SVH_20230601"),
                     ("LC0920230601", "S2B_T18SVH_20230601_cloudy")}
    cloudy = next(p for p in same_day if p.sentinel2.id.endswith("cloudy"))
    assert cloudy.sentinel2_clear == 0.0 and cloudy.sentinel2_valid == 1.0
    clear = stac.find_pairs(result, catalog["aoi"], min_clear=0.5)
    assert {p.sentinel2.id for p in clear} == {"S2A_T18SVH_20210601", "S2A_T18SVH_20230601"}
    assert all(p.landsat_clear == 1.0 for p in clear)
    within_a_day = stac.find_pairs(result, catalog["aoi"], max_days=1, min_clear=0.5)
    assert "S2A_T18SVH_20230602" in {p.sentinel2.id for p in within_a_day}


@pytest.mark.parametrize(("sentinel2_id", "offset"), [("S2A_T18SVH_20210601", 0.0),
                                                      ("S2A_T18SVH_20230601", -1000.0)])
def test_load_pair_handles_the_baseline_offset(catalog, sentinel2_id, offset) -> None:
    result = stac.search(catalog["aoi"], "2021-01-01", "2023-12-31",
                         catalogs=[_catalog(catalog["url"])])
    pair = next(p for p in stac.find_pairs(result, catalog["aoi"])
                if p.sentinel2.id == sentinel2_id)
    loaded = stac.load_pair(pair, catalog["aoi"])
    assert loaded.sentinel2_offset == offset
    assert loaded.grid.affine.a == 10 and loaded.grid.affine.c % 10 == 0
    assert loaded.grid.height % 3 == 0 and loaded.grid30.affine.a == 30
    assert (loaded.grid30.affine.c, loaded.grid30.affine.f) == (loaded.grid.affine.c,
                                                                loaded.grid.affine.f)
    assert loaded.grid15.affine.a == 15 and loaded.pan.shape == (2 * loaded.grid30.height,
                                                                 2 * loaded.grid30.width)
    expected, valid, _ = read_sentinel2(VIRGINIA, grid=loaded.grid)
    blue = loaded.sentinel2[0]
    assert np.nanmax(np.abs(blue[valid] - expected[0][valid])) < 1e-6
    # Landsat SR on its grid is the simulated reflectance (warped 5 m): means agree.
    assert np.nanmean(loaded.landsat[1]) == pytest.approx(
        catalog["simulated"].multispectral[1].mean(), abs=3e-3)
    assert (loaded.qa_pixel[np.isfinite(loaded.landsat[0])] == 21824).all()
    assert np.nanmean(loaded.pan) == pytest.approx(catalog["simulated"].pan.mean(), abs=3e-3)


def test_sentinel2_offset_rules() -> None:
    import datetime as dt

    import pystac

    def item(**properties):
        return pystac.Item("x", None, None, dt.datetime(2023, 5, 1), properties)

    assert stac.sentinel2_offset(item(**{"s2:processing_baseline": "05.09"})) == -1000.0
    assert stac.sentinel2_offset(item(**{"s2:processing_baseline": "03.01"})) == 0.0
    assert stac.sentinel2_offset(item(**{"s2:processing_baseline": "05.09",
                                         "earthsearch:boa_offset_applied": True})) == 0.0
    assert stac.sentinel2_offset(item()) == -1000.0  # after 25 January 2022, no baseline


def test_server_down_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(stac.CatalogError, match="cannot open the STAC API"):
        stac.search((0, 0, 1, 1), "2023-01-01", "2023-02-01", catalogs=[_catalog(url)],
                    retries=0, timeout=2)


def test_dates_are_checked_before_any_catalogue_is_asked() -> None:
    """A month 13 or a start after the end is the option's error, with no request made (the
    catalogue here is a closed port: reaching it would be another error)."""
    from s2l8h.errors import OptionError

    url = f"http://127.0.0.1:{_free_port()}"
    for start, end, message in (("2023-13-01", "2023-12-31", "--start must be a date"),
                                ("2023-01-01", "June", "--end must be a date"),
                                ("2023-12-01", "2023-01-31", r"--start \(2023-12-01\) is after")):
        with pytest.raises(OptionError, match=message):
            stac.search((0, 0, 1, 1), start, end, catalogs=[_catalog(url)], retries=0,
                        timeout=2)
    stac.check_period("2023-01-01", "2023-01-01T23:59:59Z")  # one day, with a time: fine
    # Offsets are converted, not dropped: 01:00+02:00 is 23:00 UTC the day before.
    stac.check_period("2023-01-01T01:00:00+02:00", "2023-01-01T00:00:00Z")
    with pytest.raises(OptionError, match="is after"):
        stac.check_period("2023-01-01T01:00:00Z", "2023-01-01T02:00:00+02:00")


class _Failing(http.server.BaseHTTPRequestHandler):
    calls = 0
    delay = 0.0

    def do_GET(self) -> None:
        type(self).calls += 1
        time.sleep(self.delay)
        self.send_response(500 if self.delay == 0 else 200)
        self.end_headers()
        self.wfile.write(b"boom" if self.delay == 0 else b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(("delay", "message"), [(0.0, "500"), (2.0, "(?i)timed? ?out")])
def test_server_errors_and_timeouts_are_retried_then_reported(delay, message) -> None:
    handler = type("Handler", (_Failing,), {"calls": 0, "delay": delay})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        started = time.time()
        with pytest.raises(stac.CatalogError, match=message):
            stac.search((0, 0, 1, 1), "2023-01-01", "2023-02-01", catalogs=[_catalog(url)],
                        retries=2, timeout=0.5)
        assert time.time() - started < 20
        if delay == 0.0:
            assert handler.calls == 3  # first try + 2 retries
    finally:
        server.shutdown()
        server.server_close()


def test_pairs_and_search_cli(catalog, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from s2l8h.cli import app

    url = catalog["url"]
    aoi = ",".join(f"{value:.6f}" for value in catalog["aoi"])
    options = ["--start", "2021-01-01", "--end", "2023-12-31", "--landsat-url", url,
               "--landsat-l2", "landsat-c2-l2", "--landsat-l1", "landsat-c2-l1",
               "--sentinel2-url", url, "--sentinel2", "sentinel-2-l2a"]
    runner = CliRunner()
    result = runner.invoke(app, ["pairs", aoi, *options, "--min-clear", "0.5", "-o",
                                 str(tmp_path / "pairs.csv")])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "pairs.csv").read_text().splitlines()
    assert rows[0].startswith("landsat,landsat_l1,sentinel2,days_apart")
    assert len(rows) == 3 and "S2A_T18SVH_20230601" in rows[2]
    result = runner.invoke(app, ["search", aoi, *options, "-o", str(tmp_path / "found")])
    assert result.exit_code == 0, result.output
    assert "2 Landsat (L1 matched: 2), 4 Sentinel-2 items" in result.output
    down = runner.invoke(app, ["search", aoi, "--start", "2021-01-01", "--end", "2021-02-01",
                               "--landsat-url", f"http://127.0.0.1:{_free_port()}",
                               "--sentinel2-url", url, "-o", str(tmp_path / "x")])
    assert down.exit_code != 0 and "cannot open the STAC API" in down.output


def test_build_dataset_from_real_pairs_is_resumable(catalog, tmp_path: Path,
                                                    monkeypatch) -> None:
    from s2l8h.data.build import build_pair_dataset
    from s2l8h.data.patches import PatchDataset, read_table

    result = stac.search(catalog["aoi"], "2021-01-01", "2023-12-31",
                         catalogs=[_catalog(catalog["url"])])
    pairs = stac.find_pairs(result, catalog["aoi"], min_clear=0.5)
    assert len(pairs) == 2
    original = stac.load_pair
    calls: list[str] = []

    def crash_on_second(pair, *args, **kwargs):
        calls.append(pair.sentinel2.id)
        if len(calls) == 2:
            raise OSError("connection reset while reading an asset")
        return original(pair, *args, **kwargs)

    monkeypatch.setattr(stac, "load_pair", crash_on_second)
    folder = tmp_path / "real"
    with pytest.raises(OSError, match="connection reset"):
        build_pair_dataset(pairs, catalog["aoi"], folder, size=16, stride=8,
                           fractions=(0.6, 0.2, 0.2), progress=False)
    assert not (folder / "patches.csv").exists()  # never looks complete
    assert len(list((folder / "tables").glob("*.csv"))) == 1
    monkeypatch.setattr(stac, "load_pair", original)
    loaded_again: list[str] = []
    monkeypatch.setattr(stac, "load_pair",
                        lambda pair, *a, **k: loaded_again.append(pair.sentinel2.id)
                        or original(pair, *a, **k))
    counts = build_pair_dataset(pairs, catalog["aoi"], folder, size=16, stride=8,
                                fractions=(0.6, 0.2, 0.2), progress=False)
    assert loaded_again == [calls[1]]  # the finished pair was not loaded again
    rows = read_table(folder)
    assert {row["scene_sentinel2"] for row in rows} == {"S2A_T18SVH_20210601",
                                                       "S2A_T18SVH_20230601"}
    assert counts["Train"] > 0 and counts["Validation"] > 0 and counts["Test"] > 0
    sample = PatchDataset(folder, "Train")[0]
    l8, pan, s2 = sample["image"], sample["pan"], sample["target"]
    assert l8.shape == (6, 16, 16) and pan.shape == (1, 32, 32) and s2.shape == (6, 48, 48)
    assert 0.0 < float(s2.mean()) < 0.5  # offset-corrected reflectance, not DN


def test_build_dataset_cli(catalog, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from s2l8h.cli import app

    url = catalog["url"]
    aoi = ",".join(f"{value:.6f}" for value in catalog["aoi"])
    result = CliRunner().invoke(app, [
        "build-dataset", aoi, "--start", "2023-01-01", "--end", "2023-12-31", "-o",
        str(tmp_path / "ds"), "--size", "16", "--stride", "16", "--landsat-url", url,
        "--landsat-l2", "landsat-c2-l2", "--landsat-l1", "landsat-c2-l1", "--sentinel2-url",
        url, "--sentinel2", "sentinel-2-l2a", "-q"])
    assert result.exit_code == 0, result.output
    assert "from 1 pair(s)" in result.output
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["complete"] is True


def test_url_signer_is_applied_to_found_items(catalog) -> None:
    def sign(obj) -> None:  # like planetary_computer.sign_inplace: items or item dicts
        features = obj.get("features", [obj]) if isinstance(obj, dict) else [obj]
        for feature in features:
            if isinstance(feature, dict):
                for asset in feature.get("assets", {}).values():
                    asset["href"] += "?token=abc"
            elif hasattr(feature, "assets"):
                for asset in feature.assets.values():
                    asset.href += "?token=abc"

    signed = stac.Catalog(catalog["url"], sentinel2="sentinel-2-l2a", sign=sign)
    result = stac.search(catalog["aoi"], "2023-06-01", "2023-06-01", catalogs=[signed])
    assert result.sentinel2
    assert all(asset.href.endswith("?token=abc") for item in result.sentinel2
               for asset in item.assets.values())


def test_reference_is_the_clearest_item_with_its_clouds_as_no_data(catalog, tmp_path: Path
                                                                   ) -> None:
    from s2l8h.errors import OutputError
    from s2l8h.inference.coregister import register_scene

    bbox = catalog["aoi"]
    found = stac.search(bbox, "2021-01-01", "2023-12-31",
                        catalogs=[stac.Catalog(catalog["url"], sentinel2="sentinel-2-l2a")])
    item, clear = stac.clearest_sentinel2(found.sentinel2, bbox)
    # Three items are all clear over the AOI: the least cloudy scene wins; the cloudy one
    # (SCL 9 everywhere) and the one elsewhere never do.
    assert item.id == "S2A_T18SVH_20230601" and clear == 1.0
    path = stac.write_reference(item, bbox, tmp_path / "reference.tif")
    reflectance, grid = catalog["reflectance"], catalog["grid"]
    with rasterio.open(path) as dataset:
        assert dataset.crs.to_epsg() == EPSG and dataset.nodata == 0
        assert dataset.tags()["S2L8H_REFERENCE_ITEM"] == item.id
        assert dataset.tags()["S2L8H_REFERENCE_ASSET"] == "B04"
        left, bottom, right, top = transform_bounds("EPSG:4326", dataset.crs, *bbox)
        assert dataset.bounds.left <= left and dataset.bounds.right >= right
        assert dataset.bounds.bottom <= bottom and dataset.bounds.top >= top
        window = rasterio.windows.from_bounds(*grid.boundingbox, dataset.transform)
        written = dataset.read(1, window=window.round_offsets().round_lengths(),
                               boundless=True, fill_value=0)
    # The item's red band as stored (baseline 05.09: DN = reflectance x 10000 + 1000).
    expected = np.rint(reflectance[2] * 10000 + 1000)
    inside = written > 0
    assert inside.mean() > 0.5
    np.testing.assert_array_equal(written[inside], expected[inside])
    # The simulated Landsat scene of the same ground needs no correction against it.
    simulated = catalog["simulated"]
    registration = register_scene(
        lambda: (simulated.multispectral, simulated.lowres_valid), simulated.lowres_grid,
        str(path))
    assert registration.shift_m is not None and np.hypot(*registration.shift_m) < 2.0
    assert registration.corrected_m == (0.0, 0.0) and not registration.refused
    # Its clouds are no data: the cloudy item's reference is empty.
    cloudy = next(i for i in found.sentinel2 if i.id == "S2B_T18SVH_20230601_cloudy")
    with rasterio.open(stac.write_reference(cloudy, bbox, tmp_path / "cloudy.tif")) as dataset:
        assert not dataset.read(1).any()
    with pytest.raises(OutputError, match="already exists"):
        stac.write_reference(item, bbox, path)
    with pytest.raises(stac.CatalogError, match="no Sentinel-2 item has a clear pixel"):
        stac.clearest_sentinel2([cloudy], bbox)


def test_reference_cli(catalog, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from s2l8h.cli import app

    aoi = ",".join(f"{value:.6f}" for value in catalog["aoi"])
    options = ["--start", "2021-01-01", "--end", "2023-12-31", "--sentinel2-url",
               catalog["url"], "--sentinel2", "sentinel-2-l2a", "-o",
               str(tmp_path / "reference.tif")]
    runner = CliRunner()
    result = runner.invoke(app, ["reference", aoi, *options])
    assert result.exit_code == 0, result.output
    assert "S2A_T18SVH_20230601 (100% of the AOI clear); wrote" in result.output
    again = runner.invoke(app, ["reference", aoi, *options])
    assert again.exit_code == 2 and "already exists" in again.output
    assert not list(tmp_path.glob(".*partial"))


def test_season_reference_is_written_once_and_reused(catalog, tmp_path: Path) -> None:
    from s2l8h.errors import OutputError

    bbox = catalog["aoi"]
    found = stac.search(bbox, "2021-01-01", "2023-12-31", catalogs=[_catalog(catalog["url"])])
    # Only the Sentinel-2 items count, whatever else the list holds.
    items = [*found.landsat, *found.sentinel2]
    assert stac.sentinel2_items(items) == found.sentinel2
    path, item, clear = stac.season_reference(items, bbox, tmp_path / "reference")
    assert path == tmp_path / "reference" / "S2A_T18SVH_20230601.tif" and clear == 1.0
    assert item.id == "S2A_T18SVH_20230601"
    written = path.stat().st_mtime_ns
    again, _, _ = stac.season_reference(items, bbox, tmp_path / "reference")
    assert again == path and path.stat().st_mtime_ns == written
    # A file of that name made from something else is not taken for it, nor replaced.
    path.write_bytes(b"not a raster")
    with pytest.raises(OutputError, match="is not the reference made from S2A_T18SVH_20230601"):
        stac.season_reference(items, bbox, tmp_path / "reference")
    assert path.read_bytes() == b"not a raster"
