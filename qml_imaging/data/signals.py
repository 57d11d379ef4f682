"""1-D signals for implicit neural representations: WAV files and a generated default.

Signals are returned as float64 ``(n_samples,)`` arrays normalised by their maximum absolute value
(values in [-1, 1]), the QIREN authors' preprocessing; their coordinates are ``linspace(-1, 1)``.
"""

from __future__ import annotations

from pathlib import Path

import struct

import numpy as np

PCM_KINDS = {np.dtype("uint8"), np.dtype("int16"), np.dtype("int32"), np.dtype("float32"), np.dtype("float64")}


def default_signal(n_samples: int = 1000) -> np.ndarray:
    """A deterministic test signal with rich high-frequency content (no file needed).

    On ``t = linspace(-1, 1, n_samples)``: a bowed-string-like tone with fundamental
    ``f0 = 10`` cycles per unit ``t`` and 12 harmonics of amplitude ``1 / k``, a vibrato of
    +-2 % at 3 cycles per unit, an exponential-attack envelope, plus a linear chirp sweeping from
    20 to 180 cycles per unit with amplitude 0.3. With 1000 samples the Nyquist frequency is
    about 250 cycles per unit, so energy reaches up to about half of it.
    """
    if n_samples < 8:
        raise ValueError(f"n_samples must be at least 8, got {n_samples}")
    t = np.linspace(-1.0, 1.0, n_samples)
    phase = 2 * np.pi * 10.0 * (t + 0.02 / (2 * np.pi * 3.0) * np.sin(2 * np.pi * 3.0 * t))
    tone = sum(np.sin(k * phase + 0.3 * k) / k for k in range(1, 13))
    envelope = 1.0 - np.exp(-4.0 * (t + 1.0))
    chirp = 0.3 * np.sin(2 * np.pi * (20.0 * (t + 1.0) + 40.0 * (t + 1.0) ** 2))
    signal = envelope * tone + chirp
    return signal / np.abs(signal).max()


def load_wav(path: str | Path, n_samples: int = 1000, offset: int = 0) -> np.ndarray:
    """``n_samples`` consecutive samples of a PCM WAV file from sample ``offset``.

    Mono or stereo (channels are averaged), 8/16/32-bit integer or float PCM. Raises
    FileNotFoundError for a missing file and ValueError for other formats or too short a file.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WAV file {str(path)!r} does not exist")
    try:
        _, data = wavfile.read(path)
    except (ValueError, EOFError, struct.error) as error:  # a foreign, truncated or damaged file
        raise ValueError(f"{path}: not a PCM WAV file that scipy can read ({type(error).__name__}: {error}); "
                         "give signal.wav a complete PCM WAV file") from None
    if data.dtype not in PCM_KINDS:
        raise ValueError(f"{path}: sample type {data.dtype} is not 8/16/32-bit integer or float PCM")
    if data.ndim == 2 and data.shape[1] not in (1, 2):
        raise ValueError(f"{path}: {data.shape[1]} channels; expected mono or stereo")
    samples = data.astype(np.float64)
    if data.dtype == np.uint8:
        samples = samples - 128.0
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if offset < 0 or offset + n_samples > len(samples):
        raise ValueError(f"{path}: {len(samples)} samples, cannot take {n_samples} from offset {offset}; "
                         "lower signal.n_samples or signal.offset, or give a longer file")
    window = samples[offset : offset + n_samples]
    peak = np.abs(window).max()
    if peak == 0:
        raise ValueError(f"{path}: the chosen window (offset {offset}, {n_samples} samples) is silent; "
                         "choose another signal.offset or file")
    return window / peak
