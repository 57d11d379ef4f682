"""Confocal antibunching microscopy: a scanned Gaussian focus over point emitters, an HBT histogram
per pixel, and the G2 super-resolution image (paper 002).

Geometry: ``pixels x pixels`` scan positions (pixel centres) over a square field of ``field_nm``
centred on 0; emitters at ``(x, y)`` in nm. The focus is a Gaussian of full width at half maximum
``psf_fwhm_nm``: emitter ``i`` at distance ``r`` from the focus is excited with relative intensity
``h_i = exp(-4 ln 2 r^2 / FWHM^2)`` and detected at ``R_i = peak_rate * h_i`` counts/s per
detector (linear excitation, below saturation). A uniform background adds ``background_rate``.

What a pixel sees: singles rate ``R = sum_i R_i + B``; light shares ``p_i = R_i / R``; all emitters
share one three-level curve (``a1, t1, a2, t2``), so the mixture is a three-level curve with
``a1, a2`` scaled by ``sum_i p_i^2`` (:mod:`qml_imaging.physics.hbt`). For single-photon emitters
(``g2_i(0) = 1 - a1 + a2``) this gives ``1 - g2(0) = (1 - g2_i(0)) sum_i p_i^2``.

G2 image: ``G2 = <N>^2 (1 - g2(0))`` with ``<N>`` the pixel's mean singles counts. Without
background, ``<N>^2 (1 - g2(0)) = T^2 (1 - g2_i(0)) sum_i R_i^2``: one emitter's G2 spot is the
squared PSF, narrower by ``sqrt(2)`` (FWHM 300 nm -> 212 nm).

Dark pixels: where no light arrives (the Gaussian excitation underflows to 0 far from every
emitter and there is no background) the singles rate is 0, the light shares are defined as 0
(not 0/0), the pixel's histogram is empty and its g2(0) follows the dark-pixel convention g2 = 1.
Arguments are checked at the boundary (:mod:`qml_imaging.physics.checks`): ``TypeError`` for wrong
kinds (bools, complex / bool tensors), ``ValueError`` for wrong shapes, empty inputs, NaN / inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from qml_imaging.physics import coincidences
from qml_imaging.physics.checks import count, real_number, real_tensor
from qml_imaging.physics.hbt import EmitterParameters, mixture_share_factor
from qml_imaging.physics.settings import ScanSettings

_SCAN = ScanSettings()


@dataclass(frozen=True)
class ConfocalScan:
    """Scan geometry and detection settings (lengths in nm, rates in counts/s per detector, time in s); the
    defaults are :class:`~qml_imaging.physics.settings.ScanSettings`'s, and ``ConfocalScan(**settings.model_dump())``
    builds one from a config."""

    pixels: int = _SCAN.pixels
    field_nm: float = _SCAN.field_nm
    psf_fwhm_nm: float = _SCAN.psf_fwhm_nm
    peak_rate: float = _SCAN.peak_rate
    background_rate: float = _SCAN.background_rate
    seconds: float = _SCAN.seconds

    def __post_init__(self) -> None:
        count("pixels", self.pixels)
        for name in ("field_nm", "psf_fwhm_nm", "peak_rate", "seconds"):
            real_number(name, getattr(self, name), positive=True)
        real_number("background_rate", self.background_rate)
        if self.background_rate < 0:
            raise ValueError(f"background_rate must be >= 0 counts/s, got {self.background_rate!r}")

    def axis_nm(self) -> torch.Tensor:
        """Pixel-centre coordinates ``(pixels,)`` in nm along x (and y)."""
        step = self.field_nm / self.pixels
        return (torch.arange(self.pixels, dtype=torch.float64) - (self.pixels - 1) / 2) * step

    def emitter_rates(self, emitters: torch.Tensor) -> torch.Tensor:
        """Detected rate of every emitter at every pixel, ``(pixels, pixels, E)`` (row = y, column = x)."""
        emitters = check_emitters(emitters)
        axis = self.axis_nm()
        dx = axis[None, :, None] - emitters[:, 0]
        dy = axis[:, None, None] - emitters[:, 1]
        squared = dx**2 + dy**2
        return self.peak_rate * torch.exp(-4 * math.log(2) * squared / self.psf_fwhm_nm**2)

    def pixel_curves(self, emitters: torch.Tensor, curve: EmitterParameters) -> EmitterParameters:
        """The three-level curve and singles rate each pixel sees, flattened row-major to ``(pixels^2,)``.

        ``curve`` holds one emitter's ``a1, t1, a2, t2`` (shape ``(1,)``; its rate is ignored). Pixels
        without light (total rate 0) get shares 0 and rate 0 (see the module docstring).
        """
        if not isinstance(curve, EmitterParameters) or curve.a1.shape != (1,):
            raise ValueError(f"curve must be EmitterParameters of one emitter (fields of shape (1,)), got "
                             f"{tuple(curve.a1.shape) if isinstance(curve, EmitterParameters) else type(curve).__name__}")
        rates = self.emitter_rates(emitters).reshape(self.pixels**2, -1)
        total = rates.sum(1) + self.background_rate
        lit = total > 0
        shares = torch.where(lit[:, None], rates / torch.where(lit, total, 1.0)[:, None], 0.0)
        factor = mixture_share_factor(shares)
        n = len(total)
        single = EmitterParameters(curve.a1.expand(n), curve.t1.expand(n), curve.a2.expand(n), curve.t2.expand(n), total)
        return single.mixed(factor)

    def mean_counts(self, emitters: torch.Tensor) -> torch.Tensor:
        """Mean singles counts ``<N>`` per pixel over ``seconds``, ``(pixels, pixels)`` (the PL image)."""
        return (self.emitter_rates(emitters).sum(-1) + self.background_rate) * self.seconds


def check_emitters(emitters: torch.Tensor) -> torch.Tensor:
    """Emitter positions as float64 ``(E, 2)`` nm, checked (floating or integer values are converted to
    float64, bools / complex raise ``TypeError``; shape, emptiness and NaN / inf ``ValueError``)."""
    if isinstance(emitters, torch.Tensor) and (emitters.dtype == torch.bool or emitters.dtype.is_complex):
        raise TypeError(f"emitters must be real (x, y) positions in nm, got a {emitters.dtype} tensor")
    emitters = real_tensor("emitters", emitters, dtype=torch.float64, integer_ok=True, finite=False, allow_empty=True)
    if emitters.ndim != 2 or emitters.shape[1] != 2 or len(emitters) == 0:
        raise ValueError(f"emitters must be (E, 2) positions (x, y) in nm with E >= 1, got shape {tuple(emitters.shape)}")
    if not torch.isfinite(emitters).all():
        raise ValueError("emitters (positions in nm) contain NaN or infinite values")
    return emitters


def g2_image(counts: torch.Tensor, g2_zero: torch.Tensor) -> torch.Tensor:
    """``G2 = <N>^2 (1 - g2(0))`` per pixel as a float64 tensor: :func:`qml_imaging.physics.coincidences.g2_image`
    (its checks: same shapes, counts >= 0 with integers converted, finite, non-empty)."""
    return torch.from_numpy(np.ascontiguousarray(coincidences.g2_image(counts, g2_zero)))


@dataclass(frozen=True)
class GaussianFit:
    """``offset + amplitude exp(-4 ln 2 (x - centre)^2 / fwhm^2)`` (x in nm)."""

    amplitude: float
    centre: float
    fwhm: float
    offset: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _gaussian(np.asarray(x, dtype=float), self.amplitude, self.centre, self.fwhm, self.offset)


def fit_gaussian(positions: np.ndarray, profile: np.ndarray, *, with_offset: bool = True) -> GaussianFit:
    """Least-squares Gaussian (plus constant ``offset`` if ``with_offset``) through a cross-section.

    ``positions`` (nm) and ``profile``: matching 1-D real arrays of at least 5 finite points
    (``scipy.optimize.curve_fit``); ``TypeError`` for bool / complex values, ``ValueError`` otherwise.
    """
    from scipy.optimize import curve_fit

    positions, profile = _profile_arrays(positions, profile)
    if len(positions) < 5:
        raise ValueError(f"need matching 1-D positions and profile of at least 5 points, got {positions.shape} "
                         f"and {profile.shape}")
    peak = int(np.argmax(profile))
    above_half = positions[profile >= profile.max() / 2]
    width = max(float(above_half.max() - above_half.min()), float(positions[1] - positions[0]))
    start = [float(profile.max() - profile.min()), float(positions[peak]), width, float(profile.min())]
    if with_offset:
        parameters, _ = curve_fit(_gaussian, positions, profile, p0=start, maxfev=10000)
    else:
        parameters, _ = curve_fit(lambda x, a, c, w: _gaussian(x, a, c, w, 0.0), positions, profile, p0=start[:3],
                                  maxfev=10000)
        parameters = [*parameters, 0.0]
    amplitude, centre, fwhm, offset = (float(v) for v in parameters)
    return GaussianFit(amplitude, centre, abs(fwhm), offset)


def _profile_arrays(positions: np.ndarray, profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matching finite 1-D float arrays (documented conversion from any real array; bools refused)."""
    arrays = []
    for name, value in (("positions", positions), ("profile", profile)):
        tensor = real_tensor(name, torch.as_tensor(np.asarray(value)) if not isinstance(value, torch.Tensor) else value,
                             dtype=torch.float64, integer_ok=True, ndim=1, expected="(points,)")
        arrays.append(tensor.numpy())
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"need matching 1-D positions and profile, got {arrays[0].shape} and {arrays[1].shape}")
    return arrays[0], arrays[1]


def _gaussian(x, amplitude, centre, fwhm, offset):
    return offset + amplitude * np.exp(-4 * math.log(2) * (x - centre) ** 2 / fwhm**2)


def dip_depth(positions: np.ndarray, profile: np.ndarray, left: float, right: float) -> float:
    """How far ``profile`` dips between two emitters at ``left < right`` (nm) along ``positions``:
    ``1 - min(between) / min(lobe values)``, the lobes read at the pixels nearest the emitters.
    0 when the emitters fall on neighbouring pixels (nothing in between) or a lobe is not positive.
    Arrays as :func:`fit_gaussian` (at least 1 point); ``left``, ``right`` finite numbers."""
    positions, profile = _profile_arrays(positions, profile)
    left, right = real_number("left", left), real_number("right", right)
    first, second = (int(np.argmin(np.abs(positions - x))) for x in sorted((left, right)))
    lobe = min(profile[first], profile[second])
    if second - first < 2 or lobe <= 0:
        return 0.0
    return float(1.0 - profile[first + 1: second].min() / lobe)
