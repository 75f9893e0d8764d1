"""``s2l8h models``: list and inspect models and their weight releases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from s2l8h.cli._common import console, one_line_errors, print_json, print_table

app = typer.Typer(help="List and inspect models and their weight releases.",
                  no_args_is_help=True)


def _spec_parameters(architecture: str, config: dict[str, Any]) -> int:
    import torch

    from s2l8h.models import count_parameters
    from s2l8h.models.registry import build_network

    with torch.device("meta"):
        return count_parameters(build_network(architecture, config))


def _registered_config(spec: Any) -> dict[str, Any]:
    """The configuration of a registered release as its weights have it (bundled weights
    carry fitted values such as the calibrated ``variance_scale``)."""
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
    """Registered models, one row per weight release (``model.tag``; the bare model name
    loads the model's default release): parameters, multiply-adds per output pixel, where
    the weights are, input convention."""
    from s2l8h.models import DEFAULT_MODEL, get_spec, list_models, macs_per_output_pixel
    from s2l8h.models.registry import default_release, list_ensembles, list_releases

    default = DEFAULT_MODEL if DEFAULT_MODEL in {e.name for e in list_ensembles()} else \
        get_spec(DEFAULT_MODEL).release
    rows = []
    for model in list_models():
        default_tag = getattr(default_release(model), "tag", None)
        for name in [release.name for release in list_releases(model)] or [model]:
            spec = get_spec(name)
            config = _registered_config(spec)
            rows.append({
                "name": model, "release": spec.release, "tag": spec.tag,
                "model_default": spec.tag is not None and spec.tag == default_tag,
                "default": spec.release is not None and spec.release == default,
                "parameters": _spec_parameters(spec.architecture, config),
                "macs_per_output_pixel": macs_per_output_pixel(spec.architecture, config,
                                                               spec.convention),
                "hub_id": spec.hub_id, "bundled": spec.bundled,
                "input_convention": spec.convention.describe()})
    for ensemble in list_ensembles():
        members = [row for member in ensemble.members for row in rows
                   if member in (row["release"], row["name"]) and
                   (member == row["release"] or row["model_default"])]
        rows.append({
            "name": ensemble.name, "release": ensemble.name, "tag": None,
            "model_default": False, "default": ensemble.name == DEFAULT_MODEL,
            "parameters": sum(row["parameters"] for row in members),
            "macs_per_output_pixel": sum(row["macs_per_output_pixel"] for row in members),
            "hub_id": None, "bundled": None, "members": list(ensemble.members),
            "variance_scale": ensemble.variance_scale,
            "input_convention": members[0]["input_convention"]})
    if as_json:
        print_json(rows)
        return
    table = Table(title="s2l8h models (a bare name loads the release marked *)")
    for column in ("release", "params", "MACs/px", "weights", "input convention"):
        table.add_column(column)
    for row in rows:
        label = row["release"] or row["name"]
        if row["model_default"]:
            label += " *"
        if row["default"]:
            label += " (default of harmonize)"
        table.add_row(label, f"{row['parameters']:,}",
                      f"{row['macs_per_output_pixel'] / 1e6:.3f} M",
                      row["hub_id"] or (f"bundled {row['bundled']}" if row["bundled"] else
                                        "ensemble: " + " + ".join(row.get("members", ["-"]))),
                      row["input_convention"])
    print_table(table)


@app.command("info")
@one_line_errors
def info_command(
    source: str = typer.Argument(
        ..., help="Registered name (model or model.tag: always the registry), weights "
                  "folder/file or hub id."),
) -> None:
    """Architecture, convention, release and size of a registered model or of weights on
    disk."""
    from s2l8h.models import count_parameters, get_spec, load_model, macs_per_output_pixel
    from s2l8h.models.registry import find_ensemble, is_registered, list_releases

    ensemble = find_ensemble(source)
    if ensemble is not None:
        members = ensemble.members
        specs = [get_spec(member) for member in members]
        macs = sum(macs_per_output_pixel(spec.architecture, _registered_config(spec),
                                         spec.convention) for spec in specs)
        params = sum(_spec_parameters(spec.architecture, _registered_config(spec))
                     for spec in specs)
        for key, value in {"name": source, "ensemble of": ", ".join(members),
                           "description": ensemble.description or "-",
                           "parameters": f"{params:,}",
                           "MACs per output pixel": f"{macs:,.0f} (all members)",
                           "σ calibration": f"variance x {ensemble.variance_scale:.4g}"
                           + (f" + {ensemble.noise_variance_scale:.4g} x the input's noise "
                              "variance" if ensemble.noise_variance_scale else "")
                           + (f" + {ensemble.level_variance_scale:.4g} x the squared level "
                              "departure from the input" if ensemble.level_variance_scale
                              else "")
                           + (f" + {ensemble.pan_variance_scale:.4g} x the squared "
                              "disagreement of the pan with the bands"
                              if ensemble.pan_variance_scale else "")
                           + ("; all of it x " + " / ".join(
                               f"{value:.4g}" for value in ensemble.band_variance_factors)
                              + f" per band ({' '.join(specs[0].convention.output_bands)})"
                              if ensemble.band_variance_factors else ""),
                           "member views": ", ".join(ensemble.member_views)
                           if ensemble.member_views else "identity (all)",
                           "input convention": specs[0].convention.describe()}.items():
            console.print(f"[bold]{key}[/bold]: {value}")
        return
    if is_registered(source):
        spec = get_spec(source)
        architecture, config, convention = spec.architecture, _registered_config(spec), \
            spec.convention
        params = _spec_parameters(architecture, config)
        releases = ", ".join(release.name for release in list_releases(spec.name)) or "-"
        lines = {"name": spec.name, "release": spec.release or "-",
                 "weights": spec.hub_id or (f"bundled ({spec.bundled})" if spec.bundled
                                            else "-"),
                 "hub id": spec.hub_id or "-",
                 "description": spec.description,
                 "release description": spec.release_description or "-",
                 "releases of the model": releases}
    else:
        from s2l8h.cli.harmonize import ShownWarnings

        with ShownWarnings():
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
