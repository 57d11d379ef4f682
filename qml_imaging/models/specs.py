"""Architecture specs of the networks (torch-free): the one place their sizes and defaults are declared.

Each network's constructor takes its defaults from a default instance of its spec and builds from a
spec with ``from_spec``; the pipelines' configs hold these specs as sections, so a config and the
class it configures cannot drift apart.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from qml_imaging.config import Section


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
