"""Many scenes on a dask LocalCluster (2 worker processes) against a loopback STAC API.

The catalogue (``rustac serve`` on 127.0.0.1, as in test_stac) serves five Landsat-8 scenes
simulated from small, shifted crops of the Virginia Sentinel-2 example, with local COG assets
(Level-2 SR bands and QA_PIXEL, Level-1 pan and MTL); the fifth has a truncated red band.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from s2l8h.batch import (
    aoi_grid,
    harmonize_many,
    parse_aoi,
    scenes_from_folders,
    scenes_from_item_collection,
)
from s2l8h.batch.run import PROVENANCE_TAG
from s2l8h.data import stac
from s2l8h.data.simulate import simulate_landsat, write_simulated_scene
from s2l8h.inference.harmonize import harmonize
from s2l8h.io.cog import mask_shares
from s2l8h.io.sentinel2 import read_sentinel2
from test_stac import RUSTAC, VIRGINIA, _item, _lonlat, collection_files, serve

pytestmark = pytest.mark.skipif(RUSTAC is None, reason="rustac (STAC API server) not installed")
distributed = pytest.importorskip("distributed")
EPSG = 32618
SIZE = 96  # 10 m pixels per crop side (32 Landsat pixels)
ORIGINS = [(438730 + 60 * k, 4176460 - 30 * k) for k in range(5)]
AOI_UTM = (439030.0, 4175560.0, 439630.0, 4176160.0)  # inside every crop, off its edges
DATES = ["2023-05-01", "2023-05-17", "2023-06-02", "2023-06-18", "2023-07-04"]
OPTIONS = {"torch_threads": 1, "retries": 1, "progress": False}


@pytest.fixture(scope="module")
def landsat(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("many")
    items, folders = [], []
    for index, ((x0, y0), date) in enumerate(zip(ORIGINS, DATES, strict=True)):
        crop = GeoBox((SIZE, SIZE), Affine(10, 0, x0, 0, -10, y0), f"EPSG:{EPSG}")
        reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=crop)
        simulated = simulate_landsat(reflectance, valid, grid, seed=index)
        compact = date.replace("-", "")
        scene, _ = write_simulated_scene(simulated, folder / f"scene{index}", date=compact)
        folders.append(scene)
        l2 = {p.name.split("_")[-1].split(".")[0].lower(): str(p)
              for p in scene.glob("*L2SP*.TIF")}
        if index == 4:  # a broken asset: the red band cut in half
            data = Path(l2["b4"]).read_bytes()
            Path(l2["b4"]).write_bytes(data[: len(data) // 2])
        assets = {"blue": l2["b2"], "green": l2["b3"], "red": l2["b4"], "nir08": l2["b5"],
                  "swir16": l2["b6"], "swir22": l2["b7"], "qa_pixel": l2["pixel"]}
        common = {"platform": "landsat-8", "eo:cloud_cover": 1.0, "landsat:wrs_path": "14",
                  "landsat:wrs_row": "34", "proj:epsg": EPSG}
        bounds = tuple(simulated.lowres_grid.boundingbox)
        items.append(_item(f"LC08_L2SP_014034_{compact}_02_T1", "landsat-c2-l2", date, bounds,
                           assets, **common))
        level1 = {"pan": str(next(scene.glob("*L1TP*_B8.TIF"))),
                  "mtl.json": str(next(scene.glob("*L1TP*_MTL.json")))}
        items.append(_item(f"LC08_L1TP_014034_{compact}_02_T1", "landsat-c2-l1", date, bounds,
                           level1, **common))
    collections = collection_files(folder, ("landsat-c2-l2", "landsat-c2-l1"))
    server, url = serve(folder, collections, items)
    aoi = parse_aoi(_lonlat(AOI_UTM))
    # An ItemCollection as `s2l8h search` writes it (plus a Sentinel-2 item to be ignored).
    sentinel2 = _item("S2A_T18SVH_20230501", "sentinel-2-l2a", "2023-05-01", AOI_UTM,
                      {"B04": l2["b4"]}, platform="sentinel-2a")
    collection_file = folder / "found" / "items.json"
    collection_file.parent.mkdir()
    collection_file.write_text(json.dumps({"type": "FeatureCollection",
                                           "features": [*items, sentinel2]}))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    yield {"url": url, "aoi": aoi, "grid": aoi_grid(aoi), "folders": folders,
           "items": collection_file, "cluster": cluster, "client": client,
           "references": {}, "root": folder}
    client.close()
    cluster.close()
    server.terminate()
    server.wait(timeout=10)


def _catalog(url: str) -> stac.Catalog:
    return stac.Catalog(url, landsat_l2="landsat-c2-l2", landsat_l1="landsat-c2-l1")


def _reference(landsat: dict, index: int) -> np.ndarray:
    """What `harmonize` writes for scene ``index`` (whole folder) on the run's grid."""
    if index not in landsat["references"]:
        grid = landsat["grid"]
        path = landsat["root"] / f"reference{index}.tif"
        harmonize(landsat["folders"][index], path, crs=str(grid.crs),
                  bounds=tuple(grid.boundingbox), threads=1, progress=False)
        with rasterio.open(path) as dataset:
            landsat["references"][index] = dataset.read()
    return landsat["references"][index]


