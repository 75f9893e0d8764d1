"""Tiled inference with overlap and smooth blending, strip by strip, in bounded memory.

Tiles are laid out on the 30 m input grid; a tile of ``t`` input pixels gives ``scale × t``
output pixels. Offsets and sizes are multiples of the model's alignment (``2**(depth-1)`` for a
UNet) so that every tile pools on the same lattice as a whole-image pass would.

Blending: along a side shared with a neighbour, a tile's weight is 0 for the outer quarter of
the overlap (``margin = overlap // 4`` output pixels), rises as a raised cosine over the middle
half and is 1 inside; two neighbours' weights sum to exactly 1 across the overlap. Sides on the
scene border keep weight 1. If ``margin`` is at least the model's receptive-field radius, the
blended result equals one whole-image forward pass up to float rounding.

The scene is processed in column blocks (at most about 8192 output pixels wide, each with
the neighbouring tiles that reach into it) and, within a block, in strips of tiles: only one
strip of inputs and weighted sums of one block is held at a time, whatever the scene's size,
and finished pixels are handed to ``emit`` as soon as no later tile touches them.

Reading, the model and writing overlap: the next strip is read in a thread while the model runs
on the current one (:func:`run_tiled` ``prefetch``), and :class:`BackgroundEmitter` runs the
emitter's work in a thread. Each stage holds at most one strip, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from s2l8h.inference.uncertainty import Predictor
from s2l8h.io.reader import Strip


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class AxisPlan:
    """Tile starts along one axis, in 30 m input pixels.

    ``padded`` (the scene size rounded up to the alignment) is what the tiles cover; the last
    tile is moved back to end there, so it may overlap its neighbour by more than ``overlap``.
    """

    size: int
    tile: int
    overlap: int
    starts: tuple[int, ...]

    @property
    def padded(self) -> int:
        return self.starts[-1] + self.tile

    def overlaps(self, index: int) -> tuple[int, int]:
        """Overlap (input px) of tile ``index`` with its previous and next neighbour."""
        lead = self.starts[index - 1] + self.tile - self.starts[index] if index > 0 else 0
        last = len(self.starts) - 1
        trail = self.starts[index] + self.tile - self.starts[index + 1] if index < last else 0
        return lead, trail


@dataclass(frozen=True)
class TilePlan:
    rows: AxisPlan
    cols: AxisPlan
    scale: int

    @property
    def count(self) -> int:
        return len(self.rows.starts) * len(self.cols.starts)


def plan_axis(size: int, tile: int, overlap: int, alignment: int) -> AxisPlan:
    """Tile starts over ``size`` input pixels (``tile`` and ``overlap`` already in input px)."""
    if size <= 0:
        raise ValueError("cannot tile an empty scene")
    tile = _round_up(max(tile, alignment), alignment)
    overlap = _round_up(overlap, alignment) if overlap > 0 else 0
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap} px at 30 m) must be smaller than the tile ({tile})")
    padded = _round_up(size, alignment)
    if padded <= tile:
        return AxisPlan(size, padded, 0, (0,))
    count = math.ceil((padded - tile) / (tile - overlap)) + 1
    # The smallest aligned tile that covers the scene with ``count`` tiles: less wasted work
    # than full-size tiles with the last one pushed back.
    tile = min(tile, _round_up(math.ceil((padded + (count - 1) * overlap) / count), alignment))
    stride = tile - overlap
    starts = [min(index * stride, padded - tile) for index in range(count)]
    return AxisPlan(size, tile, overlap, tuple(starts))


def plan_tiles(rows: int, cols: int, tile_out: int, overlap_out: int, alignment: int,
               scale: int = 3) -> TilePlan:
    """Plan tiles for a ``rows`` x ``cols`` input (30 m) scene from output-pixel sizes, rounded
    up to multiples of ``alignment`` input pixels."""
    tile = math.ceil(tile_out / scale)
    overlap = math.ceil(overlap_out / scale)
    return TilePlan(plan_axis(rows, tile, overlap, alignment),
                    plan_axis(cols, tile, overlap, alignment), scale)


def _half_ramp(length: int, overlap: int) -> np.ndarray:
    """Rising weights over the first ``overlap`` of ``length`` pixels: 0 over the first quarter,
    a raised cosine over the middle half, 1 after."""
    if overlap <= 0:
        return np.ones(length)
    margin = overlap // 4
    width = max(overlap - 2 * margin, 1)
    distance = np.arange(length, dtype=np.float64) + 0.5
    return 0.5 - 0.5 * np.cos(np.pi * np.clip((distance - margin) / width, 0.0, 1.0))


def axis_weights(axis: AxisPlan, index: int, scale: int) -> np.ndarray:
    """1-D blending weights (output pixels) of tile ``index`` along ``axis``."""
    lead, trail = axis.overlaps(index)
    length = scale * axis.tile
    return _half_ramp(length, scale * lead) * _half_ramp(length, scale * trail)[::-1]


StripReader = Callable[[int, int, int, int], Strip]
RowEmitter = Callable[[Strip, int, int, np.ndarray, np.ndarray | None], None]
MAX_BLOCK_WIDTH = 8192  # output pixels of one column block
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def autocast(device: torch.device | str, precision: Precision = "fp32"
             ) -> contextlib.AbstractContextManager:
    """The forward pass's precision: ``fp32`` exact; ``bf16``/``fp16`` PyTorch automatic mixed
    precision on ``device`` (convolutions in the low precision, outputs back to float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)


