"""The working grids (:class:`s2l8h.io.grid.WorkingGrids`) against the hand-written
derivations they replaced: same shapes, bit-identical transforms."""

from __future__ import annotations

import math

import pytest
from affine import Affine
from odc.geo.geobox import GeoBox

from s2l8h.batch.window import KERNEL_MARGIN, read_region
from s2l8h.data.simulate import landsat_grid
from s2l8h.io.grid import WorkingGrids, model_grid, native_model_grid

CRS = "EPSG:32632"
SHAPES = [(1, 1), (7, 100), (97, 131), (300, 299)]
# Sentinel-2 aligned corners, Landsat's 15 m-mod-30 phase, a 5 m offset.
CORNERS = [(600000.0, 4200000.0), (600015.0, 4199985.0), (600005.0, 4199995.0),
           (399960.0 + 5, 5000040.0 - 15)]


def coarser_grid(grid: GeoBox, factor: float, rows: int, cols: int) -> GeoBox:
    """The derivation ``io.grid.coarser_grid`` used to make (kept here as the reference)."""
    affine = grid.affine
    return GeoBox((rows, cols), Affine(affine.a * factor, 0, affine.c, 0, affine.e * factor,
                                       affine.f), grid.crs)


def bits(grid: GeoBox) -> tuple[tuple[int, int], list[str]]:
    """Shape and the transform's coefficients as exact hexadecimal floats."""
    return tuple(grid.shape), [float(value).hex() for value in tuple(grid.affine)[:6]]


def same(left: GeoBox, right: GeoBox) -> None:
    assert bits(left) == bits(right)
    assert left.crs == right.crs


def grid(shape: tuple[int, int], corner: tuple[float, float], pixel: float) -> GeoBox:
    return GeoBox(shape, Affine(pixel, 0, corner[0], 0, -pixel, corner[1]), CRS)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("corner", CORNERS)
