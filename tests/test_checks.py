"""Input checks (pan registration, noise), the consistency report and ``s2l8h qa``."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from typer.testing import CliRunner

from s2l8h.bands import SENTINEL2_BANDS
from s2l8h.cli.app import app
from s2l8h.data.simulate import Degradation, simulate_landsat, write_simulated_scene
from s2l8h.evaluate.baselines import run_baseline
from s2l8h.evaluate.benchmark import read_prediction
from s2l8h.evaluate.metrics import psnr
from s2l8h.evaluate.qa import summary_row
from s2l8h.inference.checks import (
    LEVEL_SHIFT_WARNING,
    NOISE_WARNING,
    InputCheckWarning,
    estimate_noise,
    level_shift_messages,
    measure_pan_shift,
)
from s2l8h.inference.harmonize import harmonize
from s2l8h.io.mtl import Geolocation
from s2l8h.io.sentinel2 import read_sentinel2
from s2l8h.resolution import fill_invalid

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"
runner = CliRunner()


@pytest.fixture(scope="module")
def virginia():
    crop = GeoBox((360, 360), Affine(10, 0, 438730, 0, -10, 4177460), "EPSG:32618")
    return read_sentinel2(VIRGINIA, grid=crop)


def test_pan_shift_measured_within_1_5_m(virginia) -> None:
    reflectance, valid, grid = virginia
    for shift in ((7.5, 0.0), (-4.0, 6.0), (0.0, 0.0)):
        simulated = simulate_landsat(reflectance, valid, grid, phase=None,
                                     degradation=Degradation(shift_pan=shift))
        measured = measure_pan_shift(simulated.multispectral, simulated.pan,
                                     simulated.lowres_valid)
        assert measured == pytest.approx(shift, abs=1.5)


def test_noise_estimate_flags_a_noisy_input(virginia) -> None:
    reflectance, valid, grid = virginia
    clean = simulate_landsat(reflectance, valid, grid)
    noisy = simulate_landsat(reflectance, valid, grid, noise_std=0.003)
    assert min(estimate_noise(clean.multispectral)) < NOISE_WARNING
    assert min(estimate_noise(noisy.multispectral)) > NOISE_WARNING
    assert all(n > c for n, c in zip(estimate_noise(noisy.multispectral),
                                     estimate_noise(clean.multispectral), strict=True))


def test_noise_estimate_leaves_out_pixels_without_data() -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(0.1, 0.003, (6, 120, 180))
    # All valid: scikit-image's estimate, unchanged.
    assert estimate_noise(image, np.ones((120, 180), bool)) == estimate_noise(image)
    valid = np.ones((120, 180), bool)
    valid[:, :90] = False
    filled = fill_invalid(image, valid)
    # Half the window filled drags the plain estimate towards 0; the masked one is the
    # estimate of the valid half.
    assert max(estimate_noise(filled)) < 0.0005
    assert estimate_noise(filled, valid) == pytest.approx(estimate_noise(image[:, :, 90:]),
                                                          rel=0.02)


def _scene(virginia, folder: Path, degradation: Degradation) -> tuple[Path, Path, np.ndarray]:
    reflectance, valid, grid = virginia
    simulated = simulate_landsat(reflectance, valid, grid, degradation=degradation)
    scene, target = write_simulated_scene(simulated, folder)
    return scene, target, simulated.target


def test_harmonize_finds_corrects_and_tags_a_7_5_m_pan_shift(virginia, tmp_path: Path
                                                               ) -> None:
    scene, target_path, target = _scene(virginia, tmp_path / "sim",
                                        Degradation(shift_pan=(7.5, 0.0)))
    scores = {}
    for register in (True, False):
        output = tmp_path / f"out-{register}.tif"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # The earlier `lite`, trained without pan shifts, shows what a misplaced pan costs.
            result = harmonize(scene, output, like=target_path, register_pan=register,
                               models=["lite"], dtype="float32", progress=False,
                               mask_flags=())
        messages = [str(w.message) for w in caught if w.category is InputCheckWarning]
        assert any("the pan is shifted by +" in m and "against the bands" in m
                   for m in messages)
        with rasterio.open(output) as dataset:
            tags = dataset.tags()
        measured = json.loads(tags["S2L8H_PAN_SHIFT_M"])
        assert np.hypot(measured[0] - 7.5, measured[1]) < 1.5
        corrected = json.loads(tags["S2L8H_PAN_SHIFT_CORRECTED_M"])
        assert (corrected == measured) if register else corrected == [0.0, 0.0]
        assert result.extra["input_checks"].pan_shift_m == pytest.approx((7.5, 0), abs=1.5)
        prediction, _, valid = read_prediction(output)
        inner = valid.copy()
        inner[:12] = inner[-12:] = False
        inner[:, :12] = inner[:, -12:] = False
        scores[register] = psnr(prediction, target, inner)
    assert scores[True] > scores[False] + 0.1


def test_clean_harmonize_reports_no_shift_and_consistency(virginia, tmp_path: Path) -> None:
    scene, target_path, _ = _scene(virginia, tmp_path / "sim", Degradation())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        harmonize(scene, tmp_path / "out.tif", like=target_path, progress=False, mask_flags=())
    assert not [w for w in caught if w.category is InputCheckWarning]
    with rasterio.open(tmp_path / "out.tif") as dataset:
        tags = dataset.tags()
    assert json.loads(tags["S2L8H_PAN_SHIFT_CORRECTED_M"]) == [0.0, 0.0]
    consistency = json.loads(tags["S2L8H_CONSISTENCY"])
    assert consistency["pixels"] > 10_000
    assert max(abs(b) for b in consistency["bias"]) < 0.003
    assert consistency["sam_degrees"] < 2.0
    assert np.hypot(*consistency["shift_m"]) < 2.0


def _write_prediction(path: Path, image: np.ndarray, grid: GeoBox) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height,
                       count=6, dtype="float32", crs=grid.crs.to_wkt(), transform=grid.affine,
                       nodata=np.nan) as dataset:
        dataset.write(image.astype(np.float32))
        for index, band in enumerate(("B02", "B03", "B04", "B8A", "B11", "B12"), start=1):
            dataset.set_band_description(index, band)
    return path


def test_qa_bicubic_is_consistent_and_a_biased_output_is_reported(virginia,
                                                                   tmp_path: Path) -> None:
    reflectance, valid, grid = virginia
    simulated = simulate_landsat(reflectance, valid, grid)
    scene, _ = write_simulated_scene(simulated, tmp_path / "sim")
    bicubic = run_baseline("bicubic", simulated.multispectral, simulated.lowres_grid,
                           simulated.pan, simulated.pan_grid, grid)
    good = _write_prediction(tmp_path / "bicubic.tif", bicubic, grid)
    result = runner.invoke(app, ["qa", str(good), "--scene", str(scene), "--json",
                                 str(tmp_path / "good.json")])
    assert result.exit_code == 0, result.output
    assert "consistency: the output agrees with its input (|bias| <= 0.01" in result.output
    report = json.loads((tmp_path / "good.json").read_text())["consistency"]
    assert max(abs(b) for b in report["bias"]) < 0.002
    assert max(report["rmse"]) < 0.01 and report["sam_degrees"] < 1.5
    assert np.hypot(*report["shift_m"]) < 1.5
    biased = bicubic.copy()
    biased[2] += 0.02
    bad = _write_prediction(tmp_path / "biased.tif", biased, grid)
    result = runner.invoke(app, ["qa", str(bad), "--scene", str(scene), "--json",
                                 str(tmp_path / "bad.json")])
    assert result.exit_code == 0, result.output
    assert "bias of up to +0.0195" in result.output or "bias of up to +0.02" in result.output
    report = json.loads((tmp_path / "bad.json").read_text())["consistency"]
    assert report["bias"][2] == pytest.approx(0.02 * 0.9765, abs=0.001)
    assert abs(report["bias"][0]) < 0.002
    # The report is never written onto the raster it checks, nor over a report unasked.
    before = bad.read_bytes()
    result = runner.invoke(app, ["qa", str(bad), "--scene", str(scene), "--json", str(bad),
                                 "--overwrite"])
    assert result.exit_code != 0 and "is one of this run's inputs" in result.output
    assert bad.read_bytes() == before
    band = sorted(Path(scene).glob("*B4*"))[0]  # --scene is the folder; its files count
    before = band.read_bytes()
    result = runner.invoke(app, ["qa", str(bad), "--scene", str(scene), "--json", str(band),
                                 "--overwrite"])
    assert result.exit_code != 0 and "is one of this run's inputs" in result.output
    assert band.read_bytes() == before
    result = runner.invoke(app, ["qa", str(bad), "--scene", str(scene), "--json",
                                 str(tmp_path / "bad.json")])
    assert result.exit_code != 0 and "already exists" in result.output
    # A scene elsewhere: the product and the scene are named, not a reader's grid bounds.
    marburg = Path(__file__).parent / "data" / "marburg"
    result = runner.invoke(app, ["qa", str(bad), "--scene", str(marburg), "--toa"],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"{bad}: does not overlap the scene LC08_L1TP_195025_20130707_20170503_01_T1 " \
        "given with --scene" in result.output


def test_qa_reads_the_tags_and_refuses_a_raster_without_them(virginia, tmp_path: Path
                                                              ) -> None:
    scene, target_path, _ = _scene(virginia, tmp_path / "sim", Degradation(shift_pan=(7.5, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        harmonize(scene, tmp_path / "out.tif", like=target_path, progress=False, mask_flags=())
    result = runner.invoke(app, ["qa", str(tmp_path / "out.tif")])
    assert result.exit_code == 0, result.output
    assert "pan shift m" in result.output and "consistency bias" in result.output
    result = runner.invoke(app, ["qa", str(target_path)])
    assert result.exit_code != 0
    assert "has no s2l8h check tags" in result.output


def test_an_atmospheric_offset_is_warned_about_by_the_networks_level(virginia,
                                                                      tmp_path: Path) -> None:
    """How far the networks would move each band's level, tagged and warned about by
    ``harmonize`` and shown by ``qa``: opposite to a simulated atmospheric offset in the bands
    it moves most, and under the warning level on clean input (where nothing is warned about,
    the test above)."""
    offset = (0.01, -0.008, 0.006, -0.01, 0.008, -0.006)  # the benchmark's ``atmosphere``
    shifts = {}
    for name, degradation in (("clean", Degradation()), ("offset", Degradation(offset=offset))):
        scene, target_path, _ = _scene(virginia, tmp_path / name, degradation)
        output = tmp_path / f"{name}.tif"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = harmonize(scene, output, like=target_path, progress=False, mask_flags=())
        messages = [str(w.message) for w in caught if w.category is InputCheckWarning]
        with rasterio.open(output) as dataset:
            tagged = json.loads(dataset.tags()["S2L8H_LEVEL_SHIFT"])
        assert tagged == result.extra["level_shift"]
        assert tagged["tiles"] == result.tiles == 1
        assert tagged["restored"] and tagged["in_sigma"]  # the default: a calibrated ensemble
        shifts[name] = np.array(tagged["median"])
        warned = [m for m in messages if "the networks would move the level" in m]
        assert bool(warned) is (name == "offset"), messages
    # Measured on this crop: clean at most 0.0005 in size; with the offset -0.0092 / +0.0087
    # / -0.0043 / +0.0013 / -0.0050 / +0.0078: 0.62-1.31 x the offset, but 0.13 x in NIR,
    # which the networks hardly move (as on the benchmark's rows).
    assert np.abs(shifts["clean"]).max() < LEVEL_SHIFT_WARNING
    moved = np.array(offset)
    assert np.all(np.sign(shifts["offset"]) == -np.sign(moved))
    recovered = -shifts["offset"] / moved
    assert np.all(np.delete(recovered, 3) > 0.5) and recovered.max() < 1.5
    assert "B02 -0.0" in warned[0] and "B11" in warned[0]
    assert "the output keeps the input's level. σ's calibration" in warned[0]
    result = runner.invoke(app, ["qa", str(tmp_path / "offset.tif")])
    assert result.exit_code == 0, result.output
    assert "level shift" in result.output
    assert "the networks would move the level" in result.output
    # Both products at once (a folder, searched with its subfolders): one row each, the
    # offset one warned about and named in its warning; the JSON holds each product's report;
    # the simulated truths in the subfolders, without s2l8h's tags, are left out and named.
    result = runner.invoke(app, ["qa", str(tmp_path), "--json", str(tmp_path / "season.json")])
    assert result.exit_code == 0, result.output
    assert "trust report: 2 product(s)" in result.output
    assert "left out 2 raster(s) without s2l8h's tags" in result.output
    assert str(tmp_path / "clean" / "target_s2_10m.tif") in result.output
    reports = json.loads((tmp_path / "season.json").read_text())["products"]
    assert sorted(Path(name).name for name in reports) == ["clean.tif", "offset.tif"]
    rows = {Path(name).name: summary_row(report) for name, report in reports.items()}
    assert rows["clean.tif"]["warnings"] == 0 and rows["offset.tif"]["warnings"] >= 1
    assert rows["clean.tif"]["geolocation"] == "ok"  # Collection 2, L1TP, Tier 1
    # No pixel is flagged (mask_flags=()); the simulated scene's edge leaves 1.7 % without
    # data. The table says so.
    pixels = reports[str(tmp_path / "clean.tif")]["pixels_percent"]
    assert pixels == {"valid": 98.3, "flagged": 0.0, "nodata": 1.7}
    assert rows["clean.tif"]["valid_percent"] == 98.3
    assert rows["clean.tif"]["flagged_percent"] == 0.0
    assert "valid %" in result.output and " 98.3 " in result.output
    largest = int(np.argmax(np.abs(shifts["offset"])))
    assert rows["offset.tif"]["level_shift"] == {"band": SENTINEL2_BANDS[largest],
                                                 "value": shifts["offset"][largest]}
    assert f"{shifts['offset'][largest]:+.4f} {SENTINEL2_BANDS[largest]}" in result.output
    assert "offset.tif: the networks would move the level" in result.output
    assert "clean.tif: " not in result.output
    result = runner.invoke(app, ["qa", str(tmp_path / "clean.tif"), str(tmp_path / "offset.tif"),
                                 "--scene", str(tmp_path / "clean")])
    assert result.exit_code != 0 and "give one product" in result.output
    # A folder with one product still gives the season's JSON (scripts read one shape), and
    # products of the same name in two folders are told apart by their folder.
    for name in ("a", "b"):
        (tmp_path / "season" / name).mkdir(parents=True)
        shutil.copy(tmp_path / "offset.tif", tmp_path / "season" / name / "offset.tif")
    result = runner.invoke(app, ["qa", str(tmp_path / "season" / "a"), "--json",
                                 str(tmp_path / "one.json")])
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "one.json").read_text())["products"]) == [
        str(tmp_path / "season" / "a" / "offset.tif")]
    result = runner.invoke(app, ["qa", str(tmp_path / "season")])
    assert result.exit_code == 0, result.output
    assert "a/offset.tif: the networks would move" in result.output
    # A product named .tiff is found too.
    (tmp_path / "tiff").mkdir()
    shutil.copy(tmp_path / "offset.tif", tmp_path / "tiff" / "offset.tiff")
    tiff = runner.invoke(app, ["qa", str(tmp_path / "tiff")])
    assert tiff.exit_code == 0, tiff.output
    assert "trust report: 1 product(s)" in tiff.output
    assert "b/offset.tif: the networks would move" in result.output
    # A raster without s2l8h's tags named on its own is an error, not left out.
    result = runner.invoke(app, ["qa", str(tmp_path / "offset.tif"),
                                 str(tmp_path / "clean" / "target_s2_10m.tif")])
    assert result.exit_code != 0 and "has no s2l8h check tags" in result.output
    assert level_shift_messages(None) == []
    assert level_shift_messages({"tiles": 1, "median": [None, 0.002, -0.002, 0, 0, 0]}) == []
    message = level_shift_messages({"tiles": 2, "median": [0, 0.003, 0, 0, 0, 0],
                                    "restored": False, "in_sigma": False})[0]
    assert "B03 +0.0030" in message and "over 2 tiles" in message
    assert "the output carries the networks' level" in message


def test_a_registered_noise_term_widens_sigma_by_the_input_noise(virginia, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """σ² = f · (the members' variance) + g · n_b², n_b the noise harmonize measured, and the
    tags say so; the same members given one by one get neither term."""
    from s2l8h.models import registry

    members = ("lite2.real-wald3-a", "lite2.real-wald3-b")
    monkeypatch.setitem(registry._ENSEMBLES, "noise-pair",
                        registry.EnsembleRelease("noise-pair", members, "", 0.5, 4.0))
    scene, target_path, _ = _scene(virginia, tmp_path / "sim", Degradation(noise_std=0.003))
    stds, tags = {}, {}
    for name, models in (("calibrated", ["noise-pair"]), ("plain", list(members))):
        output = tmp_path / f"{name}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harmonize(scene, output, like=target_path, models=models, dtype="float32",
                      progress=False, mask_flags=())
        _, stds[name], valid = read_prediction(output)
        with rasterio.open(output) as dataset:
            tags[name] = dataset.tags()
    noise = np.array(json.loads(tags["calibrated"]["S2L8H_INPUT_NOISE"]))
    assert noise.min() > 0.002  # the measured noise of a 0.003 σ input
    sigma = json.loads(tags["calibrated"]["S2L8H_SIGMA_CALIBRATION"])
    assert sigma["variance_scale"] == 0.5 and sigma["noise_variance_scale"] == 4.0
    assert sigma["level_variance_scale"] == 0.0  # none registered for this pair
    assert sigma["noise_sigma_added"] == pytest.approx(2 * noise, abs=2e-5)  # tags rounded
    assert "S2L8H_SIGMA_CALIBRATION" not in tags["plain"]
    expected = np.sqrt(0.5 * stds["plain"] ** 2 + 4.0 * noise[:, None, None] ** 2)
    # (to within the resampling onto the output grid, which comes after the sum)
    gap = np.abs(stds["calibrated"] / expected - 1)[:, valid]
    assert np.median(gap) < 0.002 and np.percentile(gap, 99) < 0.01 and gap.max() < 0.05
    # without the noise term the σ would be √0.5 = 0.71 of the plain one
    assert np.median(stds["calibrated"][:, valid] / stds["plain"][:, valid]) > 1.0
    report = runner.invoke(app, ["qa", str(tmp_path / "calibrated.tif")])
    assert report.exit_code == 0, report.output
    assert "sigma calibration" in report.output and "noise_variance_scale" in report.output


def test_geolocation_read_from_mtls_of_each_generation(tmp_path: Path) -> None:
    """Level-1 processing level, collection, tier and GEOMETRIC_RMSE_MODEL, from a
    Collection-1 text MTL, a pre-collection one and a Collection-2 Level-2 JSON MTL (whose
    Level-1 source is in its processing record; collection and tier from the product id
    where the MTL has no COLLECTION_NUMBER or COLLECTION_CATEGORY)."""
    from conftest import DATA, mtl_json
    from s2l8h.io.mtl import PRE_COLLECTION, Geolocation, read_metadata

    marburg = read_metadata(next((DATA / "marburg").glob("*_MTL.txt")))
    assert marburg.geolocation() == Geolocation("L1TP", "01", "T1", 7.053)
    assert marburg.geolocation().ground_control is True
    florida = Path(__file__).parents[1] / "data" / "l8_l1t_florida_20150804"
    assert read_metadata(next(florida.glob("*_MTL.txt"))).geolocation() == \
        Geolocation("L1T", PRE_COLLECTION, None, 7.107)
    document = mtl_json("L2SP")
    document["LANDSAT_METADATA_FILE"]["LEVEL1_PROCESSING_RECORD"] = {
        "PROCESSING_LEVEL": "L1GT", "COLLECTION_CATEGORY": "T2"}
    path = tmp_path / "LC08_L2SP_MTL.json"
    path.write_text(json.dumps(document))
    level2 = read_metadata(path).geolocation()
    assert level2 == Geolocation("L1GT", "02", "T2", None) and level2.ground_control is False
    assert Geolocation.from_dict({**level2.to_dict(), "later_key": 1}) == level2
    assert Geolocation.from_dict({"level1": "L1TP"}) == Geolocation("L1TP", None, None, None)


def test_a_scene_takes_its_bands_mtl_first_then_its_pans(tmp_path: Path) -> None:
    from conftest import L1_PRODUCT, PRODUCT, make_scene
    from s2l8h.io.landsat import open_scene
    from s2l8h.io.mtl import Geolocation

    scene = make_scene(tmp_path / "scene")
    for name, extra in ((PRODUCT, {"GEOMETRIC_RMSE_MODEL": "5.5"}),
                        (L1_PRODUCT, {"GEOMETRIC_RMSE_MODEL": "8.5",
                                      "COLLECTION_CATEGORY": "T2"})):
        path = scene.folder / f"{name}_MTL.json"
        document = json.loads(path.read_text())
        document["LANDSAT_METADATA_FILE"]["IMAGE_ATTRIBUTES"].update(extra)
        path.write_text(json.dumps(document))
    # The bands' (Level-2) MTL first: its own RMSE, and the tier of its product id over the
    # pan's T2; the Level-1 level, which that MTL lacks here, from the pan's.
    assert open_scene(scene.folder).geolocation() == Geolocation("L1TP", "02", "T1", 5.5)


def test_geolocation_warns_beyond_what_sigma_covers() -> None:
    from s2l8h.inference.checks import GEOLOCATION_WARNING_M, geolocation_messages
    from s2l8h.io.mtl import PRE_COLLECTION, Geolocation

    assert geolocation_messages(None) == []
    assert geolocation_messages(Geolocation("L1TP", "02", "T1", 7.05)) == []
    assert geolocation_messages(Geolocation("L1TP", "02", "T1", GEOLOCATION_WARNING_M)) == []
    assert geolocation_messages(Geolocation("L1TP", "02", "RT", 8.0)) == []
    assert geolocation_messages(Geolocation(None, None, None, None)) == []
    [far] = geolocation_messages(Geolocation("L1TP", "02", "T1", 9.04))
    assert "GEOMETRIC_RMSE_MODEL 9.04 m" in far and "--reference" in far
    [systematic] = geolocation_messages(Geolocation("L1GT", "02", "T2", None))
    assert systematic.startswith("geolocation: L1GT, placed without ground control points; "
                                 "Tier 2 (it missed Tier 1's geometric or radiometric "
                                 "criteria): ")
    assert "more than 9 m" in systematic
    [tier2] = geolocation_messages(Geolocation("L1TP", "02", "T2", 6.0))
    assert "Tier 2 (it missed Tier 1's geometric or radiometric criteria)" in tier2
    [older] = geolocation_messages(Geolocation("L1TP", "01", "T1", 7.05))
    assert older.startswith("geolocation: Collection 1, whose ground control predates")
    [oldest] = geolocation_messages(Geolocation("L1T", PRE_COLLECTION, None, 7.1))
    assert oldest.startswith("geolocation: a pre-collection scene, whose ground control")


def test_harmonize_tags_the_geolocation_and_warns_unless_registered(tmp_path: Path) -> None:
    """The MTL's geolocation goes into the tags; a scene with a 14 m fit is warned about by
    ``harmonize`` and by ``s2l8h qa`` reading the product, unless its shift against a
    reference was measured (a refused registration leaves the warning)."""
    from types import SimpleNamespace

    from conftest import L1_PRODUCT, make_scene, tiny_model
    from s2l8h.evaluate.qa import read_report, report_messages
    from s2l8h.inference.coregister import SceneRegistration
    from s2l8h.inference.harmonize import check_plan_geolocation

    scene = make_scene(tmp_path / "scene")
    good = harmonize(scene.folder, tmp_path / "good.tif", models=[tiny_model()],
                     progress=False)
    assert read_report(good.path)["geolocation"] == \
        {"level1": "L1TP", "collection": "02", "tier": "T1", "rmse_model_m": None}
    assert not [m for m in good.extra["warnings"] if "geolocation" in m]
    mtl = scene.folder / f"{L1_PRODUCT}_MTL.json"
    document = json.loads(mtl.read_text())
    document["LANDSAT_METADATA_FILE"]["IMAGE_ATTRIBUTES"]["GEOMETRIC_RMSE_MODEL"] = "14.2"
    mtl.write_text(json.dumps(document))
    with pytest.warns(InputCheckWarning, match="GEOMETRIC_RMSE_MODEL 14.2 m"):
        poor = harmonize(scene.folder, tmp_path / "poor.tif", models=[tiny_model()],
                         progress=False)
    [message] = [m for m in poor.extra["warnings"] if "geolocation" in m]
    report = read_report(poor.path)
    assert summary_row(read_report(good.path))["geolocation"] == "ok"
    assert summary_row(report)["geolocation"] == "RMSE 14.2 m"
    old = {"level1": "L1GT", "collection": "01", "tier": "T2", "rmse_model_m": None}
    assert summary_row({**report, "geolocation": old})["geolocation"] == "L1GT, C1, T2"
    assert report["geolocation"] == \
        {"level1": "L1TP", "collection": "02", "tier": "T1", "rmse_model_m": 14.2}
    assert message.endswith(next(m for m in report_messages(report) if "geolocation" in m))

    def geolocation_warnings(shift: dict) -> list[str]:
        return [m for m in report_messages({**report, "scene_shift": shift})
                if "geolocation" in m]

    measured = {"shift_m": [0.4, -0.3], "corrected_m": [0, 0], "refused": ""}
    assert geolocation_warnings(measured) == []
    assert summary_row({**report, "scene_shift": measured})["geolocation"] == "registered"
    assert len(geolocation_warnings({**measured, "refused": "shift above 60 m"})) == 1
    assert len(geolocation_warnings({**measured, "shift_m": None, "refused": "no CRS"})) == 1
    # harmonize decides alike on the registration it made.
    plan = SimpleNamespace(scene=SimpleNamespace(
        name="scene", geolocation=lambda: Geolocation.from_dict(report["geolocation"])))
    for registration, warned in (
            (SceneRegistration("ref.tif", (0.4, -0.3), (0.0, 0.0)), False),
            (SceneRegistration("ref.tif", (70.0, 0.0), (0.0, 0.0), refused="too far"), True),
            (None, True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_plan_geolocation(plan, registration)
        assert bool([w for w in caught if "geolocation" in str(w.message)]) is warned


def test_qa_against_a_level1_scene_shows_the_toa_warning_once(tmp_path: Path) -> None:
    """``qa --scene --toa --json``: the scene is opened twice, its TOA-mode warning shown
    once, as harmonize shows it (not as Python's raw warning line)."""
    from conftest import FLORIDA, tiny_model

    output = tmp_path / "crop.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        harmonize(FLORIDA, output, models=[tiny_model()], toa=True, progress=False,
                  bounds=(465000, 3392000, 466500, 3393500))
    result = runner.invoke(app, ["qa", str(output), "--scene", str(FLORIDA), "--toa",
                                 "--json", str(tmp_path / "qa.json")])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: TOA mode:") == 1
    assert "ToaModeWarning" not in result.output
    # What harmonize recorded besides the consistency (here the geolocation) is kept.
    report = json.loads((tmp_path / "qa.json").read_text())
    assert report["geolocation"]["collection"] == "pre-collection"
    assert "geolocation: a pre-collection scene" in " ".join(result.output.split())
    assert "check_window" not in report and "consistency" in report  # measured here
    # Tags of a product made from another scene are not shown as this scene's.
    from s2l8h.evaluate.qa import recorded_for_scene

    assert recorded_for_scene(output, "LC08_L1TP_001002_20200101_20200102_02_T1") == \
        ({}, "LC80200392015216LGN00")
    recorded, made_from = recorded_for_scene(output, "LC80200392015216LGN00")
    assert made_from == "LC80200392015216LGN00" and "input_noise" in recorded


def test_a_strip_along_the_scenes_edge_is_not_judged_for_consistency() -> None:
    """A bias or a shift measured on one column of 30 m pixels (a grid meeting the scene
    along its edge) is recorded with its span, but not warned about; the same bias over a
    block is."""
    from s2l8h.inference.checks import Consistency, consistency_messages, spans_both_ways

    rng = np.random.default_rng(0)
    landsat = 0.1 + 0.05 * rng.random((6, 100, 40))
    for columns, warned in ((slice(39, 40), False), (slice(0, 40), True)):
        valid = np.zeros((100, 40), dtype=bool)
        valid[:, columns] = True
        consistency = Consistency(window=(0, 100, 0, 40))
        consistency.add(0, 0, landsat + 0.02, landsat, valid)
        report = consistency.report()
        assert report["bias"] == pytest.approx([0.02] * 6)
        assert report["span_px"] == [100, valid.any(axis=0).sum()]
        assert ("shift_m" in report) is warned  # no shift from a strip one pixel wide
        assert bool(consistency_messages(report)) is warned
    assert spans_both_ways(np.ones((8, 8), dtype=bool))
    assert not spans_both_ways(np.ones((100, 7), dtype=bool))


def test_qa_says_a_strip_along_the_scenes_edge_was_not_judged(tmp_path: Path) -> None:
    """The bundled crop's last 30 m column alone: harmonize warns of no bias or shift there,
    and qa says the consistency was not judged rather than that the output agrees."""
    from s2l8h.demo import example_scene

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        harmonize(example_scene(), tmp_path / "strip.tif", toa=True, progress=False,
                  bounds=(468771, 3392003, 470000, 3395000))
    assert not [w for w in caught if "departs from its input" in str(w.message)
                or "the output is shifted" in str(w.message)]
    result = runner.invoke(app, ["qa", str(tmp_path / "strip.tif")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "consistency: not judged: the pixels compared span only 100 x 1 30 m pixels" in \
        result.output
    assert "agrees with its input" not in result.output
