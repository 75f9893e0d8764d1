"""Patch datasets, losses, configuration, training, resume and export."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from lightning.pytorch.callbacks import Callback
from skimage.metrics import structural_similarity
from torch.utils.data import default_collate

from s2l8h import load_model
from s2l8h.data.build import build_simulated_dataset
from s2l8h.data.patches import PatchDataset, QualityFilter, dihedral, read_table
from s2l8h.models import get_spec, macs_per_output_pixel
from s2l8h.train import losses
from s2l8h.train.config import ConfigError, load_config
from s2l8h.train.module import HarmonizerModule
from s2l8h.train.run import export, model_from_checkpoint, train

VIRGINIA = Path(__file__).parents[1] / "data" / "s2_l1c_virginia_north"
CONFIG = Path(__file__).parents[1] / "configs" / "lite-virginia-sim.yaml"


@pytest.fixture(scope="module")
def sentinel2_crop(tmp_path_factory) -> Path:
    """A 240 x 240 px (10 m) crop of the Virginia scene as per-band files."""
    folder = tmp_path_factory.mktemp("s2crop")
    left, top = 438730.0, 4177460.0
    for band in ("B02", "B03", "B04", "B8A", "B11", "B12"):
        with rasterio.open(VIRGINIA / f"S2_L1C_virginia_north_{band}.tif") as source:
            resolution = source.res[0]
            window = rasterio.windows.from_bounds(left, top - 2400, left + 2400, top,
                                                  source.transform)
            data = source.read(1, window=window.round_offsets().round_lengths())
            profile = {**source.profile, "width": data.shape[1], "height": data.shape[0],
                       "transform": Affine(resolution, 0, left, 0, -resolution, top)}
        with rasterio.open(folder / f"crop_{band}.tif", "w", **profile) as target:
            target.write(data, 1)
    return folder


@pytest.fixture(scope="module")
def dataset(sentinel2_crop, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("patches")
    build_simulated_dataset(sentinel2_crop, folder, size=16, stride=8,
                            fractions=(0.5, 0.25, 0.25), overwrite=True)
    return folder


def test_dataset_round_trip_and_disjoint_splits(dataset: Path) -> None:
    rows = read_table(dataset)
    assert {row["pair_type"] for row in rows} == {"Train", "Validation", "Test"}
    assert list(rows[0])[:8] == ["patch_id", "pair_path", "location", "date", "geometry",
                                 "ssim", "psnr", "pair_type"]
    train_set = PatchDataset(dataset, "Train")
    sample = train_set[0]
    l8, pan, s2 = sample["image"], sample["pan"], sample["target"]
    assert l8.shape == (6, 16, 16) and pan.shape == (1, 32, 32) and s2.shape == (6, 48, 48)
    import h5py

    with h5py.File(next((dataset / "patches" / "Train").rglob("*.h5")), "r") as handle:
        assert set(handle) == {"s2_image", "l8_image", "l8_pan"}
    extents = {split: [] for split in ("Train", "Validation", "Test")}
    for row in rows:
        _left, bottom, _right, top = (float(v) for v in row["bounds"].split(","))
        extents[row["pair_type"]].append((bottom, top))
    assert min(b for b, _ in extents["Train"]) >= max(t for _, t in extents["Validation"])
    assert min(b for b, _ in extents["Validation"]) >= max(t for _, t in extents["Test"])
    # Patch quality is the SSIM/PSNR of bicubic x3 Landsat against Sentinel-2.
    row = train_set.rows[0]
    upsampled = F.interpolate(l8[None], scale_factor=3, mode="bicubic",
                              align_corners=False)[0].numpy()
    expected = np.mean([structural_similarity(s2[b].numpy().astype(np.float64),
                                              upsampled[b].astype(np.float64),
                                              data_range=1.0, win_size=7) for b in range(6)])
    assert float(row["ssim"]) == pytest.approx(expected, abs=1e-6)


def test_quality_filter(dataset: Path) -> None:
    everything = PatchDataset(dataset, "Train", quality=QualityFilter(0.0, 0.0))
    ssims = sorted(float(row["ssim"]) for row in everything.rows)
    threshold = ssims[len(ssims) // 2]
    strict = PatchDataset(dataset, "Train", quality=QualityFilter(threshold, 0.0))
    assert 0 < len(strict) < len(everything)
    assert all(float(row["ssim"]) >= threshold for row in strict.rows)
    psnr_strict = PatchDataset(dataset, "Train", quality=QualityFilter(0.0, 99.0))
    assert len(psnr_strict) == 0


def test_augmentation_is_consistent_across_inputs() -> None:
    l8 = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4)
    pan = torch.kron(l8[:1], torch.ones(2, 2))
    s2 = torch.kron(l8, torch.ones(3, 3))
    for rotations in range(4):
        for flip in (False, True):
            a, b, c = (dihedral(t, rotations, flip).contiguous() for t in (l8, pan, s2))
            assert torch.equal(b, torch.kron(a[:1], torch.ones(2, 2)))
            assert torch.equal(c, torch.kron(a, torch.ones(3, 3)))


def test_losses_hand_computed() -> None:
    prediction = torch.tensor([[[[0.1, 0.4], [0.3, 0.2]]]])
    target = torch.tensor([[[[0.2, 0.2], [0.3, 0.0]]]])
    assert float(losses.l1(prediction, target)) == pytest.approx((0.1 + 0.2 + 0 + 0.2) / 4)
    assert float(losses.mse(prediction, target)) == pytest.approx((0.01 + 0.04 + 0.04) / 4)
    variance = torch.full_like(prediction, 0.04)
    expected = np.mean([0.5 * (math.log(0.04) + d**2 / 0.04) for d in (0.1, 0.2, 0.0, 0.2)])
    assert float(losses.gaussian_nll(prediction, target, variance)) == pytest.approx(
        expected, abs=1e-6)
    b = math.sqrt(0.02)
    expected_abs = np.mean([math.log(2 * b) + d / b for d in (0.1, 0.2, 0.0, 0.2)])
    assert float(losses.gaussian_nll(prediction, target, variance, "absolute")) == \
        pytest.approx(expected_abs, abs=1e-6)
    # Sobel gradients of a 3 x 3 ramp: x-gradient 8 per unit step, y-gradient 0.
    ramp = torch.tensor([[[[0.0, 1.0, 2.0]] * 3]])
    flat = torch.zeros_like(ramp)
    assert float(losses.gradient(ramp, flat)) == pytest.approx(64.0)
    assert float(losses.mixed_gradient(ramp, flat)) == pytest.approx(
        float(losses.mse(ramp, flat)) + 6.4)
    detached = prediction.clone().requires_grad_(True)
    log_variance = torch.zeros_like(prediction, requires_grad=True)
    term = losses.WeightedLoss([losses.LossTerm("gaussian_nll", detach_mean=True)])
    term(detached, target, log_variance.exp() * 0.04).backward()
    assert detached.grad is None and float(log_variance.grad.abs().sum()) > 0
    weighted = losses.WeightedLoss([losses.LossTerm("l1", 2.0), losses.LossTerm("mse", 3.0)])
    assert float(weighted(prediction, target)) == pytest.approx(
        2 * 0.125 + 3 * 0.0225, abs=1e-7)


def test_ssim_loss_matches_scikit_image() -> None:
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 0.5, (20, 24))
    prediction = target + rng.normal(0, 0.05, target.shape)
    expected = structural_similarity(target, prediction, data_range=1.0, win_size=7)
    got = losses.ssim_index(torch.from_numpy(prediction)[None, None],
                            torch.from_numpy(target)[None, None])
    assert float(got) == pytest.approx(expected, abs=1e-6)
    assert float(losses.ssim(torch.from_numpy(prediction)[None, None],
                             torch.from_numpy(target)[None, None])) == pytest.approx(
        1 - expected, abs=1e-6)


def test_config_validation_errors(tmp_path: Path) -> None:
    config = load_config(CONFIG, ["trainer.max_epochs=3", "optimizer.lr=2e-4"])
    assert config.trainer.max_epochs == 3 and config.optimizer.lr == 2e-4
    assert config.loss[0].name == "l1"
    assert config.loss[1].name == "gaussian_nll" and config.loss[1].detach_mean
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epochs'\]"):
        load_config(CONFIG, ["trainer.epochs=3"])
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs: expected int"):
        load_config(CONFIG, ["trainer.max_epochs=many"])
    with pytest.raises(ConfigError, match="unknown loss 'l3'"):
        load_config(CONFIG, ["loss=[{name: l3}]"])
    # Values the trainer would fail on with a traceback (or run nothing with) are named, with
    # the --set that gave them.
    for override, message in (("optimizer.lr=-1", "optimizer: lr must be 0 or more, got -1"),
                              ("data.batch_size=0", "data: batch_size must be 1 or more"),
                              ("trainer.max_epochs=0", "trainer: max_epochs must be 1 or more"),
                              ("trainer.patience=-2", "trainer: patience must be 0 or more")):
        with pytest.raises(ConfigError) as caught:
            load_config(CONFIG, [override])
        assert str(caught.value).startswith(f"{CONFIG} with --set {override}: {message}")
    top = tmp_path / "top.yaml"
    top.write_text("epochs: 3\n")
    with pytest.raises(ConfigError, match=r"^[^:]*top\.yaml: unknown key\(s\) \['epochs'\]"):
        load_config(top)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: lite}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: .*data\.dataset is required"):
        load_config(bad)
    # A key given twice is an error, not the last one silently winning.
    twice = tmp_path / "twice.yaml"
    twice.write_text("data:\n  degradation_overrides: {psf_scale: [0.55, 1.45]}\n"
                     "  degradation_overrides: {shift_ms_m: 3.0}\nmodel: {name: lite}\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml: cannot read .*'degradation_overrides'"
                       r" is given twice"):
        load_config(twice)


def _tiny_config(dataset: Path, output: Path, epochs: int = 1):
    return load_config(CONFIG, [
        f"data.dataset={dataset}", f"output.dir={output}", f"trainer.max_epochs={epochs}",
        "model.overrides={width: 8, blocks: 1}", "data.batch_size=8", "data.min_ssim=0",
        "data.min_psnr=0", "trainer.log_every_n_steps=1"])


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_training_steps_reduce_loss_on_a_fixed_batch(dataset: Path, tmp_path: Path) -> None:
    from s2l8h.train.run import build_module

    torch.manual_seed(0)
    config = _tiny_config(dataset, tmp_path / "run")
    config.loss = [losses.LossTerm("l1")]
    module = build_module(config)
    items = [PatchDataset(dataset, "Train", quality=QualityFilter(0, 0))[i] for i in range(8)]
    batch = default_collate(items)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        optimizer.zero_grad()
        loss = module.training_step(batch, 0)
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < 0.95 * first  # measured 0.89


class _OptimizerAtStart(Callback):
    def __init__(self) -> None:
        self.state = None

    def on_train_start(self, trainer, module) -> None:
        self.state = copy.deepcopy(trainer.optimizers[0].state_dict())  # not live tensors


def test_resume_restores_optimizer_state_exactly(dataset: Path, tmp_path: Path) -> None:
    config = _tiny_config(dataset, tmp_path / "run", epochs=1)
    first = train(config, progress=False)
    saved = torch.load(first.last_checkpoint, map_location="cpu", weights_only=True)
    with pytest.raises(FileExistsError, match="resume it"):
        train(config, progress=False)
    probe = _OptimizerAtStart()
    config.trainer.max_epochs = 2
    from s2l8h.errors import S2L8HWarning

    with pytest.warns(S2L8HWarning, match=r"resumed with a changed configuration: "
                                          r"trainer\.max_epochs 1 -> 2$"):
        second = train(config, resume=True, callbacks=[probe], progress=False)
    sessions = json.loads((tmp_path / "run" / "sessions.json").read_text())
    assert [entry["resumed_from"] for entry in sessions] == [None, str(first.last_checkpoint)]
    assert sessions[1]["config_changes"] == {"trainer.max_epochs": [1, 2]}
    restored, expected = probe.state["state"], saved["optimizer_states"][0]["state"]
    assert restored.keys() == expected.keys() and len(restored) > 0
    for key in expected:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(restored[key][name], expected[key][name])
        assert float(restored[key]["step"]) == float(expected[key]["step"])
    resumed = torch.load(second.last_checkpoint, map_location="cpu", weights_only=True)
    assert resumed["epoch"] == 1 and saved["epoch"] == 0
    # The exported card says the run was resumed, and what changed.
    card = (export(config, second.last_checkpoint, tmp_path / "release") / "README.md")
    text = card.read_text()
    assert "Trained in 2 sessions: resumed 1 time(s) with `--resume`" in text
    assert "configuration changed: trainer.max_epochs 1 → 2" in text


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_a_loss_that_is_not_finite_stops_training(dataset: Path, tmp_path: Path) -> None:
    """NaN in a batch stops training with the project's error (the CLI's one-line message),
    where Lightning would go on and write NaN weights; such weights are refused on loading."""
    from s2l8h.errors import ModelLoadError, TrainingError
    from s2l8h.models.loading import load_state_dict_strict
    from s2l8h.train.run import build_module

    module = build_module(_tiny_config(dataset, tmp_path / "run"))
    items = [PatchDataset(dataset, "Train", quality=QualityFilter(0, 0))[i] for i in range(2)]
    batch = default_collate(items)
    assert torch.isfinite(module.training_step(batch, 0))
    batch["image"][0, :, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match=r"the training loss is nan at epoch 0, step 0: "
                                            r"the patches hold NaN"):
        module.training_step(batch, 0)
    state = {key: value.clone() for key, value in module.model.network.state_dict().items()}
    key = next(name for name, value in state.items() if value.is_floating_point())
    state[key][...] = float("nan")
    with pytest.raises(ModelLoadError, match=rf"best\.ckpt: 1 of {len(state)} weight tensors "
                                             rf"hold NaN or infinite values \({key}\)"):
        load_state_dict_strict(module.model.network, state, "best.ckpt")


class _ExitInSecondEpoch(Callback):
    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == 1:
            raise SystemExit(143)  # as s2l8h's SIGTERM handler exits


class _CtrlCInSecondEpoch(Callback):
    def on_train_epoch_start(self, trainer, module) -> None:
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt


def test_an_interrupted_run_says_how_to_resume(dataset: Path, tmp_path: Path) -> None:
    """Ctrl-C (Lightning shuts down and exits with 1) becomes the project's error naming the
    last checkpoint and --resume; another exit (a termination signal's 143) keeps its code."""
    from s2l8h.errors import TrainingError

    config = _tiny_config(dataset, tmp_path / "run", epochs=3)
    with pytest.raises(TrainingError, match=r"interrupted in epoch 1: .*last\.ckpt holds the "
                                            r"last finished epoch; continue with --resume"):
        train(config, callbacks=[_CtrlCInSecondEpoch()], progress=False)
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu",
                       weights_only=True)
    assert saved["epoch"] == 0
    config = _tiny_config(dataset, tmp_path / "terminated", epochs=3)
    with pytest.raises(SystemExit) as caught:
        train(config, callbacks=[_ExitInSecondEpoch()], progress=False)
    assert caught.value.code == 143


