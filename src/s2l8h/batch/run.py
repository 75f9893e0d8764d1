"""Harmonizing many scenes on dask.distributed: one task per scene on one output grid.

The engine is a ``distributed.Client``: a ``LocalCluster`` by default (``workers`` processes,
``threads_per_worker`` threads each) or any running cluster by its scheduler address
(dask-jobqueue, dask-gateway, Kubernetes: the same code path). Each task harmonizes one scene
with :func:`s2l8h.inference.harmonize.harmonize` onto the run's grid; STAC scenes are first cut
to the AOI window (:mod:`s2l8h.batch.window`). Models are loaded once per worker process (a
cached loader) and reused by its tasks.

Safety and idempotence:

- every output is written by ``harmonize`` under a temporary name and renamed, so a killed
  worker leaves no partial output (its temporary folder is removed at the end of the run);
  the scheduler reruns the task elsewhere;
- each output carries a provenance tag (inputs, models, options, grid, version); a scene
  whose output exists with the same tag is skipped, one with another tag is a failure unless
  ``overwrite``;
- before any task, what the client can check is checked (:func:`check_before_run`: the
  models load, the uncertainty method fits them, each local scene folder opens and overlaps
  the grid), so a wrong option or folder is one error, not a failure per scene;
- a scene that fails on its input or the options (s2l8h's own errors: a damaged file, say)
  is reported at once; any other failure (a network error, an unexpected exception) is
  retried ``retries`` times, then reported; other scenes go on;
- the run manifest (CSV: scene, output, status, seconds, error, source, and the warnings
  s2l8h gave a scene run in this run, done or failed: input checks, TOA mode, stale
  temporary folders; :data:`WARNING_SEPARATOR` between them) is written row by row as scenes
  finish; at the end a STAC catalogue of the products is written
  (:mod:`s2l8h.batch.catalog`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio
from odc.geo.geobox import GeoBox

from s2l8h import __version__
from s2l8h.batch.catalog import DATETIME_TAG, PROPERTIES_TAG, SOURCES_TAG, write_catalog
from s2l8h.batch.scenes import SceneSpec, scenes_from_folders
from s2l8h.batch.window import fetch_window, read_region
from s2l8h.errors import (
    CatalogError,
    InputError,
    OptionError,
    S2L8HError,
    S2L8HWarning,
    collect_warnings,
)
from s2l8h.inference.harmonize import DEFAULT_MODELS, build_predictor, harmonize, resolve_models
from s2l8h.inference.options import HarmonizeOptions
from s2l8h.io.errors import OutputError
from s2l8h.io.grid import crs_name, extent_meets
from s2l8h.io.landsat import open_scene

PROVENANCE_TAG = "S2L8H_BATCH_PROVENANCE"
#: The options that change the pixels (not batch size, device, threads): the provenance's.
PROVENANCE_OPTIONS = ("uncertainty", "tile", "overlap", "dtype", "mask_flags", "keep_flagged",
                      "toa", "mc_passes", "dropout", "register_pan", "pan_blocks", "reference",
                      "consistency", "filter_input_noise")
#: Options the run sets for each scene (its grid, tags, overwriting and progress).
RUN_OPTIONS = ("like", "crs", "bounds", "resolution", "tags")
MANIFEST_COLUMNS = ("scene", "output", "status", "seconds", "error", "source", "warnings")
#: What separates a scene's warnings in the manifest's ``warnings`` column.
WARNING_SEPARATOR = " | "
#: The attribute of a failed task's exception that holds the warnings given before it.
WARNINGS_ATTRIBUTE = "s2l8h_warnings"
#: Set true on an s2l8h error that a retry may mend (reading a STAC scene's remote assets).
RETRY_ATTRIBUTE = "s2l8h_retry"

# Models cached per worker process: (sources, dropout) -> (models, times loaded).
_MODELS: dict[tuple, list] = {}
_LOADS: dict[tuple, int] = {}
_MODELS_LOCK = threading.Lock()


def worker_models(sources: tuple[str, ...], dropout: float | None) -> list:
    """The models of ``sources``, loaded once per process and then reused."""
    key = (sources, dropout)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = resolve_models(list(sources) or None, dropout)
            _LOADS[key] = _LOADS.get(key, 0) + 1
        return _MODELS[key]


def _source_identity(source: str) -> Any:
    """A model source or reference for provenance: a name or hub id as given; a local folder
    or file with its files' sizes and modification times (new weights or a new reference
    under the same path differ)."""
    path = Path(source)
    if not path.exists():
        return source
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {"path": str(path.resolve()),
            "files": [[str(f.relative_to(path)) if path.is_dir() else f.name,
                       f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]}


def grid_identity(grid: GeoBox) -> dict[str, Any]:
    return {"crs": str(grid.crs), "transform": [round(v, 6) for v in list(grid.affine)[:6]],
            "shape": [grid.height, grid.width]}


@dataclass(frozen=True)
class SceneJob:
    """Everything one task needs (plain data: it is pickled to the worker)."""

    scene: SceneSpec
    output: str
    crs: str
    transform: tuple[float, ...]
    shape: tuple[int, int]
    options: HarmonizeOptions
    provenance: str
    overwrite: bool = False
    requester_pays: bool = False
    #: The client's process id: in another process (a worker's) s2l8h's warnings are not
    #: shown, only kept for the manifest.
    client_pid: int = 0

    @property
    def models(self) -> tuple[str, ...]:
        """The model sources (names, paths or hub ids), as given to the run."""
        return tuple(str(model) for model in self.options.models or ())

    @property
    def grid(self) -> GeoBox:
        from affine import Affine

        return GeoBox(self.shape, Affine(*self.transform), self.crs)


def provenance(scene: SceneSpec, grid: GeoBox, models: Sequence[str],
               options: dict[str, Any]) -> str:
    """The provenance tag of an output: inputs, models, options, grid and version (JSON)."""
    return json.dumps({"inputs": scene.identity(), "models": [_source_identity(m)
                                                              for m in models],
                       "options": options, "grid": grid_identity(grid),
                       "version": __version__}, sort_keys=True)


def output_state(path: str | os.PathLike[str], expected: str) -> str:
    """``missing``, ``same`` (written with this provenance), ``other`` (another provenance)
    or ``unreadable``."""
    if not os.path.exists(path):
        return "missing"
    try:
        with rasterio.open(path) as dataset:
            tag = dataset.tags().get(PROVENANCE_TAG)
    except rasterio.errors.RasterioIOError:
        return "unreadable"
    return "same" if tag == expected else "other"


def _exists_message(output: str, state: str) -> str:
    """Why an existing output (:func:`output_state` ``other`` or ``unreadable``) is not
    replaced."""
    why = "unreadable" if state == "unreadable" else \
        "written with other inputs, models or options"
    return f"{output}: exists ({why}); pass --overwrite to replace it"


def _scratch() -> str:
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):
        return tempfile.gettempdir()


def run_scene(job: SceneJob) -> dict[str, Any]:
    """One task: harmonize ``job.scene`` onto the run's grid (skip if already done). The
    warnings s2l8h gives are returned with the outcome, or, when the task fails, set on its
    exception (:data:`WARNINGS_ATTRIBUTE`), which travels back to the client with them (dask
    rebuilds an error whose message exceeds ``distributed.admin.max-error-length``, 10,000
    characters, without them). A failure that is s2l8h's own error (but a catalogue's or one
    reading a STAC scene's remote assets, which may pass) is the outcome ``failed`` with its
    one-line message (``traceback`` ``None``): retrying cannot mend it.
    In a worker process the warnings are not shown, only returned."""
    if os.getpid() != job.client_pid:
        warnings.filterwarnings("ignore", category=S2L8HWarning)
    started = time.perf_counter()
    with collect_warnings() as given:
        try:
            outcome = _run_scene(job)
        except S2L8HError as error:
            if isinstance(error, CatalogError) or getattr(error, RETRY_ATTRIBUTE, False):
                setattr(error, WARNINGS_ATTRIBUTE, list(dict.fromkeys(given)))
                raise
            outcome = {"status": "failed", "seconds": time.perf_counter() - started,
                       "error": f"{type(error).__name__}: {error}", "traceback": None,
                       "pid": os.getpid(),
                       "model_loads": _LOADS.get((job.models, job.options.dropout), 0)}
        except Exception as error:
            setattr(error, WARNINGS_ATTRIBUTE, list(dict.fromkeys(given)))
            raise
    return {**outcome, "warnings": list(dict.fromkeys(given))}


def _run_scene(job: SceneJob) -> dict[str, Any]:
    started = time.perf_counter()
    state = output_state(job.output, job.provenance)
    key = (job.models, job.options.dropout)
    info = {"pid": os.getpid(), "model_loads": _LOADS.get(key, 0)}
    if state == "same":
        return {"status": "skipped", "seconds": time.perf_counter() - started, **info}
    if state != "missing" and not job.overwrite:
        raise OutputError(_exists_message(job.output, state))
    models = worker_models(job.models, job.options.dropout)
    grid = job.grid
    tags = {PROVENANCE_TAG: job.provenance, DATETIME_TAG: job.scene.datetime or "",
            SOURCES_TAG: json.dumps(job.scene.sources()),
            PROPERTIES_TAG: json.dumps(job.scene.properties)}
    environment = {"AWS_REQUEST_PAYER": "requester"} if job.requester_pays else {}
    with tempfile.TemporaryDirectory(prefix="s2l8h-window-", dir=_scratch()) as scratch, \
            rasterio.Env(**environment):
        if job.scene.folder is not None:
            inputs = job.scene.folder
        else:
            alignment = max(int(getattr(m.config, "alignment", 1)) for m in models)
            region = read_region(grid, alignment, models[0].convention.scale)
            try:
                inputs = fetch_window(job.scene, region, Path(scratch) / "scene",
                                      need_pan=models[0].convention.use_pan,
                                      requester_pays=job.requester_pays, output=grid)
            except S2L8HError as error:  # a remote read: the network may come back
                setattr(error, RETRY_ATTRIBUTE, True)
                raise
        harmonize(inputs, job.output, job.options, models=models, crs=job.crs,
                  bounds=tuple(grid.boundingbox), resolution=grid.resolution.x,
                  overwrite=state != "missing", progress=False, tags=tags)
    info["model_loads"] = _LOADS[key]
    return {"status": "done", "seconds": time.perf_counter() - started, **info}


@dataclass
class ManyResult:
    """What :func:`harmonize_many` did: one row per scene (as in the manifest)."""

    rows: list[dict[str, Any]]
    manifest: Path
    catalog: Path | None
    grid: GeoBox
    dashboard: str | None = None
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(row["status"] == status for row in self.rows)

    @property
    def products(self) -> list[Path]:
        return [Path(row["output"]) for row in self.rows if row["status"] in ("done",
                                                                               "skipped")]


class _Manifest:
    """The run manifest, one row per finished scene, flushed as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=MANIFEST_COLUMNS)
        self._writer.writeheader()
        self._handle.flush()
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        row = {column: row.get(column, "") for column in MANIFEST_COLUMNS}
        row["seconds"] = f"{float(row['seconds'] or 0):.2f}"
        self.rows.append(row)
        self._writer.writerow(row)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def _client(scheduler: Any, workers: int, threads_per_worker: int):
    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        return scheduler, None  # a Client given by the caller
    if scheduler:
        try:
            return Client(scheduler), None
        except (OSError, TimeoutError) as error:  # unreachable, or not a scheduler
            raise OptionError(f"--scheduler {scheduler}: no dask scheduler answered ({error})"
                              ) from None
        except ValueError as error:  # a dashboard URL, an address without a port ...
            raise OptionError(f"--scheduler {scheduler}: not a scheduler address, e.g. "
                              f"tcp://HOST:8786 ({error})") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                           processes=True, dashboard_address=":0")
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _remove_stale(outputs: Sequence[str]) -> None:
    """Remove the temporary folders ``harmonize`` leaves next to an output when its worker
    was killed (``.<name>.<random>``); called when no task of the run is running."""
    for output in outputs:
        path = Path(output)
        for stale in path.parent.glob(f".{path.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)


def harmonize_many(
    scenes: Sequence[SceneSpec | str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    grid: GeoBox,
    options: HarmonizeOptions | None = None,
    *,
    torch_threads: int | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    scheduler: Any = None,
    retries: int = 2,
    requester_pays: bool = False,
    overwrite: bool = False,
    catalog: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    **harmonize_options: Any,
) -> ManyResult:
    """Harmonize ``scenes`` (:class:`SceneSpec`, or scene folders) onto ``grid`` (see
    :func:`s2l8h.batch.scenes.aoi_grid`), writing ``<output_dir>/<scene id>.tif``, a
    manifest ``manifest-<UTC time>.csv`` and a STAC catalogue ``stac/catalog.json``.

    ``scheduler``: a scheduler address, or a ``distributed.Client``; default a new
    ``LocalCluster`` of ``workers`` processes with ``threads_per_worker`` threads.
    ``torch_threads``: PyTorch threads per task (default: the machine's cores shared among
    the local workers' threads; the library default on an existing cluster). ``options``
    and ``harmonize_options`` (its fields as keyword arguments: ``models=``, ``tile=`` ...)
    are those of :func:`s2l8h.inference.harmonize.harmonize`, but for the grid, tags,
    overwriting and progress, which the run sets for each scene; models are given by name,
    path or hub id (each worker loads them once). What the client can check is checked
    first (:func:`check_before_run`); a scene failing on s2l8h's own error is reported at
    once, other failures are retried ``retries`` times and then reported, in the manifest;
    they do not stop other scenes.
    """
    from distributed import as_completed

    say = log or (lambda message: None)
    output_dir = Path(output_dir).resolve()  # the manifest's paths hold wherever it is read
    specs = [scene if isinstance(scene, SceneSpec) else None for scene in scenes]
    folders = [scene for scene, spec in zip(scenes, specs, strict=True) if spec is None]
    from_folders = iter(scenes_from_folders(folders)) if folders else iter(())
    specs = [spec if spec is not None else next(from_folders) for spec in specs]
    if not specs:
        raise OptionError("no scene to harmonize")
    options = HarmonizeOptions.build(options, **harmonize_options)
    set_by_run = [name for name in RUN_OPTIONS if getattr(options, name) is not None]
    if set_by_run:
        raise OptionError(f"harmonize_many sets {', '.join(set_by_run)} itself (the run's "
                          "grid and provenance tags)")
    _check_engine(scheduler, workers, threads_per_worker, retries, torch_threads)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir}: exists and is not a folder; the run writes a folder "
                          "of products (give a folder name)")
    sources = tuple(str(m) for m in (options.models or DEFAULT_MODELS))
    if scheduler is None and torch_threads is None:
        torch_threads = max(1, (os.cpu_count() or 1) // (workers * threads_per_worker))
    reference = {} if options.reference is None else \
        {"reference": str(Path(options.reference).resolve())}  # the same file on every worker
    options = HarmonizeOptions.build(options, models=sources, threads=torch_threads,
                                     **reference)
    recorded = options.record(PROVENANCE_OPTIONS)
    if options.reference is not None:
        recorded["reference"] = _source_identity(options.reference)
    check_before_run(specs, grid, options)
    jobs = []
    for spec in specs:
        output = output_dir / f"{spec.id}.tif"
        inputs = [*_input_files(spec), *([options.reference] if options.reference else [])]
        if output.resolve() in {Path(p).resolve() for p in inputs}:
            raise OutputError(f"{output}: is one of the run's inputs")
        jobs.append(SceneJob(spec, str(output), str(grid.crs), tuple(grid.affine)[:6],
                             (grid.height, grid.width), options,
                             provenance(spec, grid, sources, recorded), overwrite,
                             requester_pays, os.getpid()))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    details: dict[str, dict[str, Any]] = {}
    pending, settled = [], []  # settled: the manifest rows decided without a task
    for job in jobs:
        state = output_state(job.output, job.provenance)
        row = {"scene": job.scene.id, "output": job.output, "source": _source(job.scene)}
        if state == "same":
            settled.append({**row, "status": "skipped"})
            details[job.scene.id] = {"status": "skipped"}
        elif state != "missing" and not overwrite:  # refused here, as the task would
            error = OutputError(_exists_message(job.output, state))
            settled.append({**row, "status": "failed",
                            "error": f"{type(error).__name__}: {error}"})
            details[job.scene.id] = {"status": "failed", "error": error, "warnings": []}
        else:
            pending.append(job)
    refused = sum(row["status"] == "failed" for row in settled)
    say(f"{len(jobs)} scene(s): {len(settled) - refused} already done, "
        + (f"{refused} refused (output exists), " if refused else "")
        + f"{len(pending)} to run; grid {crs_name(grid.crs)} {grid.height} x {grid.width} px "
        f"at {grid.resolution.x:g} {_units(grid)}")
    # The engine first: a scheduler that does not answer leaves no manifest behind.
    client, cluster = _client(scheduler, workers, threads_per_worker) if pending else \
        (None, None)
    dashboard = None
    try:
        output_dir.mkdir(parents=True, exist_ok=True)  # once the inputs and engine are there
        manifest = _Manifest(output_dir / f"manifest-{stamp}.csv")
        try:
            say(f"manifest {manifest.path}")
            for row in settled:
                manifest.add(row)
            if client is not None:
                dashboard = client.dashboard_link
                say(f"dask scheduler {client.scheduler.address}; dashboard {dashboard}")
                futures = {client.submit(run_scene, job, key=f"s2l8h-{job.scene.id}-{stamp}",
                                         retries=retries, pure=False): job for job in pending}
                _collect(futures, as_completed, manifest, details, progress)
        finally:
            manifest.close()
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
        elif isinstance(scheduler, str) and client is not None:
            client.close()
    _remove_stale([job.output for job in jobs])  # no task of the run is running now
    result = ManyResult(manifest.rows, manifest.path, None, grid, dashboard, details)
    if catalog and result.products:
        result.catalog = write_catalog(result.products, output_dir / "stac")
    warned = sum(bool(row["warnings"]) for row in result.rows)
    say(f"done {result.count('done')}, skipped {result.count('skipped')}, failed "
        f"{result.count('failed')}" + (f", warned {warned} (see the manifest)" if warned
                                       else "")
        + (f"; catalogue {result.catalog}" if result.catalog else ""))
    return result


def _check_engine(scheduler: Any, workers: int, threads_per_worker: int, retries: int,
                  torch_threads: int | None) -> None:
    """The run's engine options, before a cluster starts (a LocalCluster of no workers
    waits for ever)."""
    if scheduler is None and (workers < 1 or threads_per_worker < 1):
        raise OptionError(f"--workers and --threads-per-worker must be 1 or more, got "
                          f"{workers} and {threads_per_worker}")
    if retries < 0:
        raise OptionError(f"--retries must be 0 or more, got {retries}")
    if torch_threads is not None and torch_threads < 1:
        raise OptionError(f"--torch-threads must be 1 or more, got {torch_threads}")


def _units(grid: GeoBox) -> str:
    """The unit of the grid's CRS, as a pixel size is written: ``m``, ``°`` ..."""
    if grid.crs.geographic:
        return "°"
    unit = grid.crs.units[0] if grid.crs.units else "m"
    return {"metre": "m", "meter": "m"}.get(unit, unit)


def _collect(futures: dict, as_completed, manifest: _Manifest,
             details: dict[str, dict[str, Any]], progress: bool) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=len(futures), desc="scenes", unit="scene", disable=not progress) as bar:
        for future in as_completed(list(futures)):
            job = futures[future]
            row = {"scene": job.scene.id, "output": job.output, "source": _source(job.scene)}
            given: list[str] = []
            if future.status == "finished":
                outcome = future.result()
                given = outcome.get("warnings", [])
                row.update(status=outcome["status"], seconds=outcome["seconds"],
                           error=outcome.get("error", ""))
                details[job.scene.id] = outcome
            elif future.status == "cancelled":
                row.update(status="failed", error="cancelled (scheduler or client lost)")
                details[job.scene.id] = {"status": "failed", "error": None, "warnings": []}
            else:
                error = future.exception()
                given = getattr(error, WARNINGS_ATTRIBUTE, [])
                row.update(status="failed", error=f"{type(error).__name__}: {error}")
                details[job.scene.id] = {"status": "failed", "error": error,
                                         "traceback": future.traceback(), "warnings": given}
            # One line per scene: a message's own line breaks become spaces.
            row["warnings"] = WARNING_SEPARATOR.join(" ".join(message.split())
                                                     for message in given)
            manifest.add(row)
            bar.update()
            future.release()