def _manifest(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _tifs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".tif")


def test_search_run_matches_harmonize_reruns_as_noop_and_catalogue_stacks(landsat,
                                                                           tmp_path) -> None:
    import odc.stac
    import pystac

    from s2l8h.batch import scenes_from_search

    scenes = scenes_from_search(landsat["aoi"], "2023-01-01", "2023-12-31",
                                _catalog(landsat["url"]))
    assert len(scenes) == 5 and all(scene.level1 is not None for scene in scenes)
    grid = landsat["grid"]
    assert str(grid.crs) == "EPSG:32618" and grid.affine.a == 10
    assert grid.affine.c % 10 == 0 and grid.affine.f % 10 == 0
    out = tmp_path / "out"
    address = landsat["cluster"].scheduler_address
    result = harmonize_many(scenes, out, grid, scheduler=address, **OPTIONS)

    rows = _manifest(result.manifest)
    assert [row["status"] for row in sorted(rows, key=lambda r: r["scene"])] == \
        ["done"] * 4 + ["failed"]
    broken = next(row for row in rows if row["status"] == "failed")
    assert "20230704" in broken["scene"] and "InputError" in broken["error"]
    assert "SR_B4" in broken["error"] and "cannot read the AOI window" in broken["error"]
    assert all(float(row["seconds"]) > 0 for row in rows if row["status"] == "done")
    # The model was loaded once per worker process, however many scenes it ran.
    loads = {d["pid"]: d["model_loads"] for d in result.details.values() if "pid" in d}
    assert set(loads.values()) == {1}
    # Every output equals what `harmonize` writes for the same scene (whole folder) and grid.
    for index in range(4):
        with rasterio.open(out / f"{scenes[index].id}.tif") as dataset:
            assert GeoBox.from_rio(dataset) == grid
            assert json.loads(dataset.tags()[PROVENANCE_TAG])["grid"]["shape"] == \
                [grid.height, grid.width]
            written = dataset.read()
        reference = _reference(landsat, index)
        assert (written[-1] == 1).mean() > 0.9  # mostly valid pixels
        np.testing.assert_array_equal(written, reference)
    assert _tifs(out) == sorted(f"{s.id}.tif" for s in scenes[:4])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    # A rerun does nothing: nothing rewritten, no task for the finished scenes.
    times = {name: (out / name).stat().st_mtime_ns for name in _tifs(out)}
    again = harmonize_many(scenes[:4], out, grid, scheduler=address, **OPTIONS)
    assert [row["status"] for row in _manifest(again.manifest)] == ["skipped"] * 4
    assert again.dashboard is None  # no cluster was needed
    assert {name: (out / name).stat().st_mtime_ns for name in _tifs(out)} == times
    # Another option is another provenance: not overwritten without being asked.
    other = harmonize_many(scenes[:1], out, grid, scheduler=address, keep_flagged=True,
                           catalog=False, **OPTIONS)
    assert other.count("failed") == 1 and "pass --overwrite" in other.rows[0]["error"]
    assert other.dashboard is None  # refused without a task, as a task would refuse it
    # So is the input noise filter switched off: its outputs differ.
    unfiltered = harmonize_many(scenes[:1], out, grid, scheduler=address,
                                filter_input_noise=False, catalog=False, **OPTIONS)
    assert unfiltered.count("failed") == 1 and "pass --overwrite" in unfiltered.rows[0]["error"]
    # So is a reference to register the scenes to.
    registered = harmonize_many(scenes[:1], out, grid, scheduler=address, catalog=False,
                                reference=VIRGINIA / "S2_L1C_virginia_north_B04.tif",
                                **OPTIONS)
    assert registered.count("failed") == 1 and "pass --overwrite" in registered.rows[0]["error"]

    # The same search from the command line: the four done are skipped, the broken one is
    # reported and the exit status says so.
    from typer.testing import CliRunner

    from s2l8h.cli import app

    bbox = ",".join(f"{value:.6f}" for value in landsat["aoi"].boundingbox)
    cli = CliRunner().invoke(app, [
        "harmonize-many", "--search", "--aoi", bbox, "--start", "2023-01-01", "--end",
        "2023-12-31", "--landsat-url", landsat["url"], "--landsat-l2", "landsat-c2-l2",
        "--landsat-l1", "landsat-c2-l1", "-o", str(out), "--scheduler", address,
        "--retries", "0", "--torch-threads", "1", "-q"])
    assert cli.exit_code == 1, cli.output
    assert "done 0, skipped 4, failed 1" in cli.output
    assert "failed: LC08_L2SP_014034_20230704_02_T1" in cli.output
    assert {name: (out / name).stat().st_mtime_ns for name in _tifs(out)} == times

    # The catalogue stacks with odc.stac.load; values equal the files.
    catalog = pystac.Catalog.from_file(str(result.catalog))
    items = sorted(catalog.get_items(recursive=True), key=lambda item: item.id)
    assert [item.id for item in items] == [scene.id for scene in scenes[:4]]
    item = items[0]
    assert item.properties["proj:code"] == "EPSG:32618"
    bands = item.assets["harmonized"].extra_fields["raster:bands"]
    assert bands[0]["scale"] == pytest.approx(1e-4) and bands[0]["offset"] == \
        pytest.approx(-0.1) and bands[0]["nodata"] == 0
    assert [b["name"] for b in item.assets["harmonized"].extra_fields["eo:bands"]][:6] == \
        ["B02", "B03", "B04", "B8A", "B11", "B12"]
    with rasterio.open(out / f"{item.id}.tif") as dataset:
        levels = json.loads(dataset.tags()["S2L8H_LEVEL_SHIFT"])
        geolocation = json.loads(dataset.tags()["S2L8H_GEOLOCATION"])
    assert item.properties["s2l8h:level_shift"] == levels["median"]
    assert item.properties["s2l8h:geolocation"] == geolocation == \
        {"level1": "L1TP", "collection": "02", "tier": "T1", "rmse_model_m": None}
    assert len(levels["median"]) == 6 and all(value is not None for value in levels["median"])
    shares = mask_shares(out / f"{item.id}.tif")
    assert [item.properties[f"s2l8h:{name}_percent"] for name in ("valid", "flagged",
                                                                  "nodata")] == \
        [round(100 * shares[name], 1) for name in ("valid", "flagged", "nodata")]
    assert item.properties["s2l8h:valid_percent"] > 50
    sources = [link for link in item.links if link.rel == "derived_from"]
    assert {link.title for link in sources} == {scenes[0].id, scenes[0].level1["id"]}
    assert all(link.href.startswith(landsat["url"]) for link in sources)
    stacked = odc.stac.load(items, bands=["B02", "B12", "mask"], groupby="id")
    assert stacked["B02"].shape == (4, grid.height, grid.width)
    for index, item in enumerate(items):
        with rasterio.open(out / f"{item.id}.tif") as dataset:
            np.testing.assert_array_equal(stacked["B02"].values[index], dataset.read(1))
            np.testing.assert_array_equal(stacked["mask"].values[index],
                                          dataset.read(dataset.count))


