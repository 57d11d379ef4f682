"""Schedules and samplers against closed forms: point-mass and Gaussian data with their exact denoisers."""

import math

import pytest
import torch
from torch import nn

from qml_imaging.diffusion.ddpm import (
    EpsilonObjective,
    bank_noise,
    ddim_sample,
    ddpm_sample,
    torch_noise,
)
from qml_imaging.diffusion.schedules import (
    NoiseSchedule,
    cosine_schedule,
    linear_schedule,
    make_schedule,
)
from qml_imaging.quantum.noise import NoiseBank


class GaussianDenoiser(nn.Module):
    """The exact eps predictor for data N(mu, s^2) per pixel: sqrt(1 - a)(x - sqrt(a) mu) / (a s^2 + 1 - a)."""

    def __init__(self, schedule, mu, s):
        super().__init__()
        self.alpha_bar, self.mu, self.s = schedule.alpha_bar.float(), mu, s

    def forward(self, x, t):
        a = self.alpha_bar[t].reshape(-1, 1, 1, 1)
        return (1 - a).sqrt() * (x - a.sqrt() * self.mu) / (a * self.s**2 + 1 - a)


def test_schedules_match_their_definitions():
    linear = linear_schedule(1000)
    assert linear.betas[0].item() == pytest.approx(1e-4) and linear.betas[-1].item() == pytest.approx(0.02)
    torch.testing.assert_close(linear_schedule(100).betas, 10 * torch.linspace(1e-4, 0.02, 100, dtype=torch.float64))
    cosine = cosine_schedule(1000)

    def f(t):
        return math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    assert cosine.alpha_bar[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)
    for schedule in (linear, cosine):
        assert (schedule.alpha_bar.diff() < 0).all() and schedule.alpha_bar[-1] < 1e-3


def test_forward_process_has_the_closed_form_moments():
    schedule = cosine_schedule(100)
    x0 = torch.full((20000, 1, 1, 1), 0.7)
    t = torch.full((20000,), 40)
    xt = schedule.add_noise(x0, t, torch.randn_like(x0))
    a = schedule.alpha_bar[40].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(a) * 0.7, abs=0.02)
    assert xt.var().item() == pytest.approx(1 - a, rel=0.05)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_both_samplers_return_point_mass_data_exactly(name):
    schedule = make_schedule(name, 200)
    oracle = GaussianDenoiser(schedule, mu=0.3, s=0.0)
    generator = torch.Generator().manual_seed(0)
    for samples in (ddpm_sample(oracle, schedule, (8, 1, 4, 4), torch_noise(generator)),
                    ddim_sample(oracle, schedule, (8, 1, 4, 4), torch_noise(generator), steps=20)):
        torch.testing.assert_close(samples, torch.full_like(samples, 0.3), atol=1e-4, rtol=0)


def test_samplers_reproduce_gaussian_data_with_the_exact_denoiser():
    schedule = cosine_schedule(250)
    oracle = GaussianDenoiser(schedule, mu=0.2, s=0.3)
    generator = torch.Generator().manual_seed(1)
    shape = (4000, 1, 1, 1)
    ddpm = ddpm_sample(oracle, schedule, shape, torch_noise(generator), clip=False)
    ddim = ddim_sample(oracle, schedule, shape, torch_noise(generator), steps=250, clip=False)
    few_step_ddim = ddim_sample(oracle, schedule, shape, torch_noise(generator), steps=50, clip=False)
    for samples, tolerance in ((ddpm, 0.04), (ddim, 0.04), (few_step_ddim, 0.08)):  # 50 steps shrink the spread a little
        assert samples.mean().item() == pytest.approx(0.2, abs=0.02)
        assert samples.std().item() == pytest.approx(0.3, rel=tolerance)


def test_objective_is_zero_for_the_exact_denoiser_of_point_mass_data_and_can_use_a_noise_bank():
    schedule = cosine_schedule(50)
    oracle = GaussianDenoiser(schedule, mu=-0.5, s=0.0)
    bank = NoiseBank.generate(4 * 64, seed=2)
    objective = EpsilonObjective(schedule, noise=bank_noise(bank))
    loss = objective(oracle, (torch.full((4, 1, 8, 8), -0.5),))
    assert loss.item() < 1e-10 and bank.position == 4 * 64
    wrong = EpsilonObjective(schedule)(GaussianDenoiser(schedule, mu=0.5, s=0.0), torch.full((4, 1, 8, 8), -0.5))
    assert wrong.item() > 1e-3


def test_bad_schedules_and_sampler_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown noise schedule 'cosin'"):
        make_schedule("cosin", 100)
    with pytest.raises(ValueError, match="betas must lie in \\(0, 1\\)"):
        NoiseSchedule("bad", torch.tensor([0.1, 1.2], dtype=torch.float64))
    schedule = linear_schedule(10)
    with pytest.raises(ValueError, match="DDIM steps must be in 1..10, got 20"):
        ddim_sample(GaussianDenoiser(schedule, 0.0, 0.0), schedule, (1, 1, 2, 2), torch_noise(), steps=20)
    with pytest.raises(ValueError, match="timestep_weights must be 10 non-negative numbers"):
        EpsilonObjective(schedule, timestep_weights=torch.ones(5))


def test_importance_sampled_timesteps_keep_the_uniform_objective_in_expectation():
    schedule = cosine_schedule(20)
    model = GaussianDenoiser(schedule, mu=0.3, s=0.0)
    x0 = torch.full((4000, 1, 2, 2), -0.2)
    torch.manual_seed(0)
    uniform = EpsilonObjective(schedule)(model, x0).item()
    weights = torch.linspace(3.0, 0.1, 20)
    torch.manual_seed(1)
    importance = EpsilonObjective(schedule, timestep_weights=weights)(model, x0).item()
    torch.manual_seed(1)
    biased = EpsilonObjective(schedule, timestep_weights=weights, reweight=False)(model, x0).item()
    assert importance == pytest.approx(uniform, rel=0.08)
    assert abs(biased - uniform) > 0.15 * uniform, "without reweighting the objective favours the heavy steps"


def test_objective_uses_noise_carried_by_the_batch():
    schedule = cosine_schedule(30)
    x0 = torch.randn(6, 1, 4, 4)
    eps = torch.randn(6, 1, 4, 4)

    def echo(x_t, t):
        return eps
    assert EpsilonObjective(schedule)(echo, {"x0": x0, "eps": eps}).item() == 0.0
    assert EpsilonObjective(schedule)(echo, {"x0": x0}).item() > 0.5
