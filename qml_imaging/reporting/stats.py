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


def summary_stat(values: Sequence[float]) -> dict[str, float | int | None]:
    """Labelled summary of one number over seeds, for ``report.json``: ``{"mean", "std", "n"}``, with ``std``
    the sample standard deviation (:func:`mean_std`) and ``None`` for a single value (a spread of one seed
    is not 0, it is unknown). ``ValueError`` as :func:`mean_std`."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": std if len(values) > 1 else None, "n": len(values)}


def format_stat(stat: dict, spec: str = ".3g") -> str:
    """A :func:`summary_stat` for a table: ``"0.0123 ± 0.0021"`` over several seeds, ``"0.0123"`` for one; the
    mean in format ``spec``, the spread in ``spec`` when it is fixed-point (``".2f"``), else in ``".2g"``."""
    text = format(stat["mean"], spec)
    spread = spec if spec.endswith("f") else ".2g"
    return text if stat["std"] is None else f"{text} ± {format(stat['std'], spread)}"


def paired_test(differences: list[float]) -> dict:
    """Paired per-seed differences as :func:`summary_stat` plus ``p_value`` of a two-sided one-sample t-test
    against 0 (``scipy.stats.ttest_1samp``) and the ``differences`` themselves. ``p_value`` is None for one seed
    (no spread: nothing to test) and 1.0 when several seeds agree exactly (the t statistic is undefined)."""
    from scipy import stats

    stat = summary_stat(differences)
    if stat["std"] is None:
        p_value = None
    else:
        p_value = float(stats.ttest_1samp(differences, 0.0).pvalue) if stat["std"] > 0 else 1.0
    return {**stat, "p_value": p_value, "differences": differences}


def format_difference(test: dict, spec: str = ".2f") -> str:
    """A :func:`paired_test` for a table: ``"+1.23 ± 0.45 (p = 0.03)"``, the mean signed, spread and p-value only
    over several seeds (``"+1.23 (one seed: not tested)"``); ``spec`` formats mean and spread."""
    spread = "" if test["std"] is None else f" ± {format(test['std'], spec)}"
    p_text = "one seed: not tested" if test["p_value"] is None else f"p = {test['p_value']:.2g}"
    return f"{format(test['mean'], '+' + spec)}{spread} ({p_text})"


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
