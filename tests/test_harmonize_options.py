"""HarmonizeOptions (one checked options object for the API, the CLI and the batch runner),
the strips' own masks, and a batch task run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import Scene, tiny_model
from s2l8h import harmonize
from s2l8h.batch.run import PROVENANCE_OPTIONS, PROVENANCE_TAG, SceneJob, provenance, run_scene
from s2l8h.batch.scenes import scenes_from_folders
from s2l8h.errors import OptionError
from s2l8h.inference.options import TAGGED_OPTIONS, HarmonizeOptions
from s2l8h.io.cog import MASK_FLAGGED, MASK_NODATA, MASK_VALID
from s2l8h.io.grid import sentinel2_grid
from s2l8h.io.reader import Strip


def test_options_are_checked_once_and_built_from_keywords() -> None:
    with pytest.raises(OptionError, match="--tile must be at least 16"):
        HarmonizeOptions(tile=3)
    with pytest.raises(OptionError, match="--precision must be one of fp32, bf16, fp16"):
        HarmonizeOptions(precision="fp8")
    with pytest.raises(OptionError, match=r"unknown harmonize option.*tile_size"):
        HarmonizeOptions.build(tile_size=96)
    base = HarmonizeOptions(models=["a", "b"], mask_flags=["cloud"], bounds=[0, 0, 1, 1])
    assert base.models == ("a", "b") and base.mask_flags == ("cloud",)
    assert base.bounds == (0, 0, 1, 1)
    changed = HarmonizeOptions.build(base, tile=128, dtype="float32")
    assert (changed.tile, changed.dtype, changed.models) == (128, "float32", ("a", "b"))
    assert HarmonizeOptions.build(base) is base
    assert HarmonizeOptions.build(tile=128) == HarmonizeOptions(tile=128)
    with pytest.raises(OptionError, match="--overlap"):
        HarmonizeOptions.build(base, overlap=-1)
    record = changed.record()
    assert list(record) == list(TAGGED_OPTIONS)
    assert record["mask_flags"] == ["cloud"] and record["tile"] == 128
    json.dumps(changed.record(PROVENANCE_OPTIONS))  # plain JSON values


def test_an_options_object_and_keywords_make_the_same_output(tmp_path: Path,
                                                             scene: Scene) -> None:
    model = tiny_model(0)
    options = HarmonizeOptions(models=(model,), tile=48, overlap=12, dtype="float32",
                               progress=False)
    by_object = harmonize(scene.folder, tmp_path / "object.tif", options)
    by_keywords = harmonize(scene.folder, tmp_path / "keywords.tif", models=[model], tile=48,
                            overlap=12, dtype="float32", progress=False)
    # Keywords override the object's fields.
    overridden = harmonize(scene.folder, tmp_path / "tile64.tif", options, tile=64)
    assert by_object.tiles == by_keywords.tiles and overridden.tiles != by_object.tiles
    with rasterio.open(by_object.path) as one, rasterio.open(by_keywords.path) as other:
        np.testing.assert_array_equal(one.read(), other.read())
        assert one.transform == other.transform
        tags = one.tags()
        assert tags["S2L8H_OPTIONS"] == other.tags()["S2L8H_OPTIONS"]
    assert json.loads(tags["S2L8H_OPTIONS"])["tile"] == 48
    with rasterio.open(overridden.path) as dataset:
        assert json.loads(dataset.tags()["S2L8H_OPTIONS"])["tile"] == 64
    with pytest.raises(OptionError, match="unknown harmonize option"):
        harmonize(scene.folder, tmp_path / "bad.tif", models=[model], tiles=48)
    assert not (tmp_path / "bad.tif").exists()


def test_strip_carries_its_mask_onto_the_fine_grid() -> None:
    rng = np.random.default_rng(0)
    valid = rng.random((6, 5)) > 0.3
    strip = Strip(4, 2, rng.random((6, 6, 5)).astype(np.float32), None, valid)
    scale = 3
    # Fine pixels (4 * 3 + 2, 2 * 3) onwards: 11 rows x 12 columns, starting mid-pixel.
    out_row0, out_col0, rows, cols = 14, 6, 11, 12
    expected = np.kron(valid, np.ones((scale, scale), dtype=bool))
    expected = expected[out_row0 - 12:out_row0 - 12 + rows, out_col0 - 6:out_col0 - 6 + cols]
    np.testing.assert_array_equal(strip.fine_valid(out_row0, out_col0, rows, cols, scale),
                                  expected)
    mean = np.zeros((6, rows, cols), dtype=np.float32)
    mean[:, 0, 0] = np.nan
    fill = np.zeros((rows, cols), dtype=bool)
    fill[1, 1] = True
    flagged = np.zeros_like(fill)
    flagged[2] = True
    mask = strip.output_mask(out_row0, out_col0, mean, fill, flagged, scale)
    ok = expected & np.isfinite(mean).all(axis=0) & ~fill
    assert mask[0, 0] == MASK_NODATA and mask[1, 1] == MASK_NODATA
    np.testing.assert_array_equal(mask == MASK_VALID, ok & ~flagged)
    np.testing.assert_array_equal(mask == MASK_FLAGGED, ok & flagged)
    bands, band_valid = strip.window(5, 3, 2, 10)
    np.testing.assert_array_equal(bands, strip.multispectral[:, 1:3, 1:])
    np.testing.assert_array_equal(band_valid, valid[1:3, 1:])


def test_batch_task_runs_harmonize_with_its_options(tmp_path: Path, scene: Scene,
                                                    tiny_release: Path) -> None:
    spec = scenes_from_folders([scene.folder])[0]
    grid = sentinel2_grid(scene.bounds, "EPSG:32632")
    options = HarmonizeOptions(models=(str(tiny_release),), tile=48, overlap=12, threads=1,
                               keep_flagged=True)
    record = options.record(PROVENANCE_OPTIONS)
    job = SceneJob(spec, str(tmp_path / "out.tif"), str(grid.crs), tuple(grid.affine)[:6],
                   (grid.height, grid.width), options,
                   provenance(spec, grid, options.models, record))
    assert job.models == (str(tiny_release),)
    assert run_scene(job)["status"] == "done"
    with rasterio.open(job.output) as dataset:
        tags = dataset.tags()
        assert (dataset.height, dataset.width) == grid.shape
        assert dataset.transform == grid.affine
    assert tags[PROVENANCE_TAG] == job.provenance
    assert json.loads(tags["S2L8H_OPTIONS"])["keep_flagged"] is True
    assert json.loads(job.provenance)["options"]["keep_flagged"] is True
    assert run_scene(job)["status"] == "skipped"


def test_batch_refuses_options_the_run_sets(tmp_path: Path, scene: Scene) -> None:
    from s2l8h.batch import harmonize_many

    grid = sentinel2_grid(scene.bounds, "EPSG:32632")
    with pytest.raises(OptionError, match="sets crs"):
        harmonize_many([scene.folder], tmp_path / "many", grid, crs="EPSG:4326")
    with pytest.raises(OptionError, match="unknown harmonize option"):
        harmonize_many([scene.folder], tmp_path / "many", grid, tiles=48)
    with pytest.raises(OptionError, match="--tile"):
        harmonize_many([scene.folder], tmp_path / "many", grid, tile=3)


def test_benchmark_options_are_shared_and_checked(tmp_path: Path) -> None:
    from s2l8h.evaluate.benchmark import BenchmarkOptions, run_benchmark, run_conditions

    options = BenchmarkOptions(models=["a+b"], baselines=["bicubic"], bounds=[0, 0, 1, 1])
    assert options.models == ("a+b",) and options.baselines == ("bicubic",)
    assert BenchmarkOptions.build(options, tile=256).tile == 256
    with pytest.raises(OptionError, match="unknown benchmark option"):
        run_benchmark(tmp_path / "none.tif", tmp_path / "out", noise=0.01)
    with pytest.raises(OptionError, match="unknown benchmark option"):
        run_conditions(tmp_path / "none.tif", tmp_path / "out", ["all"], tiles=256)
    assert not (tmp_path / "out").exists()


def test_mask_flags_are_each_taken_once() -> None:
    """``--mask cloud,cloud`` is ``cloud``: the provenance a rerun compares holds each flag
    once, in the order given."""
    from s2l8h.cli.harmonize import mask_flags

    assert mask_flags(" cloud, cloud,shadow,,cloud ") == ("cloud", "shadow")
    assert mask_flags("") == ()
