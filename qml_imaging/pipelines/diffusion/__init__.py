"""Few-shot diffusion with a quantum bottleneck (see :mod:`.pipeline`)."""