def test_last_checkpoint_is_the_last_epoch_even_when_validation_does_not_improve(
        dataset: Path, tmp_path: Path) -> None:
    # With no learning, the second epoch's validation loss equals the first's: no new best.
    config = load_config(CONFIG, [
        f"data.dataset={dataset}", f"output.dir={tmp_path / 'run'}", "trainer.max_epochs=2",
        "model.overrides={width: 8, blocks: 1}", "data.batch_size=8", "data.min_ssim=0",
        "data.min_psnr=0", "optimizer.lr=0.0", "scheduler.name=none"])
    result = train(config, progress=False)
    last = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    best = torch.load(result.best_checkpoint, map_location="cpu", weights_only=True)
    assert best["epoch"] == 0
    assert last["epoch"] == 1 and last["global_step"] == 2 * best["global_step"]


def test_export_then_load_model_gives_identical_outputs(dataset: Path, tmp_path: Path) -> None:
    config = _tiny_config(dataset, tmp_path / "run")
    result = train(config, progress=False)
    folder = export(config, result.best_checkpoint, tmp_path / "release",
                    card={"command": "s2l8h train ..."})
    trained = model_from_checkpoint(config, result.best_checkpoint)
    loaded = load_model(folder)
    assert loaded.architecture == "lite" and loaded.convention.input_grid == "native"
    assert (folder / "README.md").read_text().count("coverage_68") == 2
    sample = PatchDataset(dataset, "Test", quality=QualityFilter(0, 0))[0]
    l8, pan = sample["image"], sample["pan"]
    with torch.no_grad():
        mean_trained, variance_trained = trained(l8[None], pan[None])
        mean_loaded, variance_loaded = loaded(l8[None], pan[None])
    assert torch.equal(mean_trained, mean_loaded)
    scale = loaded.config.variance_scale
    torch.testing.assert_close(variance_loaded, variance_trained * scale, rtol=1e-6, atol=0)
    # The calibrated factor makes the central 68 % interval cover 68 % of validation pixels.
    from s2l8h.train.run import predict_split

    mean, variance, target = predict_split(loaded, dataset, "Validation")
    coverage = np.mean(np.abs(mean - target) <= 0.9945 * np.sqrt(variance))
    assert coverage == pytest.approx(0.68, abs=0.01)
    # The checkpoint describes its model: it exports, and loads, without the configuration.
    from typer.testing import CliRunner

    from s2l8h.cli import app

    runner = CliRunner()
    import warnings

    from s2l8h.errors import S2L8HWarning

    with warnings.catch_warnings():  # its card says uncalibrated: no warning besides
        warnings.simplefilter("error", S2L8HWarning)
        result_cli = runner.invoke(app, ["export", str(result.best_checkpoint), "-o",
                                         str(tmp_path / "alone")])
    assert result_cli.exit_code == 0, result_cli.output
    alone, from_checkpoint = load_model(tmp_path / "alone"), load_model(result.best_checkpoint)
    assert "not calibrated" in (tmp_path / "alone" / "README.md").read_text()
    for model in (alone, from_checkpoint):
        assert model.architecture == "lite" and model.config == trained.config
        with torch.no_grad():
            mean_alone, variance_alone = model(l8[None], pan[None])
        assert torch.equal(mean_alone, mean_trained)
        assert torch.equal(variance_alone, variance_trained)
    refused = runner.invoke(app, ["export", str(result.best_checkpoint), "-o",
                                  str(tmp_path / "refused"), "--calibrate"])
    assert refused.exit_code == 2 and "need --config" in refused.output
    # With the run's configuration, the card says how to reproduce the release: the training
    # run (with the same --set overrides), then the export.
    import yaml

    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(config.to_dict()))
    with_config = runner.invoke(app, ["export", str(result.best_checkpoint), "--config",
                                      str(config_file), "--set", "trainer.seed=3", "-o",
                                      str(tmp_path / "with-config")])
    assert with_config.exit_code == 0, with_config.output
    card = (tmp_path / "with-config" / "README.md").read_text()
    reproduce = card.split("## Reproduce", 1)[1]
    assert f"s2l8h train --config {config_file} --set trainer.seed=3\n" in reproduce
    assert f"s2l8h export {result.best_checkpoint} --config {config_file}" in reproduce


