"""Parameterised image families ``theta -> phi(theta)`` written in torch, so Jacobians come from autograd.

Every family is an intensity pattern ``I(x, y; theta) > 0`` sampled at pixel centres
``x = (j + 1/2) / W``, ``y = (i + 1/2) / H`` (so the image spans the unit square) and normalised to a
transmittance ``phi = I / sum(I)`` (see :mod:`qml_imaging.physics.shot_noise`). The building blocks:

* linear wave ``L(kx, ky, p) = cos(2 pi (kx x + ky y) + p)``; ``kx``, ``ky`` in cycles per image;
* radial wave ``R(cx, cy, k, p) = cos(2 pi k r + p)`` with ``r = sqrt((x - cx)^2 + (y - cy)^2)``.

The families (``V = 0.8`` is the total visibility, so ``I >= 0.2`` everywhere):

============================  ==================================================================  ==========
name                          intensity                                                           parameters
============================  ==================================================================  ==========
``sinusoid``                  ``1 + V L1``                                                        3
``double_sinusoid``           ``1 + V (a L1 + (1 - a) L2)``                                       7
``triple_sinusoid``           ``1 + V (a1 L1 + a2 L2 + (1 - a1 - a2) L3)``                        11
``radial_linear``             ``1 + V (a R1 + (1 - a) L1)``                                       8
``double_radial``             ``1 + V (a R1 + (1 - a) R2)``                                       9
============================  ==================================================================  ==========

Parameter ranges: linear ``kx`` in [0.5, 4] (positive, so ``(k, p)`` and ``(-k, -p)`` do not both
occur), ``ky`` in [-4, 4]; radial centres in [0.25, 0.75], ``k`` in [1, 5]; phases in [0, 2 pi]
(periodic); amplitude shares in [0.2, 0.8] (``a1, a2`` in [0.1, 0.45] for three waves). Add a family
with :func:`register_family`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import jvp, vmap

from qml_imaging.physics.checks import count, real_tensor
from qml_imaging.physics.family_parameters import FAMILY_PARAMETERS, TWO_PI, ParameterSpec

VISIBILITY = 0.8

Intensity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ImageFamily:
    """A named family: ``intensity(theta (B, P), x (H, W), y (H, W)) -> (B, H, W)`` positive, and its parameters."""

    name: str
    parameters: tuple[ParameterSpec, ...]
    intensity: Intensity
    description: str

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds, each ``(P,)`` float64."""
        return (torch.tensor([p.low for p in self.parameters], dtype=torch.float64),
                torch.tensor([p.high for p in self.parameters], dtype=torch.float64))

    @property
    def periodic(self) -> torch.Tensor:
        """``(P,)`` bool mask of the periodic parameters."""
        return torch.tensor([p.periodic for p in self.parameters])

    def check(self, theta: torch.Tensor) -> torch.Tensor:
        """``theta`` as a float64 ``(B, P)`` tensor after checking its shape, finiteness and range.

        ``theta`` is ``(B, P)`` or ``(P,)`` real numbers (a tensor, list or array; floating and
        integer values are converted to float64, bool / complex raise ``TypeError``); an empty
        batch, a wrong ``P``, NaN / inf or a value outside its range raise ``ValueError``.
        """
        theta = real_tensor("theta", theta, dtype=torch.float64, integer_ok=True, finite=False, allow_empty=True)
        if theta.ndim == 1:
            theta = theta.unsqueeze(0)
        if theta.ndim != 2 or theta.shape[1] != self.n_parameters:
            raise ValueError(f"family {self.name!r} takes theta of shape (B, {self.n_parameters}) "
                             f"({', '.join(p.name for p in self.parameters)}), got {tuple(theta.shape)}")
        if len(theta) == 0:
            raise ValueError(f"theta for family {self.name!r} is an empty batch (shape {tuple(theta.shape)}); "
                             f"expected at least one parameter vector")
        if not torch.isfinite(theta).all():
            raise ValueError(f"theta for family {self.name!r} contains NaN or infinite values")
        low, high = self.bounds
        outside = (theta < low - 1e-12) | (theta > high + 1e-12)
        if outside.any():
            row, column = (int(i) for i in outside.nonzero()[0])
            spec = self.parameters[column]
            raise ValueError(f"parameter {spec.name!r} of family {self.name!r} is {theta[row, column].item():.6g}, "
                             f"outside its range [{spec.low:.6g}, {spec.high:.6g}]")
        return theta

    def phi(self, theta: torch.Tensor, size: int) -> torch.Tensor:
        """Normalised images ``(B, size, size)`` (float64) for parameters ``theta`` ``(B, P)`` or ``(P,)``.

        ``theta`` is checked by :meth:`check`; ``size`` (pixels per side) must be an integer >= 1
        (``TypeError`` for bools and non-integers, ``ValueError`` below 1).
        """
        return self.phi_unchecked(self.check(theta), size)

    def jacobian(self, theta: torch.Tensor, size: int) -> torch.Tensor:
        """``J[b, k, i] = d phi_k / d theta_i`` of shape ``(B, size*size, P)`` (float64), pixels row-major.

        Checks as :meth:`phi`; computed by forward-mode autodiff (``torch.func.jvp``).
        """
        return self.jacobian_unchecked(self.check(theta), size)

    def phi_unchecked(self, theta: torch.Tensor, size: int) -> torch.Tensor:
        """:meth:`phi` without the range check, for optimisers that step outside and clamp afterwards.

        ``theta`` must already be a floating ``(B, P)`` tensor (kept in its dtype); ``size`` is checked.
        """
        size = count("size", size)
        x, y = pixel_centres(size, theta.dtype, theta.device)
        intensity = self.intensity(theta, x, y)
        return intensity / intensity.sum(dim=(1, 2), keepdim=True)

    def jacobian_unchecked(self, theta: torch.Tensor, size: int) -> torch.Tensor:
        """:meth:`jacobian` without the range check (one forward-mode pass per parameter)."""
        size = count("size", size)
        basis = torch.eye(self.n_parameters, dtype=theta.dtype, device=theta.device)
        tangents = basis[:, None, :].expand(-1, len(theta), -1)

        def directional(tangent: torch.Tensor) -> torch.Tensor:
            return jvp(lambda t: self.phi_unchecked(t, size).flatten(1), (theta,), (tangent,))[1]

        return vmap(directional)(tangents).permute(1, 2, 0)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` parameter vectors ``(n, P)`` (float64) drawn uniformly from the ranges; ``n`` an integer >= 1."""
        n = count("n", n)
        low, high = self.bounds
        return low + (high - low) * torch.rand(n, self.n_parameters, generator=generator, dtype=torch.float64)

    def wrap(self, theta: torch.Tensor) -> torch.Tensor:
        """Periodic parameters taken modulo their range, the others clamped into theirs.

        ``theta`` is a non-empty floating ``(B, P)`` tensor (kept in its dtype; ``TypeError`` otherwise).
        NaN entries are not an error here: they stay NaN, so the MLE's step test rejects such a step.
        """
        theta = real_tensor("theta", theta, shape=(None, self.n_parameters), finite=False,
                            expected=f"(B, {self.n_parameters})")
        low, high = (b.to(theta) for b in self.bounds)
        periodic = self.periodic.to(theta.device)
        wrapped = low + torch.remainder(theta - low, high - low)
        return torch.where(periodic, wrapped, torch.minimum(torch.maximum(theta, low), high))


def pixel_centres(size: int, dtype: torch.dtype = torch.float64, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` coordinates ``(size, size)`` of the pixel centres in the unit square.

    ``size``: integer >= 1 (``TypeError`` for bools / non-integers); ``dtype`` must be floating.
    """
    size = count("size", size)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    axis = (torch.arange(size, dtype=dtype, device=device) + 0.5) / size
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x, y


def _linear_wave(x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``cos(2 pi (kx x + ky y) + p)`` ``(B, H, W)`` for ``theta = (kx, ky, p)`` ``(B, 3)``; ``x``, ``y`` ``(H, W)``."""
    _check_wave_inputs(x, y, theta, 3)
    kx, ky, phase = (theta[:, i, None, None] for i in range(3))
    return torch.cos(TWO_PI * (kx * x + ky * y) + phase)


