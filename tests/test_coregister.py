"""Co-registration of a whole scene to a Sentinel-2 reference (``--reference``)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage
from typer.testing import CliRunner

from conftest import make_scene, write_raster
from s2l8h.cli.app import app
from s2l8h.data.simulate import Degradation
from s2l8h.errors import InputError, OutputError
from s2l8h.evaluate.benchmark import read_prediction, run_benchmark
from s2l8h.evaluate.metrics import psnr
from s2l8h.evaluate.qa import consistency_with_scene, read_report
from s2l8h.inference import coregister
from s2l8h.inference.checks import InputCheckWarning, measure_pan_shift
from s2l8h.inference.coregister import measure_scene_shift, register_scene
from s2l8h.inference.harmonize import harmonize, plan_harmonize, registered_plan
from s2l8h.inference.options import HarmonizeOptions
from s2l8h.io.grid import moved_grid
from s2l8h.io.reference import read_reference
from s2l8h.io.sentinel2 import read_sentinel2
from test_checks import _scene

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"
runner = CliRunner()
GRID30 = GeoBox((120, 150), Affine(30, 0, 600000, 0, -30, 5000000), "EPSG:32632")


@pytest.fixture(scope="module")
def virginia():
    crop = GeoBox((360, 360), Affine(10, 0, 438730, 0, -10, 4177460), "EPSG:32618")
    return read_sentinel2(VIRGINIA, grid=crop)


def _texture(seed: int = 0, shape: tuple[int, int] = (120, 150)) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=shape)
    return ndimage.gaussian_filter(noise, 1.0)


def _bands_of(texture: np.ndarray, shift_m: tuple[float, float], seed: int = 1) -> np.ndarray:
    """Six bands that are different linear functions of ``texture`` with its content moved
    ``shift_m`` (dx east, dy north) metres on the 30 m grid, plus a little noise."""
    moved = ndimage.shift(texture, (-shift_m[1] / 30, shift_m[0] / 30), order=3, mode="wrap")
    rng = np.random.default_rng(seed)
    return np.stack([0.1 + (0.02 + 0.01 * band) * moved + rng.normal(0, 0.001, moved.shape)
                     for band in range(6)])


@pytest.mark.parametrize("shift", [(9.0, -12.0), (-20.0, 5.0), (0.0, 0.0)])
def test_scene_shift_measured_within_1_m_and_moving_it_back_fits_better(shift) -> None:
    texture = _texture()
    reference = 1000 + 300 * texture  # any scale: the bands are fitted to it
    valid = np.ones(texture.shape, bool)
    measured, before, after, pixels = measure_scene_shift(_bands_of(texture, shift), valid,
                                                          reference, valid)
    assert measured == pytest.approx(shift, abs=1.0)
    assert pixels > 0.9 * texture.size  # where the reference agrees with the bands
    if shift != (0.0, 0.0):
        assert after > before + 0.05
        assert after > 0.97


@pytest.mark.parametrize("cloud_size", [2, 3])  # cloud blobs' scale, 30 m pixels
def test_scene_shift_measured_through_clouds_on_the_reference(cloud_size: int) -> None:
    texture = _texture()
    reference = 1000 + 300 * texture
    blobs = ndimage.gaussian_filter(np.random.default_rng(5).normal(size=texture.shape),
                                    cloud_size)
    cloudy = np.where(blobs > np.quantile(blobs, 0.75), 6000.0, reference)  # 25 % cumulus
    valid = np.ones(texture.shape, bool)
    bands = _bands_of(texture, (9.0, -12.0))
    measured, _, _, pixels = measure_scene_shift(bands, valid, cloudy, valid)
    assert measured == pytest.approx((9.0, -12.0), abs=1.5)
    assert pixels < 0.75 * texture.size  # the clouds (and their rims) are left out
    # Plain phase correlation of a plain fit is pulled off by the clouds' edges.
    from s2l8h.inference.checks import measure_shift

    plain = measure_shift(cloudy, coregister.fit_to_reference(bands, valid, cloudy), 30.0)
    assert np.hypot(plain[0] - 9.0, plain[1] + 12.0) > 3.0


def _reference_file(path: Path, image: np.ndarray, grid: GeoBox, nodata=None) -> Path:
    return write_raster(path, image, grid.affine, nodata=nodata, crs=grid.crs.epsg)


def test_register_scene_corrects_refuses_and_says_why(tmp_path: Path, monkeypatch) -> None:
    texture = _texture()
    reference = _reference_file(tmp_path / "ref.tif",
                                np.rint(1000 + 300 * texture).astype(np.uint16), GRID30)
    valid = np.ones(texture.shape, bool)
    shifted = _bands_of(texture, (9.0, -12.0))
    found = register_scene(lambda: (shifted, valid), GRID30, str(reference))
    assert found.corrected_m == pytest.approx((9.0, -12.0), abs=1.0)
    assert not found.refused
    assert any("the scene is shifted by +" in m and m.endswith("corrected")
               for m in found.messages())
    # Within the 2 m tolerance: measured, not corrected, nothing to say.
    aligned = register_scene(lambda: (_bands_of(texture, (0.0, 0.0)), valid), GRID30,
                             str(reference))
    assert aligned.corrected_m == (0.0, 0.0) and not aligned.refused
    assert aligned.messages() == []
    # More than the largest shift corrected.
    far = register_scene(lambda: (shifted, valid), GRID30, str(reference), max_shift_m=10.0)
    assert far.corrected_m == (0.0, 0.0)
    assert "more than 10 m" in far.refused and "used as georeferenced" in far.messages()[0]
    # A false peak: a shift that makes the fit worse is not applied.
    monkeypatch.setattr(coregister, "measure_shift", lambda *args: (25.0, 0.0))
    false_peak = register_scene(lambda: (_bands_of(texture, (0.0, 0.0)), valid), GRID30,
                                str(reference))
    assert false_peak.corrected_m == (0.0, 0.0)
    assert "does not make it fit the reference better" in false_peak.refused
    tags = json.loads(false_peak.tags()["S2L8H_SCENE_SHIFT"])
    assert tags["shift_m"] == [25.0, 0.0] and tags["corrected_m"] == [0.0, 0.0]
    assert tags["correlation"][1] < tags["correlation"][0]


def test_register_scene_needs_enough_pixels_with_data_in_both(tmp_path: Path) -> None:
    image = np.zeros((120, 150), np.uint16)  # Sentinel-2 stores no data as 0
    image[:20, :20] = 1000
    reference = _reference_file(tmp_path / "ref.tif", image, GRID30)
    valid = np.ones((120, 150), bool)
    found = register_scene(lambda: (_bands_of(_texture(), (9.0, 0.0)), valid), GRID30,
                           str(reference))
    assert found.shift_m is None and found.corrected_m == (0.0, 0.0)
    assert "only 400 pixels" in found.refused


def test_read_reference_averages_bands_masks_nodata_and_names_bad_files(tmp_path: Path
                                                                         ) -> None:
    fine = GeoBox((6, 9), Affine(10, 0, 600000, 0, -10, 5000000), "EPSG:32632")
    stack = np.stack([np.full((6, 9), 100, np.uint16), np.full((6, 9), 300, np.uint16)])
    stack[1, :3, :3] = 65535  # nodata in one band: the pixel is not valid
    path = _reference_file(tmp_path / "stack.tif", stack, fine, nodata=65535)
    grid = GeoBox((2, 3), Affine(30, 0, 600000, 0, -30, 5000000), "EPSG:32632")
    image, valid = read_reference(path, grid)
    assert image[1, 1] == pytest.approx(200.0)
    assert not valid[0, 0] and valid[1:, :].all() and valid[:, 1:].all()
    text = tmp_path / "notes.txt"
    text.write_text("not a raster")
    with pytest.raises(InputError, match=r"notes\.txt.*reference: not a readable raster"):
        read_reference(text, grid)
    elsewhere = GeoBox((2, 3), Affine(30, 0, 700000, 0, -30, 5000000), "EPSG:32632")
    with pytest.raises(InputError, match=r"stack\.tif.*reference: does not overlap the scene"):
        read_reference(path, elsewhere)


def _misregistered_scene(virginia, folder: Path) -> tuple[Path, Path, Path, np.ndarray]:
    """A scene simulated 15 m (9 east, 12 south) away from its truth, the truth's grid, and
    a reference in the truth's geometry (its red band as Sentinel-2 digital numbers)."""
    scene, target_path, target = _scene(virginia, folder, Degradation(shift_ms=(9.0, -12.0)))
    red = np.rint(np.nan_to_num(target[2]) * 10000).astype(np.uint16)
    reference = _reference_file(folder / "S2_reference_B04.tif", red, virginia[2], nodata=0)
    return scene, target_path, reference, target


