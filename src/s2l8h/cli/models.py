"""``s2l8h models``: list and inspect models."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from s2l8h.cli._common import console, one_line_errors, print_json, print_table

app = typer.Typer(help="List and inspect models.", no_args_is_help=True)


def _spec_parameters(architecture: str, config: dict) -> int:
    import torch

    from s2l8h.models import count_parameters
    from s2l8h.models.registry import build_network

    with torch.device("meta"):
        return count_parameters(build_network(architecture, config))


def _registered_config(spec) -> dict:
    """The configuration of a registered model as its weights have it (bundled weights carry
    fitted values such as the calibrated ``variance_scale``)."""
    from s2l8h.models.loading import CONFIG_NAME
    from s2l8h.models.registry import bundled_weights

    if spec.bundled is not None:
        document = Path(bundled_weights(spec)) / CONFIG_NAME
        if document.is_file():
            return dict(json.loads(document.read_text())["config"])
    return dict(spec.config)


@app.command("list")
@one_line_errors
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Registered models: parameters, multiply-adds per output pixel, release, convention."""
    from s2l8h.models import get_spec, list_models, macs_per_output_pixel

    rows = []
    for name in list_models():
        spec = get_spec(name)
        config = _registered_config(spec)
        rows.append({"name": name, "parameters": _spec_parameters(spec.architecture, config),
                     "macs_per_output_pixel": macs_per_output_pixel(spec.architecture, config,
                                                                    spec.convention),
                     "hub_id": spec.hub_id, "bundled": spec.bundled,
                     "input_convention": spec.convention.describe()})
    if as_json:
        print_json(rows)
        return
    table = Table(title="s2l8h models")
    for column in ("name", "params", "MACs/px", "hub id", "input convention"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], f"{row['parameters']:,}",
                      f"{row['macs_per_output_pixel'] / 1e6:.3f} M",
                      row["hub_id"] or ("bundled" if row["bundled"] else "-"),
                      row["input_convention"])
    print_table(table)


@app.command("info")
@one_line_errors
def info_command(
    source: str = typer.Argument(..., help="Registered name, weights folder/file or hub id."),
) -> None:
    """Architecture, convention and size of a registered model or of weights on disk."""
    from s2l8h.models import (
        count_parameters,
        get_spec,
        list_models,
        load_model,
        macs_per_output_pixel,
    )

    if source in list_models() and not Path(source).exists():
        spec = get_spec(source)
        architecture, config, convention = spec.architecture, _registered_config(spec), \
            spec.convention
        params = _spec_parameters(architecture, config)
        lines = {"name": spec.name, "hub id": spec.hub_id or "-",
                 "description": spec.description}
    else:
        model = load_model(source)
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
