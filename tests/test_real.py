"""Reduced-resolution (Wald) training pairs from real Landsat, masked losses, mixed training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from conftest import tiny_mixed_training
from s2l8h import load_model
from s2l8h.bandpass import oli_to_msi
from s2l8h.data.real import RealSource, RealWaldPairs, read_real_scene
from s2l8h.errors import ConfigError
from s2l8h.models.registry import get_spec
from s2l8h.train.config import load_config
from s2l8h.train.losses import LossTerm, WeightedLoss

ROOT = Path(__file__).parents[1]
FLORIDA_CROP = ROOT / "src" / "s2l8h" / "examples" / "florida_crop"
CONFIG = ROOT / "configs" / "lite2-real-wald.yaml"
CONVENTION = get_spec("lite2").convention
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # TOA mode warnings


@pytest.fixture(scope="module")
def source() -> RealSource:
    return RealSource(str(FLORIDA_CROP), toa=True, fractions=(0.5, 0.25, 0.25),
                      radiometry="L1T TOA", source="bundled crop")


def test_real_pairs_are_the_scene_degraded_with_its_own_bands_as_target(source) -> None:
    real = read_real_scene(FLORIDA_CROP, toa=True, convention=CONVENTION)
    pairs = RealWaldPairs([source], "Validation", size=8, length=6, fixed=True, seed=1,
                          augment=False, convention=CONVENTION)
    sample = pairs[2]
    assert sample["image"].shape == (6, 8, 8) and sample["pan"].shape == (1, 16, 16)
    assert sample["target"].shape == (6, 24, 24) and sample["valid"].shape == (1, 24, 24)
    assert sample["crs"] == "EPSG:32616" and np.isnan(sample["noise_scale"])
    left, bottom, right, top = sample["bounds"]
    assert (right - left, top - bottom) == (720, 720)
    # The target is the real 30 m window at those bounds, in Sentinel-2 radiometry.
    affine = real.grid30.affine
    row, col = round((affine.f - top) / 30), round((left - affine.c) / 30)
    window = real.bands[:, row:row + 24, col:col + 24]
    np.testing.assert_allclose(sample["target"].numpy(), oli_to_msi(window), atol=1e-6)
    # Validation rows are rows 72-108 of the 144 (whole 90 m pixels: 72-108).
    assert row >= 72 and row + 24 <= 108
    # The input is the target degraded 3 x: close to its 3 x 3 means (PSF aside).
    coarse = torch.from_numpy(window).reshape(6, 8, 3, 8, 3).mean(dim=(2, 4))
    assert float((sample["image"] - coarse).abs().mean()) < 0.01
    assert float((sample["image"] - coarse).abs().mean()) > 1e-4  # the PSF blurs
    # Clear pixels only: the mask is the scene's scoring mask on the window.
    np.testing.assert_array_equal(sample["valid"][0].numpy(),
                                  real.scored[row:row + 24, col:col + 24])
    assert torch.equal(pairs[2]["image"], sample["image"])  # fixed draws repeat


def test_real_pairs_augment_all_tensors_alike(source) -> None:
    from s2l8h.data.patches import dihedral

    plain = RealWaldPairs([source], "Train", size=8, length=6, fixed=True, augment=False,
                          convention=CONVENTION)
    turned = RealWaldPairs([source], "Train", size=8, length=6, fixed=True, augment=True,
                           convention=CONVENTION)
    moved = 0
    for index in range(6):
        a, b = plain[index], turned[index]
        assert a["bounds"] == b["bounds"]

        def symmetries(key: str, a=a, b=b) -> set[tuple[int, bool]]:
            return {(k, flip) for k in range(4) for flip in (False, True)
                    if torch.equal(dihedral(a[key], k, flip), b[key])}

        # One symmetry for the four tensors of a sample.
        assert set.intersection(*(symmetries(key) for key in ("image", "pan", "target",
                                                              "valid")))
        moved += not torch.equal(a["image"], b["image"])
    assert moved >= 3


def test_a_split_too_small_for_the_window_is_an_input_error(source) -> None:
    from s2l8h.errors import InputError

    with pytest.raises(InputError, match="no real scene has a 16 px window"):
        RealWaldPairs([source], "Validation", size=16, length=2, convention=CONVENTION)


def test_masked_losses_score_only_the_masked_pixels() -> None:
    generator = torch.Generator().manual_seed(0)
    prediction, target = torch.rand(2, 6, 12, 12, generator=generator), \
        torch.rand(2, 6, 12, 12, generator=generator)
    variance = torch.rand(2, 6, 12, 12, generator=generator) + 0.1
    mask = torch.ones(2, 1, 12, 12, dtype=torch.bool)
    mask[0, :, :4] = False
    loss = WeightedLoss([LossTerm("l1"), LossTerm("mse", 0.5), LossTerm("gaussian_nll", 0.1)])
    keep = mask.expand_as(prediction)
    p, t, v = prediction[keep], target[keep], variance[keep]
    expected = (p - t).abs().mean() + 0.5 * ((p - t) ** 2).mean() + \
        0.1 * (0.5 * (torch.log(v) + (p - t) ** 2 / v)).mean()
    assert float(loss(prediction, target, variance, mask)) == pytest.approx(float(expected),
                                                                            rel=1e-5)
    # What lies outside the mask does not count, for every term.
    changed = target.clone()
    changed[0, :, :4] += 5.0
    for term in ("l1", "mse", "gradient", "ssim", "gaussian_nll"):
        single = WeightedLoss([LossTerm(term)])
        inside = single(prediction, target, variance, mask)
        assert float(single(prediction, changed, variance, mask)) == pytest.approx(
            float(inside), rel=1e-6), term
        assert float(single(prediction, changed, variance)) != pytest.approx(float(inside))
    # An all-true mask is the plain loss.
    full = torch.ones_like(mask)
    assert float(loss(prediction, target, variance, full)) == pytest.approx(
        float(loss(prediction, target, variance)), rel=1e-6)


def test_real_scenes_mix_into_training_and_the_card(tmp_path: Path) -> None:
    from s2l8h.train.module import make_dataset
    from s2l8h.train.run import export, train

    config = load_config(CONFIG, tiny_mixed_training(tmp_path / "run"))
    train_set = make_dataset(config.data, "Train", convention=CONVENTION)
    assert isinstance(train_set, ConcatDataset) and len(train_set) == 16
    batch = next(iter(DataLoader(train_set, batch_size=16)))
    assert batch["valid"].shape == (16, 1, 24, 24) and batch["valid"][:8].all()
    assert batch["scene"][8:] == ["LC80200392015216LGN00"] * 8
    result = train(config, progress=False)
    assert np.isfinite(result.best_val_loss)
    card = (export(config, result.best_checkpoint, tmp_path / "release") / "README.md"
            ).read_text()
    assert "Mixed in: reduced-resolution (Wald) pairs of real Landsat" in card
    assert "L1T TOA crop; bundled example): 50% / 25% / 25%" in card
    with pytest.raises(ConfigError, match=r"give data\.scenes too"):
        load_config(CONFIG, ["data.scenes=[]"])


@pytest.mark.parametrize("member", ["a", "b"])
def test_the_default_models_stage_3_configs_start_from_their_releases(member: str) -> None:
    """The third stage of the default ensemble's members: from the bundled stage-2 release,
    three fifths real Wald pairs, the held-out rows never trained on."""
    config = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage3.yaml")
    assert config.model.init == f"lite2.real-wald-{member}"
    assert get_spec(config.model.init).bundled == f"lite2-real-wald-{member}"
    assert config.data.real_samples == 1536 and config.data.train_samples == 1024
    assert config.output.name == f"lite2.real-wald3-{member}"
    assert [scene.fractions[2] for scene in config.data.scenes] == [0.3, 0.0]
    assert [scene.fractions[2] for scene in config.data.real_scenes] == [0.28]


@pytest.mark.parametrize("member", ["a", "b"])
def test_the_default_models_stage_4_configs_widen_the_psf_range(member: str) -> None:
    """The fourth stage: from the bundled stage-3 release, the same mix, member A with PSF
    widths drawn from 0.55-1.45 x nominal, member B as in stage 3 (shifts up to 3 m), the
    held-out rows never trained on."""
    from s2l8h.data.simulate import TRAINING_RANGES

    config = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage4.yaml")
    assert config.model.init == f"lite2.real-wald3-{member}"
    assert get_spec(config.model.init).bundled == f"lite2-real-wald3-{member}"
    assert config.data.degradation_overrides == (
        {"psf_scale": [0.55, 1.45]} if member == "a" else {"shift_ms_m": 3.0})
    assert TRAINING_RANGES.psf_scale == (0.7, 1.4)  # what the earlier stages drew from
    assert config.data.real_samples == 1536 and config.data.train_samples == 1024
    assert config.output.name == f"lite2.real-wald4-{member}"
    assert [scene.fractions[2] for scene in config.data.scenes] == [0.3, 0.0]
    assert [scene.fractions[2] for scene in config.data.real_scenes] == [0.28]


@pytest.mark.parametrize("member", ["a", "b"])
def test_the_default_models_stage_5_configs_widen_both_psf_ranges(member: str) -> None:
    """The fifth stage: from the bundled stage-4 release, the same mix, both members with PSF
    widths drawn from 0.55-1.45 x nominal (member B also keeps its shifts up to 3 m), the
    held-out rows never trained on."""
    config = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage5.yaml")
    assert config.model.init == f"lite2.real-wald4-{member}"
    assert get_spec(config.model.init).bundled == f"lite2-real-wald4-{member}"
    assert config.data.degradation_overrides == (
        {"psf_scale": [0.55, 1.45]} if member == "a"
        else {"psf_scale": [0.55, 1.45], "shift_ms_m": 3.0})
    assert config.data.real_samples == 1536 and config.data.train_samples == 1024
    assert config.trainer.seed == {"a": 27, "b": 28}[member]
    assert config.output.name == f"lite2.real-wald5-{member}"
    assert [scene.fractions[2] for scene in config.data.scenes] == [0.3, 0.0]
    assert [scene.fractions[2] for scene in config.data.real_scenes] == [0.28]


@pytest.mark.parametrize("member", ["a", "b"])
def test_the_stage_6_configs_put_the_visible_bands_on_an_mtf_glp_base(member: str) -> None:
    """The sixth stage: from the bundled stage-5 release, stage 5's mix, blue/green/red as
    residuals on a local MTF-GLP pansharpening (a parameter-free override), the held-out rows
    never trained on; the bundled export has the same base."""
    config = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage6.yaml")
    stage5 = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage5.yaml")
    assert config.model.init == f"lite2.real-wald5-{member}"
    assert config.model.overrides == {"glp_window": 7, "glp_bands": 3}
    assert config.data.degradation_overrides == stage5.data.degradation_overrides
    assert config.data.real_samples == 1536 and config.trainer.max_epochs == 9
    assert config.trainer.seed == {"a": 41, "b": 42}[member]
    assert config.output.name == f"lite2.real-wald6-{member}"
    assert [scene.fractions[2] for scene in config.data.scenes] == [0.3, 0.0]
    assert [scene.fractions[2] for scene in config.data.real_scenes] == [0.28]
    released = load_model(f"lite2.real-wald6-{member}").network.config
    assert (released.glp_window, released.glp_bands) == (7, 3)


@pytest.mark.parametrize("member", ["a", "b"])
def test_the_stage_7_configs_repeat_stage_6_from_its_release(member: str) -> None:
    """The seventh stage: stage 6's recipe unchanged (data, degradations, base, schedule), from
    the bundled stage-6 release with a new seed; the held-out rows never trained on."""
    config = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage7.yaml")
    stage6 = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage6.yaml")
    assert config.model.init == f"lite2.real-wald6-{member}"
    assert config.trainer.seed == {"a": 43, "b": 44}[member]
    assert config.output.name == f"lite2.real-wald7-{member}"
    assert config.output.dir == f"runs/lite2-real-wald-{member}-stage7"
    for same in ("data", "loss", "optimizer", "scheduler"):
        assert getattr(config, same) == getattr(stage6, same)
    assert config.model.overrides == stage6.model.overrides
    assert config.trainer.max_epochs == stage6.trainer.max_epochs == 9
    assert [scene.fractions[2] for scene in config.data.real_scenes] == [0.28]
    released = load_model(f"lite2.real-wald7-{member}").network.config
    assert (released.glp_window, released.glp_bands) == (7, 3)


@pytest.mark.parametrize("member", ["a", "b"])
def test_the_stage_8_configs_add_zurich_without_its_held_out_rows(member: str) -> None:
    """The eighth stage: stage 7's recipe from the bundled stage-7 release with a new seed,
    plus the Level-2A Zurich scene, whose Test rows are exactly the rows the README holds out
    (``--bounds 472480,5246500,483500,5249860``: 10 m rows 762-1098 below y = 5257480)."""
    from s2l8h.data.patches import split_rows

    config = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage8.yaml")
    stage7 = load_config(ROOT / "configs" / f"lite2-real-wald-{member}-stage7.yaml")
    assert config.model.init == f"lite2.real-wald7-{member}"
    assert config.trainer.seed == {"a": 45, "b": 46}[member]
    assert config.output.name == f"lite2.real-wald8-{member}"
    for same in ("loss", "optimizer", "scheduler"):
        assert getattr(config, same) == getattr(stage7, same)
    assert config.data.scenes[:2] == stage7.data.scenes
    assert config.data.real_scenes == stage7.data.real_scenes
    zurich = config.data.scenes[2]
    assert zurich.path == "data/s2_l2a_zurich_20190530"
    assert "L2A" in zurich.radiometry
    top, rows = 5257480, 1098
    splits = split_rows(rows, tuple(zurich.fractions))
    assert splits["Test"] == ((top - 5249860) // 10, rows)
    assert splits["Validation"] == (600, (top - 5249860) // 10)
    released = load_model(f"lite2.real-wald8-{member}").network.config
    assert (released.glp_window, released.glp_bands) == (7, 3)
