"""The model family, the registry, and safe loading."""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from s2l8h import create_model, list_models, load_model, save_pretrained
from s2l8h.models import (
    PUBLISHED_MODELS,
    ModelLoadError,
    UNet,
    UNetConfig,
    count_parameters,
    get_spec,
    macs_per_output_pixel,
)
from s2l8h.models.registry import build_network

PUBLISHED_PARAMETERS = {
    "unet5-upsample": 28_945_432,
    "unet5-shuffle": 56_453_916,
    "unet6-upsample": 115_984_412,
    "unet6-shuffle": 226_334_497,
}
PUBLISHED_MACS = {  # DESIGN.md: million multiply-adds per output pixel
    "unet5-upsample": 0.74,
    "unet5-shuffle": 1.15,
    "unet6-upsample": 0.91,
    "unet6-shuffle": 1.42,
}
HUB_IDS = {
    "unet5-upsample": "venkatesh-thiru/s2l8h-UNet-5depth-upsample",
    "unet5-shuffle": "venkatesh-thiru/s2l8h-UNet-5depth-shuffle",
    "unet6-upsample": "venkatesh-thiru/s2l8h-UNet-6depth-upsample",
    "unet6-shuffle": "venkatesh-thiru/s2l8h-UNet-6depth-shuffle",
}


def _inputs(seed: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    multispectral = torch.rand(1, 6, size, size, generator=generator) * 0.4
    pan = torch.rand(1, 1, 2 * size, 2 * size, generator=generator) * 0.4
    return multispectral, pan


def _randomize(model: torch.nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_published_parameter_counts_are_exact(name: str) -> None:
    spec = get_spec(name)
    with torch.device("meta"):
        network = build_network(spec.architecture, spec.config)
    assert count_parameters(network) == PUBLISHED_PARAMETERS[name]
    assert spec.hub_id == HUB_IDS[name]
    assert spec.convention.pan_radiometry == "toa-reflectance-no-sun-correction"
    assert spec.convention.input_grid == "10m-bicubic"
    assert spec.convention.output_bands == ("B02", "B03", "B04", "B8A", "B11", "B12")


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_published_macs_per_pixel(name: str) -> None:
    spec = get_spec(name)
    macs = macs_per_output_pixel(spec.architecture, spec.config, spec.convention)
    assert macs / 1e6 == pytest.approx(PUBLISHED_MACS[name], abs=0.006)


def test_the_default_ensemble_is_counted_within_the_budget() -> None:
    # The budget: <= 200 k multiply-adds per output pixel for the whole default,
    # uncertainty included. Its members' MTF-GLP base (a Gaussian on the pan) is counted too,
    # on the meta device, which has no autocast to switch off.
    from s2l8h.defaults import DEFAULT_MODEL
    from s2l8h.models.registry import ensemble_members

    total, without_base = 0.0, 0.0
    for member in ensemble_members(DEFAULT_MODEL):
        model = load_model(member)  # the bundled release's own config
        config = model.network.config.to_dict()
        assert config["glp_window"] == 7
        total += macs_per_output_pixel(model.architecture, config, model.convention)
        without_base += macs_per_output_pixel(model.architecture, {**config, "glp_window": 0},
                                              model.convention)
    assert without_base < total <= 200_000
    assert total / 1e3 == pytest.approx(146, abs=2)


def test_registry_lists_published_models() -> None:
    assert set(PUBLISHED_MODELS) == set(PUBLISHED_PARAMETERS)
    assert set(PUBLISHED_MODELS) <= set(list_models())
    with pytest.raises(KeyError, match="unknown model 'unet7'"):
        create_model("unet7")


OPTION_GRID = list(itertools.product(
    ("upsample", "shuffle", "upconv"),
    ("none", "standard", "modified"),
    (False, True),  # ECA
    (0.0, 0.1),  # dropout
    (False, True),  # variance head
))


@pytest.mark.parametrize(("up_mode", "attention", "eca", "dropout", "variance"), OPTION_GRID)
def test_forward_shapes_every_option(up_mode, attention, eca, dropout, variance) -> None:
    network = UNet(UNetConfig(depth=3, growth_factor=2, up_mode=up_mode, attention=attention,
                              channel_attention=eca, dropout=dropout, variance_head=variance))
    network.eval()
    inputs = torch.rand(2, 7, 101, 87)
    with torch.no_grad():
        output = network(inputs)
    if variance:
        mean, var = output
        assert mean.shape == var.shape == (2, 6, 101, 87)
        assert float(var.min()) >= 0.0
    else:
        assert output.shape == (2, 6, 101, 87)


def test_dropout_is_stochastic_only_in_train_mode() -> None:
    network = UNet(UNetConfig(depth=2, growth_factor=2, dropout=0.5))
    inputs = torch.rand(1, 7, 24, 24)
    network.eval()
    assert torch.equal(network(inputs), network(inputs))
    network.train()
    assert not torch.equal(network(inputs), network(inputs))


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="up_mode"):
        UNetConfig(up_mode="deconv")
    with pytest.raises(ValueError, match="unknown UNetConfig keys"):
        UNetConfig.from_dict({"depth": 3, "width": 9})


def test_harmonizer_bicubic_input_convention() -> None:
    model = create_model("unet5-upsample")
    multispectral, pan = _inputs(size=8)
    network_input = model.network_input(multispectral, pan)
    assert network_input.shape == (1, 7, 24, 24)
    expected_pan = torch.nn.functional.interpolate(pan, size=(24, 24), mode="bicubic",
                                                   align_corners=False)
    assert torch.equal(network_input[:, 6:], expected_pan)
    with torch.no_grad():
        assert model(multispectral, pan).shape == (1, 6, 24, 24)


def _hub_state_dict(model) -> dict[str, torch.Tensor]:
    return {f"model.{key}": value.clone() for key, value in model.network.state_dict().items()}


def test_hub_layout_folder_loads_strictly_and_reproduces(tmp_path: Path) -> None:
    reference = create_model("unet5-upsample").eval()
    _randomize(reference)
    state = _hub_state_dict(reference)
    for key in ("model.encoding_module.0.block.0.weight", "model.encoding_module.0.block.1.weight",
                "model.decoding_module.0.Upsize.1.weight",
                "model.decoding_module.0.conv.block.2.bias", "model.final.weight"):
        assert key in state
    folder = tmp_path / "hub"
    folder.mkdir()
    save_file(state, folder / "model.safetensors")
    # A transformers-style config of the release: not ours, must be ignored, never executed.
    (folder / "config.json").write_text(json.dumps({"model_type": "s2l8h", "depth": 5}))
    (folder / "s2l8hModel.py").write_text("raise SystemExit('foreign code executed')\n")
    loaded = load_model(folder)
    assert loaded.name == "unet5-upsample"
    multispectral, pan = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(multispectral, pan), reference(multispectral, pan))


