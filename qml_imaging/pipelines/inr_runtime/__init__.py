"""Evaluate a fitted QIREN on IBM Runtime (real or fake backend), one Estimator job per quantum layer."""
