"""``s2l8h --version`` and ``s2l8h models``."""

from __future__ import annotations

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