def test_hub_layout_pickle_weights_load(tmp_path: Path) -> None:
    reference = create_model("unet5-shuffle").eval()
    _randomize(reference)
    torch.save(_hub_state_dict(reference), tmp_path / "pytorch_model.bin")
    loaded = create_model("unet5-shuffle", pretrained=str(tmp_path))
    multispectral, pan = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(multispectral, pan), reference(multispectral, pan))


def _hub_cache(cache_dir: Path, hub_id: str, state: dict[str, torch.Tensor]) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache_dir / f"models--{hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    save_file(state, snapshot / "model.safetensors")


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_hub_id_loads_from_cache(tmp_path: Path, offline_hub: None) -> None:
    reference = create_model("unet5-upsample").eval()
    _randomize(reference, seed=3)
    _hub_cache(tmp_path, HUB_IDS["unet5-upsample"], _hub_state_dict(reference))
    by_id = load_model(HUB_IDS["unet5-upsample"], cache_dir=tmp_path)
    by_name = load_model("unet5-upsample", cache_dir=tmp_path)
    multispectral, pan = _inputs()
    with torch.no_grad():
        expected = reference(multispectral, pan)
        assert torch.equal(by_id(multispectral, pan), expected)
        assert torch.equal(by_name(multispectral, pan), expected)


def test_hub_id_offline_not_cached_says_how_to_get_it(tmp_path: Path, offline_hub: None) -> None:
    with pytest.raises(ModelLoadError, match="huggingface-cli download venkatesh-thiru"):
        load_model(HUB_IDS["unet6-shuffle"], cache_dir=tmp_path)


