"""The harmonize options (:class:`HarmonizeOptions`) and their checks at the boundary, before
any work is done.

Every check raises :class:`s2l8h.errors.OptionError` naming the option (as the command line
spells it) and the value, so the CLI, the batch runner and the Python API fail the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox
from pyproj.exceptions import CRSError

from s2l8h.errors import OptionError
from s2l8h.inference.tiling import MAX_BLOCK_WIDTH, PRECISIONS
from s2l8h.io.quality import DEFAULT_MASK_FLAGS, FLAGS
from s2l8h.options import Options

if TYPE_CHECKING:
    from s2l8h.models.harmonizer import Harmonizer

#: Largest grid (pixels) the model or the writer is asked to fill: 1.5 Gpx is about three whole
#: Landsat scenes at 10 m (a WRS-2 scene is about 185 km x 180 km, 0.33 Gpx at 10 m).
MAX_GRID_PIXELS = 1_500_000_000
UNCERTAINTY_METHODS = ("auto", "ensemble", "mc-dropout", "head", "none")
OUTPUT_DTYPES = ("uint16", "float32")


def default_resolution(crs: object) -> float:
    """10 m in the units of ``crs``: metres, or degrees (10 m of arc at the equator) in a
    geographic CRS."""
    from odc.geo import CRS

    return 10.0 / 111_320.0 if CRS(crs).geographic else 10.0


def check_resolution(resolution: float | None) -> None:
    """``--resolution``: a positive number of output CRS units, or none."""
    if resolution is not None and not (math.isfinite(resolution) and resolution > 0):
        raise OptionError(f"--resolution must be a positive number, got {resolution}")


def check_options(*, tile: int, overlap: int, batch_size: int, threads: int | None,
                  resolution: float | None, mc_passes: int, dtype: str, uncertainty: str,
                  dropout: float | None) -> None:
    """Reject option values no run can use (sizes in output pixels, resolution in output CRS
    units)."""
    if not isinstance(tile, int) or tile < 16:
        raise OptionError(f"--tile must be at least 16 output pixels, got {tile}")
    if not isinstance(overlap, int) or overlap < 0:
        raise OptionError(f"--overlap must be 0 or more output pixels, got {overlap}")
    if overlap * 2 > tile:
        raise OptionError(f"--overlap ({overlap}) must be at most half the tile ({tile})")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise OptionError(f"--batch-size must be 1 or more, got {batch_size}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise OptionError(f"--threads must be 1 or more, got {threads}")
    check_resolution(resolution)
    if not isinstance(mc_passes, int) or mc_passes < 2:
        raise OptionError(f"--mc-passes must be 2 or more, got {mc_passes}")
    if dtype not in OUTPUT_DTYPES:
        raise OptionError(f"--dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if uncertainty not in UNCERTAINTY_METHODS:
        raise OptionError(f"--uncertainty must be one of {', '.join(UNCERTAINTY_METHODS)}, "
                          f"got {uncertainty!r}")
    if dropout is not None and not (0 <= dropout < 1):
        raise OptionError(f"--dropout must be in [0, 1), got {dropout}")


#: The options recorded in an output's ``S2L8H_OPTIONS`` tag.
TAGGED_OPTIONS = ("tile", "overlap", "mask_flags", "keep_flagged", "dtype", "mc_passes",
                  "register_pan", "pan_blocks", "consistency", "filter_input_noise",
                  "precision")


@dataclass(frozen=True)
class HarmonizeOptions(Options):
    """How to harmonize a scene (:func:`s2l8h.inference.harmonize.harmonize`), checked once
    when made (:class:`~s2l8h.errors.OptionError` on a value no run can use).

    ``models``: registered names, paths or hub ids, or loaded models (default
    :data:`~s2l8h.inference.harmonize.DEFAULT_MODELS`; ``published``: the four published
    UNets). ``uncertainty``: ``auto``, ``ensemble``, ``mc-dropout``, ``head`` or ``none``.
    Output grid: ``like`` (a raster's exact grid), or ``bounds`` (left, bottom, right, top in
    ``crs``, default the scene's CRS) snapped outwards to multiples of ``resolution`` (CRS
    units; ``None`` is 10 m). ``tile``/``overlap``/``block_width`` in output pixels
    (``block_width`` bounds the column blocks processed at a time, and so the memory).
    Pixels flagged by the quality band (``mask_flags``) get mask 2 and nodata, unless
    ``keep_flagged``. ``toa`` allows a Level-1-only scene. ``tags``: extra file tags (e.g. a
    batch run's provenance). ``precision``: ``fp32`` (exact), ``bf16`` or ``fp16``
    (automatic mixed precision). ``register_pan``: correct a measured pan shift above 2 m;
    ``pan_blocks``: measured and corrected block by block as the scene is read
    (:mod:`s2l8h.inference.panreg`), or, ``False``, one shift for the scene.
    ``reference``: a raster of the scene's area in the Sentinel-2 geometry (a Sentinel-2
    band or stack of any date and processing level) to register the whole scene to before
    harmonizing (:mod:`s2l8h.inference.coregister`); ``None``: the scene as georeferenced.
    ``consistency``: make the output consistent with the 30 m input
    (:mod:`s2l8h.inference.consistency`). ``filter_input_noise``: the networks see the 30 m
    bands and the pan after the input noise filter (:mod:`s2l8h.inference.denoise`; on by
    default), and the consistency step checks their output against the filtered bands.
    """

    models: tuple[str | os.PathLike[str] | Harmonizer, ...] | None = None
    uncertainty: str = "auto"
    like: str | os.PathLike[str] | None = None
    crs: object | None = None
    bounds: tuple[float, float, float, float] | None = None
    resolution: float | None = None
    tile: int = 512
    overlap: int = 64
    batch_size: int = 4
    device: str = "cpu"
    threads: int | None = None
    dtype: str = "uint16"
    mask_flags: tuple[str, ...] = DEFAULT_MASK_FLAGS
    keep_flagged: bool = False
    toa: bool = False
    mc_passes: int = 20
    dropout: float | None = None
    overwrite: bool = False
    progress: bool = True
    block_width: int = MAX_BLOCK_WIDTH
    register_pan: bool = True
    pan_blocks: bool = True
    reference: str | None = None
    consistency: bool = True
    filter_input_noise: bool = True
    tags: Mapping[str, str] | None = None
    precision: str = "fp32"

    WHAT: ClassVar[str] = "harmonize"

    def __post_init__(self) -> None:
        if self.models is not None and not isinstance(self.models, tuple):
            object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "mask_flags", tuple(self.mask_flags))
        if self.reference is not None:
            object.__setattr__(self, "reference", os.fspath(self.reference))
        if self.bounds is not None:
            object.__setattr__(self, "bounds", tuple(self.bounds))
        check_options(tile=self.tile, overlap=self.overlap, batch_size=self.batch_size,
                      threads=self.threads, resolution=self.resolution,
                      mc_passes=self.mc_passes, dtype=self.dtype,
                      uncertainty=self.uncertainty, dropout=self.dropout)
        if self.precision not in PRECISIONS:
            raise OptionError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                              f"got {self.precision!r}")
        unknown = sorted(set(self.mask_flags) - set(FLAGS))
        if unknown:
            raise OptionError(f"--mask: unknown quality flags {unknown}; known: "
                              f"{', '.join(FLAGS)}")
        if self.crs is not None:
            check_crs(self.crs)

    def record(self, names: Sequence[str] = TAGGED_OPTIONS) -> dict[str, object]:
        """The ``names`` options as JSON-ready values (tuples as lists), in that order."""
        values = {name: getattr(self, name) for name in names}
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in values.items()}


def check_crs(crs: object, option: str = "--crs") -> CRS:
    """``crs`` as an odc-geo ``CRS`` (an EPSG code, ``"EPSG:n"``, WKT or PROJ string), or an
    :class:`OptionError` naming ``option`` where pyproj does not know it."""
    try:
        return CRS(crs)
    except (CRSError, TypeError, ValueError) as error:
        raise OptionError(f"{option} {crs!r} is not a coordinate reference system pyproj "
                          f"knows ({error})") from None


def check_device(device: str | torch.device) -> torch.device:
    """The ``torch.device`` for ``device``, or an error if this machine does not have it."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(f"--device {device!r} is not a device (cpu, cuda, cuda:N, mps)") \
            from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise OptionError(f"--device {device}: no CUDA GPU is available to PyTorch here "
                              f"(torch {torch.__version__}); use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise OptionError(f"--device {device}: only {count} CUDA device(s) "
                              f"(cuda:0..cuda:{count - 1})")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise OptionError(f"--device {device}: Apple MPS is not available here; "
                              "use --device cpu")
    elif parsed.type != "cpu":
        raise OptionError(f"--device {device!r}: only cpu, cuda, cuda:N and mps are supported")
    return parsed


def check_grid_size(grid: GeoBox, what: str = "output grid") -> None:
    """Refuse grids larger than :data:`MAX_GRID_PIXELS` (a typo in ``--bounds`` or
    ``--resolution`` would otherwise run for days or fill the disk)."""
    pixels = grid.height * grid.width
    if pixels > MAX_GRID_PIXELS:
        raise OptionError(
            f"the {what} would be {grid.height:,} x {grid.width:,} px ({pixels / 1e9:,.3g} "
            "Gpx), "
            f"more than the limit of {MAX_GRID_PIXELS / 1e9:.1f} Gpx (about three whole "
            "Landsat scenes at 10 m); check --bounds and --resolution (in the CRS's units: "
            "degrees in a geographic CRS) or --like")
