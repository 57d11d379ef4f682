"""Boundary probes of every public function of qml_imaging.physics: NaN, inf, bool, integer and empty inputs.

NaN / inf / empty values raise ValueError, bools (tensors where numbers are needed, or a bool where a
count is expected) raise TypeError, integer tensors raise TypeError where real values are needed and
are converted (same result as the float64 input) where they are counts; every message names the argument.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qml_imaging.physics import bounds, estimation, g2_fit, hbt, microscopy, parametric, shot_noise
from qml_imaging.physics.mle import PoissonMLE

F64 = torch.float64
FAMILY = parametric.get_family("sinusoid")
THETA = torch.tensor([[2.0, 1.0, 1.0]], dtype=F64)
PHI = FAMILY.phi(THETA, 8)
JAC = FAMILY.jacobian(THETA, 8)
MLE = PoissonMLE(FAMILY, 8, candidates=16, starts=2, iterations=2)


def emitter(n: int = 2, **fields) -> dict:
    values = dict(a1=0.9, t1=20.0, a2=0.1, t2=300.0, rate=1e4) | fields
    return {k: torch.full((n,), v, dtype=F64) for k, v in values.items()}


def params(**fields) -> hbt.EmitterParameters:
    return hbt.EmitterParameters(**emitter(**fields))


SCAN = microscopy.ConfocalScan(pixels=5)
CURVE = hbt.EmitterParameters(**emitter(1))
X = np.linspace(-300.0, 300.0, 13)
PROFILE = np.exp(-4 * math.log(2) * X**2 / 300.0**2)

# name -> (call taking keyword arguments, valid keyword arguments, {argument: integer tensors accepted as counts?})
TENSOR_PROBES = {
    "check_nbar": (shot_noise.check_nbar, lambda: {"nbar": torch.tensor([100.0, 200.0], dtype=F64)}, {"nbar": True}),
    "check_transmittance": (shot_noise.check_transmittance, lambda: {"phi": PHI.clone()}, {"phi": False}),
    "normalise": (shot_noise.normalise, lambda: {"images": 5 * PHI}, {"images": False}),
    "shot_noise_counts": (shot_noise.shot_noise_counts, lambda: {"phi": PHI.clone(), "nbar": 100.0}, {"phi": False}),
    "nbar_per_image": (shot_noise.nbar_per_image, lambda: {"nbar": torch.tensor([100.0], dtype=F64), "phi": PHI.clone()},
                       {"nbar": True}),
    "ImageFamily.check": (FAMILY.check, lambda: {"theta": THETA.clone()}, {"theta": True}),
    "ImageFamily.phi": (FAMILY.phi, lambda: {"theta": THETA.clone(), "size": 4}, {"theta": True}),
    "ImageFamily.jacobian": (FAMILY.jacobian, lambda: {"theta": THETA.clone(), "size": 4}, {"theta": True}),
    "fisher_information": (bounds.fisher_information, lambda: {"phi": PHI.flatten(1), "jacobian": JAC.clone(), "nbar": 10.0},
                           {"phi": False, "jacobian": False}),
    "parameter_bound": (bounds.parameter_bound, lambda: {"phi": PHI.flatten(1), "jacobian": JAC.clone(), "nbar": 10.0},
                        {"phi": False, "jacobian": False}),
    "pixel_bound": (bounds.pixel_bound, lambda: {"phi": PHI.flatten(1), "jacobian": JAC.clone(), "nbar": 10.0},
                    {"phi": False, "jacobian": False}),
    "total_bound": (bounds.total_bound, lambda: {"phi": PHI.flatten(1), "jacobian": JAC.clone(), "nbar": 10.0},
                    {"phi": False, "jacobian": False}),
    "sql_pixel": (bounds.sql_pixel, lambda: {"phi": PHI.clone(), "nbar": 10.0}, {"phi": False}),
    "sql_total": (bounds.sql_total, lambda: {"nbar": torch.tensor([10.0], dtype=F64)}, {"nbar": True}),
    "heisenberg_total": (bounds.heisenberg_total, lambda: {"nbar": torch.tensor([10.0], dtype=F64)}, {"nbar": True}),
    "error_statistics": (estimation.error_statistics, lambda: {"estimates": PHI.expand(3, -1, -1).clone(), "truth": PHI[0]},
                         {"estimates": False, "truth": False}),
    "tangent_split": (estimation.tangent_split,
                      lambda: {"estimates": PHI.expand(3, -1, -1).clone(), "truth": PHI[0], "jacobian": JAC[0].clone()},
                      {"estimates": False, "truth": False, "jacobian": False}),
    "PoissonMLE.fit": (MLE.fit, lambda: {"counts": PHI * 1000, "nbar": 1000.0}, {"counts": True}),
    "three_level_g2": (hbt.three_level_g2, lambda: {"tau": hbt.DelayAxis().centres(), **{k: v for k, v in emitter().items()
                                                                                        if k != "rate"}},
                       {"tau": False, "a1": False, "t1": False, "a2": False, "t2": False}),
    "mixture_share_factor": (hbt.mixture_share_factor, lambda: {"shares": torch.tensor([0.3, 0.5], dtype=F64)}, {"shares": False}),
    "EmitterParameters": (hbt.EmitterParameters, emitter, {k: False for k in ("a1", "t1", "a2", "t2", "rate")}),
    "EmitterParameters.mixed": (params().mixed, lambda: {"share_factor": torch.tensor([0.5, 0.5], dtype=F64)},
                                {"share_factor": False}),
    "expected_histogram": (hbt.expected_histogram, lambda: {"parameters": params(), "seconds": torch.tensor([5.0, 5.0], dtype=F64)},
                           {"seconds": True}),
    "simulate_histograms": (lambda **kw: hbt.simulate_histograms(**kw, generator=torch.Generator().manual_seed(0)),
                            lambda: {"parameters": params(), "seconds": torch.tensor([5.0, 5.0], dtype=F64)}, {"seconds": True}),
    "uncorrelated_baseline": (hbt.uncorrelated_baseline,
                              lambda: {"parameters": params(), "seconds": torch.tensor([5.0, 5.0], dtype=F64)}, {"seconds": True}),
    "g2_zero_cramer_rao": (hbt.g2_zero_cramer_rao, lambda: {"parameters": params(), "seconds": torch.tensor([5.0, 5.0], dtype=F64)},
                           {"seconds": True}),
    "sum_one_second_histograms": (lambda **kw: hbt.sum_one_second_histograms(**kw, generator=torch.Generator().manual_seed(0)),
                                  lambda: {"one_second": torch.ones(4, 215, dtype=F64), "seconds": 2}, {"one_second": True}),
    "check_histograms": (hbt.check_histograms, lambda: {"histograms": torch.ones(2, 215, dtype=F64)}, {"histograms": True}),
    "fit_g2": (g2_fit.fit_g2, lambda: {"histograms": torch.zeros(2, 215, dtype=F64), "baseline": torch.tensor([1.0, 2.0], dtype=F64)},
               {"histograms": True, "baseline": True}),
    "ConfocalScan.emitter_rates": (SCAN.emitter_rates, lambda: {"emitters": torch.tensor([[0.0, 10.0]], dtype=F64)}, {"emitters": True}),
    "ConfocalScan.pixel_curves": (lambda **kw: SCAN.pixel_curves(curve=CURVE, **kw),
                                  lambda: {"emitters": torch.tensor([[0.0, 10.0]], dtype=F64)}, {"emitters": True}),
    "ConfocalScan.mean_counts": (SCAN.mean_counts, lambda: {"emitters": torch.tensor([[0.0, 10.0]], dtype=F64)}, {"emitters": True}),
    "check_emitters": (microscopy.check_emitters, lambda: {"emitters": torch.tensor([[0.0, 10.0]], dtype=F64)}, {"emitters": True}),
    "g2_image": (microscopy.g2_image, lambda: {"counts": torch.full((2, 2), 3.0, dtype=F64), "g2_zero": torch.full((2, 2), 0.5, dtype=F64)},
                 {"counts": True, "g2_zero": False}),
    "fit_gaussian": (microscopy.fit_gaussian, lambda: {"positions": torch.from_numpy(X), "profile": torch.from_numpy(PROFILE)},
                     {"positions": True, "profile": True}),
    "dip_depth": (microscopy.dip_depth, lambda: {"positions": torch.from_numpy(X), "profile": torch.from_numpy(PROFILE),
                                                 "left": -100.0, "right": 100.0}, {"positions": True, "profile": True}),
}

TENSOR_CASES = [(name, argument, kind) for name, (_, _, arguments) in TENSOR_PROBES.items() for argument in arguments
                for kind in ("nan", "inf", "bool", "int", "empty")]


def corrupted(value: torch.Tensor, kind: str) -> torch.Tensor:
    if kind in ("nan", "inf"):
        value = value.clone().contiguous()
        value.view(-1)[0] = float(kind)
        return value
    if kind == "bool":
        return value != 0
    if kind == "int":
        return value.round().to(torch.int64)
    return value[:0]


def _results_equal(a, b) -> bool:
    if isinstance(a, dict):
        return all(_results_equal(a[k], b[k]) for k in a)
    if isinstance(a, hbt.EmitterParameters):
        return all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("a1", "t1", "a2", "t2", "rate"))
    if hasattr(a, "_fields") or hasattr(a, "__dataclass_fields__"):
        return all(_results_equal(x, y) for x, y in zip(vars(a).values(), vars(b).values(), strict=True))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):  # the g2 fit's results
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize(("name", "argument", "kind"), TENSOR_CASES, ids=[f"{n}-{a}-{k}" for n, a, k in TENSOR_CASES])
def test_tensor_arguments_are_checked_at_the_boundary(name, argument, kind):
    call, valid, integer_counts = TENSOR_PROBES[name]
    kwargs = valid()
    kwargs[argument] = corrupted(kwargs[argument], kind)
    if kind == "int" and integer_counts[argument]:
        reference = valid()
        reference[argument] = kwargs[argument].to(F64)
        assert _results_equal(call(**kwargs), call(**reference)), "integer counts must give the float64 result"
        return
    expected = TypeError if kind in ("bool", "int") else ValueError
    with pytest.raises(expected) as error:
        call(**kwargs)
    words = {"histograms": "histogram", "emitters": "emitters", "shares": "shares"}.get(argument, argument)
    assert words.lower() in str(error.value).lower(), str(error.value)


# name -> (call, valid keyword arguments, argument): scalar real arguments (NaN, inf, bool)
SCALAR_PROBES = {
    "shot_noise_counts-nbar": (shot_noise.shot_noise_counts, lambda: {"phi": PHI.clone(), "nbar": 100.0}, "nbar"),
    "fisher_information-nbar": (bounds.fisher_information, lambda: {"phi": PHI.flatten(1), "jacobian": JAC, "nbar": 10.0}, "nbar"),
    "sql_total-nbar": (bounds.sql_total, lambda: {"nbar": 10.0}, "nbar"),
    "heisenberg_total-nbar": (bounds.heisenberg_total, lambda: {"nbar": 10.0}, "nbar"),
    "PoissonMLE.fit-nbar": (MLE.fit, lambda: {"counts": PHI * 1000, "nbar": 1000.0}, "nbar"),
    "DelayAxis-span_ns": (hbt.DelayAxis, lambda: {"span_ns": 500.0}, "span_ns"),
    "expected_histogram-seconds": (hbt.expected_histogram, lambda: {"parameters": params(), "seconds": 5.0}, "seconds"),
    "expected_histogram-efficiency": (hbt.expected_histogram, lambda: {"parameters": params(), "seconds": 5.0,
                                                                       "efficiency": 0.01}, "efficiency"),
    "g2_zero_cramer_rao-seconds": (hbt.g2_zero_cramer_rao, lambda: {"parameters": params(), "seconds": 5.0}, "seconds"),
    **{f"ConfocalScan-{field}": (microscopy.ConfocalScan, lambda field=field: {field: 100.0}, field)
       for field in ("field_nm", "psf_fwhm_nm", "peak_rate", "background_rate", "seconds")},
    "dip_depth-left": (microscopy.dip_depth, lambda: {"positions": X, "profile": PROFILE, "left": -100.0, "right": 100.0}, "left"),
}
SCALAR_CASES = [(name, kind) for name in SCALAR_PROBES for kind in ("nan", "inf", "bool")]


@pytest.mark.parametrize(("name", "kind"), SCALAR_CASES, ids=[f"{n}-{k}" for n, k in SCALAR_CASES])
def test_scalar_arguments_are_checked_at_the_boundary(name, kind):
    call, valid, argument = SCALAR_PROBES[name]
    kwargs = valid()
    kwargs[argument] = {"nan": math.nan, "inf": math.inf, "bool": True}[kind]
    with pytest.raises(TypeError if kind == "bool" else ValueError, match=argument):
        call(**kwargs)


# name -> (call taking the count as its only keyword argument, argument)
COUNT_PROBES = {
    "ImageFamily.phi-size": (lambda size: FAMILY.phi(THETA, size), "size"),
    "ImageFamily.jacobian-size": (lambda size: FAMILY.jacobian(THETA, size), "size"),
    "ImageFamily.sample-n": (lambda n: FAMILY.sample(n), "n"),
    "pixel_centres-size": (lambda size: parametric.pixel_centres(size), "size"),
    **{f"PoissonMLE-{field}": (lambda value, field=field: PoissonMLE(FAMILY, **({"size": 4, "candidates": 8, "starts": 2}
                                                                               | {field: value})), field)
       for field in ("size", "candidates", "starts", "iterations")},
    "DelayAxis-bins": (lambda bins: hbt.DelayAxis(bins=bins), "bins"),
    "sum_one_second_histograms-seconds": (lambda seconds: hbt.sum_one_second_histograms(torch.ones(4, 215), seconds), "seconds"),
    "check_histograms-bins": (lambda bins: hbt.check_histograms(torch.ones(1, 1), bins), "bins"),
    "ConfocalScan-pixels": (lambda pixels: microscopy.ConfocalScan(pixels=pixels), "pixels"),
}
COUNT_CASES = [(name, value) for name in COUNT_PROBES for value in (True, 2.5, 0, -3)]


@pytest.mark.parametrize(("name", "value"), COUNT_CASES, ids=[f"{n}-{v!r}" for n, v in COUNT_CASES])
def test_count_arguments_refuse_bools_fractions_and_non_positive_values(name, value):
    call, argument = COUNT_PROBES[name]
    with pytest.raises(TypeError if isinstance(value, (bool, float)) else ValueError, match=argument):
        call(value)


def test_registry_arguments_are_type_checked():
    with pytest.raises(TypeError, match="family name must be a string"):
        parametric.get_family(3)
    with pytest.raises(TypeError, match="family must be an ImageFamily"):
        parametric.register_family("sinusoid")


def test_mixed_dtypes_are_refused_instead_of_promoted():
    with pytest.raises(TypeError, match="phi, jacobian must share one dtype"):
        bounds.fisher_information(PHI.flatten(1).float(), JAC, 10.0)
    with pytest.raises(TypeError, match="estimates, truth must share one dtype"):
        estimation.error_statistics(PHI.expand(2, -1, -1).float(), PHI[0])
    with pytest.raises(TypeError, match="share one dtype"):
        hbt.EmitterParameters(**(emitter() | {"rate": torch.full((2,), 1e4)}))
