"""Root of the command-line interface."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from s2l8h import __version__
from s2l8h.cli import models as models_cli
from s2l8h.cli._common import one_line_errors
from s2l8h.cli.evaluate import benchmark_command, evaluate_command, qa_command
from s2l8h.cli.harmonize import demo_command, harmonize_command
from s2l8h.cli.many import harmonize_many_command
from s2l8h.cli.stac import (
    build_dataset_command,
    pairs_command,
    reference_command,
    search_command,
)
from s2l8h.cli.train import export_command, simulate_dataset_command, train_command

app = typer.Typer(
    name="s2l8h",
    help="Landsat-8/9 to Sentinel-2-like 10 m imagery with deep learning and uncertainty.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models_cli.app, name="models")
# Every command turns the project's own errors (s2l8h.errors) into one line; others keep
# their traceback.
app.command("harmonize")(one_line_errors(harmonize_command))
app.command("demo")(one_line_errors(demo_command))
app.command("evaluate")(one_line_errors(evaluate_command))
app.command("benchmark")(one_line_errors(benchmark_command))
app.command("qa")(one_line_errors(qa_command))
app.command("simulate-dataset")(one_line_errors(simulate_dataset_command))
app.command("train")(one_line_errors(train_command))
app.command("export")(one_line_errors(export_command))
# AOIs such as -75.7,37.6,-75.5,37.8 start with a minus sign: not options.
AOI_SETTINGS = {"ignore_unknown_options": True}
app.command("search", context_settings=AOI_SETTINGS)(one_line_errors(search_command))
app.command("pairs", context_settings=AOI_SETTINGS)(one_line_errors(pairs_command))
app.command("reference", context_settings=AOI_SETTINGS)(one_line_errors(reference_command))
app.command("build-dataset", context_settings=AOI_SETTINGS)(
    one_line_errors(build_dataset_command))
app.command("harmonize-many", context_settings=AOI_SETTINGS)(
    one_line_errors(harmonize_many_command))


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


#: Signals that end a run the way Ctrl-C does: temporary files removed, nothing half-written.
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP (a scheduler's time-out, a closed terminal, an OOM
    killer's first signal) raise ``SystemExit(128 + signal)`` in the main thread, so the
    cleanup that Ctrl-C gets (temporary folders removed, no partial output) runs too."""
    previous = {signum: signal.signal(signum, _terminate) for signum in TERMINATING_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> None:
    with terminate_cleanly():
        app(prog_name="s2l8h")
