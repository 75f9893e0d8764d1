"""The UNet family of Sambandham et al. (2024), one configurable implementation.

Module and parameter names follow the paper's code (``encoding_module``, ``decoding_module``,
``Upsize``, ``conv.block``, ``final``) so that the released state dicts load strictly.
Dropout layers carry no parameters and are kept outside the ``block`` sequences, so enabling
them never shifts parameter names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from s2l8h.models._config import DictConfig

UpMode = Literal["upsample", "shuffle", "upconv"]
AttentionMode = Literal["none", "standard", "modified"]


@dataclass(frozen=True)
class UNetConfig(DictConfig):
    """Architecture of a UNet.

    ``growth_factor`` g gives level i ``2**(g + i)`` channels; ``depth`` is the number of encoder
    levels (``depth - 1`` average-pool steps). ``dropout`` > 0 adds dropout after every conv block
    (used for Monte-Carlo dropout). ``variance_head`` adds a second 1x1 head whose ReLU output is a
    per-pixel variance of the prediction (reflectance squared).
    """

    in_channels: int = 7
    out_channels: int = 6
    depth: int = 5
    growth_factor: int = 6
    up_mode: UpMode = "upsample"
    attention: AttentionMode = "none"
    channel_attention: bool = False
    dropout: float = 0.0
    variance_head: bool = False

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if self.up_mode not in ("upsample", "shuffle", "upconv"):
            raise ValueError(f"up_mode must be upsample|shuffle|upconv, got {self.up_mode!r}")
        if self.attention not in ("none", "standard", "modified"):
            raise ValueError(f"attention must be none|standard|modified, got {self.attention!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def alignment(self) -> int:
        """Input sizes that are multiples of this pool without remainder at every level."""
        return 2 ** (self.depth - 1)


class ECA(nn.Module):
    """Efficient channel attention (Wang et al., 2020): a 1-D conv over pooled channels."""

    def __init__(self, channels: int, b: int = 1, gamma: int = 2) -> None:
        super().__init__()
        k = int(abs(math.log2(channels) / gamma) + b)
        kernel_size = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3)).unsqueeze(1)  # (N, 1, C)
        weights = torch.sigmoid(self.conv(pooled)).transpose(1, 2).unsqueeze(-1)  # (N, C, 1, 1)
        return features * weights


class ConvBlock(nn.Module):
    """Conv3x3 -> PReLU -> Conv3x3 -> PReLU [-> ECA] [-> dropout]."""

    def __init__(self, in_channels: int, out_channels: int, eca: bool, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.PReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.PReLU(),
        ]
        if eca:
            layers.append(ECA(out_channels))
        self.block = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.block(features))


class AttentionGate(nn.Module):
    """Additive attention gate of Attention U-Net (Oktay et al., 2018), as in the paper's code."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.W_gate = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.W_x = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.psi = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.PReLU()

    def forward(self, gate: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return skip * self.psi(self.relu(self.W_gate(gate) + self.W_x(skip)))


def _upsizer(mode: UpMode, in_channels: int, out_channels: int) -> nn.Module:
    if mode == "upsample":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, out_channels, 1),
        )
    if mode == "shuffle":
        return nn.Sequential(
            nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1),
            nn.PReLU(),
            nn.PixelShuffle(2),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)


class DecoderBlock(nn.Module):
    """Up-size, resize to the skip, [gate the skip], concatenate, double conv."""

    def __init__(self, in_channels: int, out_channels: int, config: UNetConfig) -> None:
        super().__init__()
        self.attention = config.attention
        self.Upsize = _upsizer(config.up_mode, in_channels, out_channels)
        if config.attention != "none":
            self.attention_gate = AttentionGate(out_channels)
        concat_channels = 3 * out_channels if config.attention == "modified" else 2 * out_channels
        self.conv = ConvBlock(
            concat_channels, out_channels, config.channel_attention, config.dropout
        )

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.Upsize(features)
        up = F.interpolate(up, size=skip.shape[2:], mode="bilinear", align_corners=False)
        if self.attention == "standard":
            parts = [up, self.attention_gate(up, skip)]
        elif self.attention == "modified":
            parts = [up, skip, self.attention_gate(up, skip)]
        else:
            parts = [up, skip]
        return self.conv(torch.cat(parts, dim=1))


class UNet(nn.Module):
    """UNet mapping (N, in_channels, H, W) to (N, out_channels, H, W) at the same resolution.

    Without a variance head ``forward`` returns the prediction; with one it returns
    ``(mean, variance)``. Any H and W work (the decoder resizes to each skip); sizes that are
    multiples of ``config.alignment`` avoid pooling remainders.
    """

    def __init__(self, config: UNetConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = UNetConfig(**overrides)
        elif overrides:
            config = UNetConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        channels = [2 ** (config.growth_factor + i) for i in range(config.depth)]
        self.encoding_module = nn.ModuleList()
        previous = config.in_channels
        for width in channels:
            self.encoding_module.append(
                ConvBlock(previous, width, config.channel_attention, config.dropout)
            )
            previous = width
        self.decoding_module = nn.ModuleList(
            DecoderBlock(channels[i + 1], channels[i], config)
            for i in reversed(range(config.depth - 1))
        )
        self.final = nn.Conv2d(channels[0], config.out_channels, 1)
        if config.variance_head:
            self.final_variance = nn.Conv2d(channels[0], config.out_channels, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = inputs
        skips: list[torch.Tensor] = []
        last = len(self.encoding_module) - 1
        for level, encoder in enumerate(self.encoding_module):
            features = encoder(features)
            if level != last:
                skips.append(features)
                features = F.avg_pool2d(features, 2)
        for decoder, skip in zip(self.decoding_module, reversed(skips), strict=True):
            features = decoder(features, skip)
        mean = self.final(features)
        if self.config.variance_head:
            return mean, F.relu(self.final_variance(features))
        return mean
