"""Implicit neural representations: coordinate -> value networks.

QIREN (Zhao et al., ICML 2024: data re-uploading circuits as activations) and the classical
baselines of its paper: ReLU and Tanh MLPs (with BatchNorm, as in the authors' code), ReLU with
random Fourier features (Tancik et al. 2020) and SIREN (Sitzmann et al. 2020).
Inputs are ``(N, in_features)`` coordinates in [-1, 1]; outputs ``(N, out_features)``.
:func:`width_for_budget` picks the hidden width that matches a parameter budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from qml_imaging.models.specs import InrModelSpec
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.circuits import qiren_block, qiren_chain_block
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import as_executor
from qml_imaging.quantum.layer import QuantumLayer


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


_DEFAULT = InrModelSpec(kind="qiren")
"""The defaults of every INR constructor (one source: :class:`~qml_imaging.models.specs.InrModelSpec`)."""


class CoordinateMLP(nn.Module):
    """``in -> [Linear -> BatchNorm1d? -> activation] x hidden_layers -> Linear -> out``."""

    def __init__(
        self,
        in_features: int,
        width: int,
        hidden_layers: int,
        out_features: int = 1,
        *,
        activation: type[nn.Module] = nn.ReLU,
        batch_norm: bool = _DEFAULT.batch_norm,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        features = in_features
        for _ in range(hidden_layers):
            layers.append(nn.Linear(features, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(activation())
            features = width
        layers.append(nn.Linear(features, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, out_features)`` at coordinates ``(N, in_features)``."""
        return self.net(coordinates)


class FourierFeatures(nn.Module):
    """Fixed random Fourier features ``[sin(2 pi x B), cos(2 pi x B)]`` with ``B ~ N(0, sigma^2)``, shape (in, m).

    ``B`` is a buffer (not trained), drawn from the global torch generator at construction.
    """

    def __init__(self, in_features: int, n_frequencies: int, sigma: float):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"Fourier feature scale sigma must be > 0, got {sigma}")
        self.register_buffer("frequencies", sigma * torch.randn(in_features, n_frequencies))

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """``[sin(2 pi x B), cos(2 pi x B)]`` ``(N, 2 F)`` of coordinates ``(N, d)`` (Tancik et al. 2020)."""
        phases = 2 * math.pi * coordinates @ self.frequencies
        return torch.cat([torch.sin(phases), torch.cos(phases)], dim=-1)


class FourierFeatureMLP(nn.Module):
    """Random Fourier features followed by a ReLU :class:`CoordinateMLP`."""

    def __init__(self, in_features: int, width: int, hidden_layers: int, out_features: int = 1, *,
                 n_frequencies: int = _DEFAULT.n_frequencies, sigma: float = _DEFAULT.sigma,
                 batch_norm: bool = _DEFAULT.batch_norm):
        super().__init__()
        self.features = FourierFeatures(in_features, n_frequencies, sigma)
        self.mlp = CoordinateMLP(2 * n_frequencies, width, hidden_layers, out_features, batch_norm=batch_norm)

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, out_features)`` of the MLP on the Fourier features of coordinates ``(N, d)``."""
        return self.mlp(self.features(coordinates))


def siren_init_(layer: nn.Linear, *, omega_0: float, is_first: bool) -> None:
    """SIREN initialisation: first layer ``U(-1/n, 1/n)``, later layers ``U(-sqrt(6/n)/omega_0, +sqrt(6/n)/omega_0)``."""
    fan_in = layer.in_features
    bound = 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega_0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)


class SineLayer(nn.Module):
    """``sin(omega_0 * (W x + b))`` with SIREN's initialisation."""

    def __init__(self, in_features: int, out_features: int, *, omega_0: float, is_first: bool):
        super().__init__()
        self.omega_0 = omega_0
        self.linear = nn.Linear(in_features, out_features)
        siren_init_(self.linear, omega_0=omega_0, is_first=is_first)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``sin(omega_0 (W x + b))`` (Sitzmann et al. 2020)."""
        return torch.sin(self.omega_0 * self.linear(inputs))


class Siren(nn.Module):
    """SIREN: ``hidden_layers`` sine layers of ``width`` units, then a linear output layer."""

    def __init__(self, in_features: int, width: int, hidden_layers: int, out_features: int = 1, *,
                 omega_0: float = _DEFAULT.omega_0):
        super().__init__()
        layers = [SineLayer(in_features, width, omega_0=omega_0, is_first=True)]
        layers += [SineLayer(width, width, omega_0=omega_0, is_first=False) for _ in range(hidden_layers - 1)]
        self.sine_layers = nn.Sequential(*layers)
        self.output = nn.Linear(width, out_features)
        siren_init_(self.output, omega_0=omega_0, is_first=False)

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, out_features)`` at coordinates ``(N, in_features)``."""
        return self.output(self.sine_layers(coordinates))


