"""Image and signal files a user brings: readers, preprocessing, and one-line errors (tests write the files)."""

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from qml_imaging.config import ConfigError, config_from_dict
from qml_imaging.data.images import check_contrast, image_files, load_image, load_image_folder, read_image
from qml_imaging.data.signals import load_signal_file


def write_rgb_png(path, height=40, width=48):
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([(x * 5) % 256, (y * 6) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def write_tiff16(path, height=40, width=48):
    y, x = np.mgrid[0:height, 0:width]
    pixels = (np.sin(x / 5) * np.cos(y / 7) * 20000 + 30000).astype(np.uint16)
    tifffile.imwrite(path, pixels)
    return pixels


def write_cello_like_wav(path, rate=44100, silent=14400, total=30000):
    """A mono IEEE-float WAV whose first ``silent`` samples are zero, like the QIREN authors' cello file."""
    t = np.arange(total) / rate
    samples = (0.4 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)).astype(np.float32)
    samples[:silent] = 0.0
    soundfile = pytest.importorskip("soundfile", reason="audio files need the [audio] extra")
    soundfile.write(path, samples, rate, subtype="FLOAT")
    return samples


def test_png_and_16_bit_tiff_keep_their_intensity_rule_and_channels(tmp_path):
    pixels = write_rgb_png(tmp_path / "colour.png")
    image, info = read_image(tmp_path / "colour.png")
    assert image.shape == (3, 40, 48) and image.dtype == torch.float32
    assert torch.allclose(image, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    assert info["intensity"] == "uint8 / 255 -> [0, 1]"
    stored = write_tiff16(tmp_path / "micro.tif")
    grey, info = read_image(tmp_path / "micro.tif", "type_max")
    assert grey.shape == (1, 40, 48) and info["dtype"] == "uint16" and info["intensity_scale"] == [0.0, 65535.0]
    assert torch.allclose(grey[0], torch.from_numpy(stored.astype(np.float32) / 65535))
    tifffile.imwrite(tmp_path / "float.tif", stored.astype(np.float32) * 1e-3)
    scaled, info = read_image(tmp_path / "float.tif")
    assert scaled.min() == 0 and scaled.max() == 1 and info["intensity"].startswith("min-max")

    rgb, info = load_image(str(tmp_path / "colour.png"), 16, channels="auto")
    assert rgb.shape == (3, 16, 16) and rgb.min() >= -1 and rgb.max() <= 1 and "[0, 1] -> [-1, 1]" in info["preprocessing"]
    assert load_image(str(tmp_path / "colour.png"), 16)[0].shape == (1, 16, 16), "grey is the default"
    native, _ = load_image(str(tmp_path / "micro.tif"), "native")
    assert native.shape == (1, 40, 48)
    cropped, _ = load_image(str(tmp_path / "micro.tif"), 32, fit="crop")
    assert torch.allclose(cropped, native[:, 4:36, 8:40])


def test_a_dim_16_bit_image_is_scaled_by_its_own_range_and_a_flat_one_refused(tmp_path):
    dim = (np.arange(40 * 48).reshape(40, 48) % 300).astype(np.uint16)  # a 12-bit camera's dim frame: 0 .. 299
    tifffile.imwrite(tmp_path / "dim.tif", dim)
    image, info = read_image(tmp_path / "dim.tif")
    assert image.min() == 0 and image.max() == 1, "auto must not divide a 16-bit image by 65535 (a black target)"
    assert info["intensity_rule"] == "auto" and info["intensity_scale"] == info["value_range"] == [0.0, 299.0]
    check_contrast(info)
    tifffile.imwrite(tmp_path / "flat.tif", np.full((40, 48), 1000, dtype=np.uint16) + (dim % 2).astype(np.uint16))
    with pytest.raises(ValueError, match=r"flat.tif: a nearly constant image \(values 1000 .. 1001\)") as error:
        check_contrast(read_image(tmp_path / "flat.tif")[1])
    assert "\n" not in str(error.value)
    tifffile.imwrite(tmp_path / "black.tif", dim // 100)  # 0 .. 2 of 65535: black under type_max
    with pytest.raises(ValueError, match="0.0031 % of the scale"):
        check_contrast(read_image(tmp_path / "black.tif", "type_max")[1])
    with pytest.raises(ValueError, match="a constant image"):
        check_contrast(load_image("camera", 8, intensity="auto")[1] | {"value_range": [7.0, 7.0]})


def test_image_errors_are_one_line_and_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.png' does not exist"):
        read_image(tmp_path / "absent.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png: not a readable image file"):
        read_image(tmp_path / "broken.png")
    write_tiff16(tmp_path / "small.tif", 20, 30)
    with pytest.raises(ValueError, match="small.tif is 20x30 pixels, smaller than the 24x24 crop; lower size or use resize: resize_crop"):
        load_image(str(tmp_path / "small.tif"), 24, fit="crop")
    config = {"experiment": "inr_image", "name": "small", "images": [str(tmp_path / "small.tif")], "size": 24,
              "resize": "crop", "models": {"tanh": {"kind": "tanh"}}}
    with pytest.raises(ConfigError, match="small.tif is 20x30 pixels, smaller than the 24x24 crop"):
        config_from_dict(config)  # refused by validate, before anything runs
    assert config_from_dict({**config, "size": 20}).size == 20
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="holds no image files"):
        image_files(tmp_path / "empty")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 8, 8), dtype=np.uint16))
    with pytest.raises(ValueError, match="stack.tif: array of shape \\(5, 8, 8\\) is not one grey or RGB image"):
        read_image(tmp_path / "stack.tif")


