"""``s2l8h simulate-dataset``, ``s2l8h train`` and ``s2l8h export``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from s2l8h.cli._common import console, fail
from s2l8h.cli.harmonize import EXPECTED_ERRORS


def simulate_dataset_command(
    sentinel2: list[Path] = typer.Argument(..., help="Sentinel-2 folder or band files."),
    output_dir: Path = typer.Option(..., "-o", "--output-dir", help="Dataset folder."),
    size: int = typer.Option(32, help="Patch size in 30 m pixels (Sentinel-2 patch: 3x)."),
    stride: int = typer.Option(16, help="Patch stride in 30 m pixels."),
    fractions: str = typer.Option("0.6,0.1,0.3",
                                  help="Train,Validation,Test row fractions, top down."),
    offset: float = typer.Option(0.0, help="Sentinel-2 DN offset (-1000 from baseline 04.00)."),
    platform: str = typer.Option("S2A", help="S2A | S2B bandpass coefficients."),
    noise: float = typer.Option(0.0, help="Gaussian noise std added to the simulation."),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset."),
) -> None:
    """Build a patch dataset from Landsat simulated from a Sentinel-2 scene."""
    from s2l8h.data.build import build_simulated_dataset

    try:
        split = tuple(float(value) for value in fractions.split(","))
        if len(split) != 3:
            raise ValueError(f"--fractions needs three numbers, got {fractions!r}")
        counts = build_simulated_dataset(sentinel2 if len(sentinel2) > 1 else sentinel2[0],
                                         output_dir, size=size, stride=stride,
                                         fractions=split, offset=offset, platform=platform,
                                         noise_std=noise, overwrite=overwrite)
    except EXPECTED_ERRORS as error:
        fail(error)
    console.print(f"wrote {output_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  + " patches passing the quality filter")


def train_command(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training configuration."),
    set_: list[str] = typer.Option(None, "--set", help="Override: key.sub=value (repeat)."),
    resume: bool = typer.Option(False, help="Continue from <output.dir>/checkpoints/last.ckpt."),
    export_dir: Path = typer.Option(
        None, "--export", help="After training, export the best checkpoint here (release "
        "format, calibrated variance head, model card)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train a model on a patch dataset (Lightning; TensorBoard logs, best/last checkpoints)."""
    from s2l8h.train.config import ConfigError, load_config
    from s2l8h.train.run import export, train

    try:
        settings = load_config(config, set_ or [])
    except ConfigError as error:
        fail(error)
    try:
        result = train(settings, resume=resume, progress=not quiet)
    except (*EXPECTED_ERRORS, FileNotFoundError) as error:
        fail(error)
    console.print(f"best val_loss {result.best_val_loss:.5f}: {result.best_checkpoint}")
    if export_dir is not None:
        command = "s2l8h " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
        folder = export(settings, result.best_checkpoint, export_dir,
                        card={"command": command}, overwrite=True)
        console.print(f"exported {folder}")


def export_command(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.ckpt)."),
    config: Path = typer.Option(..., "--config", "-c", help="The run's configuration."),
    set_: list[str] = typer.Option(None, "--set", help="Override: key.sub=value (repeat)."),
    output_dir: Path = typer.Option(..., "-o", "--output-dir"),
    calibrate: bool = typer.Option(True, help="Fit the variance-head factor on Validation."),
    overwrite: bool = typer.Option(False, help="Replace an existing release."),
) -> None:
    """Export a checkpoint to the release format (config.json + model.safetensors + card)."""
    from s2l8h.train.config import ConfigError, load_config
    from s2l8h.train.run import export

    try:
        settings = load_config(config, set_ or [])
        folder = export(settings, checkpoint, output_dir, calibrate=calibrate,
                        overwrite=overwrite)
    except (*EXPECTED_ERRORS, ConfigError, FileNotFoundError) as error:
        fail(error)
    console.print(f"exported {folder}")
