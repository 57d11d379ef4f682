"""A small time-conditioned U-Net for diffusion at the data's resolution, with a pluggable bottleneck block.

Layout (``channels = (c1, ..., cL)``, one width per level, default 16/32/64): stem conv ->
ResBlock(c1) at S x S -> [strided conv down -> ResBlock(c_l)] per further level -> **bottleneck
block** at S / 2**(L-1) -> ResBlock(cL) -> [up + skip -> ResBlock(c_l)] back to S -> GroupNorm,
SiLU, conv. With three levels a 28x28 image is 7x7 at the bottleneck, 32x32 is 8x8, 64x64 is 16x16.
ResBlocks: GroupNorm, SiLU, 3x3 conv, plus a projection of the time embedding (sinusoidal, then
an MLP), GroupNorm, SiLU, dropout, 3x3 conv, residual (1x1 conv when the width changes).

Bottleneck blocks act on the coarsest features ``(B, cL, s, s)`` and return the same shape:

- ``none``: identity.
- ``quantum``: global average pool -> Linear(c3, n) -> tanh -> :class:`QuantumLayer` running
  :func:`~qml_imaging.quantum.circuits.bottleneck_ansatz` (angles = pi * tanh) -> Linear(n, c3)
  -> channel-wise modulation ``x * (1 + m)``. Differentiable end to end on the ``fast`` backend.
- ``classical``: the same pool, projections and modulation around an MLP
  (Linear(c3, w) -> tanh -> Linear(w, w) -> tanh -> Linear(w, c3)) whose width ``w`` is chosen so
  the block has the quantum block's number of trainable parameters, within 5 %.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from qml_imaging.models.specs import BOTTLENECKS, DiffusionUNetSpec
from qml_imaging.quantum.circuits import bottleneck_ansatz
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.layer import QuantumLayer

PARAMETER_MATCH_TOLERANCE = 0.05


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B,)`` integer steps -> ``(B, dim)`` sines and cosines of geometrically spaced frequencies."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """A residual block conditioned on the time embedding (GroupNorm, SiLU, 3x3 convolutions)."""
    def __init__(self, in_channels: int, out_channels: int, time_dim: int, dropout: float):
        super().__init__()
        self.first = nn.Sequential(nn.GroupNorm(8, in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.time = nn.Linear(time_dim, out_channels)
        self.second = nn.Sequential(nn.GroupNorm(8, out_channels), nn.SiLU(), nn.Dropout(dropout),
                                    nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """Features ``(B, C_out, H, W)`` of ``x`` ``(B, C_in, H, W)`` with the time embedding ``(B, time_dim)`` added."""
        hidden = self.first(x) + self.time(time)[:, :, None, None]
        return self.skip(x) + self.second(hidden)


class _PooledModulation(nn.Module):
    """Pool -> Linear(c, n) -> tanh -> ``core`` -> Linear(n_out, c) -> ``x * (1 + m)``."""

    def __init__(self, channels: int, inner: int, core: nn.Module, inner_out: int):
        super().__init__()
        self.project = nn.Linear(channels, inner)
        self.core = core
        self.expand = nn.Linear(inner_out, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * (1 + m)`` for features ``x`` ``(B, c, H, W)``; the block runs in float32 even under autocast
        (the quantum layer and its angles are kept out of reduced precision), the result has ``x``'s dtype."""
        with torch.autocast(x.device.type, enabled=False):
            features = torch.tanh(self.project(x.float().mean(dim=(2, 3))))
            modulation = self.expand(self.core(features))
        return x * (1 + modulation[:, :, None, None]).to(x.dtype)


class QuantumBottleneck(_PooledModulation):
    """The quantum bottleneck block (see the module docstring); ``executor`` as for :class:`QuantumLayer`."""

    def __init__(self, channels: int, n_qubits: int = 8, layers: int = 3,
                 executor: Executor | BackendSpec | None = None):
        layer = QuantumLayer(bottleneck_ansatz(n_qubits, layers=layers), executor)
        super().__init__(channels, n_qubits, layer, layer.n_outputs)


class ClassicalBottleneck(_PooledModulation):
    """The parameter-matched classical control: an MLP of width ``width`` in the same frame."""

    def __init__(self, channels: int, width: int):
        core = nn.Sequential(nn.Linear(width, width), nn.Tanh())
        super().__init__(channels, width, core, width)

    @staticmethod
    def parameters_for(channels: int, width: int) -> int:
        """The parameter count of a block with ``channels`` in/out and hidden ``width``."""
        return (channels * width + width) + (width * width + width) + (width * channels + channels)

    @classmethod
    def matching(cls, channels: int, target: int) -> ClassicalBottleneck:
        """The block whose parameter count is closest to ``target``; an error if not within 5 %."""
        width = min(range(1, 4 * channels + 1), key=lambda w: abs(cls.parameters_for(channels, w) - target))
        count = cls.parameters_for(channels, width)
        if abs(count - target) > PARAMETER_MATCH_TOLERANCE * target:
            raise ValueError(f"no classical bottleneck width matches {target} parameters within 5 % "
                             f"(closest: width {width}, {count} parameters)")
        return cls(channels, width)


