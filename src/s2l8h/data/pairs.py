"""Training pairs simulated on the fly from Sentinel-2 scenes, each with its own random
:class:`~s2l8h.data.simulate.Degradation`.

A :class:`SceneSource` names a Sentinel-2 scene (band files as :func:`read_sentinel2` reads
them), its radiometry and where it comes from, and how its rows split into Train /
Validation / Test bands (spatially disjoint: a sample window, margin included, lies inside
one band). :class:`SimulatedPairs` draws windows of the scenes of one split, applies a
random dihedral symmetry and a random degradation, and returns TorchGeo-style sample dicts:

- ``image``: (6, s, s) Landsat OLI reflectance on a 30 m grid (blue ... swir22),
- ``pan``: (1, 2s, 2s) pan ρ' on the 15 m grid with the same outer edges,
- ``target``: (6, 3s, 3s) Sentinel-2 reflectance on the 10 m grid (B02 ... B12),
- ``valid``: (1, 3s, 3s) the target pixels to score (all true: windows are fully valid),
- ``crs`` (str) and ``bounds`` (left, bottom, right, top of the target window, CRS units;
  before the symmetry), ``scene`` (its name) and ``noise_scale`` (of the draw),
- with ``noise_free_twin``: ``image_noise_free`` and ``pan_noise_free``, the same
  observation without its sensor noise.

Training draws are random (torch's generator, seeded by Lightning); validation and test
draws are fixed by ``seed`` and the sample index, so their losses are comparable between
epochs and runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from odc.geo.geobox import GeoBox
from torch.utils.data import Dataset

from s2l8h.data.patches import SPLITS, split_rows
from s2l8h.data.simulate import (
    TRAINING_RANGES,
    Degradation,
    DegradationRanges,
    degrade,
    sample_degradation,
)
from s2l8h.data.transforms import dihedral
from s2l8h.errors import InputError
from s2l8h.io.sentinel2 import read_sentinel2

#: 10 m pixels around each target window that the simulation sees (PSF and shift support).
MARGIN = 24


@dataclass(frozen=True)
class SceneSource:
    """A Sentinel-2 scene for simulated training pairs.

    ``offset``: DN offset (-1000 from processing baseline 04.00); ``fractions``: Train,
    Validation, Test shares of the rows, top down; ``weight``: relative sampling weight per
    pixel; ``radiometry``: e.g. ``L1C TOA`` or ``L2A surface reflectance``; ``source``:
    provenance (package, file).
    """

    path: str
    offset: float = 0.0
    fractions: tuple[float, float, float] = (0.6, 0.1, 0.3)
    weight: float = 1.0
    radiometry: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class SceneArrays:
    """A scene in memory: reflectance (6, H, W) float32, valid (H, W), grid, row splits."""

    source: SceneSource
    reflectance: np.ndarray
    valid: np.ndarray
    grid: GeoBox
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)


def load_scene(source: SceneSource) -> SceneArrays:
    """Read a scene's six bands at 10 m and its row splits (in 10 m rows)."""
    reflectance, valid, grid = read_sentinel2(source.path, offset=source.offset)
    splits = split_rows(grid.height, tuple(source.fractions))
    return SceneArrays(source, reflectance, valid, grid, splits)