def test_a_folder_of_mixed_images_becomes_one_batch(tmp_path):
    write_rgb_png(tmp_path / "a.png", 30, 50)
    write_tiff16(tmp_path / "b.tif", 64, 40)
    batch = load_image_folder(tmp_path, 28, channels="auto")
    assert batch.shape == (2, 3, 28, 28) and batch.min() >= -1 and batch.max() <= 1
    assert load_image_folder(tmp_path, 32).shape == (2, 1, 32, 32)


def test_the_qiren_cello_preprocessing_is_one_config_line(tmp_path):
    samples = write_cello_like_wav(tmp_path / "cello.wav")
    signal, info = load_signal_file(tmp_path / "cello.wav", n_samples=1000, offset=20000, stride=5)
    window = samples[20000:25000:5].astype(np.float64)
    assert signal.shape == (1000,) and np.allclose(signal, window / np.abs(window).max())
    assert info["sample_rate"] == 44100 / 5 and info["preprocessing"].startswith("samples[20000:24996:5]")
    auto, info = load_signal_file(tmp_path / "cello.wav", n_samples=100, offset="auto")
    assert info["offset"] == 14400 and auto[0] != 0.0 and np.abs(auto).max() == 1.0
    with pytest.raises(ValueError, match="the chosen window \\(offset 0, 1000 samples, stride 5\\) is silent"):
        load_signal_file(tmp_path / "cello.wav", n_samples=1000, offset=0, stride=5)
    config = config_from_dict({"experiment": "inr_signal", "name": "cello", "models": {"tanh": {"kind": "tanh"}},
                               "signal": {"path": str(tmp_path / "cello.wav"), "offset": 20000, "stride": 5,
                                          "n_samples": 1000}})
    assert config.signal.file == str(tmp_path / "cello.wav")
    with pytest.raises(ConfigError, match="signal file .*absent.wav' does not exist"):
        config_from_dict({"experiment": "inr_signal", "name": "cello", "models": {"tanh": {"kind": "tanh"}},
                          "signal": {"path": str(tmp_path / "absent.wav")}})


def test_flac_csv_npy_and_a_chosen_channel(tmp_path):
    soundfile = pytest.importorskip("soundfile", reason="audio files need the [audio] extra")
    values = np.sin(np.linspace(0, 30, 3000))
    soundfile.write(tmp_path / "tone.flac", np.stack([values, -values], 1), 8000)
    np.savetxt(tmp_path / "tone.csv", values, delimiter=",")
    np.save(tmp_path / "tone.npy", values)
    expected = values[100:1100:2] / np.abs(values[100:1100:2]).max()
    for name in ("tone.csv", "tone.npy"):
        assert np.allclose(load_signal_file(tmp_path / name, 500, 100, 2)[0], expected)
    assert np.allclose(load_signal_file(tmp_path / "tone.flac", 500, 100, 2, channel=0)[0], expected, atol=1e-3)
    assert np.allclose(load_signal_file(tmp_path / "tone.flac", 500, 100, 2, channel=1)[0], -expected, atol=1e-3)
    with pytest.raises(ValueError, match="signal.channel 2 is out of range for 2 channels"):
        load_signal_file(tmp_path / "tone.flac", 500, channel=2)
    with pytest.raises(ValueError, match="signal.channel 1 is out of range for 1 channel"):
        load_signal_file(tmp_path / "tone.npy", 500, channel=1)
    assert np.allclose(load_signal_file(tmp_path / "tone.npy", 500, 100, 2, channel=0)[0], expected)
