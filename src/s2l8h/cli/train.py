"""``s2l8h simulate-dataset``, ``s2l8h train`` and ``s2l8h export``."""

from __future__ import annotations

import logging
import shlex
import sys
import warnings
from pathlib import Path

import typer

from s2l8h.cli._common import console
from s2l8h.cli.harmonize import ShownWarnings, show_warnings
from s2l8h.errors import OptionError, S2L8HWarning


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
    except ValueError:
        split = ()
    if len(split) != 3 or abs(sum(split) - 1) > 1e-6 or min(split) < 0:
        raise OptionError(f"--fractions needs three numbers >= 0 that sum to 1, got "
                          f"{fractions!r}")
    if size < 1 or stride < 1:
        raise OptionError(f"--size and --stride must be 1 or more, got {size}, {stride}")
    with ShownWarnings():
        counts = build_simulated_dataset(
            sentinel2 if len(sentinel2) > 1 else sentinel2[0], output_dir, size=size,
            stride=stride, fractions=split, offset=offset, platform=platform,
            noise_std=noise, overwrite=overwrite)
    console.print(f"wrote {output_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  + " patches passing the quality filter")


def train_command(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training configuration."),
    set_: list[str] = typer.Option(None, "--set", help="Override: key.sub=value (repeat)."),
    resume: bool = typer.Option(
        False, help="Continue from last.ckpt in the checkpoints folder of output.dir."),
    export_dir: Path = typer.Option(
        None, "--export", help="After training, export the best checkpoint here (release "
        "format, calibrated variance head, model card)."),
    overwrite: bool = typer.Option(False, help="Let --export replace an existing release."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="No progress bar, no Lightning banners or tips."),
) -> None:
    """Train a model on a patch dataset (Lightning; TensorBoard logs, best/last checkpoints)."""
    from s2l8h.models.loading import check_release_folder
    from s2l8h.train.config import load_config
    from s2l8h.train.run import export, train

    settings = load_config(config, set_ or [])
    if export_dir is not None:  # before training, not after hours of it
        check_release_folder(export_dir, overwrite)
    if quiet:
        _quiet_lightning()
    with warnings.catch_warnings(record=True) as caught:  # the filters as they are
        try:
            result = train(settings, resume=resume, progress=not quiet)
        finally:  # s2l8h's own as harmonize shows them; the libraries' as Python does
            show_warnings([w for w in caught if issubclass(w.category, S2L8HWarning)])
            for w in caught:
                if not issubclass(w.category, S2L8HWarning):
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    console.print(f"best val_loss {result.best_val_loss:.5f}: {result.best_checkpoint}")
    if export_dir is not None:
        command = "s2l8h " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
        folder = export(settings, result.best_checkpoint, export_dir,
                        card={"command": command}, overwrite=overwrite)
        console.print(f"exported {folder}")


def _quiet_lightning() -> None:
    """Silence Lightning's informational output (GPU/TPU banner, model summary, tips): it is
    logged at INFO level by the ``lightning`` loggers."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning",
                 "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def export_command(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.ckpt)."),
    config: Path = typer.Option(
        None, "--config", "-c", help="The run's configuration: its data calibrate the "
        "variance head and measure the model card's numbers. Without it the model is rebuilt "
        "from the checkpoint alone (no calibration, no measurements)."),
    set_: list[str] = typer.Option(None, "--set", help="Override: key.sub=value (repeat)."),
    output_dir: Path = typer.Option(..., "-o", "--output-dir"),
    calibrate: bool = typer.Option(
        None, "--calibrate/--no-calibrate",
        help="Fit the variance-head factor on Validation (default: with --config)."),
    overwrite: bool = typer.Option(False, help="Replace an existing release."),
) -> None:
    """Export a checkpoint to the release format (config.json + model.safetensors + card)."""
    from s2l8h.models.loading import check_release_folder, read_state_dict
    from s2l8h.train.config import load_config
    from s2l8h.train.run import export

    if config is None and (calibrate or set_):
        raise OptionError("--calibrate and --set need --config (the run's configuration)")
    settings = load_config(config, set_ or []) if config is not None else None
    check_release_folder(output_dir, overwrite)
    read_state_dict(checkpoint)  # a missing or corrupt checkpoint: a clear error, early
    # The card's "Reproduce": the training run the configuration describes, then this export.
    sets = [f"--set {shlex.quote(item)}" for item in set_ or []]
    config_args = ["--config", shlex.quote(str(config)), *sets]
    card = None if config is None else {"command": [
        " ".join(["s2l8h train", *config_args]),
        " ".join(["s2l8h export", shlex.quote(str(checkpoint)), *config_args, "-o",
                  shlex.quote(str(output_dir)), *(["--no-calibrate"] if calibrate is False
                                                  else [])])]}
    folder = export(settings, checkpoint, output_dir, calibrate=calibrate is not False,
                    card=card, overwrite=overwrite)
    console.print(f"exported {folder}")
