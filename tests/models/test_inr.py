import math

import pytest
import torch

from qml_imaging.models.inr import (
    CoordinateMLP,
    FourierFeatureMLP,
    Siren,
    parameter_count,
    width_for_budget,
)


@pytest.mark.parametrize(
    "build",
    [
        lambda w: CoordinateMLP(2, w, 3),
        lambda w: CoordinateMLP(2, w, 3, activation=torch.nn.Tanh, batch_norm=False),
        lambda w: FourierFeatureMLP(2, w, 3, n_frequencies=16, sigma=5.0),
        lambda w: Siren(2, w, 3),
    ],
)
@pytest.mark.parametrize("budget", [657, 5000])
def test_width_for_budget_matches_within_ten_percent(build, budget):
    width = width_for_budget(build, budget)
    assert abs(parameter_count(build(width)) - budget) <= 0.1 * budget


def test_width_for_budget_fails_clearly_when_unreachable():
    with pytest.raises(ValueError, match="no width matches the budget of 5 parameters"):
        width_for_budget(lambda w: CoordinateMLP(2, w, 3), 5)


def test_fourier_frequencies_are_fixed_not_trained():
    model = FourierFeatureMLP(2, 8, 1, n_frequencies=4, sigma=2.0, batch_norm=False)
    names = {name for name, _ in model.named_parameters()}
    assert not any("frequencies" in name for name in names)
    assert model.features.frequencies.shape == (2, 4)
    features = model.features(torch.zeros(5, 2))
    assert torch.allclose(features[:, :4], torch.zeros(5, 4)) and torch.allclose(features[:, 4:], torch.ones(5, 4))


def test_siren_initialisation_bounds():
    omega = 30.0
    model = Siren(2, 64, 3, omega_0=omega)
    first = model.sine_layers[0].linear.weight
    assert first.abs().max() <= 1 / 2
    hidden = model.sine_layers[1].linear.weight
    bound = math.sqrt(6 / 64) / omega
    assert hidden.abs().max() <= bound and hidden.abs().max() > 0.8 * bound


def test_models_map_coordinates_to_values():
    x = torch.rand(10, 2) * 2 - 1
    for model in (CoordinateMLP(2, 8, 2), FourierFeatureMLP(2, 8, 2), Siren(2, 8, 2)):
        assert model(x).shape == (10, 1)


def test_qiren_has_the_authors_parameter_counts_and_live_quantum_weights():
    from qml_imaging.models.inr import QIREN
    from qml_imaging.quantum.circuits import qiren_redundant_weights

    assert parameter_count(QIREN(2)) == 657
    assert parameter_count(QIREN(1)) == 649
    torch.manual_seed(0)
    model = QIREN(2, n_qubits=4, hybrid_layers=2, reuploads=2, sublayers=2)
    out = model(torch.rand(32, 2) * 2 - 1)
    assert out.shape == (32, 1)
    (out**2).sum().backward()
    for layer in model.quantum_layers():
        live = torch.ones_like(layer.weights, dtype=torch.bool)
        for index in qiren_redundant_weights(layer.weights.shape):
            live[index] = False
        assert (layer.weights.grad[live].abs() > 1e-6).all()