def _radial_wave(x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``cos(2 pi k r + p)`` ``(B, H, W)`` for ``theta = (cx, cy, k, p)`` ``(B, 4)``; ``x``, ``y`` ``(H, W)``."""
    _check_wave_inputs(x, y, theta, 4)
    cx, cy, k, phase = (theta[:, i, None, None] for i in range(4))
    radius = torch.sqrt((x - cx) ** 2 + (y - cy) ** 2 + 1e-12)
    return torch.cos(TWO_PI * k * radius + phase)


def _check_wave_inputs(x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor, parameters: int) -> None:
    """Shapes and dtypes of a wave's inputs (no finiteness scan: this runs inside autodiff)."""
    for name, value in (("x", x), ("y", y), ("theta", theta)):
        if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got "
                            f"{value.dtype if isinstance(value, torch.Tensor) else type(value).__name__}")
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must be pixel coordinates of one shape (H, W), got {tuple(x.shape)} and {tuple(y.shape)}")
    if theta.ndim != 2 or theta.shape[1] < parameters:
        raise ValueError(f"theta must be (B, {parameters}), got {tuple(theta.shape)}")


def _column(theta: torch.Tensor, index: int) -> torch.Tensor:
    return theta[:, index, None, None]


def _sinusoid(theta, x, y):
    return 1.0 + VISIBILITY * _linear_wave(x, y, theta)


