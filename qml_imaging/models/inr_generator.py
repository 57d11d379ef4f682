"""An INR image generator (coordinates in, pixels out, styled by a latent code) and its discriminator.

The generator follows INR-GAN / CIPS (Skorokhodov et al. 2021; Anokhin et al. 2021), the design QIREN's
generation experiment builds on (Zhao et al., ICML 2024, Fig. A1):

* a StyleGAN2 mapping network ``z (B, latent_dim) -> w (B, style_dim)`` (pixel norm, then
  ``mapping_layers`` x Linear + LeakyReLU(0.2));
* a **coordinate embedding** of the ``side x side`` pixel grid ``(P, 2) -> (P, features)``, computed once
  per grid and shared by every sample of a batch (:meth:`InrGenerator.embed`);
* ``hidden_layers`` per-pixel modulated fully connected layers (StyleGAN2 weight modulation and
  demodulation, Karras et al. 2020, eq. 1 and 3) with LeakyReLU(0.2), then a modulated linear output
  layer (no demodulation) to ``channels`` values per pixel.

Embeddings (``EMBEDDINGS``): ``qiren`` (Linear(2, features * n_qubits) -> BatchNorm -> ``features``
small data re-uploading circuits, :func:`qml_imaging.quantum.circuits.qiren_generator_block`, <Z_0> of
each), ``rff`` (fixed random Fourier features, Tancik et al. 2020), ``siren`` (a sine layer, Sitzmann et
al. 2020), ``tanh`` and ``relu`` (plain coordinates through Linear + activation). Only the embedding
differs between variants; :func:`matched_width` picks the synthesis width that gives every variant
the same parameter count.

Images are float ``(B, channels, side, side)``, nominally in [-1, 1] (no output squashing, as in CIPS).
"""

from __future__ import annotations

import math
from typing import ClassVar
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from qml_imaging.data.datasets import coordinate_grid
from qml_imaging.models.inr import FourierFeatures, SineLayer, width_for_budget
from qml_imaging.models.specs import EMBEDDINGS, InrGeneratorSpec
from qml_imaging.quantum.circuits import qiren_generator_block
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import as_executor
from qml_imaging.quantum.layer import QuantumLayer

SLOPE = 0.2


class QirenEmbedding(nn.Module):
    """QIREN's generator features: ``(P, 2)`` coordinates -> ``(P, circuits)`` values in [-1, 1].

    ``Linear(2, circuits * n_qubits)`` projections, BatchNorm over the grid (batch statistics in
    training and evaluation alike: the embedding always sees a whole grid, so these are that grid's
    statistics), then circuit ``k`` takes columns ``k * n_qubits .. (k + 1) * n_qubits - 1`` as its RZ
    angles; its feature is <Z_0>. Every circuit is the same template with its own weights, run by
    ``executor`` (shared by all circuits; a validated backend spec is made into one executor here, None: ``fast``).
    """

    def __init__(self, circuits: int, *, n_qubits: int = 2, reuploads: int = 2, layers: int = 2,
                 executor: Executor | BackendSpec | None = None, in_features: int = 2):
        super().__init__()
        executor = as_executor(executor)
        template = qiren_generator_block(n_qubits, reuploads=reuploads, layers=layers)
        self.n_qubits = n_qubits
        self.projection = nn.Linear(in_features, circuits * n_qubits)
        self.norm = nn.BatchNorm1d(circuits * n_qubits, track_running_stats=False)
        self.circuits = nn.ModuleList(QuantumLayer(template, executor) for _ in range(circuits))

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """The embedding ``(P, circuits)`` of coordinates ``(P, in_features)``: ``<Z_0>`` of each small circuit."""
        angles = self.norm(self.projection(coordinates)).split(self.n_qubits, dim=1)
        return torch.cat([circuit(part)[:, :1] for circuit, part in zip(self.circuits, angles, strict=True)], dim=1)


