"""Checks of the harmonize options at the boundary, before any work is done.

Every check raises :class:`s2l8h.errors.OptionError` naming the option (as the command line
spells it) and the value, so the CLI and the Python API fail the same way.
"""

from __future__ import annotations

import math

import torch
from odc.geo.geobox import GeoBox

from s2l8h.errors import OptionError

#: Largest grid (pixels) the model or the writer is asked to fill: 1.5 Gpx is about three whole
#: Landsat scenes at 10 m (a WRS-2 scene is about 185 km x 180 km, 0.33 Gpx at 10 m).
MAX_GRID_PIXELS = 1_500_000_000
UNCERTAINTY_METHODS = ("auto", "ensemble", "mc-dropout", "head", "none")
OUTPUT_DTYPES = ("uint16", "float32")


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
    if resolution is not None and not (math.isfinite(resolution) and resolution > 0):
        raise OptionError(f"--resolution must be a positive number, got {resolution}")
    if not isinstance(mc_passes, int) or mc_passes < 2:
        raise OptionError(f"--mc-passes must be 2 or more, got {mc_passes}")
    if dtype not in OUTPUT_DTYPES:
        raise OptionError(f"--dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if uncertainty not in UNCERTAINTY_METHODS:
        raise OptionError(f"--uncertainty must be one of {', '.join(UNCERTAINTY_METHODS)}, "
                          f"got {uncertainty!r}")
    if dropout is not None and not (0 <= dropout < 1):
        raise OptionError(f"--dropout must be in [0, 1), got {dropout}")


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
            f"the {what} would be {grid.height:,} x {grid.width:,} px ({pixels / 1e9:.1f} Gpx), "
            f"more than the limit of {MAX_GRID_PIXELS / 1e9:.1f} Gpx (about three whole "
            "Landsat scenes at 10 m); check --bounds and --resolution (CRS units) or --like")