def _inner(valid: np.ndarray, margin: int = 12) -> np.ndarray:
    """``valid`` without a ``margin`` of pixels along the edges."""
    inner = valid.copy()
    inner[:margin] = inner[-margin:] = False
    inner[:, :margin] = inner[:, -margin:] = False
    return inner


def test_harmonize_registers_the_scene_to_the_reference(virginia, tmp_path: Path) -> None:
    scene, target_path, reference, target = _misregistered_scene(virginia, tmp_path / "sim")
    # Its MTL says the geolocation is off by 15 m: warned about unless registered.
    mtl = next(scene.glob("*_L1TP_*_MTL.json"))
    document = json.loads(mtl.read_text())
    document["LANDSAT_METADATA_FILE"]["IMAGE_ATTRIBUTES"]["GEOMETRIC_RMSE_MODEL"] = "15.0"
    mtl.write_text(json.dumps(document))
    scores = {}
    for registered in (True, False):
        output = tmp_path / f"out-{registered}.tif"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = harmonize(scene, output, like=target_path, models=["lite"],
                               reference=reference if registered else None, dtype="float32",
                               progress=False, mask_flags=())
        messages = [str(w.message) for w in caught if w.category is InputCheckWarning]
        # Every warning, from before the registration and after, is kept for the result
        # (harmonize-many's manifest) and points at the caller.
        assert result.extra["warnings"] == messages
        assert all(w.filename == __file__ for w in caught if w.category is InputCheckWarning)
        with rasterio.open(output) as dataset:
            tags = dataset.tags()
        if registered:
            assert any("the scene is shifted by +" in m and "against the reference" in m
                       for m in messages)
            # On this 3.6 km crop (120 x 120 Landsat pixels) the shift is found within
            # 2.5 m; on the benchmark's 15 km x 3 km rows within 1.5 m
            # (benchmarks/registration.py).
            found = json.loads(tags["S2L8H_SCENE_SHIFT"])
            assert found["corrected_m"] == pytest.approx([9.0, -12.0], abs=2.5)
            assert result.extra["registration"].corrected_m == pytest.approx((9.0, -12.0),
                                                                             abs=2.5)
            # Named by file and content, not by the local folder.
            assert found["reference"].startswith("S2_reference_B04.tif sha256:")
            assert str(reference.parent) not in json.dumps(tags)
            # The trust report compares the output with the scene as registered.
            assert read_report(output)["scene_shift"]["corrected_m"] == found["corrected_m"]
            checked = consistency_with_scene(output, scene)
            assert checked["scene_shift_corrected_m"] == found["corrected_m"]
            assert np.hypot(*checked["consistency"]["shift_m"]) < 2.0
            assert not [m for m in messages if "geolocation" in m]
        else:
            assert "S2L8H_SCENE_SHIFT" not in tags and result.extra["registration"] is None
            assert [m for m in messages if "GEOMETRIC_RMSE_MODEL 15 m" in m]
        prediction, _, valid = read_prediction(output)
        scores[registered] = psnr(prediction, target, _inner(valid))
    assert scores[True] > scores[False] + 1.0
    # Registered, it is as good as a scene that was never misregistered: the networks see
    # the scene's pixels unresampled (resampling them by the shift cost about 1 dB).
    clean_scene, _, clean_target = _scene(virginia, tmp_path / "clean", Degradation())
    harmonize(clean_scene, tmp_path / "clean.tif", like=target_path, models=["lite"],
              dtype="float32", progress=False, mask_flags=())
    prediction, _, valid = read_prediction(tmp_path / "clean.tif")
    assert scores[True] > psnr(prediction, clean_target, _inner(valid)) - 0.3


