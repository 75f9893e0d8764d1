"""Metrics against reference implementations, simulation, baselines, evaluate/benchmark."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import stats
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)
from typer.testing import CliRunner

from conftest import tiny_model
from s2l8h import save_pretrained
from s2l8h.bandpass import HLS_BANDPASS, msi_to_oli, oli_to_msi
from s2l8h.cli import app
from s2l8h.data.simulate import psf_sigma, simulate_landsat, write_simulated_scene
from s2l8h.evaluate import metrics
from s2l8h.evaluate.baselines import PANSHARPENING, run_baseline
from s2l8h.io.landsat import open_scene
from s2l8h.io.sentinel2 import read_sentinel2

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"
runner = CliRunner()


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.02, 0.5, (6, 64, 72))
    prediction = reference + rng.normal(0, 0.02, reference.shape)
    return prediction, reference


def test_psnr_ssim_nrmse_equal_scikit_image(pair) -> None:
    prediction, reference = pair
    for band in range(6):
        p, r = prediction[band], reference[band]
        assert metrics.psnr(p, r) == pytest.approx(
            peak_signal_noise_ratio(r, p, data_range=1.0), abs=1e-6)
        assert metrics.ssim(p, r) == pytest.approx(
            structural_similarity(r, p, data_range=1.0, win_size=7), abs=1e-6)
        assert metrics.nrmse(p, r) == pytest.approx(normalized_root_mse(r, p), abs=1e-6)
    assert metrics.psnr(prediction, reference) == pytest.approx(
        peak_signal_noise_ratio(reference, prediction, data_range=1.0), abs=1e-6)


def test_rmse_mae_sam_ergas_hand_computed() -> None:
    reference = np.array([[[1.0, 2.0]], [[1.0, 2.0]]])  # 2 bands, 1 x 2 pixels
    prediction = np.array([[[1.0, 2.0]], [[0.0, 4.0]]])
    assert metrics.rmse(prediction, reference) == pytest.approx(math.sqrt((1 + 4) / 4))
    assert metrics.mae(prediction, reference) == pytest.approx(3 / 4)
    # pixel 1: (1, 0) vs (1, 1) -> 45°; pixel 2: (2, 4) vs (2, 2) -> atan2 difference
    angle2 = math.degrees(math.acos((4 + 8) / (math.sqrt(20) * math.sqrt(8))))
    assert metrics.sam(prediction, reference) == pytest.approx((45 + angle2) / 2, abs=1e-6)
    # ERGAS: band RMSE 0 and sqrt(5/2), band means 1.5 and 1.5
    expected = 100 / 3 * math.sqrt((0 + (math.sqrt(2.5) / 1.5) ** 2) / 2)
    assert metrics.ergas(prediction, reference) == pytest.approx(expected, abs=1e-6)


def test_masked_metrics_ignore_masked_pixels(pair) -> None:
    prediction, reference = pair
    valid = np.ones(reference.shape[1:], dtype=bool)
    valid[10:30, 20:40] = False
    spoiled = prediction.copy()
    spoiled[:, ~valid] = 99.0
    subset_p, subset_r = prediction[:, valid], reference[:, valid]
    assert metrics.psnr(spoiled, reference, valid) == pytest.approx(
        peak_signal_noise_ratio(subset_r, subset_p, data_range=1.0), abs=1e-6)
    assert metrics.mae(spoiled, reference, valid) == pytest.approx(
        np.abs(subset_p - subset_r).mean(), abs=1e-12)
    for name in ("ssim", "nrmse", "sam", "ergas"):
        function = getattr(metrics, name)
        assert function(spoiled, reference, valid) == pytest.approx(
            function(prediction, reference, valid), abs=1e-12)
    nan_spoiled = prediction.copy()
    nan_spoiled[:, ~valid] = np.nan
    assert metrics.rmse(nan_spoiled, reference) == pytest.approx(
        metrics.rmse(prediction, reference, valid), abs=1e-12)


def test_index_agreement_and_correlations(pair) -> None:
    prediction, reference = pair
    results = metrics.image_metrics(prediction.astype(np.float32), reference.astype(np.float32))
    ndvi_p = (prediction[3] - prediction[2]) / (prediction[3] + prediction[2])
    ndvi_r = (reference[3] - reference[2]) / (reference[3] + reference[2])
    assert results["NDVI"]["pearson"] == pytest.approx(
        stats.pearsonr(ndvi_p.ravel(), ndvi_r.ravel()).statistic, abs=1e-5)
    assert results["NDVI"]["psnr"] == pytest.approx(
        peak_signal_noise_ratio(ndvi_r, ndvi_p, data_range=2.0), abs=1e-3)
    assert set(results) == {*metrics.BANDS, "overall", "NDVI", "NDWI_B11", "NDWI_B12"}


def test_uncertainty_metrics_on_calibrated_gaussian_errors() -> None:
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.1, 0.3, (6, 200, 200))
    sigma = rng.uniform(0.005, 0.05, reference.shape)
    prediction = reference + rng.normal(0, 1, reference.shape) * sigma
    results = metrics.uncertainty_metrics(prediction, sigma, reference)
    assert results["coverage_68"] == pytest.approx(0.68, abs=0.005)
    assert results["coverage_95"] == pytest.approx(0.95, abs=0.003)
    assert results["ece"] < 0.005
    error = (prediction - reference).ravel()
    sigma_flat = sigma.ravel()
    expected_nll = np.mean(0.5 * np.log(2 * np.pi * sigma_flat**2)
                           + error**2 / (2 * sigma_flat**2))
    assert results["gaussian_nll"] == pytest.approx(expected_nll, rel=1e-9)
    assert results["spearman_std_abs_error"] == pytest.approx(
        stats.spearmanr(sigma_flat, np.abs(error)).statistic, abs=1e-9)
    overconfident = metrics.uncertainty_metrics(prediction, sigma / 3, reference)
    assert overconfident["coverage_68"] < 0.35 and overconfident["ece"] > 0.2
    # Per band: σ a third of the truth in NIR alone shows there and nowhere else.
    nir_narrow = sigma.copy()
    nir_narrow[3] /= 3
    by_band = metrics.uncertainty_metrics(prediction, nir_narrow, reference)
    for band in metrics.BANDS:
        expected = 0.26 if band == "B8A" else 0.68
        assert by_band[f"coverage_68_{band}"] == pytest.approx(expected, abs=0.015), band
    assert by_band["coverage_68"] == pytest.approx((5 * 0.68 + 0.26) / 6, abs=0.01)
    assert "coverage_68_B02" not in metrics.uncertainty_metrics(prediction[0], sigma[0],
                                                                reference[0])


def test_bandpass_round_trip() -> None:
    reflectance = np.random.default_rng(2).uniform(0, 0.6, (6, 4, 4)).astype(np.float64)
    for platform in ("S2A", "S2B"):
        adjusted = msi_to_oli(reflectance, platform)
        slope, offset = HLS_BANDPASS[platform][5]
        assert adjusted[5, 1, 1] == pytest.approx(slope * reflectance[5, 1, 1] + offset)
        np.testing.assert_allclose(oli_to_msi(adjusted, platform), reflectance, atol=1e-12)


def _grid(rows: int, cols: int, left: float = 435730.0, top: float = 4179460.0) -> GeoBox:
    return GeoBox((rows, cols), Affine(10, 0, left, 0, -10, top), "EPSG:32618")


def test_psf_sigma_values() -> None:
    assert psf_sigma(30.0) == pytest.approx(14.8, abs=0.05)
    assert psf_sigma(15.0) == pytest.approx(7.4, abs=0.05)


def test_simulation_grids_and_exact_area_average() -> None:
    rows, cols = 60, 90
    grid = _grid(rows, cols)
    ramp = np.tile(np.arange(cols, dtype=np.float64), (rows, 1)) * 0.001 + 0.1
    reflectance = np.repeat(ramp[None], 6, axis=0)
    simulated = simulate_landsat(reflectance, np.ones((rows, cols), bool), grid,
                                 sun_elevation=90.0)
    affine = simulated.lowres_grid.affine
    assert (affine.a, affine.e) == (30.0, -30.0)
    assert affine.c % 30 == 15 and affine.f % 30 == 15  # Landsat pixel edges
    assert affine.c == 435735.0 and affine.f == 4179435.0
    pan_affine = simulated.pan_grid.affine
    assert (pan_affine.a, pan_affine.c, pan_affine.f) == (15.0, affine.c, affine.f)
    assert simulated.pan.shape == (2 * simulated.multispectral.shape[1],
                                   2 * simulated.multispectral.shape[2])
    # A linear ramp survives the Gaussian PSF; each 30 m pixel averages it over its footprint.
    centre_x = affine.c + 15 + 30 * np.arange(simulated.multispectral.shape[2])
    ramp_at = 0.1 + 0.001 * ((centre_x - grid.affine.c) / 10 - 0.5)
    slope, offset = HLS_BANDPASS["S2A"][1]
    row = simulated.multispectral[1, 5]
    np.testing.assert_allclose(row[2:-2], slope * ramp_at[2:-2] + offset, atol=1e-6)


def test_simulation_preserves_band_means_on_virginia() -> None:
    reflectance, valid, grid = read_sentinel2(VIRGINIA)
    simulated = simulate_landsat(reflectance, valid, grid)
    for band in range(6):
        slope, offset = HLS_BANDPASS["S2A"][band]
        expected = slope * np.nanmean(reflectance[band][:990, 5:1495]) + offset
        assert simulated.multispectral[band].mean() == pytest.approx(expected, abs=2e-3)
    pan_expected = (0.25 * reflectance[0] + 0.40 * reflectance[1] + 0.35 * reflectance[2])
    assert simulated.pan.mean() / math.sin(math.radians(50)) == pytest.approx(
        np.nanmean(pan_expected[:990, 5:1495]), abs=2e-3)
    assert simulated.target_grid == grid


def test_simulated_scene_reads_as_landsat(tmp_path: Path) -> None:
    reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=_grid(90, 120))
    simulated = simulate_landsat(reflectance, valid, grid, noise_std=0.001, shift_m=(3, -2))
    scene_dir, target = write_simulated_scene(simulated, tmp_path / "sim")
    scene = open_scene(scene_dir)
    assert scene.level == "L2" and scene.qa_layout == "qa_pixel"
    with rasterio.open(scene.multispectral[0]) as band:
        assert band.transform == simulated.lowres_grid.affine
        values = band.read(1) * 0.0000275 - 0.2
    np.testing.assert_allclose(values, simulated.multispectral[0], atol=2e-5)
    with rasterio.open(target) as dataset:
        assert dataset.transform == grid.affine and dataset.count == 6
    with pytest.raises(Exception, match="already holds a simulated scene"):
        write_simulated_scene(simulated, tmp_path / "sim")


@pytest.fixture(scope="module")
def virginia_crop():
    crop = GeoBox((300, 300), Affine(10, 0, 440730, 0, -10, 4176460), "EPSG:32618")
    reflectance, valid, grid = read_sentinel2(VIRGINIA, grid=crop)
    return reflectance, valid, grid, simulate_landsat(reflectance, valid, grid)


def test_pansharpening_baselines_beat_bicubic(virginia_crop) -> None:
    reflectance, valid, grid, simulated = virginia_crop
    sine = math.sin(math.radians(simulated.sun_elevation))
    scores = {}
    mask = valid.copy()
    mask[:6] = mask[-6:] = False
    mask[:, :6] = mask[:, -6:] = False
    for name in ("bicubic", *PANSHARPENING):
        prediction = run_baseline(name, simulated.multispectral, simulated.lowres_grid,
                                  simulated.pan, simulated.pan_grid, grid, pan_sun_sine=sine)
        mask &= np.isfinite(prediction).all(axis=0)
        scores[name] = prediction
    psnr = {name: metrics.psnr(p, reflectance, mask) for name, p in scores.items()}
    for name in PANSHARPENING:
        assert psnr[name] > psnr["bicubic"] + 0.3, psnr


def test_evaluate_cli_writes_json(tmp_path: Path, virginia_crop) -> None:
    reflectance, valid, grid, simulated = virginia_crop
    _, target = write_simulated_scene(simulated, tmp_path / "sim")
    prediction = run_baseline("bilinear", simulated.multispectral, simulated.lowres_grid,
                              simulated.pan, simulated.pan_grid, grid)
    predicted_path = tmp_path / "pred.tif"
    with rasterio.open(predicted_path, "w", driver="GTiff", width=300, height=300, count=6,
                       dtype="float32", crs=grid.crs.to_wkt(), transform=grid.affine,
                       nodata=np.nan) as dataset:
        dataset.write(prediction)
    result = runner.invoke(app, ["evaluate", str(predicted_path), str(target), "--json",
                                 str(tmp_path / "m.json"), "--csv", str(tmp_path / "m.csv")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "m.json").read_text())
    both = np.isfinite(prediction).all(axis=0) & valid
    assert document["overall"]["psnr"] == pytest.approx(
        metrics.psnr(prediction, reflectance, both), abs=1e-6)
    rows = (tmp_path / "m.csv").read_text().splitlines()
    assert rows[0] == "group,metric,value"
    psnr_row = next(row for row in rows if row.startswith("overall,psnr,"))
    assert float(psnr_row.split(",")[2]) == pytest.approx(document["overall"]["psnr"])
    assert not list(tmp_path.glob(".*.partial"))
    again = runner.invoke(app, ["evaluate", str(predicted_path), str(target), "--json",
                                str(tmp_path / "m.json")])
    assert again.exit_code != 0 and "already exists" in again.output


def test_benchmark_cli_table_and_report(tmp_path: Path) -> None:
    model = save_pretrained(tiny_model(0), tmp_path / "tiny")
    other = save_pretrained(tiny_model(1), tmp_path / "tiny2")
    result = runner.invoke(app, [
        "benchmark", str(VIRGINIA), "-o", str(tmp_path / "bench"), "--bounds",
        "440730,4173460,443730,4176460", "--model", str(model), "--model",
        f"{model}+{other}", "--baselines", "bicubic,gsa", "-q"])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "bench" / "results.md").read_text()
    for name in ("bicubic", "gsa", "tiny", "tiny + tiny2"):
        assert f"| {name} |" in table
    document = json.loads((tmp_path / "bench" / "results.json").read_text())
    uncertainty = document["methods"]["tiny + tiny2"]["uncertainty"]
    per_band = [uncertainty[f"coverage_68_{band}"] for band in metrics.BANDS]
    assert all(0 <= value <= 1 for value in per_band)
    # The pooled coverage is the mean of the bands' (every band scored on the same pixels).
    assert np.mean(per_band) == pytest.approx(uncertainty["coverage_68"], abs=1e-9)
    row = next(line for line in table.splitlines() if line.startswith("| tiny + tiny2 |"))
    assert row.split(" | ")[-2] == " / ".join(f"{value:.2f}" for value in per_band)
    assert next(line for line in table.splitlines() if line.startswith("| bicubic |")
                ).split(" | ")[-2] == "–"
    assert document["settings"]["pixels_scored"] > 50_000
    report = (tmp_path / "bench" / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 6
    assert (tmp_path / "bench" / "results.csv").read_text().startswith("method,kind,PSNR")


def test_b08_stands_in_for_a_missing_b8a_only_when_asked(tmp_path: Path) -> None:
    """A scene shipped without B8A (the xarray-spatial sample): its B08 file is read as the
    NIR truth with --b08-as-b8a, and is an error naming the file otherwise."""
    import shutil

    from s2l8h.errors import S2L8HError
    from s2l8h.io.sentinel2 import find_sentinel2_bands

    scene = tmp_path / "no_b8a"
    scene.mkdir()
    for path in VIRGINIA.glob("*.tif"):
        name = path.name.replace("_B8A", "_B08")
        shutil.copy(path, scene / name)
    with pytest.raises(S2L8HError, match=r"missing: \['B8A'\]"):
        find_sentinel2_bands(scene)
    bands = find_sentinel2_bands(scene, b08_as_b8a=True)
    assert bands["B8A"].name.endswith("_B08.tif") and list(bands)[3] == "B8A"
    grid = _grid(60, 60)
    stand_in, valid, _ = read_sentinel2(scene, grid=grid, b08_as_b8a=True)
    original, _, _ = read_sentinel2(VIRGINIA, grid=grid)
    np.testing.assert_array_equal(stand_in, original)  # the same pixels, read as B8A
    assert valid.all()
    with pytest.raises(S2L8HError, match="no B08 file"):
        find_sentinel2_bands([path for path in scene.iterdir() if "_B08" not in path.name],
                             b08_as_b8a=True)
    # A scene that has B8A keeps it: the flag is refused, naming the B8A file.
    with pytest.raises(S2L8HError, match=r"_B8A\.tif: the scene has B8A"):
        find_sentinel2_bands([*VIRGINIA.glob("*.tif"), scene / "S2_L1C_virginia_north_B08.tif"],
                             b08_as_b8a=True)
    result = runner.invoke(app, [
        "benchmark", str(scene), "-o", str(tmp_path / "bench"), "--bounds",
        "440730,4173460,443730,4176460", "--baselines", "bicubic", "-q"])
    assert result.exit_code == 2 and "B8A" in result.output
    result = runner.invoke(app, [
        "benchmark", str(scene), "-o", str(tmp_path / "bench"), "--bounds",
        "440730,4173460,443730,4176460", "--baselines", "bicubic", "--b08-as-b8a", "-q"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert document["settings"]["b08_as_b8a"] is True


@pytest.mark.parametrize("real", [False, True])
def test_benchmark_on_bad_input_fails_naming_it_and_makes_no_output_folder(
        tmp_path: Path, real: bool) -> None:
    """A folder without the scene's files: exit 2 (bad input), a message naming the folder, and no
    output folder left behind (it is made only once the inputs have been read)."""
    empty = tmp_path / "not_a_scene"
    empty.mkdir()
    (empty / "notes.txt").write_text("no rasters here")
    output = tmp_path / "deep" / "bench"
    arguments = ["benchmark", str(empty), "-o", str(output), "--baselines", "bicubic"]
    result = runner.invoke(app, arguments + (["--real", "--toa"] if real else []))
    assert result.exit_code == 2, result.output
    assert "not_a_scene" in result.output and "Traceback" not in result.output
    assert not output.exists() and not output.parent.exists()
