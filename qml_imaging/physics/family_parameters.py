"""The parameters of the image families of :mod:`qml_imaging.physics.parametric`: names and closed
ranges, torch-free so a config's ``family`` and ``theta`` are checked when it is validated."""

from __future__ import annotations

import math
from dataclasses import dataclass

TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter of a family: its name and closed range; periodic ones wrap modulo their range."""

    name: str
    low: float
    high: float
    periodic: bool = False


def linear_wave_parameters(index: int) -> tuple[ParameterSpec, ...]:
    """``kx``, ``ky`` (cycles per image side) and the phase of a linear sinusoid."""
    return (ParameterSpec(f"kx{index}", 0.5, 4.0), ParameterSpec(f"ky{index}", -4.0, 4.0),
            ParameterSpec(f"phase{index}", 0.0, TWO_PI, periodic=True))


def radial_wave_parameters(index: int) -> tuple[ParameterSpec, ...]:
    """Centre ``cx``, ``cy`` (image fractions), wave number ``k`` and phase of a radial sinusoid."""
    return (ParameterSpec(f"cx{index}", 0.25, 0.75), ParameterSpec(f"cy{index}", 0.25, 0.75),
            ParameterSpec(f"k{index}", 1.0, 5.0), ParameterSpec(f"radial_phase{index}", 0.0, TWO_PI, periodic=True))


SHARE = ParameterSpec("share", 0.2, 0.8)

FAMILY_PARAMETERS: dict[str, tuple[ParameterSpec, ...]] = {
    "sinusoid": linear_wave_parameters(1),
    "double_sinusoid": linear_wave_parameters(1) + linear_wave_parameters(2) + (SHARE,),
    "triple_sinusoid": linear_wave_parameters(1) + linear_wave_parameters(2) + linear_wave_parameters(3)
    + (ParameterSpec("share1", 0.1, 0.45), ParameterSpec("share2", 0.1, 0.45)),
    "radial_linear": radial_wave_parameters(1) + linear_wave_parameters(2) + (SHARE,),
    "double_radial": radial_wave_parameters(1) + radial_wave_parameters(2) + (SHARE,),
}
"""The shipped families' parameters, in order."""


def check_theta(family: str, theta: list[float]) -> None:
    """Raise ValueError unless ``family`` is shipped and ``theta`` has its parameter count, each value
    inside its range (periodic parameters may take any value: they wrap)."""
    if family not in FAMILY_PARAMETERS:
        raise ValueError(f"unknown image family {family!r}; known families: {sorted(FAMILY_PARAMETERS)}")
    parameters = FAMILY_PARAMETERS[family]
    if len(theta) != len(parameters):
        raise ValueError(f"family {family!r} has {len(parameters)} parameters {[p.name for p in parameters]}, "
                         f"theta has {len(theta)}")
    outside = [f"{p.name}={value} (range [{p.low:g}, {p.high:g}])" for p, value in zip(parameters, theta, strict=True)
               if not p.periodic and not p.low <= value <= p.high]
    if outside:
        raise ValueError(f"theta outside the family {family!r}'s ranges: {', '.join(outside)}")