def make_bottleneck(kind: str, channels: int, n_qubits: int = 8, layers: int = 3,
                    executor: Executor | BackendSpec | None = None) -> nn.Module:
    """The bottleneck block ``kind`` (``none``, ``quantum``, ``classical``) for ``channels`` features."""
    if kind == "none":
        return nn.Identity()
    if kind not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck {kind!r}; expected one of {list(BOTTLENECKS)}")
    quantum = QuantumBottleneck(channels, n_qubits, layers, executor)
    if kind == "quantum":
        return quantum
    return ClassicalBottleneck.matching(channels, sum(p.numel() for p in quantum.parameters()))


_DEFAULT = DiffusionUNetSpec()


class DiffusionUNet(nn.Module):
    """``model(x_t (B, C, S, S), t (B,)) -> eps_hat`` of the same shape; one resolution level per entry of
    ``channels`` (its width there), each level after the first at half the side of the one before, so
    ``S`` (and any H, W) must be divisible by ``2 ** (levels - 1)``: 28 and 32 with 3 levels, 64 with 3 or 4.
    ``side`` (optional) is checked against that at construction. Default sizes:
    :class:`~qml_imaging.models.specs.DiffusionUNetSpec`. ``autocast_safe``: its training forward pass may run
    under bfloat16 autocast (:mod:`qml_imaging.training.precision`); the bottleneck block stays float32."""

    autocast_safe: ClassVar[bool] = True

    @classmethod
    def from_spec(cls, spec: DiffusionUNetSpec, in_channels: int, bottleneck: str = "none",
                  executor: Executor | BackendSpec | None = None, side: int | None = None) -> DiffusionUNet:
        """The U-Net of ``spec`` for ``in_channels`` images with the given bottleneck (``none``, ``quantum``, ``classical``)."""
        return cls(in_channels, tuple(spec.channels), bottleneck, spec.n_qubits, spec.quantum_layers, executor,
                   spec.dropout, side=side)

    def __init__(self, in_channels: int = 1, channels: tuple[int, ...] = tuple(_DEFAULT.channels),
                 bottleneck: str = "none", n_qubits: int = _DEFAULT.n_qubits, quantum_layers: int = _DEFAULT.quantum_layers,
                 executor: Executor | BackendSpec | None = None, dropout: float = _DEFAULT.dropout, *,
                 side: int | None = None):
        super().__init__()
        channels = tuple(channels)
        if len(channels) < 2:
            raise ValueError(f"the U-Net needs at least 2 levels (channels per level), got {list(channels)}")
        self.divisor = 2 ** (len(channels) - 1)
        if side is not None and side % self.divisor:
            raise ValueError(f"images of side {side} cannot pass {len(channels)} levels (side must be divisible by "
                             f"{self.divisor}); use {len(channels) - 1} or fewer halvings, or another image size")
        first, last = channels[0], channels[-1]
        time_dim = 4 * first
        self.in_channels = in_channels
        self.time_features = first
        self.time_mlp = nn.Sequential(nn.Linear(first, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.stem = nn.Conv2d(in_channels, first, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.pools = nn.ModuleList()
        previous = first
        for index, width in enumerate(channels):
            if index > 0:
                self.pools.append(nn.Conv2d(previous, previous, 3, stride=2, padding=1))
            self.encoders.append(ResBlock(previous, width, time_dim, dropout))
            previous = width
        self.bottleneck = make_bottleneck(bottleneck, last, n_qubits, quantum_layers, executor)
        self.middle = ResBlock(last, last, time_dim, dropout)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for width in reversed(channels[:-1]):
            self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                          nn.Conv2d(previous, previous, 3, padding=1)))
            self.decoders.append(ResBlock(previous + width, width, time_dim, dropout))
            previous = width
        self.head = nn.Sequential(nn.GroupNorm(8, first), nn.SiLU(), nn.Conv2d(first, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The predicted noise ``(B, C, H, W)`` of images ``x`` at timesteps ``t`` ``(B,)``; ValueError for other shapes."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % self.divisor or x.shape[3] % self.divisor:
            raise ValueError(f"expected images (B, {self.in_channels}, H, W) with H and W divisible by "
                             f"{self.divisor}, got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"expected one timestep per image, shape ({x.shape[0]},), got {tuple(t.shape)}")
        time = self.time_mlp(sinusoidal_embedding(t, self.time_features))
        hidden = self.encoders[0](self.stem(x), time)
        skips = [hidden]
        for pool, encoder in zip(self.pools, self.encoders[1:], strict=True):
            hidden = encoder(pool(hidden), time)
            skips.append(hidden)
        hidden = self.middle(self.bottleneck(skips.pop()), time)
        for up, decoder in zip(self.ups, self.decoders, strict=True):
            hidden = decoder(torch.cat([up(hidden), skips.pop()], dim=1), time)
        return self.head(hidden)
