"""One interface over every network: 30 m multispectral + 15 m pan in, 10 m reflectance out."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from s2l8h.models.convention import InputConvention

ModelOutput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def split_output(output: ModelOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(mean, variance)`` of a model output; variance ``None`` without a variance head."""
    return output if isinstance(output, tuple) else (output, None)


class Harmonizer(nn.Module):
    """Wraps a network with its :class:`InputConvention`.

    ``forward(multispectral, pan)`` takes ``multispectral`` (N, B, h, w) reflectance on a 30 m
    grid and ``pan`` (N, 1, 2h, 2w) on the 15 m grid with the same outer edges, and returns
    (N, 6, scale*h, scale*w) reflectance on the 10 m grid with the same outer edges, or
    ``(mean, variance)`` when the network has a variance head.
    """

    def __init__(
        self,
        network: nn.Module,
        convention: InputConvention,
        architecture: str,
        name: str | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.convention = convention
        self.architecture = architecture
        self.name = name
        self.provenance = dict(provenance or {})
        #: The registered ensemble this model was loaded as a member of (its calibration
        #: applies when all its members run together), else None.
        self.ensemble: str | None = None

    @property
    def config(self) -> Any:
        """The network's config dataclass (``UNetConfig``, ``LiteConfig``)."""
        return self.network.config

    def describe(self) -> dict[str, Any]:
        """What rebuilds this model without its weights, as plain JSON values: ``name``,
        ``architecture``, ``config`` and ``convention`` (the release format's ``config.json``
        and the hyperparameters of a training checkpoint)."""
        return {"name": self.name, "architecture": self.architecture,
                "config": self.config.to_dict(), "convention": self.convention.to_dict()}

    @property
    def has_variance_head(self) -> bool:
        return bool(getattr(self.network.config, "variance_head", False))

    @property
    def has_dropout(self) -> bool:
        return float(getattr(self.network.config, "dropout", 0.0)) > 0

    def network_input(self, multispectral: torch.Tensor, pan: torch.Tensor | None) -> torch.Tensor:
        """The 10 m network input of the ``10m-bicubic`` convention (bands then pan)."""
        scale = self.convention.scale
        height, width = multispectral.shape[-2] * scale, multispectral.shape[-1] * scale
        upsampled = F.interpolate(
            multispectral, size=(height, width), mode="bicubic", align_corners=False
        )
        if not self.convention.use_pan:
            return upsampled
        if pan is None:
            raise ValueError("this model needs the panchromatic band")
        pan_up = F.interpolate(pan, size=(height, width), mode="bicubic", align_corners=False)
        return torch.cat([upsampled, pan_up], dim=1)

    def forward(self, multispectral: torch.Tensor, pan: torch.Tensor | None = None) -> ModelOutput:
        if self.convention.input_grid == "10m-bicubic":
            return self.network(self.network_input(multispectral, pan))
        return self.network(multispectral, pan)
