"""Quantum core: circuit templates written once in PennyLane, executed by interchangeable backends."""