def width_for_budget(build: Callable[[int], nn.Module], budget: int, *, tolerance: float = 0.1, max_width: int = 4096) -> int:
    """The hidden width whose model has the parameter count closest to ``budget``.

    ``build(width)`` makes the model. Raises ValueError when no width comes within
    ``tolerance`` (relative) of the budget.
    """
    if budget < 1:
        raise ValueError(f"parameter budget must be positive, got {budget}")
    low, high = 1, max_width
    while low < high:  # parameter count grows with width: find the first width at or over budget
        middle = (low + high) // 2
        if parameter_count(build(middle)) < budget:
            low = middle + 1
        else:
            high = middle
    candidates = [w for w in (low - 1, low) if w >= 1]
    best = min(candidates, key=lambda w: abs(parameter_count(build(w)) - budget))
    achieved = parameter_count(build(best))
    if abs(achieved - budget) > tolerance * budget:
        raise ValueError(
            f"no width matches the budget of {budget} parameters within {tolerance:.0%}: "
            f"closest is width {best} with {achieved}"
        )
    return best


QIREN_BLOCKS = {"ring": qiren_block, "chain": qiren_chain_block}
"""QIREN's circuit per entangler (the options of :data:`~qml_imaging.models.specs.QirenEntangler`)."""


class QIREN(nn.Module):
    """Quantum implicit neural representation.

    ``hybrid_layers`` x [Linear(in, n_qubits) -> BatchNorm1d(n_qubits) -> QuantumLayer(QIREN block)]
    then Linear(n_qubits, out); ``out_features`` is the number of channels fitted (1 grey, 3 RGB: the
    final Linear widened, one output per colour). The quantum layer (see
    :func:`qml_imaging.quantum.circuits.qiren_block`) re-uploads its ``n_qubits`` inputs as RZ
    angles ``reuploads`` times between trainable StronglyEntanglingLayers blocks of ``sublayers``
    sub-layers with CZ rings and returns <Z_j>. The authors' defaults (3 hybrid layers, 8 qubits,
    L = 2, K = 2) give 657 trainable parameters for 2-D coordinates and 649 for 1-D.
    ``entangler="chain"`` swaps each CZ ring for a CZ chain (:func:`~qml_imaging.quantum.circuits.qiren_chain_block`,
    same parameter count): on a device its wires sit on the best chain of qubits, so no SWAP is routed.
    ``executor``: the :class:`~qml_imaging.quantum.executors.Executor` every quantum layer runs on,
    or a validated :class:`~qml_imaging.quantum.backends.BackendSpec` made into one executor here
    (None: the ``fast`` backend).
    """

    def __init__(self, in_features: int = 2, out_features: int = 1, *, n_qubits: int = _DEFAULT.n_qubits,
                 hybrid_layers: int = _DEFAULT.hidden_layers, reuploads: int = _DEFAULT.reuploads,
                 sublayers: int = _DEFAULT.sublayers, entangler: str = _DEFAULT.entangler,
                 executor: Executor | BackendSpec | None = None):
        super().__init__()
        executor = as_executor(executor)
        if entangler not in QIREN_BLOCKS:
            raise ValueError(f"entangler must be one of {list(QIREN_BLOCKS)}, got {entangler!r}")
        template = QIREN_BLOCKS[entangler](n_qubits, reuploads=reuploads, sublayers=sublayers)
        layers: list[nn.Module] = []
        features = in_features
        for _ in range(hybrid_layers):
            layers += [nn.Linear(features, n_qubits), nn.BatchNorm1d(n_qubits), QuantumLayer(template, executor)]
            features = n_qubits
        self.hybrid = nn.Sequential(*layers)
        self.output = nn.Linear(n_qubits, out_features)

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, out_features)`` at coordinates ``(N, in_features)`` through the hybrid layers."""
        return self.output(self.hybrid(coordinates))

    def quantum_layers(self) -> list[QuantumLayer]:
        """The model's quantum layers, in order."""
        return [m for m in self.hybrid if isinstance(m, QuantumLayer)]