def check_before_run(specs: Sequence[SceneSpec], grid: GeoBox,
                     options: HarmonizeOptions) -> None:
    """What the client can check before any task (errors as ``harmonize`` gives them): the
    models load (``options.models``, names, paths or hub ids), the uncertainty method fits
    them, and each local scene folder opens as a Landsat scene (in TOA mode where asked) and
    overlaps ``grid``. STAC scenes are read by the tasks only."""
    models = resolve_models(list(options.models or DEFAULT_MODELS), options.dropout)
    build_predictor(models, options.uncertainty, mc_passes=options.mc_passes)
    need_pan = models[0].convention.use_pan
    for spec in specs:
        if spec.folder is None:
            continue
        scene = open_scene(spec.folder, toa=options.toa, need_pan=need_pan)
        if not extent_meets(grid, scene.bands_grid().extent):
            raise InputError(spec.folder, f"the scene does not overlap the run's grid (the AOI "
                             f"or --like raster: {crs_name(grid.crs)}, bounds "
                             f"{tuple(round(v) for v in grid.boundingbox)})")


def _source(scene: SceneSpec) -> str:
    """A scene's source for the manifest: its folder (absolute) or its catalogue id."""
    return str(Path(scene.folder).resolve()) if scene.folder is not None else scene.id


def _input_files(scene: SceneSpec) -> list[str]:
    if scene.folder is None:
        return []
    folder = Path(scene.folder)
    return [str(p) for p in folder.iterdir()] if folder.is_dir() else [str(folder)]


