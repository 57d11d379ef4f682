"""A small time-conditioned U-Net for 28x28 diffusion, with a pluggable bottleneck block.

Layout (``channels = (c1, c2, c3)``, default 32/64/128): stem conv -> ResBlock(c1) at 28x28 ->
down -> ResBlock(c2) at 14x14 -> down -> ResBlock(c3) at 7x7 -> **bottleneck block** ->
ResBlock(c3) -> up + skip -> ResBlock(c2) -> up + skip -> ResBlock(c1) -> GroupNorm, SiLU, conv.
ResBlocks: GroupNorm, SiLU, 3x3 conv, plus a projection of the time embedding (sinusoidal, then
an MLP), GroupNorm, SiLU, dropout, 3x3 conv, residual (1x1 conv when the width changes).

Bottleneck blocks act on the 7x7 features ``(B, c3, 7, 7)`` and return the same shape:

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

import torch
from torch import nn

from qml_imaging.models.specs import DiffusionUNetSpec
from qml_imaging.quantum.circuits import bottleneck_ansatz
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.layer import QuantumLayer

BOTTLENECKS = ("none", "quantum", "classical")
PARAMETER_MATCH_TOLERANCE = 0.05


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B,)`` integer steps -> ``(B, dim)`` sines and cosines of geometrically spaced frequencies."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, time_dim: int, dropout: float):
        super().__init__()
        self.first = nn.Sequential(nn.GroupNorm(8, in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.time = nn.Linear(time_dim, out_channels)
        self.second = nn.Sequential(nn.GroupNorm(8, out_channels), nn.SiLU(), nn.Dropout(dropout),
                                    nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
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
        features = torch.tanh(self.project(x.mean(dim=(2, 3))))
        modulation = self.expand(self.core(features))
        return x * (1 + modulation[:, :, None, None])


class QuantumBottleneck(_PooledModulation):
    """The quantum bottleneck block (see the module docstring); ``backend`` as for :class:`QuantumLayer`."""

    def __init__(self, channels: int, n_qubits: int = 8, layers: int = 3, backend="fast"):
        layer = QuantumLayer(bottleneck_ansatz(n_qubits, layers=layers), backend)
        super().__init__(channels, n_qubits, layer, layer.n_outputs)


class ClassicalBottleneck(_PooledModulation):
    """The parameter-matched classical control: an MLP of width ``width`` in the same frame."""

    def __init__(self, channels: int, width: int):
        core = nn.Sequential(nn.Linear(width, width), nn.Tanh())
        super().__init__(channels, width, core, width)

    @staticmethod
    def parameters_for(channels: int, width: int) -> int:
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


def make_bottleneck(kind: str, channels: int, n_qubits: int = 8, layers: int = 3, backend="fast") -> nn.Module:
    """The bottleneck block ``kind`` (``none``, ``quantum``, ``classical``) for ``channels`` features."""
    if kind == "none":
        return nn.Identity()
    if kind not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck {kind!r}; expected one of {list(BOTTLENECKS)}")
    quantum = QuantumBottleneck(channels, n_qubits, layers, backend)
    if kind == "quantum":
        return quantum
    return ClassicalBottleneck.matching(channels, sum(p.numel() for p in quantum.parameters()))


_DEFAULT = DiffusionUNetSpec()


class DiffusionUNet(nn.Module):
    """``model(x_t (B, C, 28, 28), t (B,)) -> eps_hat (B, C, 28, 28)``; any size divisible by 4 works.
    Default sizes: :class:`~qml_imaging.models.specs.DiffusionUNetSpec`."""

    @classmethod
    def from_spec(cls, spec: DiffusionUNetSpec, in_channels: int, bottleneck: str = "none",
                  backend: Executor | str = "fast") -> DiffusionUNet:
        return cls(in_channels, tuple(spec.channels), bottleneck, spec.n_qubits, spec.quantum_layers, backend,
                   spec.dropout)

    def __init__(self, in_channels: int = 1, channels: tuple[int, int, int] = tuple(_DEFAULT.channels),
                 bottleneck: str = "none", n_qubits: int = _DEFAULT.n_qubits, quantum_layers: int = _DEFAULT.quantum_layers,
                 backend: Executor | str = "fast", dropout: float = _DEFAULT.dropout):
        super().__init__()
        c1, c2, c3 = channels
        time_dim = 4 * c1
        self.in_channels = in_channels
        self.time_features = c1
        self.time_mlp = nn.Sequential(nn.Linear(c1, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.stem = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, time_dim, dropout)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = ResBlock(c1, c2, time_dim, dropout)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.down3 = ResBlock(c2, c3, time_dim, dropout)
        self.bottleneck = make_bottleneck(bottleneck, c3, n_qubits, quantum_layers, backend)
        self.middle = ResBlock(c3, c3, time_dim, dropout)
        self.up2 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c3, c3, 3, padding=1))
        self.decode2 = ResBlock(c3 + c2, c2, time_dim, dropout)
        self.up1 = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c2, 3, padding=1))
        self.decode1 = ResBlock(c2 + c1, c1, time_dim, dropout)
        self.head = nn.Sequential(nn.GroupNorm(8, c1), nn.SiLU(), nn.Conv2d(c1, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"expected images (B, {self.in_channels}, H, W) with H and W divisible by 4, "
                             f"got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"expected one timestep per image, shape ({x.shape[0]},), got {tuple(t.shape)}")
        time = self.time_mlp(sinusoidal_embedding(t, self.time_features))
        skip1 = self.down1(self.stem(x), time)
        skip2 = self.down2(self.pool1(skip1), time)
        hidden = self.down3(self.pool2(skip2), time)
        hidden = self.middle(self.bottleneck(hidden), time)
        hidden = self.decode2(torch.cat([self.up2(hidden), skip2], dim=1), time)
        hidden = self.decode1(torch.cat([self.up1(hidden), skip1], dim=1), time)
        return self.head(hidden)
