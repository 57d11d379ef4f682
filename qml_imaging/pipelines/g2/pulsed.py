"""Pulsed g2(0) of laboratory files, for ``qml-imaging g2 fit --mode pulsed``: the central coincidence peak
against the side peaks at multiples of the laser period (:mod:`qml_imaging.physics.pulsed_g2`), the period
given or stated by the file. Imports no torch: reading, correlating and this comparison run on numpy and scipy.
"""

from __future__ import annotations

from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.physics.pulsed_g2 import pulsed_g2


def fit_pulsed(data: HbtHistograms, *, period_ns: float | None = None, window_ns: float | None = None,
               side_peaks: int = 4, method: str = "auto") -> list[dict]:
    """One row per histogram of pulsed g2(0) (:func:`~qml_imaging.physics.pulsed_g2.pulsed_g2`): ``g2``, ``sigma``,
    ``central`` and ``side`` (mean) peak areas, ``side_peaks``, ``method`` (``windows`` or ``fit``),
    ``lifetime_ns`` (the model fit's, or ``None``), ``period_ns``, ``window_ns``, ``events``. With singles and an
    acquisition time, the fit's areas are tied to the uncorrelated level ``N1 N2 / T``. The period is
    ``period_ns`` or the one the file states; ``ValueError`` when neither is known, or (from ``pulsed_g2``)
    for a window wider than the period or side peaks beyond the axis."""
    period = period_ns if period_ns is not None else data.period_ns
    if period is None:
        raise ValueError(f"{data.source}: the file states no laser repetition period; give it (--period NS)")
    window = period if window_ns is None else window_ns
    zero = data.zero_delay_ns or 0.0
    rows = []
    for i, counts in enumerate(data.counts):
        level = float(data.singles[i].prod() / (data.seconds[i] * 1e9)) if data.has_singles else None
        result = pulsed_g2(counts, data.axis, period, window_ns=window, side_peaks=side_peaks, method=method,
                           zero_ns=zero, level_per_ns=level)
        rows.append({"source": data.source, "row": i, "g2": result.g2_zero, "sigma": result.sigma,
                     "central": result.central, "side": result.side, "side_peaks": result.side_peaks,
                     "method": result.method, "lifetime_ns": result.lifetime_ns, "period_ns": period,
                     "window_ns": window, "events": float(counts.sum())})
    return rows