def test_release_format_round_trips_bit_exactly(tmp_path: Path) -> None:
    model = create_model("unet5-upsample", variance_head=True, attention="modified",
                         channel_attention=True).eval()
    _randomize(model, seed=5)
    save_pretrained(model, tmp_path / "release", provenance={"data": "unit test"})
    document = json.loads((tmp_path / "release" / "config.json").read_text())
    assert document["format"] == "s2l8h-model"
    assert document["config"]["variance_head"] is True
    assert document["provenance"]["data"] == "unit test"
    loaded = load_model(tmp_path / "release")
    original_state, loaded_state = model.network.state_dict(), loaded.network.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for key in original_state:
        assert torch.equal(original_state[key], loaded_state[key]), key
    multispectral, pan = _inputs()
    with torch.no_grad():
        for got, want in zip(loaded(multispectral, pan), model(multispectral, pan), strict=True):
            assert torch.equal(got, want)
    with pytest.raises(FileExistsError):
        save_pretrained(model, tmp_path / "release")


def test_paper_training_checkpoint_loads(tmp_path: Path) -> None:
    reference = create_model("unet5-upsample").eval()
    _randomize(reference, seed=7)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-5)
    checkpoint = {
        "epoch": 41,
        "model_state_dict": reference.network.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": 0.0123,
    }
    torch.save(checkpoint, tmp_path / "best_model.pth")
    loaded = load_model(tmp_path / "best_model.pth")
    assert loaded.name == "unet5-upsample"
    multispectral, pan = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(multispectral, pan), reference(multispectral, pan))


def test_truncated_files_fail_clearly(tmp_path: Path) -> None:
    model = create_model("unet5-upsample")
    save_pretrained(model, tmp_path / "release")
    weights = tmp_path / "release" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: 1 << 20])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: not a readable safetensors"):
        load_model(tmp_path / "release")
    pickled = tmp_path / "weights.pth"
    torch.save(model.network.state_dict(), pickled)
    pickled.write_bytes(pickled.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match=r"weights\.pth: not a readable PyTorch weights"):
        load_model(pickled)


def test_wrong_architecture_fails_with_key_lists(tmp_path: Path) -> None:
    model = create_model("unet5-upsample")
    save_pretrained(model, tmp_path / "release")
    with pytest.raises(ModelLoadError, match="not the requested"):
        create_model("unet5-shuffle", pretrained=str(tmp_path / "release"))
    state = _hub_state_dict(model)
    del state["model.decoding_module.1.conv.block.2.bias"]
    state["model.extra.weight"] = torch.zeros(3)
    hub = tmp_path / "hub"
    hub.mkdir()
    save_file(state, hub / "model.safetensors")
    with pytest.raises(ModelLoadError) as info:
        load_model(hub)
    message = str(info.value)
    assert "missing keys: decoding_module.1.conv.block.2.bias" in message
    assert "unexpected keys: extra.weight" in message


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_malicious_pickle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pytorch_model.bin"
    with path.open("wb") as handle:
        pickle.dump({"model.final.weight": _Payload()}, handle, protocol=2)
    with pytest.raises(ModelLoadError, match="refused to load"):
        load_model(tmp_path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


class _NotATensor:
    pass


def test_pickled_objects_are_refused_in_one_line_without_torch_advice(tmp_path: Path) -> None:
    path = tmp_path / "objects.pt"
    torch.save({"final.weight": torch.zeros(1), "extra": _NotATensor()}, path)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused to load")
    assert "_NotATensor" in message
    assert "\n" not in message
    assert "weights_only" not in message


@pytest.mark.parametrize("name", ["junk.tif", "junk.pt", "junk.safetensors"])
def test_a_file_that_is_not_weights_says_so(tmp_path: Path, name: str) -> None:
    from s2l8h.cli.app import app

    path = tmp_path / name
    path.write_text("not a model\n")
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a weights file")
    assert "safetensors" in message and ".pt" in message
    assert "weights_only set to False" not in message
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["models", "info", str(path)])
    assert result.exit_code != 0
    assert "not a weights file" in result.output
    assert "weights_only" not in result.output