def _prefetched(read_strip: StripReader, requests: Sequence[tuple[int, int, int, int]],
                prefetch: bool) -> Iterator[Strip]:
    """``read_strip(*request)`` for each request in order; with ``prefetch`` the next one is
    read in a thread while the caller works on the current one (at most two strips held), in
    a copy of the caller's context (its warnings collectors, :func:`s2l8h.errors.warn`)."""
    if not prefetch or len(requests) < 2:
        for request in requests:
            yield read_strip(*request)
        return
    # The pool starts its thread at the first submit, inside the try: whatever interrupts
    # (a signal handler raising, say) after that reaches the finally.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2l8h-read")
    pending = None
    try:
        pending = pool.submit(contextvars.copy_context().run, read_strip, *requests[0])
        for request in requests[1:]:
            current = pending.result()
            pending = pool.submit(contextvars.copy_context().run, read_strip, *request)
            yield current
            del current
        yield pending.result()
    finally:
        if pending is not None:
            pending.cancel()
        # The caller closes the datasets the read uses once we return: never before the
        # read in flight has finished, not even when a signal handler raises meanwhile.
        wait_uninterrupted(lambda: pool.shutdown(wait=True))


def wait_uninterrupted(wait: Callable[[], None]) -> None:
    """Run ``wait`` (a join that raises nothing itself) to its end even if an asynchronous
    exception (a signal handler's ``SystemExit``, ``KeyboardInterrupt``) interrupts it; raise
    the first such exception afterwards."""
    interrupted: BaseException | None = None
    while True:
        try:
            wait()
            break
        except BaseException as error:
            interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted


