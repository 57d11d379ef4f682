"""A lab file's own consistency, checked before its histograms are fitted (no silent wrong g2(0)).

- **Counts**: a Poisson fit needs raw coincidence counts: whole numbers (a normalised g2 curve or
  count rates are refused for the whole file, in one line naming it), finite and below
  :data:`~qml_imaging.physics.g2_fit.MAX_COUNT` (checked by the fit).
- **Singles baseline against the tails**: the uncorrelated level ``N1 N2 w / T`` from the file's
  singles counts and acquisition time must agree with the histogram's own far level within a factor
  :data:`SINGLES_TAILS_FACTOR` (bunching that has not decayed raises the tails above it, by
  ``1 + a2 exp(-|tau| / t2)``; a start-stop card lowers them by ``exp(-R |tau|)``); a rate, time or bin
  width that does not belong to the histogram (a cut file, a rate tag read at the wrong moment) is
  refused for that histogram.
- **A tails baseline needs flat tails**: when the half of the tails nearer the dip lies significantly
  higher than the far half (:func:`~qml_imaging.physics.coincidences.tail_excess`: ``z > TAIL_SLOPE_Z`` and an excess
  above ``TAIL_SLOPE_TOLERANCE``), bunching still lifts the tails, the tails level overstates the baseline,
  and g2(0) comes out low (the normalised curve is scaled down by that overstatement: measured with the
  three-level fit, ``benchmarks/g2_fit_classes.py``); that histogram is refused. Bunching much slower
  than the window lifts the tails evenly and cannot be seen in them: only the singles baseline (or a
  wider window) avoids that bias, which the printed line states for every tails baseline.
"""

from __future__ import annotations

import numpy as np

from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.physics.coincidences import baseline_from_tails, tail_excess

SINGLES_TAILS_FACTOR = 5.0
SINGLES_TAILS_Z = 5.0
TAIL_SLOPE_Z = 4.0
"""Significance (Poisson standard errors) above which the tails' fall-off refuses a tails baseline."""
TAIL_SLOPE_TOLERANCE = 0.002
"""Relative excess of the inner half of the tails over the outer half that a tails baseline tolerates."""


def check_whole_counts(data: HbtHistograms) -> None:
    """``ValueError`` naming the file when its counts are not whole numbers (a normalised curve, rates)."""
    fraction = np.abs(data.counts - np.round(data.counts))
    if np.any(fraction > 1e-6):
        row, column = np.unravel_index(int(np.argmax(fraction)), data.counts.shape)
        raise ValueError(f"{data.source}: the counts are not whole numbers (histogram {row}, bin {column}: "
                         f"{data.counts[row, column]:.6g}); a normalised g2 curve or count rates cannot be fitted as "
                         f"Poisson counts: export the raw coincidence counts")


def baseline_problems(data: HbtHistograms, known: np.ndarray | None, mode: str, zero_delay_ns: float) -> list[str]:
    """One status per histogram: ``""``, or why its baseline cannot be trusted (see the module docstring);
    ``known`` ``(B,)``: the baseline per bin in use (``None``: fitted)."""
    counts = data.counts
    if known is None or data.axis.bins < 10:
        return [""] * len(data)
    tails, sigma = baseline_from_tails(counts, data.axis, zero_delay_ns=zero_delay_ns)
    if mode == "singles":
        return [_singles_against_tails(float(s), float(t), float(e)) for s, t, e in zip(known, tails, sigma, strict=True)]
    excess, z = tail_excess(counts, data.axis, zero_delay_ns=zero_delay_ns)
    return [_sloping(float(e), float(score)) for e, score in zip(excess, z, strict=True)]


def _singles_against_tails(singles: float, tails: float, sigma: float) -> str:
    if singles <= 0:
        return ""
    ratio = tails / singles
    if (ratio > SINGLES_TAILS_FACTOR or ratio < 1 / SINGLES_TAILS_FACTOR) and abs(tails - singles) > SINGLES_TAILS_Z * sigma:
        return (f"inconsistent file: the singles baseline N1 N2 w / T = {singles:.4g} per bin disagrees with the "
                f"histogram's tails ({tails:.4g} per bin, {ratio:.3g} times it), so the file's singles counts, "
                f"acquisition time or bin width do not belong to this histogram (a cut or damaged file?): correct "
                f"the file, or use --baseline tails or --baseline fit")
    return ""


def _sloping(excess: float, z: float) -> str:
    if z > TAIL_SLOPE_Z and excess > TAIL_SLOPE_TOLERANCE:
        return (f"baseline not identifiable from the tails: the half of the tails nearer the dip is {100 * excess:.1f} % "
                f"higher (z = {z:.1f}), so bunching has not decayed there, the tails level overstates the baseline and "
                f"g2(0) would come out low: use the singles counts (--baseline singles), --baseline fit (fits the "
                f"decay), or record a wider delay window")
    return ""
