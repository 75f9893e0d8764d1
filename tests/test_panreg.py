"""The pan registered to the bands block by block (s2l8h.inference.panreg), the window the
input checks measure on for a small output area (s2l8h.io.grid.context_grid), and the clouds
they leave out."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from s2l8h.data.simulate import Degradation, simulate_landsat, write_simulated_scene
from s2l8h.evaluate.benchmark import read_prediction
from s2l8h.evaluate.metrics import psnr
from s2l8h.inference.harmonize import (
    check_plan_inputs,
    harmonize,
    plan_harmonize,
    read_central_window,
)
from s2l8h.inference.options import HarmonizeOptions
from s2l8h.inference.panreg import (
    PAN_MARGIN,
    BlockShift,
    PanShiftMap,
    block_cover,
    judge_block,
    measure_pan_map,
)
from s2l8h.io.grid import CONTEXT_PIXELS, WorkingGrids, context_grid
from s2l8h.io.landsat import open_scene
from s2l8h.io.reader import ReadInputs, SceneReader
from s2l8h.io.sentinel2 import read_sentinel2

ROOT = Path(__file__).parents[1]
VIRGINIA = ROOT / "data" / "s2_l1c_virginia_north"
FLORIDA = ROOT / "data" / "l8_l1t_florida_20150804"
CROP = GeoBox((480, 1440), Affine(10, 0, 435730, 0, -10, 4176460), "EPSG:32618")
WEST, EAST = (-2.4, -5.5), (2.4, 5.5)
BOUNDARY = 320  # 30 m columns of the simulated scene: WEST before, EAST from there


@pytest.fixture(scope="module")
def crop():
    return read_sentinel2(VIRGINIA, grid=CROP)


def _simulate(crop, shift=(0.0, 0.0), **changes):
    reflectance, valid, grid = crop
    return simulate_landsat(reflectance, valid, grid, seed=0,
                            degradation=Degradation(shift_pan=shift, **changes))


@pytest.fixture(scope="module")
def two_parts(crop):
    """The crop (479 x 159 px at 30 m) simulated with OLI's noise and its pan shifted by WEST
    over the first BOUNDARY columns and by EAST over the rest."""
    west, east = (_simulate(crop, shift, noise_scale=1.0) for shift in (WEST, EAST))
    pan = west.pan.copy()
    pan[..., 2 * BOUNDARY:] = east.pan[..., 2 * BOUNDARY:]
    return replace(west, pan=pan)


def test_the_lattice_is_the_same_for_a_scene_and_any_window_of_it() -> None:
    bands = GeoBox((1000, 1200), Affine(30, 0, 400005, 0, -30, 4000005), "EPSG:32618")
    small = GeoBox.from_bbox((430000, 3980000, 431000, 3981000), "EPSG:32618", resolution=10)
    cover = block_cover(small, bands)
    # The area's block: 160 x 160 pixels, edges 160 pixels apart from the grid's phase (15 m).
    assert cover.shape == (160, 160) and cover.affine.c % 4800 == 15
    assert cover.extent.contains(small.extent)
    window = bands[500:900, 900:1150]
    assert block_cover(small, window) == cover
    # An area across a block edge meets two; the scene's edge cuts them.
    across = GeoBox.from_bbox((423000, 3980000, 428000, 3981000), "EPSG:32618", resolution=10)
    assert block_cover(across, bands).shape == (160, 320)
    edge = GeoBox.from_bbox((435000, 3980000, 436000, 3981000), "EPSG:32618", resolution=10)
    assert block_cover(edge, bands).boundingbox.right == bands.boundingbox.right


def test_a_block_believes_its_own_shift_only_where_it_fits_better(two_parts) -> None:
    bands = np.nan_to_num(two_parts.multispectral[:, :, :160])
    pan = np.nan_to_num(two_parts.pan[:, :320])
    usable = two_parts.lowres_valid[:, :160] & np.isfinite(
        two_parts.multispectral[:, :, :160]).all(axis=0)
    measured, believed, corrected = judge_block(bands, pan, usable, (0.0, 0.0))
    assert np.hypot(*np.subtract(measured, WEST)) < 1.0 and believed
    assert np.hypot(*np.subtract(corrected, WEST)) < 1.0
    # Against a scene's correction that is itself right, nothing is gained: it stands.
    _, believed, corrected = judge_block(bands, pan, usable, WEST)
    assert not believed and corrected == WEST
    # Too few pixels: no measurement, the scene's correction; none at or below 2 m.
    few = np.zeros_like(usable)
    few[:10, :10] = True
    assert judge_block(bands, pan, few, (1.5, 1.0)) == (None, False, (0.0, 0.0))
    # Nor on a sliver a scene's edge cuts off (3,200 pixels, but 20 rows).
    sliver = (bands[:, :20], pan[:40], usable[:20])
    assert sliver[2].sum() > 3000
    assert judge_block(*sliver, (3.0, 4.0)) == (None, False, (3.0, 4.0))
    # On structureless noise whatever peak phase correlation finds is not believed.
    rng = np.random.default_rng(0)
    noise = 0.1 + 0.001 * rng.standard_normal(bands.shape).astype(np.float32)
    noise_pan = 0.1 + 0.001 * rng.standard_normal(pan.shape).astype(np.float32)
    measured, believed, corrected = judge_block(noise, noise_pan, np.ones_like(usable), (0, 0))
    assert not believed or np.hypot(*measured) <= 2.0
    assert corrected == (0.0, 0.0)


def test_the_map_moves_a_shifted_pan_back(crop, tmp_path: Path) -> None:
    shift = (6.0, -9.0)
    pans = {}
    for name, simulation in (("placed", _simulate(crop)), ("moved", _simulate(crop, shift))):
        folder, _ = write_simulated_scene(simulation, tmp_path / name)
        scene = open_scene(folder)
        grids = WorkingGrids.from_bands(scene.bands_grid())
        with SceneReader(scene, grids.bands, grids.pan, grids.fine, ReadInputs(),
                         pan_margin=PAN_MARGIN) as reader:
            strip = reader.read_strip(20, 100, 30, 400)
            if name == "moved":
                block = BlockShift(0.0, 0.0, shift, True, shift)
                pan_map = PanShiftMap([block], (1, 1), (0.0, 0.0), 1e9)
                back = pan_map.apply(strip, reader, grids.pan).pan[0]
                wrong = PanShiftMap([replace(block, corrected=(-6.0, 9.0))], (1, 1),
                                    (0.0, 0.0), 1e9).apply(strip, reader, grids.pan).pan[0]
            pans[name] = strip.pan[0]
    placed, moved = pans["placed"], pans["moved"]
    error = np.sqrt(np.mean((back - placed) ** 2))
    # No strip edge of its own: the margin read around it keeps its rows and columns right.
    assert np.sqrt(np.mean((back[[0, -1]] - placed[[0, -1]]) ** 2)) < 2 * error
    assert error < 0.25 * np.sqrt(np.mean((moved - placed) ** 2))
    assert error < 0.15 * np.sqrt(np.mean((wrong - placed) ** 2))


def test_harmonize_registers_the_pan_block_by_block(two_parts, tmp_path: Path) -> None:
    scene, target = write_simulated_scene(two_parts, tmp_path / "simulation")
    scores, tags = {}, {}
    east = slice(3 * BOUNDARY + 60, -12)  # 10 m columns well inside the eastern part
    for blocks in (True, False):
        output = tmp_path / f"blocks-{blocks}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harmonize(scene, output, like=target, pan_blocks=blocks, models=["lite"],
                      dtype="float32", progress=False, mask_flags=())
        with rasterio.open(output) as dataset:
            tags[blocks] = dataset.tags()
        prediction, _, valid = read_prediction(output)
        inner = np.zeros_like(valid)
        inner[12:-12, east] = valid[12:-12, east]
        scores[blocks] = psnr(prediction, two_parts.target, inner)
    # One shift for the scene, measured where the western part dominates, doubles the
    # eastern part's error; block by block each part is corrected by its own.
    scene_shift = json.loads(tags[False]["S2L8H_PAN_SHIFT_CORRECTED_M"])
    assert scene_shift[1] < -2.0 and "S2L8H_PAN_SHIFT_LOCAL" not in tags[False]
    local = json.loads(tags[True]["S2L8H_PAN_SHIFT_LOCAL"])
    assert local["block_m"] == 4800
    blocks = json.loads(tags[True]["S2L8H_PAN_SHIFT_BLOCKS"])
    boundary = two_parts.lowres_grid.affine.c + 30 * BOUNDARY
    eastern = [row for row in blocks if row[0] - 2400 >= boundary]
    assert eastern and all(np.hypot(row[5] - EAST[0], row[6] - EAST[1]) < 1.0
                           for row in eastern)
    western = [row for row in blocks if row[0] + 2400 <= boundary]
    # (The west's own shifts are not 5 % better than the scene's, 1.2 m from them: it
    # stands there.)
    assert western and all(np.hypot(row[5] - WEST[0], row[6] - WEST[1]) < 1.5
                           for row in western)
    assert scores[True] > scores[False] + 0.3


def test_a_small_area_gets_the_corrections_of_the_whole_scene(two_parts, tmp_path: Path
                                                               ) -> None:
    folder, _ = write_simulated_scene(two_parts, tmp_path / "simulation")
    scene = open_scene(folder)
    whole = measure_pan_map(scene, scene.bands_grid(), ReadInputs(), (), (0.0, 0.0))
    left, _, _, top = two_parts.lowres_grid.boundingbox
    small = GeoBox.from_bbox((left + 9700, top - 2000, left + 10300, top - 1400),
                             "EPSG:32618", resolution=10)
    part = measure_pan_map(scene, small, ReadInputs(), (), (0.0, 0.0))
    assert len(part.blocks) == 1 and part.blocks[0] in whole.blocks


def test_the_checks_leave_flagged_clouds_out(crop, tmp_path: Path) -> None:
    """A cloud seen 45 m further north by the pan than by the bands (parallax): flagged in
    the quality band it does not move the pan's measured shift; not flagged it does."""
    simulation = _simulate(crop)
    bands, pan = simulation.multispectral.copy(), simulation.pan.copy()
    rows, cols = slice(40, 100), slice(150, 250)
    bands[:, rows, cols] = 0.6
    pan[2 * rows.start - 3:2 * rows.stop - 3, 2 * cols.start:2 * cols.stop] = 0.45
    folder, _ = write_simulated_scene(replace(simulation, multispectral=bands, pan=pan),
                                      tmp_path / "cloudy")
    qa_path = next(folder.glob("*QA_PIXEL.TIF"))
    with rasterio.open(qa_path, "r+") as dataset:
        qa = dataset.read(1)
        qa[rows.start - 2:rows.stop + 2, cols.start - 2:cols.stop + 2] = 22280  # cloud
        dataset.write(qa, 1)
    found = {}
    for flags in ((), ("cloud", "dilated_cloud", "shadow")):
        options = HarmonizeOptions(progress=False, models=("lite",), mask_flags=flags)
        plan = plan_harmonize(folder, tmp_path / "unused.tif", options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found[flags] = check_plan_inputs(plan).pan_shift_m
    assert np.hypot(*found[()]) > 5.0
    assert np.hypot(*found[("cloud", "dilated_cloud", "shadow")]) < 1.5


def test_checks_measure_around_a_small_output_area(tmp_path: Path) -> None:
    bands = GeoBox((1000, 1200), Affine(30, 0, 400005, 0, -30, 4000005), "EPSG:32618")
    small = GeoBox.from_bbox((433000, 3980000, 434000, 3981000), "EPSG:32618", resolution=10)
    context = context_grid(small, bands)
    # 256 x 256 band pixels centred on the area, cut at the scene's right edge.
    assert context.shape == (CONTEXT_PIXELS, 1200 - 989)
    assert context.boundingbox.right == bands.boundingbox.right
    centre = (context.boundingbox.bottom + context.boundingbox.top) / 2
    assert abs(centre - 3980500) <= 15
    # The same area as seen from EPSG:4326; nothing for an output as large as the scene.
    assert context_grid(small.to_crs("EPSG:4326"), bands).shape == context.shape
    assert context_grid(GeoBox.from_bbox(bands.boundingbox, "EPSG:32618", resolution=10),
                        bands) is None
    # harmonize measures on it, and says where.
    options = HarmonizeOptions(toa=True, progress=False, models=("lite",),
                               bounds=(462000, 3400000, 463000, 3401000))
    plan = plan_harmonize(FLORIDA, tmp_path / "unused.tif", options)
    window = read_central_window(plan)
    assert window.grid.shape == (CONTEXT_PIXELS, CONTEXT_PIXELS)
    assert window.strip.multispectral.shape == (6, CONTEXT_PIXELS, CONTEXT_PIXELS)
    assert window.grid.boundingbox.left < 462000 - 3000 and window.grid.boundingbox.right > \
        463000 + 3000
    assert json.loads(window.tags()["S2L8H_CHECK_WINDOW"])["crs"] == "EPSG:32616"
    whole = plan_harmonize(FLORIDA, tmp_path / "unused.tif", replace(options, bounds=None))
    assert whole.context is None


def test_harmonize_on_an_aoi_window_equals_the_whole_scene(two_parts, tmp_path: Path) -> None:
    """harmonize-many reads an AOI's window of a remote scene: with the blocks of the pan's
    registration and the scene around a small AOI in it, harmonize on the window gives what
    it gives on the whole scene, bit for bit."""
    import pystac

    from s2l8h.batch import scenes_from_items
    from s2l8h.batch.window import fetch_window, read_region
    from s2l8h.inference.harmonize import resolve_models
    from test_stac import _item

    folder, _ = write_simulated_scene(two_parts, tmp_path / "simulation", date="20230501")
    level2 = {path.name.split("_")[-1].split(".")[0].lower(): str(path)
              for path in folder.glob("*L2SP*.TIF")}
    assets = {"blue": level2["b2"], "green": level2["b3"], "red": level2["b4"],
              "nir08": level2["b5"], "swir16": level2["b6"], "swir22": level2["b7"],
              "qa_pixel": level2["pixel"]}
    common = {"platform": "landsat-8", "landsat:wrs_path": "14", "landsat:wrs_row": "34",
              "proj:epsg": 32618}
    bounds = tuple(two_parts.lowres_grid.boundingbox)
    level1 = {"pan": str(next(folder.glob("*L1TP*_B8.TIF"))),
              "mtl.json": str(next(folder.glob("*L1TP*_MTL.json")))}
    items = [_item("LC08_L2SP_014034_20230501_02_T1", "landsat-c2-l2", "2023-05-01", bounds,
                   assets, **common),
             _item("LC08_L1TP_014034_20230501_02_T1", "landsat-c2-l1", "2023-05-01", bounds,
                   level1, **common)]
    scene = scenes_from_items([pystac.Item.from_dict(item) for item in items])[0]
    # 600 m at the eastern edge of its block, which reaches further west than the scene
    # around the AOI that the checks measure on: both must be in the window.
    grid = GeoBox.from_bbox((445700, 4173830, 446300, 4174430), "EPSG:32618", resolution=10)
    models = resolve_models(["lite"])
    region = read_region(grid, max(int(getattr(m.config, "alignment", 1)) for m in models))
    window = fetch_window(scene, region, tmp_path / "window", output=grid)
    outputs, tags = {}, {}
    for name, inputs in (("whole", folder), ("window", window)):
        path = tmp_path / f"{name}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harmonize(inputs, path, models=models, crs="EPSG:32618",
                      bounds=tuple(grid.boundingbox), resolution=10, progress=False)
        with rasterio.open(path) as dataset:
            outputs[name], tags[name] = dataset.read(), dataset.tags()
    # The window holds the AOI's block (its measurement is quantised to 0.3 m: a few columns
    # short of it would not show in the output) and is narrower than the scene.
    cover = block_cover(grid, open_scene(folder).bands_grid())
    for path in (next(window.glob("*SR_B2.TIF")), next(window.glob("*_B8.TIF"))):
        with rasterio.open(path) as part:
            assert GeoBox.from_rio(part).extent.contains(cover.extent)
            assert part.bounds.right - part.bounds.left < 0.7 * (bounds[2] - bounds[0])
    for key in ("S2L8H_PAN_SHIFT_M", "S2L8H_PAN_SHIFT_BLOCKS", "S2L8H_CHECK_WINDOW"):
        assert tags["window"][key] == tags["whole"][key]
    (block,) = json.loads(tags["whole"]["S2L8H_PAN_SHIFT_BLOCKS"])
    assert block[2] is not None and np.hypot(*block[5:]) > 2  # measured, and the pan moved
    context = json.loads(tags["whole"]["S2L8H_CHECK_WINDOW"])["bounds"]
    assert block[0] - 2400 < context[0]
    np.testing.assert_array_equal(outputs["window"], outputs["whole"])