def test_exports_load_by_path_with_fields_their_config_predates(tmp_path: Path) -> None:
    # An export saved before a parameter-free field existed loads as its model (the field
    # takes its default), as the bundled releases do when given as folders.
    old = save_pretrained(create_model("lite2"), tmp_path / "old")
    document = json.loads((old / "config.json").read_text())
    for key in ("glp_window", "glp_bands"):
        del document["config"][key]
    (old / "config.json").write_text(json.dumps(document))
    assert create_model("lite2", pretrained=old).network.config.glp_window == 0
    bundled = Path(__file__).parents[1] / "src" / "s2l8h" / "weights" / "lite2-real-wald5-a"
    assert create_model("lite2", pretrained=bundled).network.config.pan_norm == 7
    # An export with the MTF-GLP base loads as lite2 when asked for with that base only.
    glp = save_pretrained(create_model("lite2", glp_window=7, glp_bands=3), tmp_path / "glp")
    loaded = create_model("lite2", pretrained=glp, glp_window=7, glp_bands=3)
    assert (loaded.network.config.glp_window, loaded.network.config.glp_bands) == (7, 3)
    with pytest.raises(ModelLoadError, match="glp_window"):
        create_model("lite2", pretrained=glp)


def test_unknown_source_fails_clearly() -> None:
    with pytest.raises(ModelLoadError, match="not a registered model"):
        load_model("no-such-model")


# ------------------------------------------------------------ models and releases ----

def test_releases_are_named_model_dot_tag_and_bare_names_alias_the_default() -> None:
    from s2l8h.models.registry import list_releases

    assert set(list_models(releases=True)) >= {
        "lite.virginia-sim", "lite2.realistic", *(f"{name}.paper" for name in HUB_IDS)}
    for name, hub_id in HUB_IDS.items():
        assert get_spec(f"{name}.paper").hub_id == hub_id
        assert get_spec(name).release == f"{name}.paper"
    assert get_spec("lite").release == "lite.virginia-sim"
    assert get_spec("lite2").bundled == get_spec("lite2.realistic").bundled == "lite2-realistic"
    assert get_spec("lite2").config == get_spec("lite2.realistic").config
    assert list_releases("lite2")[0].name == "lite2.realistic"
    by_alias, by_release = load_model("lite2"), load_model("lite2.realistic")
    assert by_alias.name == by_release.name == "lite2.realistic"
    assert create_model("lite2").name == "lite2"  # random weights: no release
    assert create_model("lite2.realistic", pretrained=True).name == "lite2.realistic"
    multispectral, pan = _inputs()
    with torch.no_grad():
        assert torch.equal(by_alias(multispectral, pan)[0], by_release(multispectral, pan)[0])


def test_adding_a_release_keeps_the_alias_on_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from s2l8h.models import registry

    monkeypatch.setattr(registry, "_RELEASES", dict(registry._RELEASES))
    registry.register_release("lite2", "another", bundled="lite2-realistic",
                              description="a further release of lite2")
    assert get_spec("lite2").release == "lite2.realistic"
    assert get_spec("lite2.another").release_description == "a further release of lite2"
    assert load_model("lite2.another").name == "lite2.another"
    with pytest.raises(ValueError, match="is an ensemble's already"):
        registry.register_release("lite2", "real-wald", bundled="lite2-realistic")
    with pytest.raises(ValueError, match="exactly one of hub_id and bundled"):
        registry.register_release("lite2", "nowhere")
    with pytest.raises(ValueError, match=r"no '\.' or '/'"):
        registry.register_release("lite2", "a.b", bundled="x")
    with pytest.raises(ValueError, match="register the model 'lite9' first"):
        registry.register_release("lite9", "x", bundled="x")