def test_lite_is_at_least_nine_times_cheaper() -> None:
    lite, unet = get_spec("lite"), get_spec("unet5-upsample")
    ratio = macs_per_output_pixel(unet.architecture, unet.config, unet.convention) / \
        macs_per_output_pixel(lite.architecture, lite.config, lite.convention)
    assert ratio >= 9


def test_lightning_module_rejects_nll_without_head() -> None:
    from s2l8h import create_model
    from s2l8h.train.config import OptimizerConfig, SchedulerConfig

    with pytest.raises(ValueError, match="variance head"):
        HarmonizerModule(create_model("lite", variance_head=False),
                         [losses.LossTerm("gaussian_nll")], OptimizerConfig(),
                         SchedulerConfig())


def test_lightning_module_can_train_on_denoised_inputs() -> None:
    # model.denoise_input: the networks see what harmonize's input noise filter feeds them.
    from s2l8h import create_model
    from s2l8h.inference.denoise import filter_bands, filter_pan
    from s2l8h.train.config import OptimizerConfig, SchedulerConfig
    from s2l8h.train.run import build_module

    torch.manual_seed(0)
    model = create_model("lite", width=8, blocks=1)
    plain = HarmonizerModule(model, [losses.LossTerm("l1")], OptimizerConfig(),
                             SchedulerConfig())
    denoised = HarmonizerModule(model, [losses.LossTerm("l1")], OptimizerConfig(),
                                SchedulerConfig(), denoise_input=True)
    generator = torch.Generator().manual_seed(3)
    # Patches large enough for the filter's own noise estimate (MIN_NOISE_MODEL_SIDE).
    bands = 0.2 + 0.003 * torch.randn((2, 6, 42, 42), generator=generator)
    pan = 0.2 + 0.003 * torch.randn((2, 1, 84, 84), generator=generator)
    with torch.no_grad():
        expected = model(filter_bands(bands), filter_pan(pan))
        got = denoised(bands, pan)
        unfiltered = plain(bands, pan)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert not torch.allclose(got[0], unfiltered[0])
    # The configuration's switch reaches the module.
    config = load_config(CONFIG, ["model.denoise_input=true", "model.overrides={width: 8}"])
    assert build_module(config).denoise_input and not build_module(
        load_config(CONFIG, ["model.overrides={width: 8}"])).denoise_input


