import pytest
import torch

from qml_imaging.config import load_config
from qml_imaging.models.inr import parameter_count
from qml_imaging.models.inr_generator import Discriminator, InrGenerator, QirenEmbedding, make_embedding, matched_width
from qml_imaging.models.specs import EMBEDDINGS, InrGeneratorSpec
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.factory import make_executor
from tests.conftest import EXPERIMENTS


def test_qiren_embedding_on_the_fast_backend_equals_default_qubit():
    torch.manual_seed(0)
    fast = QirenEmbedding(6).double()
    reference = QirenEmbedding(6, executor=backend_spec("default.qubit")).double()
    reference.load_state_dict(fast.state_dict())
    coordinates = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    expected = reference(coordinates)
    assert expected.shape == (40, 6) and expected.abs().max() <= 1
    torch.testing.assert_close(fast(coordinates), expected, atol=1e-5, rtol=0)
    fast.float()
    torch.testing.assert_close(fast(coordinates.float()).double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config_name, channels, side",
                         [("qiren_generation", 1, 28), ("qiren_generation_smoke", 1, 28),
                          ("qiren_generation_gpu", 3, 32)])
def test_every_embedding_has_the_same_generator_parameter_count_within_5_percent(config_name, channels, side):
    spec = load_config(EXPERIMENTS / f"{config_name}.yaml").generator
    executor = make_executor(backend_spec("fast"))
    counts = {}
    for embedding in EMBEDDINGS:
        width = matched_width(spec, embedding, channels=channels, side=side, executor=executor)
        counts[embedding] = parameter_count(InrGenerator(spec, embedding, width, channels=channels, side=side,
                                                         executor=executor))
    assert all(abs(c - spec.parameter_budget) <= 0.05 * spec.parameter_budget for c in counts.values()), counts
    assert max(counts.values()) <= 1.05 * min(counts.values()), counts


def test_generator_shares_one_grid_embedding_and_shapes_follow_the_spec():
    spec = InrGeneratorSpec(features=4, hidden_layers=2, latent_dim=8, style_dim=8, mapping_layers=1)
    generator = InrGenerator(spec, "qiren", 12, channels=3, side=8)
    features = generator.embed()
    assert features.shape == (64, 4)
    latents = torch.randn(5, 8)
    images = generator(latents, features)
    assert images.shape == (5, 3, 8, 8)
    torch.testing.assert_close(generator(latents), images)
    assert Discriminator(3, 8, 4)(images).shape == (5,)
    generator.eval()
    torch.testing.assert_close(generator(latents), images), "eval mode uses the grid's own BatchNorm statistics"


def test_bad_sizes_are_clear_errors():
    spec = InrGeneratorSpec(features=3, latent_dim=8)
    with pytest.raises(ValueError, match="features must be even"):
        make_embedding("rff", spec)
    with pytest.raises(ValueError, match="unknown coordinate embedding 'gauss'"):
        make_embedding("gauss", spec)
    with pytest.raises(ValueError, match=r"latents must have shape \(B, 8\)"):
        InrGenerator(spec, "relu", 8)(torch.randn(2, 7))
    with pytest.raises(ValueError, match="divisible by 4"):
        Discriminator(1, 30)
    with pytest.raises(ValueError, match="generator with the 'tanh' embedding: no width matches"):
        matched_width(InrGeneratorSpec(parameter_budget=1000, latent_dim=64, style_dim=64), "tanh")


@pytest.mark.parametrize("embedding", EMBEDDINGS)
def test_the_latent_reaches_the_synthesis_at_initialisation(embedding):
    # The shipped generator (features 16, 3 layers, z/w 64, 2 mapping layers) must draw different images for
    # different latents from the start: with PyTorch's default Linear init the mapping shrank w to ~0.17 and
    # the styles were s = 1 +- 0.08, so every latent drew nearly one image (std across latents 0.02-0.05 in
    # [-1, 1]) and every GAN of the 400-step run mode-collapsed.
    torch.manual_seed(0)
    spec = InrGeneratorSpec(features=16, hidden_layers=3, latent_dim=64, style_dim=64, mapping_layers=2)
    generator = InrGenerator(spec, embedding, 40)
    latents = torch.randn(128, 64)
    with torch.no_grad():
        styles = generator.mapping(latents)
        images = generator(latents)
    assert styles.std() > 0.5, "the mapping network keeps the latent's unit scale"
    assert generator.layers[0].style(styles).std(dim=0).mean() > 0.5, "styles vary across latents by O(1)"
    assert images.std(dim=0).mean() > 0.1, "each pixel varies across latents"
