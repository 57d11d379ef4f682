"""PicoQuant files through ``ptufile``: PHU histograms and PTU T2 time tags correlated into a histogram.

Formats as described in :mod:`qml_imaging.data.hbt_files`; ``ImportError`` naming ``pip install
ptufile`` when PicoQuant support is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qml_imaging.data.correlator import CONVENTIONS, correlate
from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.physics.hbt import DelayAxis


def _ptufile():
    try:
        import ptufile
    except ImportError as error:  # pragma: no cover - ptufile is a dependency
        raise ImportError("reading PicoQuant PTU/PHU files needs ptufile: pip install ptufile") from error
    return ptufile


def read_phu(path: Path) -> HbtHistograms:
    """A PHU file's curves as rows ``(B, K)`` on the axis ``k * resolution`` (ns), with singles and time when the
    tags state them (see :mod:`qml_imaging.data.hbt_files`). ``ValueError`` for an unreadable file, curves of
    different lengths or resolutions."""
    ptufile = _ptufile()
    try:
        with ptufile.PhuFile(path) as phu:
            curves = [np.asarray(h, dtype=np.float64) for h in phu.histograms()]
            tags = dict(phu.tags)
    except ptufile.PqFileError as error:
        raise ValueError(f"{path}: not a readable PicoQuant PHU file ({error})") from None
    if not curves or len({len(c) for c in curves}) != 1:
        raise ValueError(f"{path}: the PHU file holds {len(curves)} curves of lengths {sorted({len(c) for c in curves})}; "
                         f"expected curves of one length")
    resolutions = tags.get("HistResDscr_MDescResolution") or [tags.get("MeasDesc_Resolution", 0.0)] * len(curves)
    resolution = float(resolutions[0])
    if resolution <= 0 or any(abs(float(r) - resolution) > 1e-6 * resolution for r in resolutions):
        raise ValueError(f"{path}: the PHU curves need one positive bin resolution, got {resolutions}")
    width_ns = resolution * 1e9
    axis = DelayAxis(bins=len(curves[0]), span_ns=width_ns * len(curves[0]), first_ns=0.0)
    seconds = singles = None
    milliseconds = float(tags.get("MeasDesc_AcquisitionTime", 0) or 0)
    if milliseconds > 0:
        seconds = milliseconds * 1e-3
        sync, rate = tags.get("HistResDscr_SyncRate"), tags.get("HistResDscr_InputRate")
        if sync is not None and rate is not None:
            singles = np.column_stack([np.asarray(sync, dtype=np.float64), np.asarray(rate, dtype=np.float64)]) * seconds
    return HbtHistograms(np.stack(curves), axis, singles, seconds, None, str(path))


def read_ptu(path: str | Path, *, axis: DelayAxis = DelayAxis(), channels: tuple[int, int] = (0, 1),
             convention: str = "all-pairs") -> HbtHistograms:
    """A T2 PTU file's photons on ``channels=(a, b)`` correlated into one histogram of ``t_b - t_a`` on ``axis``.

    Records are decoded by ``ptufile`` (``PtuFile.decode_records``: ``time`` in units of the
    global resolution, ``channel`` < 0 for overflows and markers); see :func:`correlate` for
    ``convention``. Singles are the photons per channel; the acquisition time as in the module
    docstring. ``ValueError`` for T3 files, missing channels or an empty stream.
    """
    ptufile = _ptufile()
    path = Path(path)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    try:
        with ptufile.PtuFile(path) as ptu:
            if ptu.is_t3:
                raise ValueError(f"{path}: a T3 PTU file (photons timed against a laser sync) holds no T2 "
                                 f"time tags of two detectors; record the HBT measurement in T2 mode")
            records = ptu.decode_records()
            resolution_ns = ptu.global_resolution * 1e9
            milliseconds = float(ptu.tags.get("MeasDesc_AcquisitionTime", 0) or 0)
            seconds = milliseconds * 1e-3 if milliseconds > 0 else float(ptu.acquisition_time)
    except ptufile.PqFileError as error:
        raise ValueError(f"{path}: not a readable PicoQuant PTU file ({error})") from None
    photons = records["channel"] >= 0
    times = records["time"][photons].astype(np.int64)
    channel = records["channel"][photons]
    first, second = channels
    if first == second:
        raise ValueError(f"channels must name two different detectors, got {channels}")
    streams = [np.sort(times[channel == c]) for c in (first, second)]
    present = sorted({int(c) for c in np.unique(channel)})
    for c, stream in zip((first, second), streams, strict=True):
        if len(stream) == 0:
            raise ValueError(f"{path}: no photons on channel {c}; channels with photons: {present}")
    if seconds <= 0:
        raise ValueError(f"{path}: the acquisition time is not positive ({seconds} s)")
    counts = correlate(streams[0], streams[1], axis, resolution_ns=resolution_ns, convention=convention)
    singles = np.array([[len(streams[0]), len(streams[1])]], dtype=np.float64)
    return HbtHistograms(counts, axis, singles, seconds, None, str(path))
