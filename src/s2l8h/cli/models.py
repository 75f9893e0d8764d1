"""``s2l8h models``: list and inspect models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from s2l8h.cli._common import console, fail

app = typer.Typer(help="List and inspect models.", no_args_is_help=True)


def _spec_parameters(architecture: str, config: dict) -> int:
    import torch

    from s2l8h.models import count_parameters
    from s2l8h.models.registry import build_network

    with torch.device("meta"):
        return count_parameters(build_network(architecture, config))


@app.command("list")
def list_command() -> None:
    """Registered models: parameters, multiply-adds per output pixel, release, convention."""
    from s2l8h.models import get_spec, list_models, macs_per_output_pixel

    table = Table(title="s2l8h models")
    for column in ("name", "params", "MACs/px", "hub id", "input convention"):
        table.add_column(column)
    for name in list_models():
        spec = get_spec(name)
        params = _spec_parameters(spec.architecture, spec.config)
        macs = macs_per_output_pixel(spec.architecture, spec.config, spec.convention)
        table.add_row(name, f"{params:,}", f"{macs / 1e6:.3f} M", spec.hub_id or "-",
                      spec.convention.describe())
    console.print(table)


@app.command("info")
def info_command(
    source: str = typer.Argument(..., help="Registered name, weights folder/file or hub id."),
) -> None:
    """Architecture, convention and size of a registered model or of weights on disk."""
    from s2l8h.models import (
        ModelLoadError,
        count_parameters,
        get_spec,
        list_models,
        load_model,
        macs_per_output_pixel,
    )

    if source in list_models() and not Path(source).exists():
        spec = get_spec(source)
        architecture, config, convention = spec.architecture, spec.config, spec.convention
        params = _spec_parameters(architecture, config)
        lines = {"name": spec.name, "hub id": spec.hub_id or "-",
                 "description": spec.description}
    else:
        try:
            model = load_model(source)
        except ModelLoadError as error:
            fail(error)
        architecture, config, convention = model.architecture, model.config.to_dict(), \
            model.convention
        params = count_parameters(model)
        lines = {"name": model.name or "-", "provenance": str(model.provenance)}
    macs = macs_per_output_pixel(architecture, config, convention)
    lines.update({
        "architecture": architecture,
        "config": ", ".join(f"{key}={value}" for key, value in config.items()),
        "parameters": f"{params:,}",
        "MACs per output pixel": f"{macs:,.0f}",
        "input convention": convention.describe(),
    })
    for key, value in lines.items():
        console.print(f"[bold]{key}[/bold]: {value}")
