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

With ``glp_window`` (30 m pixels, odd; 0 = off) the residual is added to a local MTF-GLP
pansharpening of the bands instead of their bicubic ×3 (Aiazzi et al. 2006, "MTF-tailored
multiscale fusion of high-resolution MS and Pan imagery", Photogramm. Eng. Remote Sens. 72(5),
591-596): ``MS_k + g_k (P - P_L)`` on the 10 m grid, ``P`` the (matched) pan ×1.5 (bicubic),
``P_L`` the pan through the Gaussian matched to the Landsat MTF (0.3 at the 30 m Nyquist),
averaged to 30 m and ×3 (bicubic), ``g_k = cov(MS_k, P_L) / var(P_L)`` over the window at
30 m (regression-based injection, local so that tiles agree). The network then learns what
classical pansharpening misses, and falls back on it where it has little to add. With
``glp_bands`` = 3 only blue, green and red (the pan's spectral range, 0.50-0.68 µm) get this
base; NIR and SWIR keep the bicubic one.
"""

from __future__ import annotations

import contextlib
import math
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
    glp_window: int = 0  # local MTF-GLP base's gain window (30 m pixels, odd); 0 = bicubic
    glp_bands: int = 6  # the MTF-GLP base for the first this many bands, bicubic for the rest

    def __post_init__(self) -> None:
        if self.variance_scale <= 0:
            raise ValueError(f"variance_scale must be positive, got {self.variance_scale}")
        if self.width < 1 or self.blocks < 0 or self.scale < 1:
            raise ValueError(f"invalid lite config {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pan_norm < 0 or (self.pan_norm and self.pan_norm % 2 == 0):
            raise ValueError(f"pan_norm must be 0 or an odd window size, got {self.pan_norm}")
        if self.glp_window < 0 or (self.glp_window and self.glp_window % 2 == 0):
            raise ValueError(f"glp_window must be 0 or an odd window size, got "
                             f"{self.glp_window}")
        if self.glp_window and not 0 <= self.glp_bands <= self.out_channels:
            raise ValueError(f"glp_bands must be 0-{self.out_channels}, got {self.glp_bands}")

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


def _local_mean(image: torch.Tensor, window: int) -> torch.Tensor:
    """Local mean over ``window`` x ``window`` pixels (edges replicated)."""
    return F.avg_pool2d(F.pad(image, [window // 2] * 4, mode="replicate"), window, stride=1)


def _local_moments(image: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Local mean and standard deviation over ``window`` x ``window`` pixels (edges
    replicated)."""
    mean = _local_mean(image, window)
    square = _local_mean(image * image, window)
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


#: σ of the Gaussian with modulation 0.3 at the 30 m Nyquist frequency, in 15 m pan pixels
#: (:func:`s2l8h.resolution.psf_sigma` (30) / 15; ``models`` does not import the layers above).
PAN_MTF_SIGMA = math.sqrt(-math.log(0.3) / 2) / (math.pi * 0.5 / 30.0) / 15.0
#: Injection gains are held within ± this (a flat window has no defined regression).
MAX_GLP_GAIN = 3.0


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``image`` (N, 1, H, W) through a Gaussian of ``sigma`` pixels (±3σ, edges
    replicated)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image, [radius] * 4, mode="replicate")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1))


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager[None]:
    """Autocast disabled on ``device_type``; nothing to disable on the meta device (where the
    multiply-adds are counted), which has no autocast."""
    if device_type == "meta":
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)


def glp_base(multispectral: torch.Tensor, pan: torch.Tensor, window: int, scale: int = 3
             ) -> torch.Tensor:
    """Local MTF-GLP of the bands (N, B, h, w) with the pan (N, 1, 2h, 2w) on the ×``scale``
    grid (module docstring); (N, B, scale h, scale w), reflectance as the bands."""
    height, width = multispectral.shape[-2:]
    size = (scale * height, scale * width)
    pan_low = F.avg_pool2d(_gaussian_blur(pan, PAN_MTF_SIGMA), 2)  # (N, 1, h, w)
    mean_p, std_p = _local_moments(pan_low, window)
    mean_mp = _local_mean(multispectral * pan_low, window)
    mean_m = _local_mean(multispectral, window)
    gain = ((mean_mp - mean_m * mean_p) / (std_p * std_p + 1e-6)).clamp(-MAX_GLP_GAIN,
                                                                        MAX_GLP_GAIN)
    detail = F.interpolate(pan, size=size, mode="bicubic", align_corners=False) - \
        F.interpolate(pan_low, size=size, mode="bicubic", align_corners=False)
    upsampled = F.interpolate(multispectral, size=size, mode="bicubic", align_corners=False)
    return upsampled + F.interpolate(gain, size=size, mode="bilinear",
                                     align_corners=False) * detail


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
        bands = multispectral[:, :self.config.out_channels]
        base = F.interpolate(bands, scale_factor=scale, mode="bicubic", align_corners=False)
        sharpened = self.config.glp_bands if self.config.glp_window else 0
        if sharpened:
            # in float32 even under autocast: the local moments are differences of products
            with _autocast_off(bands.device.type):
                fused = glp_base(bands[:, :sharpened].float(), pan.float(),
                                 self.config.glp_window, scale)
            base = torch.cat([fused.to(base.dtype), base[:, sharpened:]], dim=1)
        mean = base + self.shuffle(self.tail(features))
        if self.config.variance_head:
            variance = F.softplus(self.shuffle(self.tail_variance(features))) + 1e-6
            return mean, variance * self.config.variance_scale
        return mean