class ActivatedLinear(nn.Module):
    """``activation(Linear(2, features)(x))``: the ``tanh`` and ``relu`` embeddings of plain coordinates."""

    def __init__(self, features: int, activation: type[nn.Module], in_features: int = 2):
        super().__init__()
        self.linear = nn.Linear(in_features, features)
        self.activation = activation()

    def forward(self, coordinates: torch.Tensor) -> torch.Tensor:
        """``activation(linear(coordinates))``."""
        return self.activation(self.linear(coordinates))


def make_embedding(kind: str, spec: InrGeneratorSpec, executor: Executor | BackendSpec | None = None) -> nn.Module:
    """The coordinate embedding ``kind`` (one of ``EMBEDDINGS``): ``(P, 2) -> (P, spec.features)``.

    Raises ValueError for an unknown kind or an odd ``features`` with ``rff`` (sine and cosine pairs).
    """
    if kind == "qiren":
        return QirenEmbedding(spec.features, n_qubits=spec.n_qubits, reuploads=spec.reuploads,
                              layers=spec.ansatz_layers, executor=executor)
    if kind == "rff":
        if spec.features % 2:
            raise ValueError(f"rff features come in sine/cosine pairs: features must be even, got {spec.features}")
        return FourierFeatures(2, spec.features // 2, spec.rff_sigma)
    if kind == "siren":
        return SineLayer(2, spec.features, omega_0=spec.siren_omega_0, is_first=True)
    if kind == "tanh":
        return ActivatedLinear(spec.features, nn.Tanh)
    if kind == "relu":
        return ActivatedLinear(spec.features, nn.ReLU)
    raise ValueError(f"unknown coordinate embedding {kind!r}; expected one of {list(EMBEDDINGS)}")


class ModulatedLinear(nn.Module):
    """A per-pixel fully connected layer whose weights each sample's style scales (StyleGAN2, eq. 1 and 3).

    ``s = A(w)`` (B, in) with ``A`` a Linear initialised to give ``s = 1``; ``W'_boi = W_oi s_bi / sqrt(in)``,
    demodulated ``W''_boi = W'_boi / sqrt(sum_i W'_boi^2 + 1e-8)`` when ``demodulate``; the output is
    ``h W''^T + b``. ``h`` is ``(P, in)`` (one grid shared by all samples) or ``(B, P, in)``; the
    output is ``(B, P, out)``.
    """

    def __init__(self, in_features: int, out_features: int, style_dim: int, *, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.style = nn.Linear(style_dim, in_features)
        # StyleGAN2's affine A: N(0, 1 / style_dim) weights on unit-scale styles, so s = 1 + O(1) varies with
        # the latent (PyTorch's default uniform init gives s = 1 +- 0.08: every latent draws nearly one image).
        nn.init.normal_(self.style.weight, std=1 / math.sqrt(style_dim))
        nn.init.ones_(self.style.bias)
        self.demodulate = demodulate

    def forward(self, inputs: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Style-modulated (and demodulated) linear map of ``inputs`` ``(P, I)`` or ``(B, P, I)`` to ``(B, P, O)`` (Karras et al. 2020)."""
        scales = self.style(style)
        weight = self.weight[None] * scales[:, None, :] / math.sqrt(self.weight.shape[1])
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=2, keepdim=True) + 1e-8)
        pattern = "pi,boi->bpo" if inputs.ndim == 2 else "bpi,boi->bpo"
        return torch.einsum(pattern, inputs, weight) + self.bias


class MappingNetwork(nn.Module):
    """``z (B, latent_dim) -> w (B, style_dim)``: pixel norm, then Linear + LeakyReLU(0.2) layers (StyleGAN)."""

    def __init__(self, latent_dim: int, style_dim: int, layers: int):
        super().__init__()
        modules: list[nn.Module] = []
        features = latent_dim
        for _ in range(layers):
            linear = nn.Linear(features, style_dim)
            # He init for LeakyReLU(0.2), zero bias: w keeps the unit scale of the pixel-normed z (StyleGAN's
            # equalised init); PyTorch's default shrinks it ~0.4x per layer, starving the modulation.
            nn.init.kaiming_normal_(linear.weight, a=SLOPE, nonlinearity="leaky_relu")
            nn.init.zeros_(linear.bias)
            modules += [linear, nn.LeakyReLU(SLOPE)]
            features = style_dim
        self.net = nn.Sequential(*modules)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """Style vectors ``(B, W)`` of latents ``(B, Z)`` (pixel-normalised first)."""
        normed = latents * torch.rsqrt(latents.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return self.net(normed)


class InrGenerator(nn.Module):
    """``z (B, latent_dim)`` -> images ``(B, channels, side, side)``; see the module docstring.

    ``width`` is the synthesis width (choose it with :func:`matched_width`); ``executor`` (an executor or a
    validated backend spec; None: ``fast``) runs the ``qiren`` embedding's circuits (ignored by the classical embeddings).
    """

    def __init__(self, spec: InrGeneratorSpec, embedding: str, width: int, *, channels: int = 1, side: int = 28,
                 executor: Executor | BackendSpec | None = None):
        super().__init__()
        self.spec, self.channels, self.side = spec, channels, side
        self.mapping = MappingNetwork(spec.latent_dim, spec.style_dim, spec.mapping_layers)
        self.embedding = make_embedding(embedding, spec, executor)
        sizes = [spec.features] + [width] * spec.hidden_layers
        self.layers = nn.ModuleList(ModulatedLinear(a, b, spec.style_dim) for a, b in pairwise(sizes))
        self.output = ModulatedLinear(width, channels, spec.style_dim, demodulate=False)
        self.register_buffer("grid", coordinate_grid(side, side), persistent=False)

    def embed(self) -> torch.Tensor:
        """The embedding of this generator's pixel grid, ``(side * side, features)``, shared by all samples."""
        return self.embedding(self.grid)

    def forward(self, latents: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(B, channels, side, side)`` for ``latents`` ``(B, latent_dim)``; ``features`` is
        :meth:`embed`'s output when the caller already has it (a GAN step reuses one per batch).

        Raises ValueError for latents that are not ``(B, latent_dim)``.
        """
        if latents.ndim != 2 or latents.shape[1] != self.spec.latent_dim:
            raise ValueError(f"latents must have shape (B, {self.spec.latent_dim}), got {tuple(latents.shape)}")
        style = self.mapping(latents)
        hidden = self.embed() if features is None else features
        for layer in self.layers:
            hidden = F.leaky_relu(layer(hidden, style), SLOPE)
        pixels = self.output(hidden, style)
        return pixels.transpose(1, 2).reshape(len(latents), self.channels, self.side, self.side)


class Discriminator(nn.Module):
    """Convolutional discriminator: ``(B, C, side, side)`` -> logits ``(B,)``.

    conv3(c) -> [conv4 stride 2 (2c), conv4 stride 2 (4c)] with LeakyReLU(0.2), then Linear to one
    logit; ``side`` must be divisible by 4. ``autocast_safe``: its training forward pass may run under
    bfloat16 autocast (:mod:`qml_imaging.training.precision`).
    """

    autocast_safe: ClassVar[bool] = True

    def __init__(self, channels: int = 1, side: int = 28, width: int = 16):
        super().__init__()
        if side % 4:
            raise ValueError(f"the discriminator needs an image side divisible by 4, got {side}")
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1), nn.LeakyReLU(SLOPE),
            nn.Flatten(), nn.Linear(4 * width * (side // 4) ** 2, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """A real/fake logit ``(B,)`` per image ``(B, C, S, S)``."""
        return self.net(images).squeeze(1)


def matched_width(spec: InrGeneratorSpec, embedding: str, *, channels: int = 1, side: int = 28,
                  executor: Executor | BackendSpec | None = None) -> int:
    """The synthesis width whose ``embedding`` generator is closest to ``spec.parameter_budget``
    (``executor`` as for :class:`InrGenerator`, made once for every width tried).

    Raises ValueError naming the embedding when no width comes within ``spec.tolerance``.
    """
    executor = as_executor(executor) if embedding == "qiren" else None
    try:
        return width_for_budget(lambda width: InrGenerator(spec, embedding, width, channels=channels, side=side,
                                                           executor=executor),
                                spec.parameter_budget, tolerance=spec.tolerance)
    except ValueError as error:
        raise ValueError(f"generator with the {embedding!r} embedding: {error}") from error