def test_a_pan_margin_leaves_the_strips_as_they_are(two_parts, tmp_path: Path) -> None:
    folder, _ = write_simulated_scene(two_parts, tmp_path / "simulation")
    scene = open_scene(folder)
    grids = WorkingGrids.from_bands(scene.bands_grid()[10:150, 20:400])
    strips = []
    for margin in (0, PAN_MARGIN):
        with SceneReader(scene, grids.bands, grids.pan, grids.fine, ReadInputs(),
                         pan_margin=margin) as reader:
            strips.append(reader.read_strip(5, 60, 10, 200))
            if margin:
                wide = reader.read_pan(5, 60, 10, 200, PAN_MARGIN)
                with pytest.raises(ValueError, match="pan_margin"):
                    reader.read_pan(5, 60, 10, 200, PAN_MARGIN + 1)
    np.testing.assert_array_equal(strips[0].pan, strips[1].pan)
    inner = (slice(PAN_MARGIN, -PAN_MARGIN),) * 2
    np.testing.assert_array_equal(wide[inner], strips[0].pan[0])


def test_column_blocks_give_the_same_file_with_the_pan_moved(two_parts, tmp_path: Path
                                                             ) -> None:
    scene, target = write_simulated_scene(two_parts, tmp_path / "simulation")
    outputs = []
    for width in (4096, 360):  # one column block, or four
        output = tmp_path / f"width-{width}.tif"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harmonize(scene, output, like=target, models=["lite"], tile=240, overlap=48,
                      block_width=width, progress=False, mask_flags=())
        with rasterio.open(output) as dataset:
            outputs.append(dataset.read())
            assert json.loads(dataset.tags()["S2L8H_PAN_SHIFT_LOCAL"])["corrected"] > 0
    np.testing.assert_array_equal(outputs[0], outputs[1])
