import pytest
import torch

from qml_imaging.diffusion.schedules import cosine_schedule
from qml_imaging.diffusion.tailored import importance_weights, timestep_loss_profile
from tests.diffusion.test_ddpm import GaussianDenoiser


def test_profile_of_the_exact_gaussian_denoiser_is_the_posterior_variance_of_eps():
    schedule = cosine_schedule(100)
    mu, s = 0.2, 0.5
    generator = torch.Generator().manual_seed(0)
    images = mu + s * torch.randn(3000, 1, 4, 4, generator=generator)
    profile = timestep_loss_profile(GaussianDenoiser(schedule, mu, s), schedule, images, bins=4, repeats=1,
                                    generator=generator)
    a = schedule.alpha_bar
    expected = (a * s**2 / (a * s**2 + 1 - a)).reshape(4, 25).mean(1)
    torch.testing.assert_close(profile, expected, rtol=0.04, atol=0.0)
    assert profile[0] > profile[-1], "eps is hardest to infer where the image dominates"


def test_importance_weights_mix_the_profile_with_uniform_steps():
    weights = importance_weights(torch.tensor([3.0, 1.0]), steps=4, uniform_share=0.2)
    torch.testing.assert_close(weights, torch.tensor([0.35, 0.35, 0.15, 0.15], dtype=torch.float64))
    assert importance_weights(torch.tensor([5.0, 1.0]), 10, 1.0).tolist() == pytest.approx([0.1] * 10)


def test_bad_profiles_and_settings_are_clear_errors():
    with pytest.raises(ValueError, match="profile must be 1..4 positive finite losses"):
        importance_weights(torch.tensor([1.0, float("nan")]), 4, 0.2)
    with pytest.raises(ValueError, match="uniform_share must be in \\(0, 1\\], got 0"):
        importance_weights(torch.tensor([1.0]), 4, 0.0)
    with pytest.raises(ValueError, match="bins must be in 1..10, got 20"):
        timestep_loss_profile(GaussianDenoiser(cosine_schedule(10), 0, 1), cosine_schedule(10), torch.zeros(2, 1, 2, 2),
                              bins=20, repeats=1, generator=torch.Generator())
