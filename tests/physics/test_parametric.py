import math

import pytest
import torch

from qml_imaging.physics.family_parameters import ParameterSpec
from qml_imaging.physics.parametric import FAMILIES, ImageFamily, get_family, register_family


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_gives_normalised_positive_images(name):
    family = FAMILIES[name]
    theta = family.sample(5, torch.Generator().manual_seed(0))
    phi = family.phi(theta, 16)
    assert phi.shape == (5, 16, 16)
    assert torch.allclose(phi.sum((1, 2)), torch.ones(5, dtype=torch.float64))
    assert (phi > 0).all()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_jacobian_matches_central_differences(name):
    family = FAMILIES[name]
    theta = family.sample(2, torch.Generator().manual_seed(1))
    low, high = family.bounds
    theta = low + 0.1 * (high - low) + 0.8 * (theta - low)
    jacobian = family.jacobian(theta, 12)
    step = 1e-6
    for i in range(family.n_parameters):
        shift = torch.zeros(family.n_parameters, dtype=torch.float64)
        shift[i] = step
        numeric = (family.phi(theta + shift, 12) - family.phi(theta - shift, 12)).flatten(1) / (2 * step)
        assert torch.allclose(jacobian[:, :, i], numeric, atol=1e-8)


def test_parameter_counts_span_three_to_eleven():
    counts = {name: family.n_parameters for name, family in FAMILIES.items()}
    assert counts == {"sinusoid": 3, "double_sinusoid": 7, "triple_sinusoid": 11, "radial_linear": 8, "double_radial": 9}


def test_single_sinusoid_matches_its_formula():
    phi = get_family("sinusoid").phi(torch.tensor([1.0, 0.0, 0.0]), 4)[0]
    x = (torch.arange(4, dtype=torch.float64) + 0.5) / 4
    row = 1 + 0.8 * torch.cos(2 * math.pi * x)
    assert torch.allclose(phi, (row / (4 * row.sum())).expand(4, 4))


def test_parameter_outside_its_range_is_a_clear_error():
    with pytest.raises(ValueError, match=r"parameter 'kx1' of family 'sinusoid' is 9, outside its range \[0.5, 4\]"):
        get_family("sinusoid").phi(torch.tensor([9.0, 0.0, 0.0]), 8)


def test_wrong_parameter_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"takes theta of shape \(B, 3\) \(kx1, ky1, phase1\), got \(1, 2\)"):
        get_family("sinusoid").phi(torch.tensor([1.0, 0.0]), 8)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown image family 'sinusiod'; known families: .*'sinusoid'"):
        get_family("sinusiod")


def test_wrap_takes_phases_modulo_and_clamps_the_rest():
    family = get_family("sinusoid")
    wrapped = family.wrap(torch.tensor([[5.0, -7.0, 2 * math.pi + 0.5]], dtype=torch.float64))
    assert torch.allclose(wrapped, torch.tensor([[4.0, -4.0, 0.5]], dtype=torch.float64))


def test_users_can_register_a_family():
    family = ImageFamily("test_gradient", (ParameterSpec("slope", -0.5, 0.5),),
                         lambda theta, x, y: 1.0 + theta[:, 0, None, None] * (x - 0.5), "a linear ramp")
    try:
        assert register_family(family) is get_family("test_gradient")
        with pytest.raises(ValueError, match="already registered"):
            register_family(family)
    finally:
        FAMILIES.pop("test_gradient")
