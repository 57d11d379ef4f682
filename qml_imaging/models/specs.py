"""Architecture specs of the networks (torch-free): the one place their sizes and defaults are declared.

Each network's constructor takes its defaults from a default instance of its spec and builds from a
spec with ``from_spec``; the pipelines' configs hold these specs as sections, so a config and the
class it configures cannot drift apart.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from qml_imaging.config import Section
from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS, TrainingBackendName


class UNetSpec(Section):
    """Architecture of :class:`qml_imaging.models.unet.DenoisingUNet` and the planes it is fed."""

    depth: int = Field(4, ge=1, le=8, description="resolution levels; image side must be divisible by 2**(depth-1)")
    base_channels: int = Field(32, ge=1, le=1024, description="channels of the first level (doubled per level)")
    max_channels: int = Field(128, ge=1, le=1024, description="cap on the channels of any level")
    first_kernel: int = Field(5, ge=1, le=11, description="kernel size of the first convolution (odd)")
    kernel: int = Field(3, ge=1, le=11, description="kernel size of every later convolution (odd)")
    res_blocks: int = Field(1, ge=1, le=8, description="ResNet blocks per level and side")
    dropout: float = Field(0.0, ge=0, lt=1)
    skip_from_level: int = Field(0, ge=0, le=7, description="finest level with a skip connection; 0: every level "
                                                            "(the plain U-Net), depth - 1: none")
    condition_on_nbar: bool = Field(True, description="feed log(nbar) as an input plane")
    coordinates: bool = Field(False, description="feed the pixel coordinates x and y as two input planes")


class DiffusionUNetSpec(Section):
    """Sizes of :class:`qml_imaging.models.diffusion_unet.DiffusionUNet`."""

    channels: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=2, max_length=5,
                                description="width of each resolution level, finest first (each a multiple of 8); "
                                            "the image side must be divisible by 2**(levels - 1)")
    n_qubits: int = Field(8, ge=1, le=16, description="qubits of the quantum bottleneck")
    quantum_layers: int = Field(3, ge=1, le=20, description="entangling layers of the bottleneck ansatz")
    backend: TrainingBackendName = Field("fast", description="backend spec the quantum bottleneck trains on: a kind, "
                                                             "a hardware_configs name (aer_shots) or a YAML path")
    dropout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _group_norm(self) -> DiffusionUNetSpec:
        bad = [c for c in self.channels if c <= 0 or c % 8]
        if bad:
            raise ValueError(f"channels must be positive multiples of 8 (GroupNorm of 8 groups), got {bad}")
        return self


class G2CnnSpec(Section):
    """:class:`qml_imaging.models.g2_cnn.G2CNN` sizes (paper 002: 260 filters, kernel 4)."""

    filters: int = Field(260, ge=1, le=2048)
    kernel: int = Field(4, ge=1, le=32)
    dense: list[int] = Field(default_factory=lambda: [256, 64])
    dropout: float = Field(0.25, ge=0, lt=1)


Embedding = Literal["qiren", "rff", "siren", "tanh", "relu"]
"""Coordinate embeddings of :class:`qml_imaging.models.inr_generator.InrGenerator`."""
EMBEDDINGS: tuple[str, ...] = get_args(Embedding)

Bottleneck = Literal["none", "quantum", "classical"]
"""Bottleneck blocks of :class:`qml_imaging.models.diffusion_unet.DiffusionUNet`."""
BOTTLENECKS: tuple[str, ...] = get_args(Bottleneck)


class InrGeneratorSpec(Section):
    """Sizes of :class:`qml_imaging.models.inr_generator.InrGenerator` and its discriminator.

    Every embedding gives ``features`` values per pixel; the synthesis width of each variant is chosen
    (:func:`qml_imaging.models.inr_generator.matched_width`) so that the generator has
    ``parameter_budget`` trainable parameters within ``tolerance``.
    """

    parameter_budget: int = Field(40_000, ge=1_000, le=100_000_000, description="trainable generator parameters of "
                                                                                 "every variant")
    tolerance: float = Field(0.05, gt=0, le=0.5, description="allowed relative distance to the budget")
    features: int = Field(16, ge=1, le=1024, description="coordinate features per pixel (QIREN: circuits)")
    hidden_layers: int = Field(3, ge=1, le=16, description="modulated per-pixel layers before the output layer")
    latent_dim: int = Field(64, ge=1, le=4096, description="size of the latent code z")
    style_dim: int = Field(64, ge=1, le=4096, description="size of the style w")
    mapping_layers: int = Field(2, ge=1, le=16, description="layers of the mapping network z -> w")
    rff_sigma: float = Field(2.0, gt=0, description="rff: frequencies ~ N(0, sigma^2) cycles per unit coordinate")
    siren_omega_0: float = Field(30.0, gt=0, description="siren: omega_0 of the sine layer")
    n_qubits: int = Field(2, ge=1, le=8, description="qiren: qubits per circuit")
    reuploads: int = Field(2, ge=1, le=8, description="qiren: re-uploads of the coordinates")
    ansatz_layers: int = Field(2, ge=1, le=8, description="qiren: U3 + CNOT-chain layers per ansatz block")
    discriminator_channels: int = Field(16, ge=1, le=1024, description="channels of the discriminator's first "
                                                                        "convolution (doubled twice)")


QirenEntangler = Literal["ring", "chain"]
"""QIREN's entangling pattern: the authors' CZ rings, or a CZ chain that maps onto a device's qubit path."""


class InrModelSpec(Section):
    """One INR of an ``inr_image`` / ``inr_signal`` comparison (:mod:`qml_imaging.models.inr`); its hidden width is
    chosen to meet the shared parameter budget. The models' constructors take their defaults from it."""

    kind: Literal["qiren", "relu", "tanh", "rff", "siren"]
    lr: float | None = Field(None, gt=0, description="learning rate of this model; null = train.lr")
    hidden_layers: int = Field(3, ge=1, le=16, description="hidden (or, for qiren, hybrid) layers")
    batch_norm: bool = Field(True, description="BatchNorm1d after each hidden Linear (relu, tanh, rff)")
    n_frequencies: int = Field(16, ge=1, le=1024, description="Fourier features (rff)")
    sigma: float = Field(5.0, gt=0, description="std of the Fourier frequencies for coordinates in [-1, 1] (rff)")
    omega_0: float = Field(30.0, gt=0, description="SIREN frequency factor (siren)")
    n_qubits: int = Field(8, ge=1, le=MAX_SIMULATED_QUBITS, description="qubits = hidden width (qiren; not budget-matched)")
    reuploads: int = Field(2, ge=1, le=10, description="data re-uploads L per quantum layer (qiren)")
    sublayers: int = Field(2, ge=1, le=10, description="StronglyEntanglingLayers sub-layers K per block (qiren)")
    entangler: QirenEntangler = Field("ring", description="qiren: CZ rings of range 1..K (the authors') "
                                                "or a CZ chain j - j+1, placed on a device's best qubit path "
                                                "so its ISA circuit needs no SWAP (hardware-native)")
    backend: TrainingBackendName = Field("fast", description="backend spec that runs the circuits (qiren): a kind, a "
                                                     "hardware_configs name or a YAML path")
