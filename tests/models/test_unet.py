import pytest
import torch

from qml_imaging.models.unet import DenoisingUNet


def test_output_has_the_input_resolution_at_every_depth():
    for depth in (1, 2, 4):
        model = DenoisingUNet(2, 1, depth=depth, base_channels=4, max_channels=16)
        assert model(torch.randn(3, 2, 16, 16)).shape == (3, 1, 16, 16)


def test_channels_double_per_level_up_to_the_cap():
    model = DenoisingUNet(1, 1, depth=4, base_channels=8, max_channels=16)
    widths = [stage[0].body[0].out_channels for stage in model.encoder]
    assert widths == [8, 16, 16, 16]


def test_every_parameter_gets_a_gradient():
    model = DenoisingUNet(1, 1, depth=3, base_channels=4, res_blocks=2, dropout=0.1)
    model(torch.randn(2, 1, 8, 8)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_shapes_and_settings_are_clear_errors():
    model = DenoisingUNet(1, 1, depth=3, base_channels=4)
    with pytest.raises(ValueError, match=r"divisible by 4 \(depth 3\), got \(1, 1, 10, 10\)"):
        model(torch.randn(1, 1, 10, 10))
    with pytest.raises(ValueError, match="kernel sizes must be odd"):
        DenoisingUNet(1, 1, kernel=4)


def test_levels_below_skip_from_level_get_no_skip_connection():
    widths = [4, 8, 16]
    for skip_from_level in (0, 1, 2):
        model = DenoisingUNet(1, 1, depth=3, base_channels=4, skip_from_level=skip_from_level)
        decoder_inputs = [stage[0].body[0].in_channels for stage in model.decoder]
        expected = [2 * widths[level] if level >= skip_from_level else widths[level] for level in (1, 0)]
        assert decoder_inputs == expected
        model(torch.randn(2, 1, 8, 8)).square().mean().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match=r"skip_from_level must be in \[0, depth - 1 = 2\], got 3"):
        DenoisingUNet(1, 1, depth=3, skip_from_level=3)
