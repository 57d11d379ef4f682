"""Shot-noise denoising against the quantum Cramér-Rao bound (paper 000)."""