def test_worker_killed_mid_run_still_ends_with_every_output(landsat, tmp_path) -> None:
    scenes = scenes_from_item_collection(landsat["items"], landsat["aoi"])
    assert len(scenes) == 5  # the Sentinel-2 item is not a scene
    scenes = scenes[:4]
    out = tmp_path / "out"
    client = landsat["client"]
    outcome: dict = {}

    def run() -> None:
        outcome["result"] = harmonize_many(scenes, out, landsat["grid"],
                                           scheduler=landsat["cluster"].scheduler_address,
                                           retries=0, torch_threads=1, progress=False)

    record = tmp_path / "killed.json"

    def kill_if_running(dask_worker) -> bool:
        """On the worker's event loop: if a scene task is executing, note it and kill this
        process at once (its result cannot have been sent: that happens on this loop)."""
        keys = [str(ts.key) for ts in dask_worker.state.executing
                if str(ts.key).startswith("s2l8h-")]
        if keys:
            record.write_text(json.dumps([os.getpid(), keys[0]]))
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 60
    while not record.exists() and time.time() < deadline and thread.is_alive():
        for address in list(client.scheduler_info()["workers"]):
            client.run(kill_if_running, workers=[address], on_error="return")
            if record.exists():
                break
        time.sleep(0.01)
    thread.join(timeout=120)
    killed, killed_key = json.loads(record.read_text()) if record.exists() else (None, "")
    assert killed is not None, "no scene was seen running"
    result = outcome["result"]
    rows = _manifest(result.manifest)
    assert sorted(row["scene"] for row in rows) == [s.id for s in scenes]  # one row each
    assert {row["status"] for row in rows} <= {"done", "skipped"}
    # The scene that was running when its worker died was finished by another process.
    interrupted = next(s.id for s in scenes if killed_key.startswith(f"s2l8h-{s.id}-"))
    assert result.details[interrupted]["pid"] != killed
    assert _tifs(out) == sorted(f"{s.id}.tif" for s in scenes)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    for index, scene in enumerate(scenes):
        with rasterio.open(out / f"{scene.id}.tif") as dataset:
            np.testing.assert_array_equal(dataset.read(), _reference(landsat, index))


