"""The 1-D CNN of paper 002 that regresses g2(0) from a sparse HBT histogram.

``histogram (B, bins)`` -> three ``Conv1d(filters, kernel)`` + ReLU -> ``MaxPool1d(2)`` -> dropout ->
flatten, concatenated with the event-count feature -> dense layers (ReLU) -> one output, g2(0).

Input scaling (ours; the paper's is not public): the histogram is divided by its mean count per bin
(shape only, mean 1; all-zero histograms stay zero) and the total event count enters as
``log(1 + N_events)``, the paper's extra input, after the convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

from qml_imaging.models.specs import G2CnnSpec
from qml_imaging.physics.hbt import DEFAULT_BINS, check_histograms


_DEFAULT = G2CnnSpec()


class G2CNN(nn.Module):
    """``(B, bins)`` coincidence counts -> ``(B,)`` g2(0); the paper's sizes by default
    (:class:`~qml_imaging.models.specs.G2CnnSpec`)."""

    @classmethod
    def from_spec(cls, spec: G2CnnSpec, bins: int = DEFAULT_BINS) -> G2CNN:
        """The CNN of ``spec`` for histograms of ``bins`` bins."""
        return cls(bins, filters=spec.filters, kernel=spec.kernel, dense=tuple(spec.dense), dropout=spec.dropout)

    def __init__(self, bins: int = DEFAULT_BINS, filters: int = _DEFAULT.filters, kernel: int = _DEFAULT.kernel,
                 dense: tuple[int, ...] = tuple(_DEFAULT.dense), dropout: float = _DEFAULT.dropout):
        super().__init__()
        self.bins = bins
        self.features = nn.Sequential(
            nn.Conv1d(1, filters, kernel), nn.ReLU(),
            nn.Conv1d(filters, filters, kernel), nn.ReLU(),
            nn.Conv1d(filters, filters, kernel), nn.ReLU(),
            nn.MaxPool1d(2), nn.Dropout(dropout), nn.Flatten(),
        )
        flat = filters * ((bins - 3 * (kernel - 1)) // 2)
        layers: list[nn.Module] = []
        width = flat + 1
        for size in dense:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.regressor = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, histograms: torch.Tensor) -> torch.Tensor:
        """g2(0) estimates ``(B,)`` of histograms ``(B, bins)`` (normalised to their mean, with log event counts); ValueError for other shapes."""
        if histograms.ndim != 2 or histograms.shape[1] != self.bins:
            raise ValueError(f"expected histograms of shape (B, {self.bins}), got {tuple(histograms.shape)}")
        events = histograms.sum(1, keepdim=True)
        shape = histograms / (events / self.bins).clamp_min(1e-6)
        features = self.features(shape.unsqueeze(1))
        return self.regressor(torch.cat([features, torch.log1p(events)], dim=1)).squeeze(1)

    @torch.no_grad()
    def predict(self, histograms: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """g2(0) ``(B,)`` of checked histograms in evaluation mode."""
        histograms = check_histograms(histograms, self.bins).to(torch.float32)
        self.eval()
        device = next(self.parameters()).device
        return torch.cat([self(part.to(device)).cpu() for part in histograms.split(chunk)])
