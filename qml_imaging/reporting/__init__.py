"""Figures (matplotlib, written as PNG) and summary statistics for reports."""