class SimulatedPairs(Dataset):
    """Landsat/Sentinel-2 pairs simulated from the windows of ``scenes`` in ``split``.

    ``size``: window size in 30 m pixels; ``length``: samples per epoch; ``ranges``: the
    degradation ranges, or ``None`` for the clean simulation; ``fixed``: draws fixed by
    ``seed`` and the index (validation/test) instead of random; ``transforms``: a callable
    on the sample dict. ``noise_free_twin``: each sample also holds the same observation
    without its sensor noise (``image_noise_free``, ``pan_noise_free``), for a loss on the
    output's response to that noise (:func:`s2l8h.train.losses.noise_response`).
    """

    def __init__(self, scenes: Sequence[SceneArrays], split: str = "Train", *,
                 size: int = 32, length: int = 1024,
                 ranges: DegradationRanges | None = TRAINING_RANGES, fixed: bool = False,
                 seed: int = 0, augment: bool = True,
                 transforms: Callable[[dict], dict] | None = None,
                 noise_free_twin: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split, self.size, self.length = split, size, length
        self.ranges, self.fixed, self.seed = ranges, fixed, seed
        self.augment, self.transforms = augment, transforms
        self.noise_free_twin = noise_free_twin
        window = 3 * size + 2 * MARGIN
        self.windows: list[tuple[SceneArrays, np.ndarray, np.ndarray]] = []
        weights = []
        for scene in scenes:
            first, last = scene.splits[split]
            rows = np.arange(first, last - window + 1)
            cols = np.arange(0, scene.grid.width - window + 1)
            if rows.size == 0 or cols.size == 0:
                continue
            self.windows.append((scene, rows, cols))
            weights.append(scene.source.weight * rows.size * cols.size)
        if not self.windows:
            raise InputError(None, f"no scene has room for a {window} px window in its {split} "
                             "rows (scenes: " + ", ".join(s.source.path for s in scenes) + ")")
        self.weights = np.asarray(weights) / np.sum(weights)

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        if self.fixed:
            return np.random.default_rng([self.seed, SPLITS.index(self.split), index])
        return np.random.default_rng(int(torch.randint(2**62, ())))

    def draw_window(self, rng: np.random.Generator) -> tuple[SceneArrays, int, int]:
        """A window (scene, row, col) whose pixels are all valid (tries 50 times)."""
        window = 3 * self.size + 2 * MARGIN
        for _ in range(50):
            scene, rows, cols = self.windows[rng.choice(len(self.windows), p=self.weights)]
            row, col = int(rng.choice(rows)), int(rng.choice(cols))
            if scene.valid[row:row + window, col:col + window].all():
                return scene, row, col
        raise InputError(scene.source.path, f"no fully valid {window} px window found in 50 "
                         f"draws of the {self.split} rows")

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        scene, row, col = self.draw_window(rng)
        window = 3 * self.size + 2 * MARGIN
        pixels = scene.reflectance[:, row:row + window, col:col + window]
        rotations, flip = (int(rng.integers(4)), bool(rng.integers(2))) if self.augment \
            else (0, False)
        pixels = dihedral(torch.from_numpy(np.ascontiguousarray(pixels)), rotations,
                          flip).numpy()
        degradation = sample_degradation(rng, self.ranges) if self.ranges is not None \
            else Degradation()
        multispectral, pan, _ = degrade(pixels, degradation, rng,
                                        offset_cols=2 * MARGIN, offset_rows=2 * MARGIN,
                                        rows=self.size, cols=self.size)
        inner = slice(MARGIN, MARGIN + 3 * self.size)
        target = pixels[:, inner, inner]
        affine = scene.grid.affine
        left, top = affine.c + (col + MARGIN) * affine.a, affine.f + (row + MARGIN) * affine.e
        sample = {
            "image": torch.from_numpy(multispectral.astype(np.float32)),
            "pan": torch.from_numpy(pan.astype(np.float32))[None],
            "target": torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)),
            "valid": torch.ones((1, *target.shape[-2:]), dtype=torch.bool),
            "crs": f"EPSG:{scene.grid.crs.epsg}" if scene.grid.crs.epsg
            else scene.grid.crs.wkt,
            "bounds": (left, top + 3 * self.size * affine.e, left + 3 * self.size * affine.a,
                       top),
            "scene": scene.source.name,
            "noise_scale": degradation.noise_scale,
        }
        if self.noise_free_twin:  # the noise is degrade's only use of the generator
            quiet = dataclasses.replace(degradation, noise_scale=0.0, noise_std=0.0)
            twin, twin_pan, _ = degrade(pixels, quiet, np.random.default_rng(0),
                                        offset_cols=2 * MARGIN, offset_rows=2 * MARGIN,
                                        rows=self.size, cols=self.size)
            sample["image_noise_free"] = torch.from_numpy(twin.astype(np.float32))
            sample["pan_noise_free"] = torch.from_numpy(twin_pan.astype(np.float32))[None]
        return self.transforms(sample) if self.transforms is not None else sample


def load_scenes(sources: Sequence[SceneSource | dict | str | os.PathLike[str]]
                ) -> list[SceneArrays]:
    """Load scene sources (a :class:`SceneSource`, its dict, or a path)."""
    loaded = []
    for source in sources:
        if isinstance(source, dict):
            values = dict(source)
            if "fractions" in values:
                values["fractions"] = tuple(values["fractions"])
            source = SceneSource(**values)
        elif not isinstance(source, SceneSource):
            source = SceneSource(str(source))
        loaded.append(load_scene(source))
    return loaded
