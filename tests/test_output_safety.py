"""Issue 13: outputs never land on an input or a non-regular file, never replace a user's
file, and leave no temporary files on any failure path (errors, SIGTERM/SIGHUP, a killed
earlier run); evaluate/export refuse what they cannot do correctly; the new-user papercuts."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from conftest import (
    L1_PRODUCT,
    PRODUCT,
    Scene,
    make_scene,
    stale_workdir,
    tiny_model,
    write_raster,
)
from s2l8h import harmonize, load_model
from s2l8h.cli import app
from s2l8h.errors import OutputError
from test_validation import run_bad, snapshot

runner = CliRunner()
CONFIG = Path(__file__).parents[1] / "configs" / "lite-virginia-sim.yaml"


def _temporaries(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.name.startswith(".")]


# -------------------------------------------------------------------- harmonize ----

@pytest.mark.parametrize("target", [f"{PRODUCT}_SR_B4.TIF", f"{L1_PRODUCT}_MTL.json",
                                    f"{PRODUCT}_QA_PIXEL.TIF"])
def test_output_onto_an_input_is_refused_even_with_overwrite(scene: Scene, tiny_release: Path,
                                                             target: str) -> None:
    run_bad(["harmonize", str(scene.folder), "-o", str(scene.folder / target), "--model",
             str(tiny_release), "--overwrite"],
            f"is one of this run's inputs ({target})", scene.folder)


def test_output_onto_the_like_raster_is_refused(scene: Scene, tmp_path: Path,
                                                tiny_release: Path) -> None:
    left, _, _, top = scene.bounds
    like = write_raster(tmp_path / "like.tif", np.zeros((30, 30), dtype=np.uint8),
                        Affine(10, 0, left, 0, -10, top))
    run_bad(["harmonize", str(scene.folder), "-o", str(like), "--like", str(like), "--model",
             str(tiny_release), "--overwrite"], "is one of this run's inputs (like.tif)",
            scene.folder, tmp_path)


def test_output_onto_a_device_or_a_link_is_refused(scene: Scene, tmp_path: Path,
                                                   tiny_release: Path) -> None:
    run_bad(["harmonize", str(scene.folder), "-o", os.devnull, "--model", str(tiny_release),
             "--overwrite"], "is not a regular file", scene.folder)
    precious = tmp_path / "precious.tif"
    precious.write_bytes(b"keep me")
    link = tmp_path / "link.tif"
    link.symlink_to(precious)
    run_bad(["harmonize", str(scene.folder), "-o", str(link), "--model", str(tiny_release),
             "--overwrite"], "is not a regular file", scene.folder, tmp_path)
    assert link.is_symlink() and precious.read_bytes() == b"keep me"


def test_huge_bounds_leave_no_temporary_folder(scene: Scene, tmp_path: Path) -> None:
    outdir = tmp_path / "o"
    outdir.mkdir()
    run_bad(["harmonize", str(scene.folder), "-o", str(outdir / "zone.tif"), "--bounds",
             "166000,0,834000,9330000"], "more than the limit", outdir)
    assert list(outdir.iterdir()) == []


def test_stale_temporary_folder_of_a_killed_run_is_removed(scene: Scene, tmp_path: Path,
                                                           tiny_release: Path) -> None:
    outdir = tmp_path / "o"
    stale, _ = stale_workdir(outdir)
    foreign = outdir / ".out.tif.abcdefgh"  # this output's, from a run on another host
    foreign.mkdir()
    (foreign / "s2l8h-owner.json").write_text(json.dumps({"pid": 1, "host": "elsewhere",
                                                          "output": "out.tif"}))
    # Another output's, from another host (another scene of a run on many hosts): kept and
    # not mentioned.
    neighbour = outdir / ".other.tif.abcdefgh"
    neighbour.mkdir()
    (neighbour / "s2l8h-owner.json").write_text(json.dumps({"pid": 1, "host": "elsewhere2",
                                                            "output": "other.tif"}))
    user_hidden = outdir / ".git"
    user_hidden.mkdir()
    result = runner.invoke(app, ["harmonize", str(scene.folder), "-o", str(outdir / "out.tif"),
                                 "--model", str(tiny_release), "-q"])
    assert result.exit_code == 0, result.output
    assert f"removed {stale}" in result.output and "interrupted" in result.output
    assert "on host elsewhere " in result.output and "elsewhere2" not in result.output
    assert not stale.exists() and foreign.exists() and user_hidden.exists()
    assert sorted(p.name for p in _temporaries(outdir)) == [".git", ".other.tif.abcdefgh",
                                                            ".out.tif.abcdefgh"]


def test_sigterm_and_sighup_clean_up_like_ctrl_c(scene: Scene, tmp_path: Path,
                                                 monkeypatch) -> None:
    from s2l8h.cli.app import terminate_cleanly
    from s2l8h.io import reader

    original = reader.SceneReader.read_strip
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        outdir = tmp_path / signum.name
        outdir.mkdir()
        calls = {"n": 0}

        def killed_mid_run(self, *args, signum=signum, calls=calls, self_outdir=outdir):
            # Killed at the first read of the run proper: the temporary COG exists by then
            # (reads before it measure the inputs).
            if _temporaries(self_outdir) and not calls["n"]:
                calls["n"] += 1
                assert len(_temporaries(self_outdir)) == 1
                os.kill(os.getpid(), signum)
            return original(self, *args)

        monkeypatch.setattr(reader.SceneReader, "read_strip", killed_mid_run)
        with terminate_cleanly(), pytest.raises(SystemExit) as caught:
            harmonize(scene.folder, outdir / "out.tif", models=[tiny_model()], tile=48,
                      overlap=12, progress=False)
        assert caught.value.code == 128 + signum and calls["n"] == 1
        assert list(outdir.iterdir()) == []
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers  # restored


def test_geographic_output_writes_a_valid_cog(scene: Scene, tmp_path: Path) -> None:
    model = [tiny_model(3)]
    utm = harmonize(scene.folder, tmp_path / "utm.tif", models=model, dtype="float32",
                    progress=False)
    result = harmonize(scene.folder, tmp_path / "wgs84.tif", models=model, crs="EPSG:4326",
                       dtype="float32", progress=False)
    with rasterio.open(result.path) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert dataset.crs.to_epsg() == 4326
        assert dataset.res[0] == pytest.approx(10 / 111_320)
        data = dataset.read()
        centre = dataset.index(*dataset.xy(dataset.height // 2, dataset.width // 2))
    assert (data[-1] == 1).mean() > 0.5
    with rasterio.open(utm.path) as dataset:
        reference = dataset.read(1)
    valid = data[-1] == 1
    assert abs(float(np.nanmean(data[0][valid])) - float(np.nanmean(reference))) < 0.005
    assert np.isfinite(data[0][centre])
    # A geographic raster inside the scene (11.79-11.81 E, 51.407-51.418 N) as --like.
    like = write_raster(tmp_path / "geo_like.tif", np.zeros((20, 20), dtype=np.uint8),
                        Affine(0.0002, 0, 11.795, 0, -0.0002, 51.416), crs=4326)
    from_like = harmonize(scene.folder, tmp_path / "like_out.tif", models=model, like=like,
                          progress=False)
    with rasterio.open(from_like.path) as dataset:
        assert dataset.crs.to_epsg() == 4326 and dataset.shape == (20, 20)
        assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert (dataset.read(dataset.count) == 1).all()


# --------------------------------------------------------------------- evaluate ----

def _prediction_and_reference(tmp_path: Path, scene: Scene) -> tuple[Path, Path]:
    prediction = harmonize(scene.folder, tmp_path / "pred.tif", models=[tiny_model()],
                           dtype="float32", progress=False).path
    with rasterio.open(prediction) as dataset:
        profile = dataset.profile | {"count": 6, "dtype": "float32", "nodata": None,
                                     "driver": "GTiff"}
        values = dataset.read(list(range(1, 7)))
    reference = tmp_path / "ref.tif"
    with rasterio.open(reference, "w", **profile) as out:
        reference_values = np.nan_to_num(values, nan=0.05) + 0.01
        reference_values[:, :6] += 0.05  # larger errors in the top border
        out.write(reference_values)
    return prediction, reference


def test_evaluate_reference_in_digital_numbers(scene: Scene, tmp_path: Path) -> None:
    prediction, reference = _prediction_and_reference(tmp_path, scene)
    with rasterio.open(reference) as dataset:
        profile, values = dataset.profile, dataset.read()
    dn = tmp_path / "ref_dn.tif"
    with rasterio.open(dn, "w", **(profile | {"dtype": "uint16"})) as out:
        out.write(np.rint(values * 10000).astype(np.uint16))
    run_bad(["evaluate", str(prediction), str(dn)], "is not a reflectance (0..1)", tmp_path)


def test_evaluate_prediction_on_another_grid(scene: Scene, tmp_path: Path) -> None:
    prediction, reference = _prediction_and_reference(tmp_path, scene)
    with rasterio.open(reference) as dataset:
        profile, values = dataset.profile, dataset.read()
    shifted = tmp_path / "ref_shifted.tif"
    transform = profile["transform"]
    with rasterio.open(shifted, "w", **(profile | {"transform": Affine(
            10, 0, transform.c + 20, 0, -10, transform.f)})) as out:
        out.write(values)
    with rasterio.open(prediction) as dataset:
        origin = dataset.transform.c
    # Both grids in full, the 20 m shift of origin visible (not hidden by %g rounding).
    rows, cols = values.shape[1:]
    run_bad(["evaluate", str(prediction), str(shifted)], "is on another grid than the "
            f"reference ({rows} x {cols} px of 10 x 10 in EPSG:32632, origin {origin:.2f}, "
            f"{transform.f:.2f} vs {rows} x {cols} px of 10 x 10 in EPSG:32632, origin "
            f"{origin + 20:.2f}", tmp_path)
    warped = runner.invoke(app, ["evaluate", str(prediction), str(shifted), "--warp"])
    assert warped.exit_code == 0, warped.output


def test_evaluate_json_into_a_missing_folder_and_zero_byte_reference(scene: Scene,
                                                                     tmp_path: Path) -> None:
    prediction, reference = _prediction_and_reference(tmp_path, scene)
    run_bad(["evaluate", str(prediction), str(reference), "--json",
             str(tmp_path / "nope" / "m.json")], "does not exist", tmp_path)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    run_bad(["evaluate", str(prediction), str(empty)], "empty.tif: not a readable raster",
            tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a mask\n")
    run_bad(["evaluate", str(prediction), str(reference), "--mask", str(notes)],
            "notes.txt: not a readable raster", tmp_path)
    run_bad(["evaluate", str(prediction), str(reference), "--json", str(prediction),
             "--overwrite"], "is one of this run's inputs", tmp_path)


def test_evaluate_margin_scores_the_benchmarks_pixels(scene: Scene, tmp_path: Path) -> None:
    from s2l8h.evaluate.benchmark import EDGE_MARGIN, evaluate_files, read_prediction
    from s2l8h.evaluate.metrics import image_metrics

    prediction, reference = _prediction_and_reference(tmp_path, scene)
    values, _, valid = read_prediction(prediction)
    target, _, _ = read_prediction(reference)
    inner = valid.copy()
    inner[:EDGE_MARGIN] = inner[-EDGE_MARGIN:] = False
    inner[:, :EDGE_MARGIN] = inner[:, -EDGE_MARGIN:] = False
    expected = image_metrics(values, target, inner)["overall"]["psnr"]
    got = evaluate_files(prediction, reference, margin=EDGE_MARGIN)["overall"]["psnr"]
    assert got == pytest.approx(expected, abs=1e-9)
    assert got != pytest.approx(evaluate_files(prediction, reference)["overall"]["psnr"],
                                abs=1e-6)
    table = runner.invoke(app, ["evaluate", str(prediction), str(reference), "--margin", "6"])
    assert table.exit_code == 0 and f"{got:.4f}" in table.output


def test_evaluate_on_a_scattered_mask_leaves_ssim_out(scene: Scene, tmp_path: Path) -> None:
    prediction, reference = _prediction_and_reference(tmp_path, scene)
    with rasterio.open(reference) as dataset:
        profile, shape = dataset.profile, dataset.shape
    mask = tmp_path / "checkerboard.tif"
    with rasterio.open(mask, "w", **(profile | {"count": 1, "dtype": "uint8",
                                                "nodata": None})) as out:
        out.write((np.indices(shape).sum(axis=0) % 2).astype(np.uint8)[None])
    result = runner.invoke(app, ["evaluate", str(prediction), str(reference), "--mask",
                                 str(mask), "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text(),
                         parse_constant=lambda constant: pytest.fail(f"JSON holds {constant}"))
    assert metrics["overall"]["ssim"] is None and metrics["B02"]["ssim"] is None
    assert metrics["overall"]["psnr"] > 10
    assert "–" in result.output


# ----------------------------------------------------------------- export/train ----

def test_export_never_replaces_a_users_folder(tmp_path: Path) -> None:
    from s2l8h import save_pretrained

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    import torch

    checkpoint = tmp_path / "best.ckpt"
    torch.save({"state_dict": tiny_model().state_dict()}, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:2000])  # a corrupt (truncated) checkpoint
    for output, overwrite in ((folder, []), (folder, ["--overwrite"])):
        run_bad(["export", str(checkpoint), "--config", str(CONFIG), "-o", str(output),
                 *overwrite], "holds files that are not an s2l8h release (README.md)",
                tmp_path)
    with pytest.raises(OutputError, match="not an s2l8h release"):
        save_pretrained(tiny_model(), folder, overwrite=True)
    assert (folder / "README.md").read_text() == "my notes"
    run_bad(["export", str(checkpoint), "--config", str(CONFIG), "-o", str(tmp_path / "new")],
            "best.ckpt: not a readable PyTorch weights file", tmp_path)
    assert not (tmp_path / "new").exists()


def test_train_export_into_an_existing_release_needs_overwrite(tmp_path: Path,
                                                              tiny_release: Path) -> None:
    run_bad(["train", "--config", str(CONFIG), "--export", str(tiny_release)],
            "holds a release already; pass --overwrite", tmp_path)


# ------------------------------------------------------------------- papercuts ----

def test_demo_twice_in_a_row_passes(tmp_path: Path) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "-q"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["harmonized.tif",
                                                                     "quicklook.png"]


def test_quicklook_explains_flagged_pixels(tmp_path: Path) -> None:
    from PIL import Image

    from s2l8h.io.landsat import open_scene
    from s2l8h.io.quicklook import FLAGGED_COLOUR, is_own_quicklook, write_quicklook

    scene = make_scene(tmp_path / "s", cloud_box=(10, 30, 10, 30))
    cog = harmonize(scene.folder, tmp_path / "o.tif", models=[tiny_model()], progress=False)
    png = write_quicklook(open_scene(scene.folder), cog.path, tmp_path / "q.png")
    assert is_own_quicklook(png)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    magenta = tuple(int(255 * c) for c in FLAGGED_COLOUR[:3])
    assert (pixels == magenta).all(axis=-1).sum() > 100  # the cloud, and the legend patch
    (tmp_path / "other.png").write_bytes(png.read_bytes()[:8])
    assert not is_own_quicklook(tmp_path / "other.png")


def test_cli_warnings_exclude_dependency_deprecations(scene: Scene, tmp_path: Path,
                                                      tiny_release: Path) -> None:
    result = runner.invoke(app, ["harmonize", str(scene.folder), "-o", str(tmp_path / "o.tif"),
                                 "--model", str(tiny_release), "-q"])
    assert result.exit_code == 0, result.output
    assert "matmul" not in result.output and "Deprecat" not in result.output
    # What remains are s2l8h's own checks of this scene (a random model on a random scene is
    # rightly reported inconsistent with its input), each naming the scene.
    warnings_shown = [line for line in result.output.splitlines()
                      if line.startswith("warning:")]
    assert all(line.startswith(f"warning: {PRODUCT}: ") for line in warnings_shown)


def test_deprecation_notices_named_as_user_warnings_are_not_shown(capsys) -> None:
    """Some dependencies give deprecation notices as ``UserWarning`` subclasses (shapely's
    ``ShapelyDeprecationWarning``): not for our users; our own warnings are shown once."""
    import warnings

    from s2l8h.cli.harmonize import show_warnings

    class ShapelyDeprecationWarning(UserWarning):
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("The 'shapely.ops.transform()' function is deprecated",
                      ShapelyDeprecationWarning, stacklevel=1)
        for _ in range(2):
            warnings.warn("TOA mode: ...", UserWarning, stacklevel=1)
    show_warnings(caught)
    shown = capsys.readouterr().err.splitlines()
    assert shown == ["warning: TOA mode: ..."]


def test_tables_are_not_truncated_when_piped() -> None:
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for text in ("venkatesh-thiru/s2l8h-UNet-6depth-shuffle", "226,334,497", "0.043 M"):
        assert text in result.output
    as_json = runner.invoke(app, ["models", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(as_json.output)}
    assert rows["unet6-shuffle"]["parameters"] == 226_334_497
    assert rows["lite"]["bundled"] == "lite-virginia-sim"


def test_models_info_lite_shows_the_fitted_variance_scale() -> None:
    from s2l8h.models.registry import bundled_weights, get_spec

    fitted = json.loads((Path(bundled_weights(get_spec("lite"))) / "config.json").read_text())
    scale = fitted["config"]["variance_scale"]
    assert scale != 1.0
    result = runner.invoke(app, ["models", "info", "lite"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and f"variance_scale={scale}" in result.output
    assert load_model("lite").config.variance_scale == pytest.approx(scale)


def test_loaded_models_are_in_eval_mode(tiny_release: Path) -> None:
    for model in (load_model("lite"), load_model(tiny_release)):
        assert not model.training
        assert not any(module.training for module in model.modules())


def test_result_open_has_named_bands_and_toa_bands_are_not_surface_reflectance(
        tmp_path: Path) -> None:
    import shutil

    from conftest import FLORIDA

    shutil.copytree(FLORIDA, tmp_path / "fl")
    with pytest.warns(UserWarning, match="TOA mode"):
        result = harmonize(tmp_path / "fl", tmp_path / "toa.tif", models=["lite"], toa=True,
                           progress=False)
    # The warning is kept for the result once (harmonize-many's manifest), and the trust
    # report of the product gives it again (s2l8h qa, a season's table).
    from s2l8h.evaluate.qa import read_report, report_messages
    from s2l8h.io.landsat import TOA_MODE_MESSAGE

    assert [m for m in result.extra["warnings"] if "TOA mode" in m] == [TOA_MODE_MESSAGE]
    report = read_report(result.path)
    assert report["level"] == "L1 TOA reflectance (TOA mode)"
    assert report_messages(report)[0] == TOA_MODE_MESSAGE
    image = result.open()
    assert list(image.band.values) == ["B02", "B03", "B04", "B8A", "B11", "B12", "B02_std",
                                       "B03_std", "B04_std", "B8A_std", "B11_std", "B12_std",
                                       "mask"]
    assert float(image.sel(band="mask").max()) in (1, 2)
    with rasterio.open(result.path) as dataset:
        quantity = dataset.tags(1)["QUANTITY"]
    assert "surface reflectance" not in quantity.replace("not surface reflectance", "")
    assert "TOA" in quantity


def test_dtype_help_states_the_encoding() -> None:
    result = runner.invoke(app, ["harmonize", "--help"], env={"COLUMNS": "200"})
    assert "(reflectance + 0.1) x 10000" in " ".join(result.output.split())


def test_report_sigma_colours_ignore_outliers() -> None:
    from s2l8h.evaluate.report import sigma_colour_range

    sigma = np.full(10_000, 0.01)
    sigma[:5000] = np.linspace(0.005, 0.02, 5000)
    sigma[:20] = 0.7  # a few pixels with a huge σ
    low, high = sigma_colour_range(sigma)
    assert low == pytest.approx(np.percentile(sigma, 1)) and high < 0.03


def test_quiet_training_silences_lightning_info() -> None:
    import logging

    from s2l8h.cli.train import _quiet_lightning

    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    before = {name: logging.getLogger(name).level for name in ("lightning.pytorch",
                                                               "lightning.fabric")}
    try:
        _quiet_lightning()
        assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


# ------------------------------------------------------------------------- hub ----

@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_hub_offline_message_is_fast_and_current(tmp_path: Path, hub_offline: None) -> None:
    from s2l8h.models import ModelLoadError

    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_model("owner/not-cached", cache_dir=tmp_path)
    assert time.perf_counter() - started < 2
    message = str(caught.value)
    assert "hf download owner/not-cached" in message and "HF_HUB_OFFLINE" in message
    assert "not in the repository" not in message


def test_hub_unreachable_does_not_retry(tmp_path: Path, monkeypatch) -> None:
    import socket

    import huggingface_hub

    from s2l8h.models import ModelLoadError

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    online_calls = []
    real_download = huggingface_hub.hf_hub_download

    def counting(*args, local_files_only: bool = False, **kwargs):
        if not local_files_only:
            online_calls.append(args)
        return real_download(*args, local_files_only=local_files_only, **kwargs)

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", counting)
    with pytest.raises(ModelLoadError, match=r"the hub is offline: huggingface\.co cannot be "
                                             r"reached"):
        load_model("owner/not-cached", cache_dir=tmp_path)
    assert online_calls == []


def test_hub_gated_repository_says_how_to_get_access(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

    from s2l8h.models import ModelLoadError, loading

    def gated(repo_id, filename, local_files_only: bool = False, **kwargs):
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        # The hub's answer to a gated repository without access (its constructor's
        # arguments differ between huggingface_hub versions, so it is built bare).
        error = GatedRepoError.__new__(GatedRepoError)
        Exception.__init__(error, "401 Client Error: access to this model is restricted")
        raise error

    monkeypatch.setattr(loading, "_hub_reachable", lambda timeout=5.0: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(ModelLoadError, match=r"repository is gated: accept its terms on "
                                             r"https://huggingface\.co/owner/gated"):
        load_model("owner/gated", cache_dir=tmp_path)


def test_snapshot_helper_sees_hidden_files(tmp_path: Path) -> None:
    (tmp_path / ".hidden").write_text("x")
    assert str(tmp_path / ".hidden") in snapshot(tmp_path)


@pytest.mark.parametrize("command", ["harmonize", "evaluate", "benchmark", "train", "export",
                                     "demo", "search", "pairs", "build-dataset",
                                     "simulate-dataset"])
def test_help_is_not_truncated_at_80_columns(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "…" not in result.output, result.output
