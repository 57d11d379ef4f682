"""Denoising U-Net for shot-noise images (the architecture family of paper 000's prior code).

Encoder levels ``0 .. depth-1``: level 0 is a convolution with ``first_kernel`` followed by
``res_blocks`` ResNet blocks; each later level halves the resolution with a stride-2 convolution
and applies its ResNet blocks. The decoder mirrors it: bilinear upsampling, a convolution, a skip
concatenation with the encoder level of the same resolution and ResNet blocks. Levels below
``skip_from_level`` get no skip: their decoder stage sees only the upsampled coarser features, with
no direct path from the finest input features to the output (``0``, the default, is the plain U-Net
with every skip; ``depth - 1`` leaves none). A ResNet block is
``conv - BatchNorm - GELU - conv - BatchNorm - dropout`` added to its input (through a 1x1
convolution when the width changes), then GELU. Level ``l`` has
``min(base_channels * 2**l, max_channels)`` channels.

Input ``(B, in_channels, H, W)`` with ``H`` and ``W`` divisible by ``2**(depth-1)``; output
``(B, out_channels, H, W)``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from qml_imaging.models.specs import UNetSpec


class ResBlock(nn.Module):
    """``GELU(x + dropout(BN(conv(GELU(BN(conv(x)))))))`` with a 1x1 projection when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dropout: float = 0.0):
        super().__init__()
        padding = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
            nn.Conv2d(out_channels, out_channels, kernel_size, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.shortcut = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``activation(shortcut(x) + body(x))``, shape ``(B, C_out, H, W)``."""
        return self.activation(self.shortcut(x) + self.body(x))


def _stage(in_channels: int, out_channels: int, blocks: int, kernel_size: int, dropout: float) -> nn.Sequential:
    layers = [ResBlock(in_channels, out_channels, kernel_size, dropout)]
    layers += [ResBlock(out_channels, out_channels, kernel_size, dropout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


_DEFAULT = UNetSpec()


class DenoisingUNet(nn.Module):
    """U-Net ``(B, in_channels, H, W) -> (B, out_channels, H, W)``; see the module docstring.
    Defaults: :class:`~qml_imaging.models.specs.UNetSpec`. ``autocast_safe``: its training forward pass may
    run under bfloat16 autocast; ``channels_last_pays``: it trains faster in channels_last
    (:mod:`qml_imaging.training.precision`, ``benchmarks/training_throughput.py``)."""

    autocast_safe: ClassVar[bool] = True
    channels_last_pays: ClassVar[bool] = True

    @classmethod
    def from_spec(cls, spec: UNetSpec, in_channels: int, out_channels: int = 1) -> DenoisingUNet:
        """The network ``spec`` describes (its input-plane options are the caller's: they set ``in_channels``)."""
        return cls(in_channels, out_channels, depth=spec.depth, base_channels=spec.base_channels,
                   max_channels=spec.max_channels, first_kernel=spec.first_kernel, kernel=spec.kernel,
                   res_blocks=spec.res_blocks, dropout=spec.dropout, skip_from_level=spec.skip_from_level)

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        depth: int = _DEFAULT.depth,
        base_channels: int = _DEFAULT.base_channels,
        max_channels: int = _DEFAULT.max_channels,
        first_kernel: int = _DEFAULT.first_kernel,
        kernel: int = _DEFAULT.kernel,
        res_blocks: int = _DEFAULT.res_blocks,
        dropout: float = _DEFAULT.dropout,
        skip_from_level: int = _DEFAULT.skip_from_level,
    ):
        super().__init__()
        if depth < 1 or res_blocks < 1:
            raise ValueError(f"depth and res_blocks must be >= 1, got depth={depth}, res_blocks={res_blocks}")
        if first_kernel % 2 == 0 or kernel % 2 == 0:
            raise ValueError(f"kernel sizes must be odd (same padding), got first_kernel={first_kernel}, kernel={kernel}")
        if not 0 <= skip_from_level <= depth - 1:
            raise ValueError(f"skip_from_level must be in [0, depth - 1 = {depth - 1}], got {skip_from_level}")
        self.depth = depth
        self.skip_from_level = skip_from_level
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], first_kernel, padding=first_kernel // 2, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.GELU(),
        )
        self.encoder = nn.ModuleList([_stage(widths[0], widths[0], res_blocks, kernel, dropout)])
        self.downsample = nn.ModuleList()
        for level in range(1, depth):
            self.downsample.append(nn.Conv2d(widths[level - 1], widths[level], kernel, stride=2, padding=kernel // 2))
            self.encoder.append(_stage(widths[level], widths[level], res_blocks, kernel, dropout))
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(depth - 1)):
            self.upsample.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(widths[level + 1], widths[level], kernel, padding=kernel // 2),
            ))
            inputs = 2 * widths[level] if level >= skip_from_level else widths[level]
            self.decoder.append(_stage(inputs, widths[level], res_blocks, kernel, dropout))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output ``(B, out_channels, H, W)`` of inputs ``(B, C, H, W)`` with H and W divisible by ``2**(depth-1)``; ValueError otherwise."""
        factor = 2 ** (self.depth - 1)
        if x.ndim != 4 or x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"expected input (B, C, H, W) with H and W divisible by {factor} (depth {self.depth}), "
                             f"got {tuple(x.shape)}")
        features = self.encoder[0](self.stem(x))
        skips = [features]
        for down, stage in zip(self.downsample, self.encoder[1:], strict=True):
            features = stage(down(features))
            skips.append(features)
        levels = reversed(range(self.depth - 1))
        for up, stage, skip, level in zip(self.upsample, self.decoder, reversed(skips[:-1]), levels, strict=True):
            features = up(features)
            if level >= self.skip_from_level:
                features = torch.cat([features, skip], dim=1)
            features = stage(features)
        return self.head(features)