def test_the_default_model_is_one_registered_name() -> None:
    from s2l8h.cli.harmonize import DEFAULT_MODELS as CLI_DEFAULT
    from s2l8h.defaults import DEFAULT_MODEL
    from s2l8h.demo import demo_label
    from s2l8h.inference.harmonize import DEFAULT_MODELS
    from s2l8h.models.registry import ensemble_members

    assert CLI_DEFAULT == DEFAULT_MODELS == (DEFAULT_MODEL,)
    members = ensemble_members(DEFAULT_MODEL)
    assert members == ("lite2.real-wald8-a", "lite2.real-wald8-b")  # the bundled ensemble
    for member in members:
        spec = get_spec(member)
        assert spec.bundled is not None and spec.release == member
    assert demo_label().startswith(f"default weights '{DEFAULT_MODEL}' (ensemble of "
                                   "lite2.real-wald8-a, lite2.real-wald8-b)")
    # The previous defaults stay loadable for comparison.
    assert ensemble_members("lite2.real-wald6") == ("lite2.real-wald6-a", "lite2.real-wald6-b")
    assert ensemble_members("lite2.real-wald5") == ("lite2.real-wald5-a", "lite2.real-wald5-b")
    assert ensemble_members("lite2.real-wald4") == ("lite2.real-wald4-a", "lite2.real-wald4-b")
    assert ensemble_members("lite2.real-wald3") == ("lite2.real-wald3-a", "lite2.real-wald3-b")
    assert ensemble_members("lite2.real-wald") == ("lite2.real-wald-a", "lite2.real-wald-b")


