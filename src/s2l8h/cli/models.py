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


def _registered_document(spec: Any) -> tuple[dict[str, Any], Path | None]:
    """A registered release's provenance as its bundled weights record it, and its model
    card (``({}, None)`` for weights not bundled)."""
    from s2l8h.models.loading import CONFIG_NAME
    from s2l8h.models.registry import bundled_weights

    if spec.bundled is None:
        return {}, None
    folder = Path(bundled_weights(spec))
    document = folder / CONFIG_NAME
    provenance = dict(json.loads(document.read_text()).get("provenance", {})) \
        if document.is_file() else {}
    return provenance, _card(folder)


def _card(weights: Path) -> Path | None:
    """The model card beside weights (a release folder's README.md), if there is one."""
    folder = weights if weights.is_dir() else weights.parent
    card = folder / "README.md"
    return card if card.is_file() else None


def _provenance_lines(provenances: list[dict[str, Any]],
                      labels: list[str] | None = None) -> dict[str, str]:
    """What one or more weights' provenance records say of where they came from, to read:
    the weights' origin, the training data (scenes, radiometry, sources, splits) and the
    commands that made them. A text the weights (an ensemble's members, named by
    ``labels``) share is given once; one they differ in, under each one's label."""
    labels = labels or [str(index + 1) for index in range(len(provenances))]

    def text(value: Any) -> str:  # another tool's record may hold anything
        return "" if not value else value if isinstance(value, str) else json.dumps(value)

    lines: dict[str, str] = {}
    for key in ("origin", "trained on", "made by", "s2l8h version"):
        texts = []
        for provenance in provenances:
            training = provenance.get("training")
            training = training if isinstance(training, dict) else {}
            commands = training.get("command") or []
            texts.append({"origin": text(provenance.get("weights")),
                          "trained on": text(training.get("data")),
                          "made by": "\n".join(map(text, commands))
                          if isinstance(commands, list) else text(commands),
                          "s2l8h version": text(provenance.get("s2l8h_version"))}[key])
        if len(set(texts)) == 1:
            if texts[0]:
                lines[key] = texts[0]
        else:
            lines.update({f"{key} ({label})": member_text for label, member_text in
                          zip(labels, texts, strict=True) if member_text})
    return lines


def _print_lines(lines: dict[str, str]) -> None:
    """``key: value``, a value of several lines indented below its key."""
    for key, value in lines.items():
        if "\n" in value:
            console.print(f"[bold]{key}[/bold]:")
            for line in value.splitlines():
                console.print(f"  {line}" if line else "", highlight=False)
        else:
            console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@app.command("list")
@one_line_errors
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Registered models, one row per weight release (model.tag; the bare model name
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
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: the figures as numbers, the whole configuration "
                              "and the weights' whole provenance record (each member's, for "
                              "an ensemble)."),
) -> None:
    """Architecture, convention, release, size and provenance (training data, radiometry,
    the commands that made the weights, the model card) of a registered model or of weights
    on disk."""
    from s2l8h.models import count_parameters, get_spec, load_model, macs_per_output_pixel
    from s2l8h.models.registry import find_ensemble, is_registered, list_releases

    ensemble = find_ensemble(source)
    record: dict[str, Any]
    if ensemble is not None:
        members = ensemble.members
        specs = [get_spec(member) for member in members]
        macs = sum(macs_per_output_pixel(spec.architecture, _registered_config(spec),
                                         spec.convention) for spec in specs)
        params = sum(_spec_parameters(spec.architecture, _registered_config(spec))
                     for spec in specs)
        documents = [_registered_document(spec) for spec in specs]
        lines = {"name": source, "ensemble of": ", ".join(members),
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
                 "input convention": specs[0].convention.describe()}
        record = {"name": source, "members": {
            member: {"architecture": spec.architecture, "config": _registered_config(spec),
                     "provenance": provenance, "model_card": None if card is None else str(card)}
            for member, spec, (provenance, card) in zip(members, specs, documents, strict=True)},
            "description": ensemble.description, "parameters": params,
            "macs_per_output_pixel": macs, "sigma_calibration": {
                "variance_scale": ensemble.variance_scale,
                "noise_variance_scale": ensemble.noise_variance_scale,
                "level_variance_scale": ensemble.level_variance_scale,
                "pan_variance_scale": ensemble.pan_variance_scale,
                "band_variance_factors": dict(zip(specs[0].convention.output_bands,
                                                  ensemble.band_variance_factors,
                                                  strict=True))
                if ensemble.band_variance_factors else None},
            "member_views": list(ensemble.member_views) or None,
            "input_convention": specs[0].convention.describe()}
        lines.update(_provenance_lines([provenance for provenance, _ in documents],
                                       list(members)))
        cards = [str(card) for _, card in documents if card is not None]
        if cards:
            lines["model cards"] = "\n".join(cards)
    else:
        if is_registered(source):
            spec = get_spec(source)
            architecture, config, convention = spec.architecture, _registered_config(spec), \
                spec.convention
            params = _spec_parameters(architecture, config)
            releases = ", ".join(release.name for release in list_releases(spec.name)) or "-"
            provenance, card = _registered_document(spec)
            release = spec.release
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
            provenance = dict(model.provenance)
            card = _card(Path(source)) if Path(source).exists() else None
            release = None
            lines = {"name": model.name or "-"}
        macs = macs_per_output_pixel(architecture, config, convention)
        lines.update({
            "architecture": architecture,
            "config": ", ".join(f"{key}={value}" for key, value in config.items()),
            "parameters": f"{params:,}",
            "MACs per output pixel": f"{macs:,.0f}",
            "input convention": convention.describe(),
        })
        record = {"name": lines["name"], "release": release,
                  "architecture": architecture, "config": config, "parameters": params,
                  "macs_per_output_pixel": macs, "input_convention": convention.describe(),
                  "provenance": provenance, "model_card": None if card is None else str(card)}
        lines.update(_provenance_lines([provenance]))
        if card is not None:
            lines["model card"] = str(card)
    if as_json:
        print_json(record)
        return
    _print_lines(lines)
    if len(json.dumps(record.get("provenance") or record.get("members") or {})) > 2:
        console.print(f"(the whole record: s2l8h models info {source} --json)",
                      highlight=False)