def _double_sinusoid(theta, x, y):
    share = _column(theta, 6)
    return 1.0 + VISIBILITY * (share * _linear_wave(x, y, theta[:, 0:3]) + (1 - share) * _linear_wave(x, y, theta[:, 3:6]))


def _triple_sinusoid(theta, x, y):
    a1, a2 = _column(theta, 9), _column(theta, 10)
    waves = a1 * _linear_wave(x, y, theta[:, 0:3]) + a2 * _linear_wave(x, y, theta[:, 3:6])
    return 1.0 + VISIBILITY * (waves + (1 - a1 - a2) * _linear_wave(x, y, theta[:, 6:9]))


def _radial_linear(theta, x, y):
    share = _column(theta, 7)
    return 1.0 + VISIBILITY * (share * _radial_wave(x, y, theta[:, 0:4]) + (1 - share) * _linear_wave(x, y, theta[:, 4:7]))


def _double_radial(theta, x, y):
    share = _column(theta, 8)
    return 1.0 + VISIBILITY * (share * _radial_wave(x, y, theta[:, 0:4]) + (1 - share) * _radial_wave(x, y, theta[:, 4:8]))


FAMILIES: dict[str, ImageFamily] = {}


def register_family(family: ImageFamily) -> ImageFamily:
    """Add ``family`` to :data:`FAMILIES` (its name must be new) and return it.

    ``TypeError`` when ``family`` is not an :class:`ImageFamily`; ``ValueError`` for a taken name.
    """
    if not isinstance(family, ImageFamily):
        raise TypeError(f"family must be an ImageFamily, got {type(family).__name__}")
    if family.name in FAMILIES:
        raise ValueError(f"an image family named {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> ImageFamily:
    """The registered family called ``name``; a clear error lists the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"family name must be a string, got {name!r} ({type(name).__name__})")
    if name not in FAMILIES:
        raise ValueError(f"unknown image family {name!r}; known families: {sorted(FAMILIES)}")
    return FAMILIES[name]


_INTENSITIES: dict[str, tuple[Intensity, str]] = {
    "sinusoid": (_sinusoid, "one linear sinusoid, 1 + 0.8 cos(2 pi (kx x + ky y) + p)"),
    "double_sinusoid": (_double_sinusoid, "two linear sinusoids sharing the visibility 0.8 as a : (1 - a)"),
    "triple_sinusoid": (_triple_sinusoid, "three linear sinusoids sharing the visibility 0.8 as a1 : a2 : (1 - a1 - a2)"),
    "radial_linear": (_radial_linear, "a radial and a linear sinusoid sharing the visibility 0.8 as a : (1 - a)"),
    "double_radial": (_double_radial, "two radial sinusoids sharing the visibility 0.8 as a : (1 - a)"),
}

for _name, (_intensity, _description) in _INTENSITIES.items():
    register_family(ImageFamily(_name, FAMILY_PARAMETERS[_name], _intensity, _description))