def test_registered_ensembles_stand_for_their_members(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    from s2l8h.cli.app import app
    from s2l8h.errors import UnknownModelError
    from s2l8h.inference.harmonize import resolve_models
    from s2l8h.inference.uncertainty import SigmaCalibration, make_predictor
    from s2l8h.models import registry

    monkeypatch.setattr(registry, "_ENSEMBLES", dict(registry._ENSEMBLES))
    assert registry.ensemble_members("published") == (
        "unet5-upsample", "unet5-shuffle", "unet6-upsample", "unet6-shuffle")
    assert registry.ensemble_members("lite2") == ("lite2",)  # not an ensemble
    assert registry.is_registered("lite2.real-wald")
    with pytest.raises(UnknownModelError, match=r"is an ensemble of lite2\.real-wald-a"):
        get_spec("lite2.real-wald")
    models = resolve_models(["lite2.real-wald"])
    assert [model.name for model in models] == ["lite2.real-wald-a", "lite2.real-wald-b"]
    multispectral, pan = _inputs()
    mean, variance = make_predictor(models)(multispectral, pan)
    with torch.no_grad():
        first, second = (model(multispectral, pan) for model in models)
    # the mean of the members; σ² = their spread + their mean head variance
    assert torch.allclose(mean, (first[0] + second[0]) / 2, atol=1e-6)
    spread = ((first[0] - second[0]) / 2) ** 2
    assert torch.allclose(variance, spread + (first[1] + second[1]) / 2, atol=1e-9)
    # A registered calibration scales the ensemble's variance, and only a whole ensemble's.
    assert registry.ensemble_variance_scale("lite2.real-wald") == 1.0
    assert registry.ensemble_variance_scale("lite2.real-wald3") == pytest.approx(0.6241)
    assert registry.ensemble_variance_scale("lite2.real-wald4") == pytest.approx(0.6561)
    assert registry.ensemble_noise_variance_scale("lite2.real-wald4") == 0.0
    assert registry.ensemble_variance_scale("lite2.real-wald5") == pytest.approx(0.2025)
    assert registry.ensemble_noise_variance_scale("lite2.real-wald5") == pytest.approx(3.24)
    assert registry.ensemble_level_variance_scale("lite2.real-wald5") == pytest.approx(2.43)
    assert registry.ensemble_member_views("lite2.real-wald5") == ("identity", "rot180")
    assert registry.ensemble_member_views("lite2.real-wald4") == ()
    assert registry.ensemble_variance_scale("lite2.real-wald6") == pytest.approx(0.25)
    assert registry.ensemble_noise_variance_scale("lite2.real-wald6") == pytest.approx(2.0)
    assert registry.ensemble_level_variance_scale("lite2.real-wald6") == pytest.approx(2.0)
    assert registry.ensemble_member_views("lite2.real-wald6") == ("identity", "rot180")
    assert registry.find_ensemble("lite2.real-wald6").pan_variance_scale == 0.0
    for name, scales, bands in (
            ("lite2.real-wald7", (0.2601, 0.0, 2.0808, 4.1616),
             (0.6084, 0.7225, 0.9604, 1.8496, 1.2544, 1.2321)),
            ("lite2.real-wald8", (0.25, 0.0, 2.0, 4.0),
             (0.6561, 0.8464, 0.8649, 1.7956, 1.1881, 1.1881))):
        stage = registry.find_ensemble(name)
        assert (stage.variance_scale, stage.noise_variance_scale, stage.level_variance_scale,
                stage.pan_variance_scale) == pytest.approx(scales)
        assert stage.member_views == ("identity", "rot180")
        assert stage.band_variance_factors == pytest.approx(bands)
    assert registry.find_ensemble("lite2.real-wald6").band_variance_factors == ()
    assert registry.ensemble_noise_variance_scale("lite2.real-wald5-a") == 0.0
    assert registry.ensemble_variance_scale("lite2.real-wald3-a") == 1.0  # not an ensemble
    from s2l8h.inference.harmonize import ensemble_calibration

    default = resolve_models(["lite2.real-wald3"])
    assert [m.ensemble for m in default] == ["lite2.real-wald3"] * 2
    # travels with the models
    assert ensemble_calibration(default) == SigmaCalibration(0.6241, 0.0)
    none = SigmaCalibration(1.0, 0.0)
    assert ensemble_calibration(default[:1]) == none  # one member alone: not the ensemble
    assert ensemble_calibration(resolve_models(["lite2.real-wald3-a", "lite2.real-wald3-b"])
                                ) == none
    scaled_mean, scaled = make_predictor(models, variance_scale=0.25)(multispectral, pan)
    assert torch.equal(scaled_mean, mean) and torch.allclose(scaled, 0.25 * variance)
    with pytest.raises(ValueError, match="variance_scale must be > 0"):
        registry.register_ensemble("bad-scale", ("lite", "lite2"), variance_scale=0.0)
    with pytest.raises(ValueError, match="noise_variance_scale must be >= 0"):
        registry.register_ensemble("bad-noise", ("lite", "lite2"), noise_variance_scale=-1.0)
    with pytest.raises(ValueError, match="level_variance_scale must be >= 0"):
        registry.register_ensemble("bad-level", ("lite", "lite2"), level_variance_scale=-1.0)
    with pytest.raises(ValueError, match="pan_variance_scale must be >= 0"):
        registry.register_ensemble("bad-pan", ("lite", "lite2"), pan_variance_scale=-1.0)
    for factors in ((1.0, 1.0), (1.0, 1.0, 1.0, 1.0, 1.0, 0.0)):
        with pytest.raises(ValueError, match=r"one factor > 0 per output band \(B02 B03 "):
            registry.register_ensemble("bad-bands", ("lite", "lite2"),
                                       band_variance_factors=factors)
    assert registry.find_ensemble("bad-bands") is None
    registry.register_ensemble("lite-pair", ("lite", "lite.virginia-sim"))
    assert [m.name for m in resolve_models(["lite-pair"])] == ["lite.virginia-sim"] * 2
    for members, message in ((("lite",), "at least two"), (("lite", "lite9"), "register"),
                             (("lite", "lite2"), None)):
        if message is None:
            with pytest.raises(ValueError, match="a model or release already"):
                registry.register_ensemble("lite2.realistic", members)
            continue
        with pytest.raises(ValueError, match=message):
            registry.register_ensemble("x", members)
    listing = CliRunner().invoke(app, ["models", "list"])
    assert "lite2.real-wald8 (default of harmonize)" in listing.output
    assert "ensemble: lite2.real-wald8-a + lite2.real-wald8-b" in listing.output
    assert "ensemble: lite2.real-wald7-a + lite2.real-wald7-b" in listing.output
    assert "ensemble: lite2.real-wald6-a + lite2.real-wald6-b" in listing.output
    assert "ensemble: lite2.real-wald5-a + lite2.real-wald5-b" in listing.output
    assert "ensemble: lite2.real-wald4-a + lite2.real-wald4-b" in listing.output
    assert "ensemble: lite2.real-wald3-a + lite2.real-wald3-b" in listing.output
    assert "ensemble: lite2.real-wald-a + lite2.real-wald-b" in listing.output
    info = CliRunner().invoke(app, ["models", "info", "lite2.real-wald"])
    assert info.exit_code == 0 and "ensemble of: lite2.real-wald-a, lite2.real-wald-b" in \
        info.output
    assert "MACs per output pixel: 146," in info.output  # 2 x 73.1 k
    assert "σ calibration: variance x 1" in info.output
    info = CliRunner().invoke(app, ["models", "info", "lite2.real-wald3"])
    assert "σ calibration: variance x 0.6241" in info.output
    info = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["models", "info", "lite2.real-wald7"])
    assert ("σ calibration: variance x 0.2601 + 2.081 x the squared level departure from the "
            "input + 4.162 x the squared disagreement of the pan with the bands; all of it x "
            "0.6084 / 0.7225 / 0.9604 / 1.85 / 1.254 / 1.232 per band (B02 B03 B04 B8A B11 "
            "B12)") in info.output


