"""Config schema of the ``g2_regression`` pipeline (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from qml_imaging.config import GridExperiment, Section, TrainSettings, UserPath
from qml_imaging.models.specs import G2CnnSpec
from qml_imaging.physics.settings import Efficiency, ScanSettings

MAPE_FLOOR = 0.05
"""g2(0) below which a relative error is not defined here: MAPE (reports and the training loss) is taken
only over truths >= this floor, and absolute error and RMSE are reported beside it (a perfect
single-photon emitter has g2(0) = 0, where MAPE divides by zero)."""


Loss = Literal["mape", "floored_mape", "mae"]
"""CNN training losses: ``mape`` ``|p - t| / |t|`` (the paper's; undefined at t = 0), ``floored_mape``
``|p - t| / max(|t|, MAPE_FLOOR)`` (relative above the floor, absolute / floor below: bounded for a
perfect single-photon emitter), ``mae`` ``|p - t|``."""


class Range(Section):
    """A closed interval ``[low, high]`` a simulated parameter is drawn from (uniformly)."""
    low: float = Field()
    high: float = Field()

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        return self


class HistogramSimulation(Section):
    """Simulated pixels: effective three-level curves (emitters and background folded in), rates, acquisition."""

    samples: int = Field(30000, ge=10, description="training histograms")
    seconds: Range = Field(default_factory=lambda: Range(low=5, high=10), description="acquisition times (integer s)")
    g2_zero: Range = Field(default_factory=lambda: Range(low=0.1, high=0.9))
    lifetime_ns: Range = Field(default_factory=lambda: Range(low=10, high=100), description="t1")
    shelving_ns: Range = Field(default_factory=lambda: Range(low=150, high=1000), description="t2 (metastable state)")
    bunching: Range = Field(default_factory=lambda: Range(low=0.0, high=0.3), description="a2")
    rate: Range = Field(default_factory=lambda: Range(low=1e4, high=1e5), description="counts/s per detector, log-uniform")
    dark_fraction: float = Field(0.1, ge=0, lt=1, description="share of pixels at 1e3-1e4 counts/s (mostly < 4 events)")
    efficiency: Efficiency

    @model_validator(mode="after")
    def _physical_ranges(self) -> HistogramSimulation:
        checks = {"seconds": (self.seconds, 1, "at least 1 s (integer seconds are drawn)"),
                  "g2_zero": (self.g2_zero, 0, ">= 0"), "lifetime_ns": (self.lifetime_ns, 1e-9, "> 0 ns"),
                  "shelving_ns": (self.shelving_ns, 1e-9, "> 0 ns"), "bunching": (self.bunching, 0, ">= 0"),
                  "rate": (self.rate, 1e-9, "> 0 counts/s (it is drawn log-uniformly)")}
        for name, (span, minimum, words) in checks.items():
            if span.low < minimum:
                raise ValueError(f"simulation.{name}.low is {span.low}; it must be {words}")
        if self.seconds.low > int(self.seconds.high):
            raise ValueError(f"simulation.seconds [{self.seconds.low}, {self.seconds.high}] holds no whole second")
        return self


class G2Evaluation(Section):
    """Held-out histograms at each acquisition time; L-M at longer times to find the speed-up."""

    seconds: list[PositiveInt] = Field(default_factory=lambda: [5, 6, 7], min_length=1)
    histograms: int = Field(2000, ge=2, description="held-out histograms per acquisition time")
    lm_seconds: list[PositiveInt] = Field(default_factory=lambda: [5, 10, 20, 40, 80, 160],
                                  description="acquisition times at which L-M is evaluated for the speed-up")
    lm_histograms: int = Field(400, ge=2, description="held-out histograms per L-M speed-up point")
    timing_histograms: int = Field(1024, ge=1, description="histograms of the CNN inference timing")


class G2RegressionConfig(GridExperiment):
    """Train the CNN on simulated sparse histograms; compare it with L-M fits at short acquisitions."""

    experiment: Literal["g2_regression"]
    simulation: HistogramSimulation = Field(default_factory=HistogramSimulation)
    cnn: G2CnnSpec = Field(default_factory=G2CnnSpec)
    loss: Loss = Field("mape", description="CNN training loss: mape (the paper's), floored_mape or mae (bounded at g2(0) = 0)")
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(epochs=30, batch_size=128, optimizer="adamax",
                                                                       lr=2e-3, eval_every=5))
    evaluation: G2Evaluation = Field(default_factory=G2Evaluation)

    @model_validator(mode="after")
    def _mape_is_defined(self) -> G2RegressionConfig:
        if self.loss == "mape" and self.simulation.g2_zero.low < MAPE_FLOOR:
            raise ValueError(f"simulation.g2_zero.low is {self.simulation.g2_zero.low}, below {MAPE_FLOOR}: the MAPE "
                             f"training loss divides by g2(0) and is undefined near 0; use g2_zero.low >= {MAPE_FLOOR}")
        return self


class EmitterCurve(Section):
    """One emitter's three-level curve (all emitters of a scene share it)."""

    g2_zero: float = Field(0.15, ge=0, lt=1, description="the single emitter's g2(0) = 1 - a1 + a2")
    bunching: float = Field(0.2, ge=0, allow_inf_nan=False, description="a2")
    lifetime_ns: float = Field(20.0, gt=0, allow_inf_nan=False, description="t1")
    shelving_ns: float = Field(300.0, gt=0, allow_inf_nan=False, description="t2")


class SrmScanConfig(GridExperiment):
    """Confocal scans of emitter scenes; g2 maps by L-M and by the CNN of a finished g2_regression run."""

    experiment: Literal["srm_scan"]
    source_run: UserPath = Field(description="finished g2_regression run whose CNN is used")
    scan: ScanSettings = Field(default_factory=ScanSettings)
    emitter: EmitterCurve = Field(default_factory=EmitterCurve)
    scenes: dict[str, list[tuple[float, float]]] = Field(
        default_factory=lambda: {"one": [(0.0, 0.0)], "two": [(-300.0, 0.0), (300.0, 0.0)],
                                 "three": [(-200.0, -150.0), (200.0, -150.0), (0.0, 200.0)]},
        description="scene name -> emitter positions (x, y) in nm; 'one' gives the FWHM ratio, 'two' the dip")
    efficiency: Efficiency

    @model_validator(mode="after")
    def _scenes_hold_emitters(self) -> SrmScanConfig:
        for name, positions in self.scenes.items():
            if not positions:
                raise ValueError(f"scenes.{name} holds no emitter; give at least one (x, y) position in nm")
        return self


class SeriesSimulation(Section):
    """Simulated per-emitter series of short histograms, written as NPZ files (the reader's format)."""

    emitters: int = Field(40, ge=4, description="emitters (one file each)")
    histograms: int = Field(60, ge=2, description="short histograms per emitter")
    seconds: float = Field(1.0, gt=0, allow_inf_nan=False, description="acquisition time of one short histogram (s)")
    g2_zero: Range = Field(default_factory=lambda: Range(low=0.0, high=0.9), description="g2(0) of the emitters (0 allowed)")
    lifetime_ns: Range = Field(default_factory=lambda: Range(low=10, high=100), description="t1")
    shelving_ns: Range = Field(default_factory=lambda: Range(low=150, high=1000), description="t2")
    bunching: Range = Field(default_factory=lambda: Range(low=0.0, high=0.3), description="a2")
    rate: Range = Field(default_factory=lambda: Range(low=2e4, high=1e5), description="counts/s per detector, log-uniform")
    zero_delay_ns: float = Field(3.0, allow_inf_nan=False, description="cable delay: where the dip sits on the axis")
    efficiency: Efficiency

    @model_validator(mode="after")
    def _physical(self) -> SeriesSimulation:
        for name, minimum in (("g2_zero", 0.0), ("lifetime_ns", 1e-9), ("shelving_ns", 1e-9), ("bunching", 0.0),
                              ("rate", 1e-9)):
            if getattr(self, name).low < minimum:
                raise ValueError(f"simulate.{name}.low is {getattr(self, name).low}; it must be >= {minimum}")
        return self


class Protocol(Section):
    """The paper's protocol: labels from the L-M fit of each emitter's summed series; sums of 1..max_sum short ones."""

    max_sum: int = Field(10, ge=1, description="training and test histograms sum 1..max_sum short histograms")
    train_sums: int = Field(4000, ge=10)
    test_sums: int = Field(1000, ge=2)
    test_fraction: float = Field(0.25, gt=0, lt=1, description="share of emitters (by-emitter) or sums (leaky) held out")
    splits: list[Literal["by_emitter", "leaky"]] = Field(default_factory=lambda: ["by_emitter", "leaky"], min_length=1)


class G2MeasuredConfig(GridExperiment):
    """Train the CNN on per-emitter series of short histograms (a folder of files, or simulated ones written
    as files first) with the paper's labels, and score it and L-M on held-out sums under each split."""

    experiment: Literal["g2_measured"]
    folder: UserPath | None = Field(None, description="folder of per-emitter series files; null = simulate them")
    simulate: SeriesSimulation = Field(default_factory=SeriesSimulation)
    protocol: Protocol = Field(default_factory=Protocol)
    cnn: G2CnnSpec = Field(default_factory=G2CnnSpec)
    loss: Loss = Field("floored_mape", description="mape (the paper's), floored_mape or mae")
    mape_floor: float = Field(MAPE_FLOOR, gt=0, lt=1, allow_inf_nan=False,
                              description="MAPE is reported over labels above this; floored_mape divides by at least it")
    train: TrainSettings = Field(default_factory=lambda: TrainSettings(epochs=20, batch_size=128, optimizer="adamax",
                                                                       lr=2e-3, eval_every=5))

    @model_validator(mode="after")
    def _mape_needs_labels_above_the_floor(self) -> G2MeasuredConfig:
        if self.loss == "mape" and self.folder is None and self.simulate.g2_zero.low < self.mape_floor:
            raise ValueError(f"loss is 'mape' but simulate.g2_zero.low is {self.simulate.g2_zero.low}, below mape_floor "
                             f"{self.mape_floor}: MAPE divides by g2(0); use loss=floored_mape or loss=mae")
        return self