def test_registration_into_a_geographic_output_grid(virginia, tmp_path: Path) -> None:
    scene, _, reference, _ = _misregistered_scene(virginia, tmp_path / "sim")
    counts = {}
    for registered in (True, False):
        output = tmp_path / f"out-{registered}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = harmonize(scene, output, crs="EPSG:4326", models=["lite"],
                               reference=reference if registered else None,
                               uncertainty="none", progress=False, mask_flags=())
        if registered:
            assert result.extra["registration"].corrected_m == pytest.approx((9.0, -12.0),
                                                                             abs=2.5)
        with rasterio.open(output) as dataset:
            assert dataset.crs.to_epsg() == 4326
            counts[registered] = int((dataset.read(dataset.count) == 1).sum())
    # The model's grid, moved by the shift in metres, still covers the output grid.
    assert counts[True] >= 0.97 * counts[False] > 0


def test_harmonize_never_writes_onto_its_reference(virginia, tmp_path: Path) -> None:
    scene, target_path, reference, _ = _misregistered_scene(virginia, tmp_path / "sim")
    before = reference.read_bytes()
    with pytest.raises(OutputError, match="is one of this run's inputs"):
        harmonize(scene, reference, like=target_path, reference=reference, overwrite=True,
                  progress=False)
    assert reference.read_bytes() == before
    with pytest.raises(InputError, match=r"missing\.tif.*reference: no such file"):
        harmonize(scene, tmp_path / "out.tif", like=target_path,
                  reference=tmp_path / "missing.tif", progress=False)
    assert not (tmp_path / "out.tif").exists()