def test_a_registered_name_never_means_a_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    save_pretrained(create_model("unet5-upsample", depth=2, growth_factor=2), tmp_path / "lite")
    assert load_model("lite").name == "lite.virginia-sim"
    assert load_model("./lite").architecture == "unet"
    assert load_model(tmp_path / "lite").architecture == "unet"
    with pytest.raises(ModelLoadError, match="no such file or folder"):
        load_model("./lite9")


def test_unknown_names_fail_with_the_known_ones() -> None:
    from s2l8h.errors import S2L8HError, UnknownModelError

    with pytest.raises(UnknownModelError) as info:
        create_model("lite9")
    assert isinstance(info.value, S2L8HError) and isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown model 'lite9'; known models: lite, lite2")
    assert "lite2.realistic" in str(info.value)
    with pytest.raises(UnknownModelError, match=r"releases of lite2: lite2\.realistic"):
        load_model("lite2.nope")
    with pytest.raises(UnknownModelError, match="not a registered model"):
        load_model("lite9")


def test_checkpoint_hyperparameters_rebuild_the_model(tmp_path: Path) -> None:
    from s2l8h.train.config import OptimizerConfig, SchedulerConfig
    from s2l8h.train.losses import LossTerm
    from s2l8h.train.module import HarmonizerModule

    model = create_model("lite", width=8, blocks=1)
    _randomize(model, seed=11)
    module = HarmonizerModule(model, [LossTerm("l1")], OptimizerConfig(), SchedulerConfig())
    assert dict(module.hparams) == model.describe()
    assert "model" not in module.hparams  # the description, not the nn.Module
    checkpoint = tmp_path / "run.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "epoch": 3}, checkpoint)
    loaded = load_model(checkpoint)
    assert loaded.architecture == "lite" and loaded.name == "lite"
    assert loaded.config.to_dict() == model.config.to_dict()
    multispectral, pan = _inputs()
    with torch.no_grad():
        for got, want in zip(loaded(multispectral, pan), model.eval()(multispectral, pan),
                             strict=True):
            assert torch.equal(got, want)


def test_a_checkpoint_with_a_variance_head_warns_that_it_is_uncalibrated(tmp_path: Path
                                                                         ) -> None:
    import warnings

    from s2l8h.errors import S2L8HWarning
    from s2l8h.train.config import OptimizerConfig, SchedulerConfig
    from s2l8h.train.losses import LossTerm
    from s2l8h.train.module import HarmonizerModule

    for head, warned in ((True, True), (False, False)):
        model = create_model("lite", width=8, blocks=1, variance_head=head)
        module = HarmonizerModule(model, [LossTerm("l1")], OptimizerConfig(),
                                  SchedulerConfig())
        checkpoint = tmp_path / f"head-{head}.ckpt"
        torch.save({"state_dict": module.state_dict(),
                    "hyper_parameters": dict(module.hparams)}, checkpoint)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_model(checkpoint)
        messages = [str(w.message) for w in caught if issubclass(w.category, S2L8HWarning)]
        assert bool(messages) is warned
        assert all(m.startswith(f"{checkpoint}: a training checkpoint, whose variance head "
                                "is not calibrated") for m in messages)
    released = save_pretrained(create_model("lite", width=8, blocks=1, variance_head=True),
                               tmp_path / "release")
    with warnings.catch_warnings():
        warnings.simplefilter("error", S2L8HWarning)
        load_model(released)  # an exported release is calibrated: no warning
