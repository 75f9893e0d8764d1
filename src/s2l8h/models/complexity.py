"""Parameter counts and multiply-adds per output pixel, counted on the meta device."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from s2l8h.models.convention import InputConvention
from s2l8h.models.harmonizer import Harmonizer
from s2l8h.models.registry import build_network


def count_parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def macs_per_output_pixel(
    architecture: str, config: dict[str, Any], convention: InputConvention, lowres_size: int = 64
) -> float:
    """Multiply-adds of one forward pass per 10 m output pixel.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix
    products; interpolation is not counted) on meta tensors, so nothing is computed.
    ``lowres_size`` is the 30 m input size; the output is ``scale`` times larger.
    """
    with torch.device("meta"):
        model = Harmonizer(build_network(architecture, config), convention, architecture)
        multispectral = torch.empty(1, len(convention.multispectral_bands), lowres_size,
                                    lowres_size)
        pan = torch.empty(1, 1, 2 * lowres_size, 2 * lowres_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(multispectral, pan)
    output_pixels = (convention.scale * lowres_size) ** 2
    return counter.get_total_flops() / 2 / output_pixels
