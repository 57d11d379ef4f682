import torch

from qml_imaging.physics.bounds import total_bound
from qml_imaging.physics.mle import PoissonMLE
from qml_imaging.physics.parametric import get_family
from qml_imaging.physics.shot_noise import shot_noise_counts


def test_mle_recovers_parameters_from_noiseless_like_counts():
    family = get_family("sinusoid")
    theta = torch.tensor([[2.5, -1.5, 4.0]], dtype=torch.float64)
    phi = family.phi(theta, 16)
    estimate = PoissonMLE(family, 16).fit(phi * 1e9, 1e9)
    assert torch.allclose(estimate, theta, atol=1e-6)


def test_mle_is_efficient_at_high_photon_number():
    family = get_family("sinusoid")
    theta = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)
    size, nbar, realisations = 16, 4000.0, 300
    phi = family.phi(theta, size)
    counts = shot_noise_counts(phi.expand(realisations, size, size).contiguous(), nbar, torch.Generator().manual_seed(0))
    estimates = family.phi(PoissonMLE(family, size, candidates=1024, starts=4).fit(counts, nbar), size)
    ratio = (estimates - phi).pow(2).sum((1, 2)).mean() / total_bound(phi.flatten(1), family.jacobian(theta, size), nbar)[0]
    assert 0.8 < ratio.item() < 1.25