def test_a_scenes_warnings_reach_the_manifest(landsat, tmp_path, monkeypatch) -> None:
    """The input checks' warnings ``harmonize`` gives a scene in a worker, which nobody would
    see there, are written to the manifest as ``harmonize`` gives them for the same scene and
    grid, and counted in the summary. (Here a level-shift warning for every band: its level is
    lowered to 0 in this process, whose threads the in-process cluster's worker runs on.)"""
    import warnings as warnings_module

    from distributed import Client

    from s2l8h.batch.run import WARNING_SEPARATOR
    from s2l8h.inference import checks

    monkeypatch.setattr(checks, "LEVEL_SHIFT_WARNING", 0.0)
    grid, folder = landsat["grid"], landsat["folders"][0]
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        direct = harmonize(folder, tmp_path / "direct.tif", crs=str(grid.crs),
                           bounds=tuple(grid.boundingbox), threads=1, progress=False)
    expected = direct.extra["warnings"]
    assert expected == [str(w.message) for w in caught
                        if w.category is checks.InputCheckWarning]
    assert any("the networks would move the level of B02" in message for message in expected)
    logged: list[str] = []
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=":0") as client:
        result = harmonize_many([folder], tmp_path / "out", grid, scheduler=client,
                                catalog=False, log=logged.append, **OPTIONS)
    row = _manifest(result.manifest)[0]
    assert row["status"] == "done"
    assert row["warnings"].split(WARNING_SEPARATOR) == expected
    assert "done 1, skipped 0, failed 0, warned 1 (see the manifest)" in logged[-1]
    # A rerun skips the scene: nothing harmonized, no warning to report.
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=":0") as client:
        again = harmonize_many([folder], tmp_path / "out", grid, scheduler=client,
                               catalog=False, **OPTIONS)
    assert _manifest(again.manifest)[0]["warnings"] == ""