def test_patch_table_is_csv(dataset: Path) -> None:
    with (dataset / "patches.csv").open() as handle:
        header = next(csv.reader(handle))
    assert "valid_fraction" in header and "geometry" in header


def test_simulated_dataset_refuses_empty_splits_and_replaces_its_patches(
        sentinel2_crop: Path, tmp_path: Path) -> None:
    """Splits too small for a patch are refused before anything is written; ``overwrite``
    leaves only the new dataset's patches; a dataset whose Train and Validation patches all
    fail the quality filter is written with a warning."""
    from s2l8h.errors import OptionError, S2L8HWarning

    # 80 rows of 30 m: Validation (10 %) is 8 rows, less than a 32 px patch.
    with pytest.raises(OptionError, match=r"Validation \(8 rows\) hold no patch of --size 32"):
        build_simulated_dataset(sentinel2_crop, tmp_path / "small", size=32)
    assert not (tmp_path / "small").exists()
    folder = tmp_path / "data"
    build_simulated_dataset(sentinel2_crop, folder, size=16, stride=8,
                            fractions=(0.5, 0.25, 0.25))
    first = sorted(folder.rglob("*.h5"))
    build_simulated_dataset(sentinel2_crop, folder, size=20, stride=20,
                            fractions=(0.5, 0.25, 0.25), overwrite=True)
    rows = read_table(folder)
    kept = sorted(folder.rglob("*.h5"))
    assert len(kept) == len(rows) < len(first)
    assert {path.stem for path in kept} == {row["patch_id"] for row in rows}
    # Replacing removes only patch files under the dataset's patches/ folder, whatever its
    # table says (a hand-edited table naming a file outside, a row without its columns).
    from s2l8h.data.build import _earlier_patches
    from s2l8h.data.patches import write_table

    outside = tmp_path / "outside.h5"
    outside.write_bytes(b"keep")
    write_table(folder, [*rows[:1], {**rows[0], "patch_id": "../../../../outside"},
                         {**rows[0], "pair_type": ""}])
    assert _earlier_patches(folder) == [folder / "patches" / rows[0]["pair_type"]
                                        / rows[0]["scene_landsat"] / f"{rows[0]['patch_id']}.h5"]
    build_simulated_dataset(sentinel2_crop, folder, size=20, stride=20,
                            fractions=(0.5, 0.25, 0.25), overwrite=True)
    assert outside.read_bytes() == b"keep" and len(list(folder.rglob("*.h5"))) == len(rows)
    with pytest.warns(S2L8HWarning, match="no Train and no Validation patch passes the "
                                          "quality filter"):
        counts = build_simulated_dataset(sentinel2_crop, tmp_path / "noisy", size=16,
                                         stride=8, fractions=(0.5, 0.25, 0.25), noise_std=0.3)
    assert counts["Train"] == counts["Validation"] == 0
