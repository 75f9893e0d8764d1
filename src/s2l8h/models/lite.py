"""``lite``: an efficient network that works on the native Landsat grids.

The 15 m pan is folded into 30 m pixels (pixel unshuffle, 4 channels) and joined to the six
30 m bands; a stack of residual blocks runs at 30 m; one convolution and a pixel shuffle
produce the ×3 output at 10 m, added to the bicubic ×3 of the bands (the network learns the
residual). All convolutions run at 30 m, so it costs about 1/9 of the same network at 10 m.
An optional second head gives a per-pixel variance (softplus, reflectance squared), times
``variance_scale``, a factor fitted after training so that the intervals are calibrated.

With ``pan_norm`` (a window of ``pan_norm`` 30 m pixels, odd; 0 = off) the pan is matched
locally to the intensity of the bands (the mean of blue, green and red) before the network:
P_n = (P - μ_P) · σ_I / σ_P + μ_I, with local means and standard deviations over the window
(μ_P, σ_P of the pan brought to 30 m). A Level-1 pan differs from the surface reflectance of
the bands by the sun elevation, the path radiance and the transmittance, a gain and an offset
that vary within a scene and between scenes; the matched pan keeps the pan's detail and takes
the bands' radiometry (as component-substitution pansharpening does, but locally).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from s2l8h.models._config import DictConfig


@dataclass(frozen=True)
class LiteConfig(DictConfig):
    """``width`` channels at 30 m, ``blocks`` residual blocks, ``scale`` output pixels per
    30 m pixel per axis."""

    in_channels: int = 6
    out_channels: int = 6
    width: int = 48
    blocks: int = 8
    scale: int = 3
    variance_head: bool = False
    dropout: float = 0.0
    variance_scale: float = 1.0  # post-hoc calibration factor of the variance head
    pan_norm: int = 0  # local pan-to-intensity matching window (30 m pixels, odd); 0 = off

    def __post_init__(self) -> None:
        if self.variance_scale <= 0:
            raise ValueError(f"variance_scale must be positive, got {self.variance_scale}")
        if self.width < 1 or self.blocks < 0 or self.scale < 1:
            raise ValueError(f"invalid lite config {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pan_norm < 0 or (self.pan_norm and self.pan_norm % 2 == 0):
            raise ValueError(f"pan_norm must be 0 or an odd window size, got {self.pan_norm}")

    @property
    def alignment(self) -> int:
        return 1


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, padding=1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.dropout(self.body(features))


def _local_moments(image: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Local mean and standard deviation over ``window`` x ``window`` pixels (edges
    replicated)."""
    padded = F.pad(image, [window // 2] * 4, mode="replicate")
    mean = F.avg_pool2d(padded, window, stride=1)
    square = F.avg_pool2d(padded * padded, window, stride=1)
    return mean, torch.sqrt((square - mean * mean).clamp_min(0) + 1e-8)


def match_pan(multispectral: torch.Tensor, pan: torch.Tensor, window: int) -> torch.Tensor:
    """The pan (N, 1, 2h, 2w) matched locally to the intensity of the bands (N, B, h, w)."""
    intensity = multispectral[:, :3].mean(dim=1, keepdim=True)
    pan_30 = F.avg_pool2d(pan, 2)
    mean_i, std_i = _local_moments(intensity, window)
    mean_p, std_p = _local_moments(pan_30, window)
    gain = std_i / (std_p + 1e-3)
    offset = mean_i - gain * mean_p
    return pan * F.interpolate(gain, scale_factor=2, mode="nearest") + \
        F.interpolate(offset, scale_factor=2, mode="nearest")


class LiteNet(nn.Module):
    """(multispectral (N, 6, h, w), pan (N, 1, 2h, 2w)) -> (N, 6, 3h, 3w) [, variance]."""

    def __init__(self, config: LiteConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or LiteConfig(**overrides)
        self.config = config
        width, out = config.width, config.out_channels * config.scale**2
        self.head = nn.Sequential(nn.Conv2d(config.in_channels + 4, width, 3, padding=1),
                                  nn.PReLU(width))
        self.body = nn.Sequential(*(ResidualBlock(width, config.dropout)
                                    for _ in range(config.blocks)))
        self.tail = nn.Conv2d(width, out, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start from the bicubic upsampling exactly
        nn.init.zeros_(self.tail.bias)
        if config.variance_head:
            self.tail_variance = nn.Conv2d(width, out, 3, padding=1)
            nn.init.constant_(self.tail_variance.bias, -7.0)  # start near σ = 0.03
        self.shuffle = nn.PixelShuffle(config.scale)

    def forward(self, multispectral: torch.Tensor, pan: torch.Tensor
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.config.pan_norm:
            pan = match_pan(multispectral, pan, self.config.pan_norm)
        folded = F.pixel_unshuffle(pan, 2)
        features = self.head(torch.cat([multispectral, folded], dim=1))
        features = features + self.body(features)
        scale = self.config.scale
        base = F.interpolate(multispectral[:, :self.config.out_channels], scale_factor=scale,
                             mode="bicubic", align_corners=False)
        mean = base + self.shuffle(self.tail(features))
        if self.config.variance_head:
            variance = F.softplus(self.shuffle(self.tail_variance(features))) + 1e-6
            return mean, variance * self.config.variance_scale
        return mean