def test_a_failed_scenes_warnings_reach_the_manifest(landsat, tmp_path, monkeypatch) -> None:
    """A scene that fails after its input checks warned: the manifest's row says why it failed
    and what was warned before, as ``harmonize`` gives them for the same scene; the other
    scene's row has only its own warning. (The noise check's level is lowered to 0, and the
    run of one scene fails as a read of a damaged file would, after the checks.)"""
    import warnings as warnings_module

    from distributed import Client

    from s2l8h.batch.run import WARNING_SEPARATOR
    from s2l8h.errors import InputError
    from s2l8h.inference import checks

    harmonize_module = sys.modules["s2l8h.inference.harmonize"]
    grid, folders = landsat["grid"], landsat["folders"]
    broken, fine = folders[1], folders[0]
    names = {folder: spec.id for folder, spec in zip((broken, fine), scenes_from_folders(
        [broken, fine]), strict=True)}
    run_plan = harmonize_module.run_plan
    tries = []

    def fail_on_broken(plan, *args, **kwargs):
        if plan.scene.multispectral[0].parent == broken:
            tries.append(1)
            raise InputError(broken / "LC08_SR_B4.TIF", "read failed at row 40")
        return run_plan(plan, *args, **kwargs)

    monkeypatch.setattr(checks, "NOISE_WARNING", 0.0)
    monkeypatch.setattr(harmonize_module, "run_plan", fail_on_broken)
    expected = {}
    for folder in (broken, fine):
        with warnings_module.catch_warnings(record=True) as caught:
            warnings_module.simplefilter("always")
            try:
                harmonize(folder, tmp_path / "direct.tif", crs=str(grid.crs), overwrite=True,
                          bounds=tuple(grid.boundingbox), threads=1, progress=False)
            except InputError as error:
                assert folder == broken and "read failed at row 40" in str(error)
        expected[names[folder]] = [str(w.message) for w in caught
                                   if w.category is checks.InputCheckWarning]
        assert len(expected[names[folder]]) == 1
        assert expected[names[folder]][0].startswith(f"{names[folder]}: noisy input")
    logged: list[str] = []
    tries.clear()
    with Client(processes=False, n_workers=1, threads_per_worker=2,
                dashboard_address=":0") as client:
        result = harmonize_many([broken, fine], tmp_path / "out", grid, scheduler=client,
                                catalog=False, log=logged.append, **OPTIONS)
    assert len(tries) == 1  # s2l8h's own error: reported at once, not retried
    rows = {row["scene"]: row for row in _manifest(result.manifest)}
    failed, done = rows[names[broken]], rows[names[fine]]
    assert failed["status"] == "failed" and "read failed at row 40" in failed["error"]
    assert done["status"] == "done"
    for folder, row in ((broken, failed), (fine, done)):
        assert row["warnings"].split(WARNING_SEPARATOR) == expected[names[folder]]
    assert result.details[names[broken]]["warnings"] == expected[names[broken]]
    assert "done 1, skipped 0, failed 1, warned 2 (see the manifest)" in logged[-1]


def test_what_the_client_can_check_fails_before_any_task(landsat, tmp_path) -> None:
    """A wrong option or scene folder is one error before the cluster starts, as
    ``harmonize`` gives it, and nothing is written (not even the output folder)."""
    from conftest import DATA
    from s2l8h.errors import OptionError, OutputError, UnknownModelError
    from s2l8h.io.errors import InputError

    grid, folders = landsat["grid"], landsat["folders"]
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    elsewhere = GeoBox((64, 64), Affine(10, 0, 300000, 0, -10, 4000000), f"EPSG:{EPSG}")
    cases = [
        (dict(scenes=[folders[0]], grid=grid, uncertainty="head"), OptionError,
         "uncertainty 'head' takes one model, got 2"),
        (dict(scenes=[folders[0]], grid=grid, models=["no-such-model"]), UnknownModelError,
         "no-such-model"),
        (dict(scenes=[folders[0], DATA / "marburg"], grid=grid), InputError,
         "run in TOA mode (--toa)"),
        (dict(scenes=[folders[0], empty], grid=grid), InputError, str(empty)),
        (dict(scenes=[folders[0]], grid=elsewhere), InputError,
         "the scene does not overlap the run's grid"),
    ]
    for arguments, kind, message in cases:
        scenes, target = arguments.pop("scenes"), arguments.pop("grid")
        with pytest.raises(kind, match=message.replace("(", r"\(").replace(")", r"\)")):
            harmonize_many(scenes, out, target, scheduler="tcp://127.0.0.1:1", catalog=False,
                           **arguments, **OPTIONS)
        assert not out.exists()
    # The engine's options, before a cluster starts (a LocalCluster of no workers waited for
    # ever; no threads divided by zero), and an output folder that is a file.
    engine = [(dict(workers=0), "--workers and --threads-per-worker must be 1 or more"),
              (dict(workers=-1), "--workers and --threads-per-worker must be 1 or more"),
              (dict(threads_per_worker=0), "--workers and --threads-per-worker must be 1"),
              (dict(retries=-1), "--retries must be 0 or more, got -1"),
              (dict(torch_threads=0), "--torch-threads must be 1 or more, got 0")]
    quiet = {key: value for key, value in OPTIONS.items() if key != "torch_threads"}
    for arguments, message in engine:
        with pytest.raises(OptionError, match=message):
            harmonize_many([folders[0]], out, grid, catalog=False, **{**quiet, **arguments})
        assert not out.exists()
    (tmp_path / "file.tif").write_bytes(b"mine")
    with pytest.raises(OutputError, match=r"file\.tif: exists and is not a folder"):
        harmonize_many([folders[0]], tmp_path / "file.tif", grid, catalog=False, **OPTIONS)
    assert (tmp_path / "file.tif").read_bytes() == b"mine"
    # A scheduler that does not answer: one error, and no manifest left behind.
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(OptionError, match=r"--scheduler tcp://127\.0\.0\.1:1: no dask "
                                             "scheduler answered"):
        harmonize_many([folders[0]], out, grid, scheduler="tcp://127.0.0.1:1", catalog=False,
                       **OPTIONS)
    with pytest.raises(OptionError, match=r"not a scheduler address, e\.g\. tcp://HOST:8786"):
        harmonize_many([folders[0]], out, grid, scheduler="http://127.0.0.1:8787/status",
                       catalog=False, **OPTIONS)
    assert not out.exists()  # nothing written, not even the folder


