"""Transforms on TorchGeo-style sample dicts (``image``, ``pan``, ``target`` tensors of shape
(C, H, W) on grids with the same outer edges, plus ``crs``, ``bounds`` and other metadata).

A transform is a callable ``sample -> sample``; datasets take one as ``transforms``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: The sample keys holding images on the sample's footprint (30 m, 15 m and 10 m grids), the
#: target's mask and the input's noise-free twin (:class:`s2l8h.data.pairs.SimulatedPairs`).
IMAGE_KEYS = ("image", "pan", "target", "valid", "image_noise_free", "pan_noise_free")


def dihedral(image: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    """Rotate (C, H, W) by ``rotations`` × 90° and optionally flip left-right."""
    image = torch.rot90(image, rotations, dims=(-2, -1))
    return torch.flip(image, dims=(-1,)) if flip else image


class RandomDihedral:
    """One of the eight symmetries of the square, drawn at random, applied alike to every
    image of a sample (``keys`` that the sample has), so the 30 m, 15 m and 10 m images stay
    aligned pixel for pixel. Metadata (``crs``, ``bounds``: the footprint) is unchanged.

    The draw is ``rotations`` (0-3) then ``flip``: from torch's generator (seeded per
    DataLoader worker by Lightning's ``seed_everything(workers=True)``), or from ``rng``
    (a numpy generator) when one is passed to :meth:`draw` or :meth:`__call__`.
    """

    def __init__(self, keys: Sequence[str] = IMAGE_KEYS) -> None:
        self.keys = tuple(keys)

    @staticmethod
    def draw(rng: np.random.Generator | None = None) -> tuple[int, bool]:
        """(rotations, flip) of one random symmetry."""
        if rng is not None:
            return int(rng.integers(4)), bool(rng.integers(2))
        return int(torch.randint(4, ())), bool(torch.randint(2, ()))

    def apply(self, sample: dict, rotations: int, flip: bool) -> dict:
        """A new sample with ``dihedral(image, rotations, flip)`` for each image key."""
        return {**sample, **{key: dihedral(sample[key], rotations, flip)
                             for key in self.keys if key in sample}}

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        """``sample`` under one random symmetry (see :meth:`draw`)."""
        return self.apply(sample, *self.draw(rng))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys!r})"