class BackgroundEmitter:
    """Runs ``work(*args)`` calls in one thread, in submission order, while the caller goes on.

    At most ``depth`` calls wait (memory: that many strips of output). An exception in the
    thread is raised again in the caller at the next :meth:`submit` or at :meth:`close`;
    leaving the ``with`` block on an exception stops the thread without running what waits.
    The thread runs in a copy of the creator's context (its warnings collectors,
    :func:`s2l8h.errors.warn`).
    """

    def __init__(self, work: Callable[..., None], depth: int = 1) -> None:
        self._work = work
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._run,), name="s2l8h-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None and not self._stop.is_set():
                try:
                    self._work(*item)
                except BaseException as error:  # handed to the caller
                    self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, *args: object) -> None:
        self._raise()
        self._queue.put(args)

    def close(self) -> None:
        """Wait for everything submitted; raise the thread's exception, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            wait_uninterrupted(self._thread.join)
        self._raise()

    def __enter__(self) -> BackgroundEmitter:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:  # failing anyway: do not write the rest
            self._stop.set()
            with contextlib.suppress(BaseException):
                self.close()
        else:
            self.close()


def column_blocks(cols: AxisPlan, scale: int, max_width: int = MAX_BLOCK_WIDTH
                  ) -> list[tuple[int, int, list[int], range]]:
    """Split the tile columns into blocks of at most about ``max_width`` output pixels.

    Each block owns the output columns ``[start, end)`` between the midpoints of the overlaps
    at its edges, and needs every tile that reaches into them (its own tiles and the edge tiles
    of its neighbours), so its owned pixels get exactly the blended values of a single pass.
    Returns ``(start, end, needed tile indices, owned tile indices)`` per block.
    """
    count = len(cols.starts)
    stride_out = scale * (cols.tile - cols.overlap)
    per_block = max(1, max_width // max(stride_out, 1))

    def boundary(index: int) -> int:  # midpoint of the overlap of tiles index-1 and index
        return scale * ((cols.starts[index] + cols.starts[index - 1] + cols.tile) // 2)

    blocks = []
    for first in range(0, count, per_block):
        last = min(first + per_block, count)
        start = 0 if first == 0 else boundary(first)
        end = scale * cols.padded if last == count else boundary(last)
        needed = [index for index, col0 in enumerate(cols.starts)
                  if scale * col0 < end and scale * (col0 + cols.tile) > start]
        blocks.append((start, end, needed, range(first, last)))
    return blocks


def run_tiled(
    predictor: Predictor,
    plan: TilePlan,
    read_strip: StripReader,
    emit: RowEmitter,
    *,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
    max_block_width: int = MAX_BLOCK_WIDTH,
    precision: Precision = "fp32",
    prefetch: bool = True,
    timings: dict[str, float] | None = None,
) -> None:
    """Run ``predictor`` over the plan, column block by column block, strip by strip.

    ``read_strip(row0, rows, col0, cols)`` returns the :class:`~s2l8h.io.reader.Strip` of
    input rows ``[row0, row0 + rows)`` and columns ``[col0, col0 + cols)`` of the padded
    scene (multispectral (B, rows, cols), pan (1, 2 rows, 2 cols) or None, valid (rows, cols)),
    invalid inputs filled with finite values. ``emit(strip, out_row0, out_col0, mean,
    variance)`` receives finished output pixels (``mean`` (6, r, c), NaN where no tile
    contributed) with the strip whose tiles made them (its mask covers them). Memory holds one
    strip of one column block (tile height x ``max_block_width`` output pixels plus one tile
    each side), whatever the scene's size. ``progress(n)`` counts tiles (skipped ones
    included). ``emit`` is called exactly once per ``read_strip`` call, in the same order. With
    ``prefetch`` the next strip is read in a thread while the model runs (``read_strip`` must
    then not share GDAL datasets with ``emit``). ``precision``: see :func:`autocast`.
    ``timings`` (if given) accumulates seconds of this thread: ``model`` (forward passes and
    blending), ``wait_read`` (waiting for strips) and ``emit`` (in ``emit``).
    """
    clock = {"model": 0.0, "wait_read": 0.0, "emit": 0.0} if timings is None else timings
    for key in ("model", "wait_read", "emit"):
        clock.setdefault(key, 0.0)
    scale = plan.scale
    rows, cols = plan.rows, plan.cols
    col_weights = [axis_weights(cols, index, scale) for index in range(len(cols.starts))]
    with_variance = predictor.gives_variance
    blocks = column_blocks(cols, scale, max_block_width)
    requests = []
    for _, _, needed, _ in blocks:
        span0 = cols.starts[needed[0]]
        span = cols.starts[needed[-1]] + cols.tile - span0
        requests.extend((row0, rows.tile, span0, span) for row0 in rows.starts)
    with contextlib.closing(_prefetched(read_strip, requests, prefetch)) as strips:
        for own_start, own_end, needed, owned in blocks:
            span0 = cols.starts[needed[0]]
            span = cols.starts[needed[-1]] + cols.tile - span0
            width_out = scale * span
            keep = slice(own_start - scale * span0, own_end - scale * span0)
            carry: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None = None
            carry_row0 = 0
            for row_index, row0 in enumerate(rows.starts):
                waited = time.perf_counter()
                strip = next(strips)
                multispectral, pan, valid = strip.multispectral, strip.pan, strip.valid
                started = time.perf_counter()
                clock["wait_read"] += started - waited
                strip_out0 = scale * row0
                height_out = scale * rows.tile
                mean_sum = np.zeros((6, height_out, width_out), dtype=np.float32)
                variance_sum = np.zeros_like(mean_sum) if with_variance else None
                weight_sum = np.zeros((height_out, width_out), dtype=np.float32)
                if carry is not None:  # rows still open from the previous strip
                    offset = carry_row0 - strip_out0
                    count = carry[0].shape[1]
                    mean_sum[:, offset:offset + count] = carry[0]
                    if variance_sum is not None and carry[1] is not None:
                        variance_sum[:, offset:offset + count] = carry[1]
                    weight_sum[offset:offset + count] = carry[2]
                row_weight = axis_weights(rows, row_index, scale)
                batch: list[tuple[int, int]] = []
                for col_index in needed:
                    col0 = cols.starts[col_index] - span0
                    counted = 1 if col_index in owned else 0
                    if not valid[:, col0:col0 + cols.tile].any():
                        if progress and counted:
                            progress(1)
                        continue
                    batch.append((col_index, col0))
                    if len(batch) == batch_size:
                        _predict_batch(predictor, batch, multispectral, pan, cols.tile, scale,
                                       device, row_weight, col_weights, mean_sum, variance_sum,
                                       weight_sum, precision)
                        if progress:
                            progress(sum(1 for index, _ in batch if index in owned))
                        batch = []
                if batch:
                    _predict_batch(predictor, batch, multispectral, pan, cols.tile, scale, device,
                                   row_weight, col_weights, mean_sum, variance_sum, weight_sum,
                                   precision)
                    if progress:
                        progress(sum(1 for index, _ in batch if index in owned))
                last = row_index == len(rows.starts) - 1
                done = height_out if last else scale * (rows.starts[row_index + 1] - row0)
                emitting = time.perf_counter()
                clock["model"] += emitting - started
                _emit_rows(emit, strip, strip_out0, own_start, mean_sum[:, :done, keep],
                           None if variance_sum is None else variance_sum[:, :done, keep],
                           weight_sum[:done, keep])
                clock["emit"] += time.perf_counter() - emitting
                carry = (mean_sum[:, done:].copy(),
                         None if variance_sum is None else variance_sum[:, done:].copy(),
                         weight_sum[done:].copy())
                carry_row0 = strip_out0 + done


def _predict_batch(predictor: Predictor, batch: list[tuple[int, int]],
                   multispectral: np.ndarray, pan: np.ndarray | None, tile: int, scale: int,
                   device: torch.device | str, row_weight: np.ndarray,
                   col_weights: list[np.ndarray], mean_sum: np.ndarray,
                   variance_sum: np.ndarray | None, weight_sum: np.ndarray,
                   precision: Precision = "fp32") -> None:
    ms_tiles = np.stack([multispectral[:, :, col0:col0 + tile] for _, col0 in batch])
    ms_tensor = torch.from_numpy(ms_tiles).to(device)
    pan_tensor = None
    if pan is not None:
        pan_tiles = np.stack([pan[:, :, 2 * col0:2 * (col0 + tile)] for _, col0 in batch])
        pan_tensor = torch.from_numpy(pan_tiles).to(device)
    with autocast(device, precision):
        mean, variance = predictor(ms_tensor, pan_tensor)
    mean = mean.float().cpu().numpy()
    variance = None if variance is None else variance.float().cpu().numpy()
    width = scale * tile
    for index, (col_index, col0) in enumerate(batch):
        weight = np.outer(row_weight, col_weights[col_index]).astype(np.float32)
        x0 = scale * col0
        mean_sum[:, :, x0:x0 + width] += mean[index] * weight
        if variance_sum is not None and variance is not None:
            variance_sum[:, :, x0:x0 + width] += variance[index] * weight
        weight_sum[:, x0:x0 + width] += weight


def _emit_rows(emit: RowEmitter, strip: Strip, out_row0: int, out_col0: int,
               mean_sum: np.ndarray, variance_sum: np.ndarray | None,
               weight_sum: np.ndarray) -> None:
    covered = weight_sum > 0
    safe = np.where(covered, weight_sum, 1.0)
    mean = np.where(covered, mean_sum / safe, np.nan).astype(np.float32)
    variance = None
    if variance_sum is not None:
        variance = np.where(covered, variance_sum / safe, np.nan).astype(np.float32)
    emit(strip, out_row0, out_col0, mean, variance)


def predict_array(
    predictor: Predictor,
    multispectral: np.ndarray,
    pan: np.ndarray | None,
    *,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    valid: np.ndarray | None = None,
    max_block_width: int = MAX_BLOCK_WIDTH,
    precision: Precision = "fp32",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Tiled prediction over in-memory arrays (multispectral (B, h, w) at 30 m, pan (1, 2h, 2w)).

    Returns ``(mean, variance)`` of shape (6, scale h, scale w). Inputs are padded at the
    bottom/right by edge replication to the tile plan and the output cropped back. The
    variance is the predictor's: the per-scene noise term of a calibrated ensemble, which
    ``harmonize`` adds, is not in it (add :func:`s2l8h.inference.harmonize.noise_variance`).
    """
    _, height, width = multispectral.shape
    scale = predictor.models[0].convention.scale
    plan = plan_tiles(height, width, tile, overlap, predictor.alignment, scale)
    pad_rows, pad_cols = plan.rows.padded - height, plan.cols.padded - width
    padded_ms = np.pad(multispectral, ((0, 0), (0, pad_rows), (0, pad_cols)), mode="edge")
    padded_pan = None
    if pan is not None:
        padded_pan = np.pad(pan, ((0, 0), (0, 2 * pad_rows), (0, 2 * pad_cols)), mode="edge")
    valid_mask = np.ones((height, width), dtype=bool) if valid is None else valid
    padded_valid = np.pad(valid_mask, ((0, pad_rows), (0, pad_cols)), constant_values=False)
    mean_out = np.full((6, scale * plan.rows.padded, scale * plan.cols.padded), np.nan,
                       dtype=np.float32)
    variance_out = np.full_like(mean_out, np.nan) if predictor.gives_variance else None

    def read_strip(row0: int, rows: int, col0: int, cols: int) -> Strip:
        ms = np.ascontiguousarray(padded_ms[:, row0:row0 + rows, col0:col0 + cols],
                                  dtype=np.float32)
        strip_pan = None
        if padded_pan is not None:
            strip_pan = np.ascontiguousarray(
                padded_pan[:, 2 * row0:2 * (row0 + rows), 2 * col0:2 * (col0 + cols)],
                dtype=np.float32)
        return Strip(row0, col0, ms, strip_pan, padded_valid[row0:row0 + rows, col0:col0 + cols])

    def emit(_: Strip, out_row0: int, out_col0: int, mean: np.ndarray,
             variance: np.ndarray | None) -> None:
        window = (slice(None), slice(out_row0, out_row0 + mean.shape[1]),
                  slice(out_col0, out_col0 + mean.shape[2]))
        mean_out[window] = mean
        if variance_out is not None and variance is not None:
            variance_out[window] = variance

    run_tiled(predictor, plan, read_strip, emit, batch_size=batch_size, device=device,
              max_block_width=max_block_width, precision=precision)
    crop = (slice(None), slice(0, scale * height), slice(0, scale * width))
    return mean_out[crop], None if variance_out is None else variance_out[crop]
