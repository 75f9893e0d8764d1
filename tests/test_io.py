"""Readers, MTL parsing, quality bands, grids."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import DATA, FLORIDA, PAN_ADD, PAN_MULT, SUN_ELEVATION, Scene
from s2l8h.io.errors import InputError
from s2l8h.io.grid import model_grid, sentinel2_grid, valid_bounds
from s2l8h.io.landsat import ToaModeWarning, open_scene, read_reflectance
from s2l8h.io.mtl import parse_mtl, read_metadata
from s2l8h.io.quality import decode_quality, quality_mask

MARBURG = DATA / "marburg"
MARBURG_ID = "LC08_L1TP_195025_20130707_20170503_01_T1"


def test_mtl_text_collection1_and_precollection() -> None:
    marburg = read_metadata(MARBURG / f"{MARBURG_ID}_MTL.txt")
    assert marburg.spacecraft == "LANDSAT_8"
    assert marburg.scene_id == MARBURG_ID
    assert marburg.processing_level == "L1TP"
    assert marburg.sun_elevation == pytest.approx(58.99675180)
    assert marburg.reflectance_rescaling(8) == (2.0e-05, -0.1)
    florida = read_metadata(FLORIDA / "LC80200392015216LGN00_MTL.txt")
    assert florida.scene_id == "LC80200392015216LGN00"
    assert florida.processing_level == "L1T"
    assert florida.date_acquired == "2015-08-04"
    assert florida.sun_elevation == pytest.approx(64.74360932)
    document = parse_mtl(FLORIDA / "LC80200392015216LGN00_MTL.txt")
    assert document["L1_METADATA_FILE"]["PRODUCT_METADATA"]["WRS_PATH"] == "20"


def test_mtl_json(scene: Scene) -> None:
    metadata = read_metadata(next(scene.folder.glob("*L1TP*_MTL.json")))
    assert metadata.processing_level == "L1TP"
    assert metadata.reflectance_rescaling(8) == (PAN_MULT, PAN_ADD)
    assert metadata.sun_elevation == SUN_ELEVATION


def test_truncated_mtl_text(tmp_path: Path) -> None:
    text = (MARBURG / f"{MARBURG_ID}_MTL.txt").read_text().splitlines()
    broken = tmp_path / "X_MTL.txt"
    broken.write_text("\n".join(text[:40]))
    with pytest.raises(InputError, match=r"X_MTL\.txt: MTL text ends inside a GROUP"):
        read_metadata(broken)


def test_collection2_level2_scene(scene: Scene) -> None:
    opened = open_scene(scene.folder)
    assert opened.level == "L2"
    assert opened.qa_layout == "qa_pixel"
    assert [p.name[-10:] for p in opened.multispectral] == [
        f"_SR_B{n}.TIF" for n in range(2, 8)]
    assert opened.pan is not None and opened.pan.name.endswith("_B8.TIF")
    assert opened.name == "LC08_L2SP_195025_20230707_20230717_02_T1"
    scale, offset = opened.multispectral_rescaling()[3]
    reflectance = read_reflectance(scene.band_path(5), 1, scale, offset)
    expected = scene.digital_numbers[3].astype(np.float64) * 0.0000275 - 0.2
    np.testing.assert_allclose(reflectance, expected, atol=1e-6)
    assert opened.pan_rescaling() == (PAN_MULT, PAN_ADD)
    sine = math.sin(math.radians(SUN_ELEVATION))
    assert opened.pan_rescaling(sun_corrected=True) == pytest.approx(
        (PAN_MULT / sine, PAN_ADD / sine))


def test_stacked_sr_file_with_separate_pan_and_mtl(tmp_path: Path, scene: Scene) -> None:
    from conftest import write_raster

    with rasterio.open(scene.band_path(2)) as band:
        transform = band.transform
    stacked = write_raster(tmp_path / "LC08_L2SP_195025_20230707_20230717_02_T1_SR.tif",
                           scene.digital_numbers, transform, nodata=0)
    pan = next(scene.folder.glob("*_B8.TIF"))
    mtl = next(scene.folder.glob("*L1TP*_MTL.json"))
    opened = open_scene([stacked, pan, mtl])
    assert opened.stacked and opened.multispectral == (stacked,)
    assert opened.multispectral_sources()[4] == (stacked, 5)
    assert opened.pan == pan


def test_marburg_collection1_level1_needs_toa_mode() -> None:
    with pytest.raises(InputError, match="run in TOA mode"):
        open_scene(MARBURG)
    with pytest.warns(ToaModeWarning):
        opened = open_scene(MARBURG, toa=True)
    assert opened.level == "L1"
    assert opened.qa_layout == "bqa_c1"
    assert opened.name == MARBURG_ID
    metadata = read_metadata(MARBURG / f"{MARBURG_ID}_MTL.txt")
    mult, add = metadata.reflectance_rescaling(4)
    sine = math.sin(math.radians(metadata.sun_elevation))
    scale, offset = opened.multispectral_rescaling()[2]
    reflectance = read_reflectance(MARBURG / f"{MARBURG_ID}_B4.TIF", 1, scale, offset)
    with rasterio.open(MARBURG / f"{MARBURG_ID}_B4.TIF") as dataset:
        digital_numbers = dataset.read(1).astype(np.float64)
    for row, col in ((0, 0), (20, 17), (40, 40)):
        assert reflectance[row, col] == pytest.approx(
            (mult * digital_numbers[row, col] + add) / sine, abs=1e-6)


def test_florida_precollection_crop_reader_spot_checks() -> None:
    with pytest.warns(ToaModeWarning):
        opened = open_scene(FLORIDA, toa=True)
    assert opened.qa_layout == "bqa_pre"
    mult, add = opened.pan_rescaling()
    assert (mult, add) == (2.0e-05, -0.1)
    pan = read_reflectance(opened.pan, 1, mult, add)
    with rasterio.open(opened.pan) as dataset:
        assert dataset.res == (15.0, 15.0)
        assert (dataset.transform.c, dataset.transform.f) == (464452.5, 3396067.5)
        digital_numbers = dataset.read(1)
    assert pan[100, 50] == pytest.approx(2.0e-05 * float(digital_numbers[100, 50]) - 0.1,
                                         abs=1e-6)


def test_quality_decoding_hand_values() -> None:
    qa_pixel = np.array([21824, 22280, 1, 21834, 23888], dtype=np.uint16)
    flags = decode_quality(qa_pixel, "qa_pixel")
    assert flags["fill"].tolist() == [False, False, True, False, False]
    assert flags["cloud"].tolist() == [False, True, False, True, False]
    assert flags["dilated_cloud"].tolist() == [False, False, False, True, False]
    assert flags["shadow"].tolist() == [False, False, False, False, True]
    _fill, masked = quality_mask(qa_pixel, "qa_pixel")
    assert masked.tolist() == [False, True, False, True, True]
    assert decode_quality(np.array([2720, 2800]), "bqa_c1")["cloud"].tolist() == [False, True]
    precollection = decode_quality(np.array([20480, 61440, 28672]), "bqa_pre")
    assert precollection["cloud"].tolist() == [False, True, False]
    assert precollection["cirrus"].tolist() == [False, True, True]
    radsat = np.array([0, 1 << 1, 1 << 6, 1 << 7, 1], dtype=np.uint16)  # bands 2, 7, 8, 1
    _, saturated = quality_mask(np.full(5, 21824), "qa_pixel", ("saturated",), radsat)
    assert saturated.tolist() == [False, True, True, False, False]
    assert decode_quality(np.array([2720, 2720 | 4]), "bqa_c1")["saturated"].tolist() == [
        False, True]
    with pytest.raises(ValueError, match="unknown quality flags"):
        quality_mask(qa_pixel, "qa_pixel", ("clouds",))


def test_marburg_bqa_is_clear() -> None:
    with rasterio.open(MARBURG / f"{MARBURG_ID}_BQA.TIF") as dataset:
        qa = dataset.read(1)
    fill, masked = quality_mask(qa, "bqa_c1")
    assert not fill.any() and not masked.any()


def test_sentinel2_grid_snaps_to_multiples_of_10() -> None:
    grid = sentinel2_grid((694005.0, 5698815.0, 695445.0, 5700015.0), "EPSG:32632")
    affine = grid.affine
    assert (affine.a, affine.e) == (10.0, -10.0)
    assert affine.c % 10 == 0 and affine.f % 10 == 0
    assert (affine.c, affine.f) == (694000.0, 5700020.0)
    assert grid.shape == (121, 145)


def test_valid_bounds_and_model_grid(tmp_path: Path) -> None:
    from conftest import make_scene

    scene = make_scene(tmp_path / "s", rows=40, cols=48, fill_rows=8)
    bounds, crs = valid_bounds(scene.band_path(2))
    left, bottom, right, top = scene.bounds
    assert bounds[0] == left and bounds[2] == right and bounds[1] == bottom
    assert top - 9 * 30 <= bounds[3] <= top - 7 * 30
    grid20 = sentinel2_grid(scene.bounds, crs, 20)
    fine = model_grid(grid20)
    assert fine.affine.a == 10 and (fine.affine.c, fine.affine.f) == (grid20.affine.c,
                                                                      grid20.affine.f)
    assert fine.shape == (2 * grid20.shape[0], 2 * grid20.shape[1])


def test_mtl_json_not_object(tmp_path: Path) -> None:
    path = tmp_path / "A_MTL.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="not an object"):
        read_metadata(path)


def test_reader_close_waits_for_a_read_in_flight_and_refuses_later_reads(scene: Scene
                                                                          ) -> None:
    import threading
    import time

    from s2l8h.io.grid import WorkingGrids
    from s2l8h.io.reader import ReaderClosedError, SceneReader
    from s2l8h.models.convention import InputConvention

    fine = model_grid(sentinel2_grid(scene.bounds, "EPSG:32632", 10.0))
    rows, cols = fine.height // 3, fine.width // 3
    grids = WorkingGrids.from_fine(fine).crop(rows, cols)
    reader = SceneReader(open_scene(scene.folder), grids.bands, grids.pan, fine,
                         InputConvention(input_grid="native"))
    original = reader._read
    started, results, events = threading.Event(), [], []

    def slow_read(source, window):
        started.set()
        time.sleep(0.1)  # the reads are in flight when close() is called
        values = original(source, window)
        events.append("read")
        return values

    reader._read = slow_read
    thread = threading.Thread(target=lambda: results.append(reader.read_strip(0, rows)))
    thread.start()
    started.wait()
    reader.close()  # must wait for the reads, not pull their datasets away
    events.append("closed")
    thread.join()
    assert events == ["read"] * 7 + ["closed"]  # six bands and the pan, then the close
    assert results and results[0].multispectral.shape == (6, rows, cols)
    assert np.isfinite(results[0].multispectral).all()
    with pytest.raises(ReaderClosedError, match="closed"):
        reader.read_strip(0, rows)


def test_reader_takes_a_plain_read_request_without_a_model(scene: Scene) -> None:
    from s2l8h.io.grid import WorkingGrids
    from s2l8h.io.reader import ReadInputs, SceneReader
    from s2l8h.models.convention import InputConvention

    fine = model_grid(sentinel2_grid(scene.bounds, "EPSG:32632", 10.0))
    rows, cols = fine.height // 3, fine.width // 3
    working = WorkingGrids.from_fine(fine).crop(rows, cols)
    grids = (working.bands, working.pan, fine)
    with SceneReader(open_scene(scene.folder), *grids, ReadInputs(use_pan=False)) as reader:
        assert reader.read_strip(0, rows).pan is None
    with SceneReader(open_scene(scene.folder), *grids, ReadInputs()) as plain, \
            SceneReader(open_scene(scene.folder), *grids,
                        InputConvention(input_grid="native")) as from_model:
        a, b = plain.read_strip(0, rows), from_model.read_strip(0, rows)
    assert np.array_equal(a.pan, b.pan) and np.array_equal(a.multispectral, b.multispectral)
    with pytest.raises(ValueError, match="pan_radiometry"):
        ReadInputs(pan_radiometry="radiance")
