import pytest
import torch

from qml_imaging.models.g2_cnn import G2CNN


def test_paper_sized_cnn_maps_histograms_to_one_value_each():
    model = G2CNN()
    assert model.features[0].out_channels == 260 and model.features[0].kernel_size == (4,)
    assert model(torch.rand(3, 215) * 5).shape == (3,)


def test_event_count_reaches_the_output_beyond_the_histogram_shape():
    torch.manual_seed(0)
    model = G2CNN(filters=4, dense=(8,)).eval()
    shape = torch.rand(1, 215)
    assert model(shape) != model(10 * shape)


def test_predict_rejects_bad_histograms():
    with pytest.raises(ValueError, match=r"shape \(B, 215\)"):
        G2CNN(filters=2).predict(torch.zeros(1, 200))
    with pytest.raises(ValueError, match=">= 0"):
        G2CNN(filters=2).predict(-torch.ones(1, 215))
