"""g2(0) regression from sparse HBT histograms and antibunching super-resolution (paper 002)."""
