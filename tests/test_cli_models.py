"""``s2l8h --version`` and ``s2l8h models``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from s2l8h import __version__, create_model, save_pretrained
from s2l8h.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"s2l8h {__version__}"


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "s2l8h", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == f"s2l8h {__version__}"


def test_models_list_shows_counts_macs_and_hub_ids() -> None:
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("unet5-upsample", "28,945,432", "0.738 M", "226,334,497",
                 "venkatesh-thiru/s2l8h-UNet-6depth-shuffle", "no sun corr."):
        assert text in result.output


def test_models_info_registered_and_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "info", "unet6-upsample"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "115,984,412" in result.output
    assert "depth=6" in result.output
    model = create_model("unet5-upsample", depth=2, growth_factor=3)
    save_pretrained(model, tmp_path / "small")
    result = runner.invoke(app, ["models", "info", str(tmp_path / "small")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "growth_factor=3" in result.output


def test_models_info_bad_path_exits_nonzero(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    result = runner.invoke(app, ["models", "info", str(tmp_path / "broken")])
    assert result.exit_code == 2
    assert "no model.safetensors or pytorch_model.bin" in result.output


def test_models_info_shows_where_weights_came_from(tmp_path: Path) -> None:
    """Provenance to read (training data with its radiometry, the commands, the card), not one
    line of a dict; --json gives the figures as numbers and the whole record."""

    model = create_model("unet5-upsample", depth=2, growth_factor=3)
    data = ("Pairs from 1 scene:\n\n- `data/x` (L2A surface reflectance; somewhere, CC0): "
            "60% / 20% / 20%")
    save_pretrained(model, tmp_path / "mine", provenance={
        "weights": "trained by s2l8h train", "training": {
            "data": data, "command": ["s2l8h train --config mine.yaml", "# 5 min"]}})
    (tmp_path / "mine" / "README.md").write_text("# card\n")
    result = runner.invoke(app, ["models", "info", str(tmp_path / "mine")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "origin: trained by s2l8h train" in lines
    start = lines.index("trained on:")
    assert lines[start + 1:start + 4] == ["  Pairs from 1 scene:", "", "  - `data/x` (L2A "
                                          "surface reflectance; somewhere, CC0): 60% / 20% / 20%"]
    start = lines.index("made by:")
    assert lines[start + 1:start + 3] == ["  s2l8h train --config mine.yaml", "  # 5 min"]
    assert f"model card: {tmp_path / 'mine' / 'README.md'}" in lines
    # Another tool's record, of any shape, is shown, not a traceback.
    odd = tmp_path / "odd"
    save_pretrained(model, odd, provenance={"weights": {"from": "elsewhere"},
                                            "training": ["not", "a", "dict"]})
    result = runner.invoke(app, ["models", "info", str(odd)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert 'origin: {"from": "elsewhere"}' in result.output
    assert "{'" not in result.output  # no Python dict printed
    result = runner.invoke(app, ["models", "info", str(tmp_path / "mine"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["parameters"] == sum(p.numel() for p in model.parameters())
    assert record["config"]["growth_factor"] == 3
    assert record["provenance"]["training"]["data"] == data
    assert record["model_card"] == str(tmp_path / "mine" / "README.md")


def test_models_info_of_an_ensemble_names_each_members_training() -> None:
    """The default ensemble's members were trained on the same scenes with different
    degradation ranges: the shared text once, the differing ones under each member."""
    result = runner.invoke(app, ["models", "info", "lite2.real-wald8"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "trained on (lite2.real-wald8-a):" in result.output
    assert "trained on (lite2.real-wald8-b):" in result.output
    assert result.output.count("`data/s2_l2a_zurich_20190530` (L2A surface reflectance") == 2
    assert "s2l8h version: 0.1.0" in result.output  # the same for both: once
    lines = result.output.splitlines()
    cards = lines[lines.index("model cards:") + 1:lines.index("model cards:") + 3]
    assert [Path(card.strip()).parent.name for card in cards] == \
        ["lite2-real-wald8-a", "lite2-real-wald8-b"]
    assert all(Path(card.strip()).name == "README.md" for card in cards)

    listed = json.loads(runner.invoke(app, ["models", "info", "lite2.real-wald8",
                                            "--json"]).output)
    assert listed["sigma_calibration"]["variance_scale"] == 0.25
    assert listed["sigma_calibration"]["pan_variance_scale"] == 4.0
    assert list(listed["sigma_calibration"]["band_variance_factors"]) == \
        ["B02", "B03", "B04", "B8A", "B11", "B12"]
    assert listed["parameters"] == 1_319_128


def test_weights_without_their_config_are_named_with_what_they_need(tmp_path: Path) -> None:
    """A lite network's tensors alone cannot be read as a UNet: the error names the file and
    says that its config.json is needed."""
    model = create_model("lite", width=8, blocks=1)
    save_pretrained(model, tmp_path / "release")
    (tmp_path / "bare").mkdir()
    (tmp_path / "release" / "model.safetensors").rename(tmp_path / "bare" / "model.safetensors")
    path = tmp_path / "bare" / "model.safetensors"
    result = runner.invoke(app, ["models", "info", str(path)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert f"{path}: not a UNet state dict" in result.output
    assert "need the config.json their release holds" in result.output


def test_an_unknown_name_lists_the_ensembles_too() -> None:
    """The default is an ensemble: a mistyped name lists the ensembles beside the models and
    releases."""
    result = runner.invoke(app, ["models", "info", "foo"], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert "ensembles: published, lite2.real-wald, " in result.output
    assert "lite2.real-wald8)" in result.output
    result = runner.invoke(app, ["models", "info", "lite2.real-wald9"], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert "unknown release 'lite2.real-wald9'" in result.output
    assert "ensembles of its releases: lite2.real-wald, lite2.real-wald3" in result.output
