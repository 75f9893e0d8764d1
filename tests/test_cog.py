"""The COG write path: same pixels as before the streaming writer, GDAL's own overviews, a
valid COG; the overlapped stages, the precision option and a light start-up."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import torch
from affine import Affine
from odc.geo.geobox import GeoBox
from rio_cogeo.cogeo import cog_validate

from conftest import make_scene, tiny_model
from s2l8h import harmonize
from s2l8h.inference.tiling import BackgroundEmitter, predict_array
from s2l8h.inference.uncertainty import make_predictor
from s2l8h.io.cog import BLOCK, MASK_FLAGGED, MASK_VALID, CogWriter, overview_sizes
from s2l8h.io.errors import OutputError

NAMES = ("B02", "B03", "B04", "B8A", "B11", "B12")
# sha256 (first 16 hex digits) of the decoded pixels of `_write_strips` written by the writer
# of commit 962e11e (uncompressed rows, then GDAL's COG driver: deflate, OVERVIEWS=AUTO,
# nearest): full resolution and the two overview levels.
BEFORE = {
    "uint16": {"full": "8f4c7a81005af92a", 2: "cdf03854da7b5a41", 4: "5ab087eff3363b4e"},
    "float32": {"full": "daaa6259a92c8e90", 2: "43efb556dbbff59a", 4: "b7483ebdcc4160b7"},
}


def _grid(height: int, width: int) -> GeoBox:
    return GeoBox((height, width), Affine(10, 0, 600000, 0, -10, 5000000), "EPSG:32632")


def _write_strips(path: Path, dtype: str, with_std: bool, height: int = 700,
                  width: int = 1100, strip: int = 192) -> Path:
    """Random reflectance, σ, mask and keep, written in strips of two column blocks."""
    writer = CogWriter(path, _grid(height, width), _grid(height, width), NAMES, with_std,
                       dtype, {"K": "v"})
    rng = np.random.default_rng(42)
    split = width * 6 // 11
    for row0 in range(0, height, strip):
        for col0, cols in ((0, split), (split, width - split + 20)):
            mean = (rng.random((6, strip, cols), dtype=np.float32) * 0.6 - 0.05)
            std = rng.random((6, strip, cols), dtype=np.float32) * 0.02
            mask = rng.choice(np.array([0, 1, 1, 1, 2], np.uint8), size=(strip, cols))
            keep = (mask == 1) | ((mask == 2) & (rng.random((strip, cols)) < 0.5))
            writer.write_rows(row0, mean.astype(np.float32), std if with_std else None, mask,
                              keep, col0=col0)
    return writer.commit()


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize(("dtype", "with_std"), [("uint16", True), ("float32", False)])
def test_writer_pixels_identical_to_the_writer_before_streaming(tmp_path: Path, dtype: str,
                                                                 with_std: bool) -> None:
    path = _write_strips(tmp_path / "out.tif", dtype, with_std)
    with rasterio.open(path) as dataset:
        assert dataset.overviews(1) == [2, 4]
        digests = {"full": _digest(dataset.read())}
        for factor in dataset.overviews(1):
            shape = (dataset.count, dataset.height // factor, dataset.width // factor)
            digests[factor] = _digest(dataset.read(out_shape=shape))
        assert dataset.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "ZSTD"
        assert dataset.descriptions[-1] == "mask" and dataset.tags()["K"] == "v"
    assert digests == BEFORE[dtype]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]  # no temporary left


def test_streamed_overviews_are_nearest_decimations_and_file_is_a_valid_cog(
        tmp_path: Path) -> None:
    """Odd sizes (3 levels, sizes not halving evenly): the first level is exactly what GDAL's
    COG driver computes from the full resolution; each deeper one is the nearest-neighbour
    decimation of the level above, GDAL's rule, with GDAL's sizes."""
    height, width = 301, 2103
    assert overview_sizes(height, width) == [(150, 1051), (75, 525), (37, 262)]
    path = _write_strips(tmp_path / "out.tif", "uint16", False, height, width, strip=128)
    assert cog_validate(str(path)) == (True, [], [])
    full = tmp_path / "full.tif"
    rasterio.shutil.copy(path, full, driver="COG", COMPRESS="ZSTD", BLOCKSIZE=str(BLOCK),
                         OVERVIEWS="NONE")  # full resolution only ...
    regenerated = tmp_path / "regenerated.tif"
    rasterio.shutil.copy(full, regenerated, driver="COG", COMPRESS="ZSTD",
                         BLOCKSIZE=str(BLOCK), OVERVIEWS="AUTO",
                         OVERVIEW_RESAMPLING="NEAREST")  # ... then GDAL's own overviews
    with rasterio.open(path) as ours, rasterio.open(regenerated) as theirs:
        assert ours.overviews(1) == theirs.overviews(1) == [2, 4, 8]
        above = ours.read()
        np.testing.assert_array_equal(above, theirs.read())
    with rasterio.open(path, overview_level=0) as ours, \
            rasterio.open(regenerated, overview_level=0) as theirs:
        np.testing.assert_array_equal(ours.read(), theirs.read())
    for level, (rows, cols) in enumerate(overview_sizes(height, width)):
        with rasterio.open(path, overview_level=level) as ours:
            data = ours.read()
        assert data.shape[1:] == (rows, cols)
        pick_rows = np.floor(np.arange(rows) * (above.shape[1] / rows) + 0.5).astype(int)
        pick_cols = np.floor(np.arange(cols) * (above.shape[2] / cols) + 0.5).astype(int)
        np.testing.assert_array_equal(data, above[:, pick_rows][:, :, pick_cols])
        above = data


def test_harmonize_output_is_a_valid_cog_with_overviews(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "scene", rows=200, cols=190, fill_rows=5,
                       cloud_box=(50, 90, 20, 60))
    result = harmonize(scene.folder, tmp_path / "out.tif", models=[tiny_model(3)],
                       tile=192, overlap=48, progress=False)
    assert cog_validate(str(result.path)) == (True, [], [])
    with rasterio.open(result.path) as dataset:
        assert dataset.overviews(1) == [2]
        full = dataset.read()
    with rasterio.open(result.path, overview_level=0) as overview:
        level = overview.read()
    rows = np.floor(np.arange(level.shape[1]) * (full.shape[1] / level.shape[1]) + 0.5)
    cols = np.floor(np.arange(level.shape[2]) * (full.shape[2] / level.shape[2]) + 0.5)
    np.testing.assert_array_equal(level, full[:, rows.astype(int)][:, :, cols.astype(int)])
    assert set(np.unique(level[-1])) == {0, 1, 2}  # mask classes are never mixed


def test_a_failure_in_the_writer_thread_stops_the_run_and_leaves_nothing(
        tmp_path: Path, monkeypatch) -> None:
    scene = make_scene(tmp_path / "scene", rows=60, cols=40)
    calls = {"n": 0}
    original = CogWriter.write_rows

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OutputError("simulated disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CogWriter, "write_rows", failing)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError, match="simulated disk full"):
        harmonize(scene.folder, out / "out.tif", models=[tiny_model()], tile=48, overlap=12,
                  progress=False)
    assert calls["n"] == 2  # nothing written after the failure
    assert list(out.iterdir()) == []


def test_background_emitter_keeps_order_and_reraises() -> None:
    seen: list[int] = []
    with BackgroundEmitter(seen.append) as emitter:
        for value in range(50):
            emitter.submit(value)
    assert seen == list(range(50))

    def fail_at_three(value: int) -> None:
        if value == 3:
            raise RuntimeError("boom")
        seen.append(value)

    seen.clear()
    with pytest.raises(RuntimeError, match="boom"), BackgroundEmitter(fail_at_three) as emitter:
        for value in range(10):
            emitter.submit(value)
    assert seen == [0, 1, 2]


def test_precision_fp32_is_exact_and_bf16_close() -> None:
    predictor = make_predictor([tiny_model(4)], "none")
    rng = np.random.default_rng(1)
    multispectral = rng.uniform(0.02, 0.4, (6, 40, 52)).astype(np.float32)
    pan = rng.uniform(0.02, 0.4, (1, 80, 104)).astype(np.float32)
    exact, _ = predict_array(predictor, multispectral, pan, tile=96, overlap=24)
    again, _ = predict_array(predictor, multispectral, pan, tile=96, overlap=24,
                             precision="fp32")
    np.testing.assert_array_equal(exact, again)
    low, _ = predict_array(predictor, multispectral, pan, tile=96, overlap=24,
                           precision="bf16")
    difference = np.abs(low - exact)
    assert 0 < difference.max() < 0.02 * np.abs(exact).max()
    with pytest.raises(ValueError, match="precision"):
        predict_array(predictor, multispectral, pan, precision="fp8")  # type: ignore[arg-type]
    assert torch.get_autocast_dtype("cpu") is not None  # the autocast context was left


def test_cli_constants_mirror_their_sources() -> None:
    from s2l8h.cli import evaluate as evaluate_cli
    from s2l8h.cli import harmonize as harmonize_cli
    from s2l8h.cli import stac as stac_cli
    from s2l8h.data import stac
    from s2l8h.data.simulate import CONDITIONS
    from s2l8h.evaluate.baselines import BASELINES
    from s2l8h.evaluate.benchmark import EDGE_MARGIN
    from s2l8h.inference.harmonize import DEFAULT_MODELS
    from s2l8h.inference.tiling import PRECISIONS
    from s2l8h.io.quality import DEFAULT_MASK_FLAGS, FLAGS

    assert harmonize_cli.DEFAULT_MODELS == DEFAULT_MODELS
    assert harmonize_cli.FLAGS == FLAGS
    assert harmonize_cli.DEFAULT_MASK_FLAGS == DEFAULT_MASK_FLAGS
    assert harmonize_cli.PRECISIONS == PRECISIONS
    assert evaluate_cli.BASELINES == BASELINES
    assert tuple(CONDITIONS) == evaluate_cli.CONDITIONS
    assert evaluate_cli.EDGE_MARGIN == EDGE_MARGIN
    assert stac.USGS_LANDSATLOOK.landsat_l2 == stac_cli.LANDSAT_L2
    assert stac.USGS_LANDSATLOOK.landsat_l1 == stac_cli.LANDSAT_L1
    assert stac.EARTH_SEARCH.sentinel2 == stac_cli.SENTINEL2


def test_cli_start_up_imports_no_heavy_library() -> None:
    code = ("import sys; from s2l8h.cli import app; import s2l8h; s2l8h.__version__; "
            "print(sorted(m for m in ('torch', 'rasterio', 'scipy') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "[]"
    import s2l8h

    assert s2l8h.harmonize is harmonize  # the lazy attribute is the function


def test_mask_shares_read_the_mask_band_at_a_reduced_size(tmp_path: Path) -> None:
    """The shares of valid, flagged and nodata pixels, from a decimated read of the band named
    ``mask`` (to about a pixel of the reduced size); a raster without one is an input error
    naming it."""
    from s2l8h.errors import InputError
    from s2l8h.io.cog import mask_shares

    mask = np.zeros((200, 300), dtype=np.uint16)
    mask[:, 100:150] = MASK_FLAGGED
    mask[:, 150:] = MASK_VALID
    profile = {"driver": "GTiff", "width": 300, "height": 200, "count": 2, "dtype": "uint16",
               "crs": "EPSG:32618", "transform": rasterio.Affine(10, 0, 0, 0, -10, 0)}
    with rasterio.open(tmp_path / "product.tif", "w", **profile) as dataset:
        dataset.write(np.stack([np.ones_like(mask), mask]))
        dataset.descriptions = ("B02", "mask")
    exact = mask_shares(tmp_path / "product.tif")
    assert exact == {"valid": 0.5, "flagged": pytest.approx(1 / 6), "nodata": pytest.approx(1 / 3)}
    reduced = mask_shares(tmp_path / "product.tif", max_side=50)  # 50 x 34 pixels read
    for name, share in exact.items():
        assert reduced[name] == pytest.approx(share, abs=1 / 50)
    with rasterio.open(tmp_path / "plain.tif", "w", **{**profile, "count": 1}) as dataset:
        dataset.write(mask[None])
    with pytest.raises(InputError, match=r"plain.tif: has no band named 'mask'"):
        mask_shares(tmp_path / "plain.tif")