def test_cli_over_local_folders(landsat, tmp_path) -> None:
    from typer.testing import CliRunner

    from s2l8h.cli import app

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": landsat["aoi"].json}]}))
    out = tmp_path / "out"
    folders = [str(f) for f in landsat["folders"][:2]]
    runner = CliRunner()
    options = ["--aoi", str(aoi), "-o", str(out), "--torch-threads", "1", "--quiet"]
    # Its own LocalCluster here (one process, two threads); the API tests use an address.
    result = runner.invoke(app, ["harmonize-many", *folders, *options, "--workers", "1",
                                 "--threads-per-worker", "2"])
    assert result.exit_code == 0, result.output
    assert "done 2, skipped 0, failed 0" in result.output
    assert "dashboard http://127.0.0.1:" in result.output
    assert " px at 10 m" in result.output
    names = [scene.id for scene in scenes_from_folders(folders)]
    assert _tifs(out) == sorted(f"{name}.tif" for name in names)
    for index, name in enumerate(names):
        with rasterio.open(out / f"{name}.tif") as dataset:
            np.testing.assert_array_equal(dataset.read(), _reference(landsat, index))
    assert (out / "stac" / "catalog.json").is_file()
    again = runner.invoke(app, ["harmonize-many", *folders, *options])
    assert again.exit_code == 0 and "done 0, skipped 2, failed 0" in again.output
    with rasterio.open(out / f"{names[0]}.tif") as dataset:
        assert "S2L8H_PAN_SHIFT_LOCAL" in dataset.tags()
    # One pan shift per scene: other provenance, so it is redone only with --overwrite.
    single = runner.invoke(app, ["harmonize-many", *folders, *options, "--no-pan-blocks"])
    assert single.exit_code == 1 and "pass --overwrite" in single.output
    single = runner.invoke(app, ["harmonize-many", *folders, *options, "--no-pan-blocks",
                                 "--overwrite"])
    assert single.exit_code == 0 and "done 2, skipped 0" in single.output
    with rasterio.open(out / f"{names[0]}.tif") as dataset:
        assert "S2L8H_PAN_SHIFT_LOCAL" not in dataset.tags()
    # Registered to a Sentinel-2 band of the area: every product says what it found. It is
    # measured on the scene around the 600 m AOI (harmonize's context, fetched with it), here
    # the whole 32 x 32 px scene, still too few Landsat pixels: none is applied.
    reference = VIRGINIA / "S2_L1C_virginia_north_B04.tif"
    registered = runner.invoke(app, ["harmonize-many", *folders, *options, "--overwrite",
                                     "--reference", str(reference)])
    assert registered.exit_code == 0 and "done 2, skipped 0" in registered.output
    for name in names:
        with rasterio.open(out / f"{name}.tif") as dataset:
            found = json.loads(dataset.tags()["S2L8H_SCENE_SHIFT"])
        assert found["reference"].startswith(f"{reference.name} sha256:")
        assert found["corrected_m"] == [0.0, 0.0]
        assert found["shift_m"] is None and found["refused"].startswith("only 961 pixels")
    # Clear errors: no source, no AOI, an unreadable ItemCollection; nothing written.
    bad = runner.invoke(app, ["harmonize-many", "-o", str(tmp_path / "x"), "--aoi", str(aoi)])
    assert bad.exit_code != 0 and "scene folders, --items or --search" in bad.output
    bad = runner.invoke(app, ["harmonize-many", folders[0], "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--aoi" in bad.output
    broken = tmp_path / "items.json"
    broken.write_text("{not json")
    bad = runner.invoke(app, ["harmonize-many", "--items", str(broken), "--aoi", str(aoi),
                              "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "items.json" in bad.output
    assert not (tmp_path / "x").exists()


def test_aoi_and_grid_rules(tmp_path) -> None:
    aoi = parse_aoi("-77.70,38.60,-77.60,38.70")
    grid = aoi_grid(aoi)
    assert str(grid.crs) == "EPSG:32618"  # 77.65 W is in UTM zone 18
    assert grid.affine.a == 10 and grid.affine.c % 10 == 0 and grid.affine.f % 10 == 0
    assert grid.extent.to_crs("EPSG:4326").contains(aoi.buffer(-1e-6))
    coarse = aoi_grid(aoi, crs="EPSG:32617", resolution=30)
    assert str(coarse.crs) == "EPSG:32617" and coarse.affine.a == 30
    # In degrees, 10 m as harmonize takes it (not 10 degrees); no pixel size of 0 or less.
    geographic = aoi_grid(aoi, crs="EPSG:4326")
    assert geographic.affine.a == pytest.approx(10 / 111_320)
    assert geographic.shape == (1114, 1114)
    from s2l8h.errors import OptionError

    for bad in (0, -10, float("nan")):
        with pytest.raises(OptionError, match="--resolution must be a positive number"):
            aoi_grid(aoi, resolution=bad)
    # --like gives the grid exactly: a resolution beside it is refused, not ignored.
    import numpy as np
    from affine import Affine

    from conftest import write_raster
    from s2l8h.errors import OptionError

    like = write_raster(tmp_path / "like.tif", np.zeros((20, 30), dtype=np.uint8),
                        Affine(20, 0, 600000, 0, -20, 4290000))
    assert aoi_grid(aoi, like=like).shape == (20, 30)
    with pytest.raises(OptionError, match="--like cannot be combined with --crs or "
                                          "--resolution"):
        aoi_grid(aoi, like=like, resolution=20)
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {},
                                "geometry": aoi.json}))
    assert parse_aoi(path).area == pytest.approx(aoi.area)
    with pytest.raises(ValueError, match="west,south,east,north"):
        parse_aoi("1,2,3")
    with pytest.raises(ValueError, match="west,south,east,north"):
        parse_aoi("10,50,9,51")
    (tmp_path / "point.geojson").write_text(json.dumps({"type": "Point",
                                                        "coordinates": [1, 2]}))
    with pytest.raises(ValueError, match=r"point\.geojson: no Polygon"):
        parse_aoi(tmp_path / "point.geojson")


def test_only_the_aoi_window_is_read(landsat, tmp_path) -> None:
    from s2l8h.batch.window import KERNEL_MARGIN, fetch_window, read_region
    from s2l8h.io.landsat import open_scene

    scene = scenes_from_item_collection(landsat["items"])[0]
    small = GeoBox.from_bbox((439230, 4175760, 439430, 4175960), "EPSG:32618", resolution=10)
    region = read_region(small, alignment=1)
    assert region.shape == (7 + 2 * KERNEL_MARGIN, 7 + 2 * KERNEL_MARGIN)  # 200 m at 30 m
    # On these 32 x 32 px scenes the margins reach the edges: fetch the 200 m alone to see
    # that only the region asked for is copied (test_panreg does it with the margins, on a
    # larger scene).
    tight = GeoBox.from_bbox(small.boundingbox, "EPSG:32618", resolution=30)
    folder = fetch_window(scene, tight, tmp_path / "window")
    cut = open_scene(folder)
    assert cut.pan is not None and cut.qa is not None and cut.pan_metadata is not None
    original = Path(scene.item["assets"]["blue"]["href"].removeprefix("file://"))
    with rasterio.open(original) as whole, rasterio.open(cut.multispectral[0]) as part:
        assert part.width < 0.7 * whole.width and part.height < 0.7 * whole.height
        # the region, 2 pixels of padding each side, 1 for the 15 m offset of Landsat edges
        assert part.width <= tight.width + 5 and part.height <= tight.height + 5
        assert part.crs == whole.crs and part.nodata == whole.nodata
        window = rasterio.windows.from_bounds(*part.bounds, whole.transform)
        np.testing.assert_array_equal(part.read(1), whole.read(1, window=window.round_offsets()
                                                               .round_lengths()))
        assert GeoBox.from_rio(part).extent.contains(small.extent)
    # Given the output grid, the scene around the small AOI on which harmonize measures the
    # pan's shift, the noise and any registration (here all of the 32 x 32 px scene) comes
    # too, so that harmonize on the window measures as on the whole scene.
    around = open_scene(fetch_window(scene, region, tmp_path / "around", output=small))
    with rasterio.open(original) as whole:
        for path in (around.multispectral[0], around.pan):
            with rasterio.open(path) as part:
                assert GeoBox.from_rio(part).extent.contains(
                    GeoBox.from_rio(whole).extent.buffer(-1))


def test_reference_search_makes_one_reference_for_the_season(landsat, tmp_path) -> None:
    from typer.testing import CliRunner

    from s2l8h.cli import app

    features = json.loads(landsat["items"].read_text())["features"]
    keep = [f for f in features if f["collection"].startswith("landsat")
            and ("20230501" in f["id"] or "20230517" in f["id"])]
    # Two Sentinel-2 L2A items of the area, its red band as stored: one all cloud by its SCL
    # (9) though its scene cloud cover is lower, one all clear (4).
    extent = (435730.0, 4169460.0, 450730.0, 4179460.0)
    sentinel2 = []
    for name, scl_value, cloud in (("S2A_T18SVH_20230510_cloudy", 9, 1.0),
                                   ("S2B_T18SVH_20230520", 4, 5.0)):
        scl = tmp_path / f"{name}_SCL.tif"
        with rasterio.open(scl, "w", driver="GTiff", width=750, height=500, count=1,
                           dtype="uint8", crs=f"EPSG:{EPSG}",
                           transform=Affine(20, 0, extent[0], 0, -20, extent[3])) as dataset:
            dataset.write(np.full((1, 500, 750), scl_value, dtype=np.uint8))
        sentinel2.append(_item(name, "sentinel-2-l2a", "2023-05-10", extent,
                               {"red": str(VIRGINIA / "S2_L1C_virginia_north_B04.tif"),
                                "scl": str(scl)},
                               platform="sentinel-2a", **{"eo:cloud_cover": cloud}))
    collection = tmp_path / "items.json"
    collection.write_text(json.dumps({"type": "FeatureCollection",
                                      "features": [*keep, *sentinel2]}))
    out = tmp_path / "out"
    bbox = ",".join(f"{value:.6f}" for value in landsat["aoi"].boundingbox)
    options = ["--items", str(collection), "--aoi", bbox, "--reference-search", "-o", str(out),
               "--scheduler", landsat["cluster"].scheduler_address, "--torch-threads", "1",
               "-q"]
    runner = CliRunner()
    result = runner.invoke(app, ["harmonize-many", *options])
    assert result.exit_code == 0, result.output
    assert "reference: S2B_T18SVH_20230520 (100% of the AOI clear)" in result.output
    reference = out / "reference" / "S2B_T18SVH_20230520.tif"
    with rasterio.open(reference) as dataset:
        assert dataset.tags()["S2L8H_REFERENCE_ITEM"] == "S2B_T18SVH_20230520"
    written = reference.stat().st_mtime_ns
    for feature in keep[::2]:
        with rasterio.open(out / f"{feature['id']}.tif") as dataset:
            found = json.loads(dataset.tags()["S2L8H_SCENE_SHIFT"])
        assert found["reference"].startswith("S2B_T18SVH_20230520.tif sha256:")
    # A rerun reuses the reference, so the products keep their provenance.
    again = runner.invoke(app, ["harmonize-many", *options])
    assert again.exit_code == 0 and "done 0, skipped 2, failed 0" in again.output
    assert reference.stat().st_mtime_ns == written
    # Not with local folders, nor with --reference.
    bad = runner.invoke(app, ["harmonize-many", str(landsat["folders"][0]), "--aoi", bbox,
                              "--reference-search", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--reference-search needs --search or --items" in bad.output
    assert not (tmp_path / "x").exists()
