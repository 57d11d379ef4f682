"""Figures (matplotlib ``Figure`` objects, saved as PNG by the pipelines) and summary statistics for reports."""
