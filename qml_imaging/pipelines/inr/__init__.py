"""Implicit neural representations: image and signal comparisons at a shared parameter budget, and a
fitted QIREN re-evaluated on other backends and on IBM Runtime."""
