"""Summary statistics for report tables, and the median wall-time helper of pipelines and benchmarks."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1`` denominator; 0 for a single value).

    ``ValueError`` for no values or a non-finite one (a NaN would silently poison the table).
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"mean_std needs finite values, got {bad[:3]}")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 0) -> float:
    """Median wall time (s, ``time.perf_counter``) of ``repeats`` calls of ``function`` after ``warmup`` untimed calls."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
