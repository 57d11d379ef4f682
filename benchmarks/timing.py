"""The benchmarks' timing helper is the package's (run the benchmarks as ``python benchmarks/NAME.py``)."""

from qml_imaging.reporting.stats import median_seconds

__all__ = ["median_seconds"]