def test_odc_geo_zoom_and_crop_equal_coarser_grid(shape, corner) -> None:
    fine = grid(shape, corner, 10.0)
    rows, cols = math.ceil(shape[0] / 3) + 2, math.ceil(shape[1] / 3) + 1
    same(coarser_grid(fine, 3, rows, cols), fine.zoom_out(3).crop((rows, cols)))
    same(coarser_grid(fine, 1.5, 2 * rows, 2 * cols), fine.zoom_out(1.5).crop((2 * rows,
                                                                                2 * cols)))
    same(coarser_grid(fine, 1, 3 * rows, 3 * cols), fine.crop((3 * rows, 3 * cols)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("corner", CORNERS)
def test_from_fine_equals_the_harmonize_and_pair_derivations(shape, corner) -> None:
    fine = grid(shape, corner, 10.0)
    # harmonize: the tile plan's padded 30 m size, here ceil(h / 3) rounded up to 8.
    rows = -(-math.ceil(shape[0] / 3) // 8) * 8
    cols = -(-math.ceil(shape[1] / 3) // 8) * 8
    grids = WorkingGrids.from_fine(fine, 3).crop(rows, cols)
    same(grids.bands, coarser_grid(fine, 3, rows, cols))
    same(grids.pan, coarser_grid(fine, 3 / 2, 2 * rows, 2 * cols))
    same(grids.fine, coarser_grid(fine, 1, 3 * rows, 3 * cols))
    assert WorkingGrids.from_fine(fine, 3, align=8) == grids
    # data.stac.load_pair: a 10 m grid of whole 30 m pixels.
    whole = fine.pad_wh(3)
    assert whole.shape == (-(-shape[0] // 3) * 3, -(-shape[1] // 3) * 3)
    pair = WorkingGrids.from_fine(whole)
    same(pair.fine, whole)
    same(pair.bands, coarser_grid(whole, 3, whole.height // 3, whole.width // 3))
    same(pair.pan, coarser_grid(whole, 1.5, 2 * (whole.height // 3), 2 * (whole.width // 3)))
    # data.patches / evaluate.qa: whole 30 m pixels inside the 10 m grid.
    if min(shape) >= 3:
        inside = WorkingGrids.from_fine(fine).crop(shape[0] // 3, shape[1] // 3)
        same(inside.bands, coarser_grid(fine, 3, shape[0] // 3, shape[1] // 3))
        same(inside.pan, coarser_grid(fine, 1.5, 2 * (shape[0] // 3), 2 * (shape[1] // 3)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("corner", CORNERS)
def test_from_bands_equals_the_wald_and_simulation_derivations(shape, corner) -> None:
    bands = grid(shape, corner, 30.0)
    grids = WorkingGrids.from_bands(bands)
    affine = bands.affine
    rows, cols = shape
    same(grids.bands, bands)
    same(grids.pan, GeoBox((2 * rows, 2 * cols), Affine(affine.a / 2, 0, affine.c, 0,
                                                         affine.e / 2, affine.f), CRS))
    same(grids.pan, GeoBox((2 * rows, 2 * cols), Affine(15, 0, affine.c, 0, -15, affine.f),
                           CRS))
    same(grids.fine, GeoBox((3 * rows, 3 * cols), Affine(affine.a / 3, 0, affine.c, 0,
                                                          affine.e / 3, affine.f), CRS))


def test_simulated_landsat_grid_phase_and_pan() -> None:
    target = grid((96, 97), (600000.0, 4200000.0), 10.0)
    lowres, offset_cols, offset_rows = landsat_grid(target)
    assert lowres.affine.c % 30 == 15 and lowres.affine.f % 30 == 15
    assert (offset_cols, offset_rows) == (3, 3)
    same(WorkingGrids.from_bands(lowres).pan,
         GeoBox((2 * lowres.height, 2 * lowres.width),
                Affine(15, 0, lowres.affine.c, 0, -15, lowres.affine.f), CRS))


@pytest.mark.parametrize("corner", CORNERS)
def test_read_region_is_the_padded_working_band_grid(corner) -> None:
    output = grid((101, 55), corner, 20.0)
    fine = model_grid(output)
    rows = -(-math.ceil(fine.height / 3) // 4) * 4
    cols = -(-math.ceil(fine.width / 3) // 4) * 4
    same(read_region(output, 4), coarser_grid(fine, 3, rows, cols).pad(KERNEL_MARGIN))


def test_working_grids_must_nest() -> None:
    bands = grid((4, 5), CORNERS[1], 30.0)
    grids = WorkingGrids.from_bands(bands)
    with pytest.raises(ValueError, match="do not nest"):
        WorkingGrids(grids.fine, bands.crop((4, 6)), grids.pan)
    assert grids.crop(2, 3).fine.shape == (6, 9) and grids.crop(2, 3).pan.shape == (4, 6)
    same(grids.crop(2, 3).fine, grids.fine.crop((6, 9)))


@pytest.mark.parametrize("corner", CORNERS)
def test_native_model_grid_nests_in_the_band_grid_and_covers_the_output(corner) -> None:
    bands = GeoBox((400, 500), Affine(30, 0, corner[0], 0, -30, corner[1]), CRS)
    # a Sentinel-2 10 m output somewhere over the scene, edges on multiples of 10 m
    output = GeoBox((257, 311), Affine(10, 0, 600000.0 + 1230, 0, -10, 4200000.0 - 870), CRS)
    fine = native_model_grid(output, bands)
    assert fine.resolution.x == 10 and fine.resolution.y == -10
    # edges on the band grid's pixel edges, whole band pixels
    column, row = ~bands.affine * (fine.affine.c, fine.affine.f)
    assert column == pytest.approx(round(column), abs=1e-9)
    assert row == pytest.approx(round(row), abs=1e-9)
    assert fine.shape[0] % 3 == 0 and fine.shape[1] % 3 == 0
    grids = WorkingGrids.from_fine(fine)
    assert grids.bands.affine.a == 30 and grids.bands.shape == (fine.shape[0] // 3,
                                                                fine.shape[1] // 3)
    # it covers the output, by less than one band pixel more on each side
    left, bottom, right, top = fine.boundingbox
    o_left, o_bottom, o_right, o_top = output.boundingbox
    assert left <= o_left < left + 30 and right - 30 < o_right <= right
    assert bottom <= o_bottom < bottom + 30 and top - 30 < o_top <= top


def test_native_model_grid_is_the_output_when_it_already_nests() -> None:
    bands = GeoBox((40, 50), Affine(30, 0, 600015.0, 0, -30, 4199985.0), CRS)
    nested = GeoBox((60, 90), Affine(10, 0, 600015.0 + 300, 0, -10, 4199985.0 - 150), CRS)
    assert native_model_grid(nested, bands) is nested
    # a geographic output: the nested grid in the scene's CRS covering its footprint
    geographic = GeoBox((100, 100), Affine(1e-4, 0, 10.2, 0, -1e-4, 37.9), "EPSG:4326")
    fine = native_model_grid(geographic, bands)
    assert str(fine.crs) == CRS and fine.resolution.x == 10
    column, row = ~bands.affine * (fine.affine.c, fine.affine.f)
    assert column == pytest.approx(round(column)) and row == pytest.approx(round(row))


def test_native_model_grid_falls_back_for_grids_it_cannot_nest_in() -> None:
    output = GeoBox((60, 90), Affine(10, 0, 600000.0, 0, -10, 4200000.0), CRS)
    for bands in (GeoBox((40, 50), Affine(60, 0, 600015.0, 0, -60, 4199985.0), CRS),
                  GeoBox((40, 50), Affine(30, 0, 600015.0, 0, 30, 4190000.0), CRS)):
        assert native_model_grid(output, bands) == model_grid(output)


def test_extent_meets_across_the_antimeridian_and_far_away() -> None:
    """A UTM zone 60S footprint over Fiji's east (177.9° E to 179.9° W): a lon/lat grid on
    either side of 180° meets it, one at 0° does not; CRSs with no finite projection between
    them do not meet."""
    from odc.geo.geom import box

    from s2l8h.io.grid import crs_name, extent_meets, sentinel2_grid

    footprint = box(595_000, 8_050_000, 830_000, 8_110_000, "EPSG:32760")
    degree = 10 / 111_320
    assert extent_meets(sentinel2_grid((179.6, -17.5, 179.9, -17.2), "EPSG:4326", degree),
                        footprint)
    assert extent_meets(sentinel2_grid((-179.95, -17.5, -179.92, -17.2), "EPSG:4326",
                                       degree), footprint)
    assert not extent_meets(sentinel2_grid((0.1, -17.5, 0.3, -17.2), "EPSG:4326", degree),
                            footprint)
    # Reprojected corners alone span the other way round the globe (−179.9 … 177.9).
    assert footprint.to_crs("EPSG:4326").boundingbox.left < -179
    assert not extent_meets(sentinel2_grid((0, 0, 1000, 1000), "EPSG:32631"),
                            box(-1e7, -1e7, -9.9e6, -9.9e6, "+proj=ortho +lat_0=-60 +lon_0=170"))
    # A grid far larger than a UTM zone (the world in Web Mercator at 1 km) does not project
    # into the zone; the footprint projected into the grid's CRS still meets it.
    world = sentinel2_grid((-2.0e7, -1.9e7, 2.0e7, 1.9e7), "EPSG:3857", 1000)
    germany = box(694_005, 5_698_815, 695_445, 5_700_015, "EPSG:32632")
    assert extent_meets(world, germany) and extent_meets(world, footprint)
    assert crs_name(footprint.crs) == "EPSG:32760"
    assert crs_name("+proj=ortho +lat_0=-60 +lon_0=170").startswith("PROJCRS[")
