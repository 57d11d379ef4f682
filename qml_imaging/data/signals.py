"""1-D signals for implicit neural representations: audio, CSV and NPY files, and a generated default.

Signals are returned as float64 ``(n_samples,)`` arrays normalised by their maximum absolute value
(values in [-1, 1]), the QIREN authors' preprocessing; their coordinates are ``linspace(-1, 1)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qml_imaging.extras import require

SILENCE_THRESHOLD = 1e-3
"""``offset: auto`` skips samples whose magnitude is at most this fraction of the file's peak."""


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


def read_signal_file(path: str | Path, channel: int | None = None) -> tuple[np.ndarray, float | None, dict]:
    """All samples of a signal file as float64 ``(n,)``, its sample rate in Hz (None for CSV/NPY) and info.

    Audio (WAV PCM 8/16/24/32-bit or float, FLAC, OGG, AIFF) is read by ``soundfile`` (integer PCM
    scaled to [-1, 1)); ``.csv`` / ``.txt`` by ``numpy.loadtxt`` (comma or whitespace separated) and
    ``.npy`` by ``numpy.load(allow_pickle=False)``: 1-D arrays, or 2-D ``(n, channels)``. Several
    channels are averaged unless ``channel`` (0-based) picks one; more than two need ``channel``.
    Raises FileNotFoundError for a missing file, ValueError for an unreadable file or bad channel.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"signal file {str(path)!r} does not exist")
    data, rate = _read_samples(path)
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    info = {"source": str(path), "sample_rate": rate, "channels": 1 if data.ndim == 1 else int(data.shape[1])}
    data = _one_channel(path, data, channel, info)
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: holds NaN or infinite samples")
    return data, rate, info


def _read_samples(path: Path) -> tuple[np.ndarray, float | None]:
    """The numbers in ``path`` as float64 (``(n,)`` or ``(n, channels)``) and the sample rate (None for CSV/NPY)."""
    suffix, rate = path.suffix.lower(), None
    if suffix not in (".npy", ".csv", ".txt"):
        soundfile = require("soundfile", f"reading audio file {path.name}")
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif suffix in (".csv", ".txt"):
            data = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, ndmin=1)
        else:
            data, rate = soundfile.read(str(path), dtype="float64", always_2d=False)
    except Exception as error:  # soundfile raises LibsndfileError/RuntimeError, numpy ValueError/OSError
        kind = "a PCM WAV file" if suffix == ".wav" else "a signal file"
        raise ValueError(f"{path}: not {kind} that can be read ({type(error).__name__}: {error}); "
                         "give signal.path (or signal.wav) an audio file soundfile reads, a .csv or a .npy array") from None
    data = np.asarray(data)
    if data.dtype.kind not in "uifb":
        raise ValueError(f"{path}: holds {data.dtype} values, not numbers")
    return data.astype(np.float64), rate


def _one_channel(path: Path, data: np.ndarray, channel: int | None, info: dict) -> np.ndarray:
    """``(n,)``: ``data`` itself (mono), its ``channel``, or the mean of two channels (noted in ``info``)."""
    if data.ndim == 1:
        if channel not in (None, 0):
            raise ValueError(f"{path}: signal.channel {channel} is out of range for 1 channel (a mono signal); "
                             "leave signal.channel unset")
        return data
    if data.ndim != 2:
        raise ValueError(f"{path}: array of shape {data.shape} is not a 1-D signal or (samples, channels)")
    if channel is not None:
        if not 0 <= channel < data.shape[1]:
            raise ValueError(f"{path}: signal.channel {channel} is out of range for {data.shape[1]} channels")
        info["channel"] = channel
        return data[:, channel]
    if data.shape[1] == 2:
        info["channel"] = "mean of 2"
        return data.mean(axis=1)
    raise ValueError(f"{path}: {data.shape[1]} channels; expected mono or stereo, or choose one with signal.channel")


def first_sound(samples: np.ndarray, threshold: float = SILENCE_THRESHOLD) -> int:
    """Index of the first sample whose magnitude exceeds ``threshold`` times the largest magnitude.

    Raises ValueError for an all-silent signal.
    """
    peak = np.abs(samples).max() if len(samples) else 0.0
    if peak == 0:
        raise ValueError("the signal is silent everywhere")
    return int(np.argmax(np.abs(samples) > threshold * peak))


def load_signal_file(path: str | Path, n_samples: int = 1000, offset: int | str = 0, stride: int = 1,
                     channel: int | None = None) -> tuple[np.ndarray, dict]:
    """``n_samples`` samples ``x[offset], x[offset + stride], ...`` of a signal file, peak-normalised.

    The window is ``samples[offset : offset + stride * n_samples : stride]`` (decimation by
    ``stride`` without filtering, as the QIREN authors took every 5th sample of their cello recording:
    ``offset=20000, stride=5, n_samples=1000``), divided by its maximum magnitude: float64 ``(n_samples,)``
    in [-1, 1]. ``offset="auto"`` starts at the first sample louder than ``SILENCE_THRESHOLD`` of the
    file's peak (skips leading silence). The info dict holds ``source``, ``sample_rate`` (Hz, of the
    returned samples: the file's rate / stride; None without one), ``offset``, ``stride``,
    ``n_samples``, ``peak`` and ``preprocessing`` in words. Raises FileNotFoundError (missing file)
    and ValueError (unreadable, too short, bad channel, a silent window).
    """
    path = Path(path)
    samples, rate, info = read_signal_file(path, channel)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"signal.stride must be a positive integer, got {stride!r}")
    if offset == "auto":
        try:
            offset = first_sound(samples)
        except ValueError:
            raise ValueError(f"{path}: the file is silent everywhere; give another signal file") from None
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise ValueError(f"signal.offset must be a sample index or 'auto', got {offset!r}")
    span = stride * (n_samples - 1) + 1
    if offset < 0 or offset + span > len(samples):
        raise ValueError(f"{path}: {len(samples)} samples, cannot take {n_samples} from offset {offset}"
                         f"{f' every {stride}' if stride > 1 else ''}; lower signal.n_samples, signal.stride or "
                         "signal.offset, or give a longer file")
    window = samples[offset : offset + span : stride]
    peak = float(np.abs(window).max())
    if peak == 0:
        raise ValueError(f"{path}: the chosen window (offset {offset}, {n_samples} samples"
                         f"{f', stride {stride}' if stride > 1 else ''}) is silent; choose another signal.offset "
                         "(or offset: auto) or file")
    info.update(offset=offset, stride=stride, n_samples=n_samples, peak=peak,
                sample_rate=None if rate is None else rate / stride,
                preprocessing=f"samples[{offset}:{offset + span}:{stride}] divided by their peak |x| = {peak:g}; "
                              "t = linspace(-1, 1)")
    return window / peak, info
