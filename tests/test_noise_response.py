"""The noise-response loss: noise-free twins of simulated pairs, the flat-area noise gain, and
training with the term."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader

from conftest import tiny_mixed_training
from s2l8h.data.pairs import SimulatedPairs
from s2l8h.data.simulate import DegradationRanges, oli_noise_std
from s2l8h.train.config import load_config
from s2l8h.train.losses import (
    LossTerm,
    WeightedLoss,
    flat_noise_gain,
    noise_penalty,
    noise_response,
)
from s2l8h.train.run import train

ROOT = Path(__file__).parents[1]
CONFIG = ROOT / "configs" / "lite2-realistic.yaml"


def test_noise_free_twin_differs_from_the_input_by_its_noise_only(scenes) -> None:
    ranges = DegradationRanges(noise_scale=(4.0, 4.0), clean_probability=0.0)
    twins = SimulatedPairs(scenes, "Validation", size=16, length=4, fixed=True, seed=3,
                           ranges=ranges, noise_free_twin=True)
    plain = SimulatedPairs(scenes, "Validation", size=16, length=4, fixed=True, seed=3,
                           ranges=ranges)
    sample, same = twins[1], plain[1]
    # The twin leaves the sample itself as it was.
    for key in ("image", "pan", "target"):
        assert torch.equal(sample[key], same[key])
    assert "image_noise_free" not in same
    # The twin is the noise-free degradation of the same window: the same draw run again
    # with the noise off gives it exactly.
    quiet = SimulatedPairs(scenes, "Validation", size=16, length=4, fixed=True, seed=3,
                           ranges=dataclasses.replace(ranges, noise_scale=(1e-300, 1e-300)))
    assert torch.allclose(quiet[1]["image"], sample["image_noise_free"], atol=1e-7)
    assert torch.allclose(quiet[1]["pan"], sample["pan_noise_free"], atol=1e-7)
    noise = (sample["image"] - sample["image_noise_free"]).double().numpy()
    # Band by band, the difference is OLI's noise at 4 x its typical σ: white, zero mean.
    for band in range(6):
        sigma = 4.0 * oli_noise_std(sample["image_noise_free"][band].double().numpy(), band)
        ratio = noise[band] / sigma
        assert abs(ratio.mean()) < 0.25 and 0.8 < ratio.std() < 1.2, band
    pan_noise = (sample["pan"] - sample["pan_noise_free"]).double()
    assert 0 < float(pan_noise.std()) < 0.01
    # A clean draw has a twin equal to itself.
    clean = SimulatedPairs(scenes, "Validation", size=16, length=2, fixed=True, seed=3,
                           ranges=DegradationRanges(clean_probability=1.0),
                           noise_free_twin=True)[0]
    assert torch.equal(clean["image"], clean["image_noise_free"])
    assert torch.equal(clean["pan"], clean["pan_noise_free"])


def test_flat_noise_gain_measures_the_response_to_the_noise_on_flat_pixels() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = 0.002 * torch.randn(2, 6, 16, 16, generator=generator)
    quiet_input = torch.full((2, 6, 16, 16), 0.2)
    quiet_mean = torch.full((2, 6, 48, 48), 0.2)
    target = quiet_mean.clone()
    # Flat target everywhere, the noise passed on doubled at 10 m: gain² 4.
    doubled = quiet_mean + F.interpolate(2 * noise, scale_factor=3, mode="nearest")
    squared = flat_noise_gain(doubled, quiet_mean, quiet_input + noise, quiet_input, target)
    assert squared.shape == (2, 6)
    assert torch.allclose(squared, torch.full_like(squared, 4.0), rtol=0.05)
    assert float(noise_response(doubled, quiet_mean, quiet_input + noise, quiet_input,
                                target, gain=0.7)) == pytest.approx(4 - 0.49, rel=0.05)
    # Under the gain left unpenalised: no penalty.
    halved = quiet_mean + F.interpolate(0.5 * noise, scale_factor=3, mode="nearest")
    assert float(noise_response(halved, quiet_mean, quiet_input + noise, quiet_input,
                                target, gain=0.7)) == 0.0
    # Only the flattest pixels count: texture on the right half of the target, the response
    # there only, and the flattest quarter of the pixels (all on the left) see none of it.
    textured = target.clone()
    textured[..., 24:] += 0.05 * torch.rand(2, 6, 48, 24, generator=generator)
    right_only = quiet_mean.clone()
    right_only[..., 24:] = doubled[..., 24:]
    assert float(flat_noise_gain(right_only, quiet_mean, quiet_input + noise, quiet_input,
                                 textured).max()) == 0.0
    assert float(flat_noise_gain(right_only, quiet_mean, quiet_input + noise, quiet_input,
                                 textured, flat_fraction=0.9).min()) > 1.0
    # No input noise (a clean draw, a real pair): NaN, and no penalty.
    none = flat_noise_gain(doubled, quiet_mean, quiet_input, quiet_input, target)
    assert torch.isnan(none).all()
    assert float(noise_response(doubled, quiet_mean, quiet_input, quiet_input, target)) == 0.0


def test_weighted_loss_leaves_the_noise_response_to_its_caller() -> None:
    terms = [LossTerm("l1"), LossTerm("noise_response", weight=0.01, gain=0.5)]
    loss = WeightedLoss(terms)
    assert loss.noise_terms == [terms[1]]
    prediction, target = torch.zeros(1, 6, 6, 6), torch.full((1, 6, 6, 6), 0.1)
    assert float(loss(prediction, target)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="gain"):
        LossTerm("noise_response", gain=-1.0)


def test_training_with_the_noise_response_logs_the_noise_gain(tmp_path: Path) -> None:
    from s2l8h.errors import ConfigError
    from s2l8h.models.convention import InputConvention
    from s2l8h.train.module import make_dataset

    config = load_config(CONFIG, [
        *tiny_mixed_training(tmp_path / "run"),
        "loss=[{name: l1}, {name: noise_response, weight: 0.01, gain: 0.5}]"])
    # Real pairs carry their input as their twin, so the two kinds share batches.
    mixed = make_dataset(config.data, "Validation", convention=InputConvention(),
                         noise_free_twin=True)
    assert isinstance(mixed, ConcatDataset)
    batch = next(iter(DataLoader(mixed, batch_size=12)))
    assert torch.equal(batch["image"][8:], batch["image_noise_free"][8:])
    assert math.isnan(float(batch["noise_scale"][8]))
    seen: dict[str, float] = {}

    from lightning.pytorch.callbacks import Callback

    class Record(Callback):
        def on_validation_epoch_end(self, trainer, module) -> None:
            seen.update({k: float(v) for k, v in trainer.callback_metrics.items()})

    result = train(config, progress=False, callbacks=[Record()])
    assert np.isfinite(result.best_val_loss)
    # A network barely trained passes on noise: a gain well above 0, finite.
    assert 0.05 < seen["val_noise_gain"] < 20
    on_disk = load_config(CONFIG, ["data.scenes=[]", f"data.dataset={tmp_path}"])
    with pytest.raises(ConfigError, match="simulated pairs"):
        make_dataset(on_disk.data, "Train", noise_free_twin=True)


def test_the_noise_response_experiment_config_loads_with_its_term() -> None:
    config = load_config(ROOT / "configs" / "experiments"
                         / "lite2-real-wald-a-stage6-noise-response.yaml")
    terms = WeightedLoss(config.loss).noise_terms
    assert [(term.weight, term.gain) for term in terms] == [(0.001, 0.7)]
    assert config.model.init == "lite2.real-wald5-a"


def test_the_noise_term_alone_trains_the_network_and_refuses_dropout(scenes) -> None:
    from s2l8h import create_model
    from s2l8h.errors import ConfigError
    from s2l8h.models.harmonizer import split_output
    from s2l8h.train.config import OptimizerConfig, SchedulerConfig
    from s2l8h.train.module import HarmonizerModule

    torch.manual_seed(0)
    terms = [LossTerm("noise_response", weight=1.0, gain=0.0)]
    module = HarmonizerModule(create_model("lite", width=8, blocks=1), terms,
                              OptimizerConfig(), SchedulerConfig())
    ranges = DegradationRanges(noise_scale=(10.0, 10.0), clean_probability=0.0)
    batch = next(iter(DataLoader(
        SimulatedPairs(scenes, "Validation", size=8, length=4, fixed=True, ranges=ranges,
                       noise_free_twin=True), batch_size=4)))
    loss = module.training_step(batch, 0)
    # gain 0: every bit of the output's response to the noise is penalised, and nothing else.
    assert float(loss) > 0
    loss.backward()
    gradients = [p.grad for p in module.model.parameters() if p.grad is not None]
    assert gradients and any(float(g.abs().sum()) > 0 for g in gradients)
    # Terms with their own flat pixels and bands add up: the one in blue alone, everything
    # counted flat, and the one over no flat pixel (a threshold no pixel is under).
    parts = [LossTerm("noise_response", weight=1.0, gain=0.0, bands=[0], flat_activity=1.0),
             LossTerm("noise_response", weight=1.0, gain=0.0, flat_activity=1e-9)]
    torch.manual_seed(0)
    both = HarmonizerModule(create_model("lite", width=8, blocks=1), parts,
                            OptimizerConfig(), SchedulerConfig())
    with torch.no_grad():
        total = float(both.training_step(batch, 0))
        mean = split_output(both(batch["image"], batch["pan"]))[0]
        quiet = split_output(both(batch["image_noise_free"], batch["pan_noise_free"]))[0]
        blue = flat_noise_gain(mean, quiet, batch["image"], batch["image_noise_free"],
                               batch["target"], flat_activity=1.0)[:, 0]
    assert total == pytest.approx(float(blue.mean()), rel=1e-4) and total > 0
    with pytest.raises(ConfigError, match="dropout"):
        HarmonizerModule(create_model("lite", width=8, blocks=1, dropout=0.1), terms,
                         OptimizerConfig(), SchedulerConfig())


def test_flat_activity_counts_only_truly_flat_pixels_and_bands_select_the_penalty() -> None:
    generator = torch.Generator().manual_seed(1)
    noise = 0.002 * torch.randn(1, 6, 16, 16, generator=generator)
    quiet_input = torch.full((1, 6, 16, 16), 0.2)
    quiet_mean = torch.full((1, 6, 48, 48), 0.2)
    doubled = quiet_mean + F.interpolate(2 * noise, scale_factor=3, mode="nearest")
    # Texture of about 0.03 (5 x 5 standard deviation) on the right half, flat on the left.
    target = quiet_mean.clone()
    target[..., 24:] += 0.1 * torch.rand(1, 6, 48, 24, generator=generator)
    left_only = quiet_mean.clone()
    left_only[..., :20] = doubled[..., :20]
    right_only = quiet_mean.clone()
    right_only[..., 28:] = doubled[..., 28:]
    flat = {"flat_activity": 0.003}
    args = (quiet_mean, quiet_input + noise, quiet_input, target)
    # The response on the flat left half counts (gain² about 4 over the flat pixels, which
    # also hold the undoubled columns 20-23); the one on the textured right half not at all.
    on_flat = flat_noise_gain(left_only, *args, **flat)
    assert bool((on_flat > 2.5).all()) and bool((on_flat < 4.5).all())
    assert float(flat_noise_gain(right_only, *args, **flat).max()) == 0.0
    # A relative quarter would take the flattest pixels of any patch; the absolute threshold
    # finds none in a patch textured all over: not measured (NaN), no penalty.
    textured = quiet_mean + 0.1 * torch.rand(1, 6, 48, 48, generator=generator)
    assert torch.isnan(flat_noise_gain(doubled, quiet_mean, quiet_input + noise, quiet_input,
                                       textured, **flat)).all()
    assert float(flat_noise_gain(doubled, quiet_mean, quiet_input + noise, quiet_input,
                                 textured).min()) > 3.0
    # bands: only the chosen bands' excess is averaged.
    squared = torch.tensor([[0.25, 0.25, 0.25, 4.0, 1.0, math.nan]])
    assert float(noise_penalty(squared, 0.7)) == pytest.approx((3.51 + 0.51) / 5)
    assert float(noise_penalty(squared, 0.7, bands=(3,))) == pytest.approx(3.51)
    assert float(noise_penalty(squared, 0.7, bands=(0, 1, 2))) == 0.0
    assert float(noise_penalty(squared, 0.7, bands=(5,))) == 0.0


def test_noise_term_options_are_checked_and_load_from_the_flat_noise_configs() -> None:
    term = LossTerm("noise_response", bands=[3, 4, 5], flat_activity=0.003)
    assert term.bands == (3, 4, 5)
    for bad in ([], [6], [-1], [3, 3], [True, 3], 3):
        with pytest.raises(ValueError, match="distinct indices 0-5"):
            LossTerm("noise_response", bands=bad)
    for bad in (0.0, "3e-3"):
        with pytest.raises(ValueError, match="flat_activity must be a number > 0"):
            LossTerm("noise_response", flat_activity=bad)
    assert LossTerm("noise_response", flat_activity=1).flat_activity == 1.0
    with pytest.raises(ValueError, match="noise_response only"):
        LossTerm("l1", bands=[3])
    for name, bands in (("all", None), ("ir", (3, 4, 5))):
        config = load_config(ROOT / "configs" / "experiments"
                             / f"lite2-real-wald7-a-flat-noise-{name}.yaml")
        (term,) = WeightedLoss(config.loss).noise_terms
        assert (term.weight, term.gain, term.flat_activity, term.bands) == (0.001, 0.7, 0.003,
                                                                           bands)
        assert config.model.init == "lite2.real-wald7-a"
