import numpy as np
import pytest
import torch
from scipy.io import wavfile

from qml_imaging.data.signals import default_signal, load_signal_file
from qml_imaging.extras import missing
from qml_imaging.training.metrics import band_mse


def test_default_signal_is_normalised_deterministic_and_rich_in_high_frequencies():
    signal = default_signal(1000)
    assert signal.shape == (1000,) and np.abs(signal).max() == pytest.approx(1.0)
    assert np.array_equal(signal, default_signal(1000))
    power = np.abs(np.fft.rfft(signal)) ** 2
    high_share = power[50:].sum() / power.sum()  # above 10 % of Nyquist
    assert high_share > 0.2


def test_band_mse_splits_the_error_by_frequency_and_sums_to_the_total():
    t = torch.linspace(-1, 1, 1000)
    target = torch.zeros(1000)
    slow = 0.3 * torch.sin(2 * torch.pi * 3 * t)  # 3 cycles per unit: low band
    fast = 0.2 * torch.sin(2 * torch.pi * 150 * t)  # 150 cycles per unit: high band
    low, high = band_mse(slow + fast, target, cutoff_fraction=0.1)
    assert low == pytest.approx(0.045, rel=0.02) and high == pytest.approx(0.02, rel=0.02)
    assert low + high == pytest.approx(torch.mean((slow + fast).double() ** 2).item(), rel=1e-9)
    with pytest.raises(ValueError, match=r"cutoff_fraction must be in \(0, 1\)"):
        band_mse(slow, target, 1.5)


@pytest.mark.skipif(bool(missing("soundfile")), reason="audio files need the [audio] extra")
def test_wav_files_mono_stereo_and_8_bit(tmp_path):
    samples = (np.sin(np.linspace(0, 20, 2000)) * 20000).astype(np.int16)
    wavfile.write(tmp_path / "mono.wav", 8000, samples)
    wavfile.write(tmp_path / "stereo.wav", 8000, np.stack([samples, samples // 2], axis=1))
    wavfile.write(tmp_path / "byte.wav", 8000, (samples // 256 + 128).astype(np.uint8))
    mono = load_signal_file(tmp_path / "mono.wav", 1000, offset=100)[0]
    assert mono.shape == (1000,) and np.abs(mono).max() == pytest.approx(1.0)
    assert np.allclose(load_signal_file(tmp_path / "stereo.wav", 1000, offset=100)[0], mono, atol=1e-4)
    assert np.allclose(load_signal_file(tmp_path / "byte.wav", 1000, offset=100)[0], mono, atol=0.05)


@pytest.mark.skipif(bool(missing("soundfile")), reason="audio files need the [audio] extra")
def test_wav_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_signal_file(tmp_path / "absent.wav")[0]
    wavfile.write(tmp_path / "surround.wav", 8000, np.zeros((2000, 4), dtype=np.int16))
    with pytest.raises(ValueError, match="4 channels; expected mono or stereo"):
        load_signal_file(tmp_path / "surround.wav")[0]
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="not a PCM WAV file"):
        load_signal_file(tmp_path / "text.wav")[0]
    wavfile.write(tmp_path / "short.wav", 8000, np.ones(500, dtype=np.int16))
    with pytest.raises(ValueError, match="500 samples, cannot take 1000"):
        load_signal_file(tmp_path / "short.wav")[0]
