"""Views of a tile: the dihedral transforms under which an ensemble member may see its input.

A member that sees the tile rotated or flipped gives an output for the rotated or flipped
tile; :func:`undo_view` brings it back. The networks are trained on such transforms of their
pairs (random rotations and flips, :mod:`s2l8h.data.pairs`), so each view is an equally valid
reading of the tile, and members that read it in different views make less correlated errors
(the self-ensemble of Lim et al. 2017, EDSR+, without running any member twice).

Tensors are (N, C, H, W); rotations are counter-clockwise in the (H, W) plane, as
:func:`torch.rot90`. The 30 m bands, the 15 m pan and the 10 m output are nested grids with
shared corners, so a view of all three stays nested.
"""

from __future__ import annotations

import torch

#: View name -> (quarter turns, then a flip of the columns).
VIEWS: dict[str, tuple[int, bool]] = {
    "identity": (0, False),
    "rot90": (1, False),
    "rot180": (2, False),
    "rot270": (3, False),
    "flip": (0, True),
    "flip-rot90": (1, True),
    "flip-rot180": (2, True),
    "flip-rot270": (3, True),
}


def _check(view: str) -> tuple[int, bool]:
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")
    return VIEWS[view]


def apply_view(tensor: torch.Tensor, view: str) -> torch.Tensor:
    """``tensor`` as seen in ``view``: rotated, then its columns flipped."""
    turns, flip = _check(view)
    rotated = torch.rot90(tensor, turns, dims=(-2, -1)) if turns else tensor
    return rotated.flip(-1) if flip else rotated


def undo_view(tensor: torch.Tensor, view: str) -> torch.Tensor:
    """The inverse of :func:`apply_view`."""
    turns, flip = _check(view)
    unflipped = tensor.flip(-1) if flip else tensor
    return torch.rot90(unflipped, -turns, dims=(-2, -1)) if turns else unflipped


__all__ = ["VIEWS", "apply_view", "undo_view"]
