"""Root of the command-line interface."""

from __future__ import annotations

import typer

from s2l8h import __version__
from s2l8h.cli import models as models_cli
from s2l8h.cli.evaluate import benchmark_command, evaluate_command
from s2l8h.cli.harmonize import demo_command, harmonize_command
from s2l8h.cli.many import harmonize_many_command
from s2l8h.cli.stac import build_dataset_command, pairs_command, search_command
from s2l8h.cli.train import export_command, simulate_dataset_command, train_command

app = typer.Typer(
    name="s2l8h",
    help="Landsat-8/9 to Sentinel-2-like 10 m imagery with deep learning and uncertainty.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_cli.app, name="models")
app.command("harmonize")(harmonize_command)
app.command("demo")(demo_command)
app.command("evaluate")(evaluate_command)
app.command("benchmark")(benchmark_command)
app.command("simulate-dataset")(simulate_dataset_command)
app.command("train")(train_command)
app.command("export")(export_command)
# AOIs such as -75.7,37.6,-75.5,37.8 start with a minus sign: not options.
AOI_SETTINGS = {"ignore_unknown_options": True}
app.command("search", context_settings=AOI_SETTINGS)(search_command)
app.command("pairs", context_settings=AOI_SETTINGS)(pairs_command)
app.command("build-dataset", context_settings=AOI_SETTINGS)(build_dataset_command)
app.command("harmonize-many", context_settings=AOI_SETTINGS)(harmonize_many_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"s2l8h {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Landsat-8/9 to Sentinel-2-like 10 m imagery with deep learning and uncertainty."""


def main() -> None:
    app(prog_name="s2l8h")