def test_benchmark_registers_every_method_to_the_reference(virginia, tmp_path: Path
                                                           ) -> None:
    reflectance, _, grid = virginia
    folder = tmp_path / "s2"
    folder.mkdir()
    for index, band in enumerate(("B02", "B03", "B04", "B8A", "B11", "B12")):
        write_raster(folder / f"S2_{band}.tif",
                     np.rint(np.nan_to_num(reflectance[index]) * 10000).astype(np.uint16),
                     grid.affine, nodata=0, crs=32618)
    nir = np.rint(np.nan_to_num(reflectance[3]) * 10000).astype(np.uint16)
    reference = _reference_file(tmp_path / "S2_B08.tif", nir, grid, nodata=0)
    shifted = Degradation(shift_ms=(9.0, -12.0))
    plain = run_benchmark(folder, tmp_path / "plain", baselines=("mtf-glp",), report=False,
                          degradation=shifted)
    registered = run_benchmark(folder, tmp_path / "registered", baselines=("mtf-glp",),
                               report=False, degradation=shifted, reference=reference)
    found = registered.settings["registration"]
    assert found["corrected_m"] == pytest.approx([9.0, -12.0], abs=2.5)
    assert plain.settings["registration"] is None

    def score(result) -> float:
        return next(m for m in result.methods if m.name == "mtf-glp"
                    ).metrics["overall"]["psnr"]

    assert score(registered) > score(plain) + 1.0


def test_cli_benchmark_refuses_a_reference_with_real_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["benchmark", str(tmp_path), "--real", "--reference",
                                 str(tmp_path / "ref.tif"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "nothing to register to" in result.output
    assert not (tmp_path / "out").exists()


def test_a_registered_scene_is_read_on_its_own_pixels_without_resampling(tmp_path: Path
                                                                         ) -> None:
    scene = make_scene(tmp_path / "scene", rows=40, cols=48)
    plan = plan_harmonize(scene.folder, tmp_path / "out.tif",
                          HarmonizeOptions(models=("lite",), progress=False))
    shift = (9.0, -12.0)
    moved = registered_plan(plan, shift)
    assert registered_plan(plan, (0.0, 0.0)) is plan
    # The working grids lie on the scene's pixel lattice as its corrected georeference
    # places it, the output grid is unchanged and still covered.
    bands = moved_grid(moved.grids.bands, (-shift[0], -shift[1]))
    column, row = ~scene_transform(scene) * (bands.affine.c, bands.affine.f)
    assert column == pytest.approx(round(column), abs=1e-6)
    assert row == pytest.approx(round(row), abs=1e-6)
    assert moved.grid == plan.grid
    left, bottom, right, top = moved.model.boundingbox
    g_left, g_bottom, g_right, g_top = plan.grid.boundingbox
    assert left <= g_left and bottom <= g_bottom and right >= g_right and top >= g_top
    with moved.reader((0.0, 0.0), shift) as reader:
        strip = reader.read_strip(0, moved.grids.bands.height)
    # The strip's pixel (i, j) is the scene's (row + i, column + j); compare where both are.
    row, column = round(row), round(column)
    top, left = max(0, -row), max(0, -column)
    rows = min(strip.multispectral.shape[1], scene.rows - row) - top
    cols = min(strip.multispectral.shape[2], scene.cols - column) - left
    assert rows > 30 and cols > 40
    expected = scene.digital_numbers[:, row + top:row + top + rows,
                                     column + left:column + left + cols] * 2.75e-5 - 0.2
    np.testing.assert_allclose(strip.multispectral[:, top:top + rows, left:left + cols],
                               expected, atol=1e-6)
    # The pan moves with the bands: still registered to them.
    assert np.hypot(*measure_pan_shift(strip.multispectral, strip.pan[0], strip.valid)) < 1.0


def scene_transform(scene) -> Affine:
    with rasterio.open(scene.band_path(2)) as dataset:
        return dataset.transform
