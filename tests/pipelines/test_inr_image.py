import pytest

from qml_imaging.config import config_from_dict
from qml_imaging.data.datasets import load_skimage_image
from qml_imaging.pipelines.inr.fitting import matched_width, model_executors
from qml_imaging.pipelines.inr.image import interpolation_mse


def camera(size):
    return load_skimage_image("camera", size, value_range=(-1.0, 1.0))


def test_interpolation_to_the_same_size_is_exact():
    errors = interpolation_mse(camera(16), camera(16))
    assert errors["bilinear"] == pytest.approx(0.0, abs=1e-12)
    assert errors["nearest"] == pytest.approx(0.0, abs=1e-12)


def test_upsampling_loses_detail_that_the_fine_image_has():
    errors = interpolation_mse(camera(16), camera(64))
    assert errors["bilinear"] > 1e-3 and errors["nearest"] > 1e-3


def test_qiren_outside_the_budget_is_a_clear_error():
    config = config_from_dict({
        "experiment": "inr_image", "name": "x", "parameter_budget": 300, "reference_model": "qiren",
        "models": {"qiren": {"kind": "qiren"}},
    })
    with pytest.raises(ValueError, match="QIREN with these settings has 657 parameters, not within 10 % of the budget 300"):
        matched_width(config.models["qiren"], config.parameter_budget, model_executors(config.models))
