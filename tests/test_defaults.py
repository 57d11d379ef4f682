"""One source of truth per default and option list: each torch-free schema and the code it configures agree.

Every pair below was once declared twice; now one side takes its values from the other, and these tests
fail if someone declares them twice again and lets them drift.
"""

import dataclasses
import inspect
from typing import get_args

import pytest

from qml_imaging.data.catalog import CHANNEL_MODES, FITS, INTENSITY_RULES
from qml_imaging.diffusion.schedules import SCHEDULES
from qml_imaging.models import inr
from qml_imaging.models.diffusion_unet import DiffusionUNet
from qml_imaging.models.specs import BOTTLENECKS, EMBEDDINGS, InrModelSpec, QirenEntangler
from qml_imaging.physics import hbt, microscopy, mle
from qml_imaging.physics.settings import DEFAULT_EFFICIENCY, MleSettings, ScanSettings
from qml_imaging.pipelines.diffusion.config import (
    BaseSchedule,
    DiffusionSettings,
    NoiseSettings,
    TailoredSettings,
    Variant,
)
from qml_imaging.pipelines.g2.config import (
    HistogramSimulation,
    SeriesSimulation,
    SrmScanConfig,
)
from qml_imaging.pipelines.generation.config import QirenGenerationConfig
from qml_imaging.pipelines.inr.config import InrImageConfig
from qml_imaging.pipelines.qcrb.config import MleSpec
from qml_imaging.quantum.backends import MAX_SIMULATED_QUBITS


def dataclass_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def keyword_defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def literal_options(model, field: str) -> tuple:
    annotation = model.model_fields[field].annotation
    options = get_args(annotation)
    return tuple(option for arg in options for option in (get_args(arg) or (arg,)) if isinstance(option, str))


def test_the_confocal_scan_and_its_config_section_share_every_default():
    assert dataclass_defaults(microscopy.ConfocalScan) == ScanSettings().model_dump()
    assert SrmScanConfig.model_fields["scan"].default_factory is ScanSettings


def test_the_poisson_mle_and_its_config_section_share_every_default():
    assert dataclass_defaults(mle.PoissonMLE) == {**MleSettings().model_dump(), "seed": 0}
    assert issubclass(MleSpec, MleSettings) and MleSpec().model_dump() == {**MleSettings().model_dump(), "enabled": True}


def test_the_coincidence_efficiency_is_declared_once():
    assert hbt.DEFAULT_EFFICIENCY is DEFAULT_EFFICIENCY
    for section in (HistogramSimulation(), SeriesSimulation()):
        assert section.efficiency == DEFAULT_EFFICIENCY
    assert SrmScanConfig.model_fields["efficiency"].default == DEFAULT_EFFICIENCY
    assert keyword_defaults(hbt.uncorrelated_baseline)["efficiency"] == DEFAULT_EFFICIENCY


@pytest.mark.parametrize("cls, names", [
    (inr.QIREN, {"n_qubits": "n_qubits", "hybrid_layers": "hidden_layers", "reuploads": "reuploads",
                 "sublayers": "sublayers", "entangler": "entangler"}),
    (inr.FourierFeatureMLP, {"n_frequencies": "n_frequencies", "sigma": "sigma", "batch_norm": "batch_norm"}),
    (inr.Siren, {"omega_0": "omega_0"}),
    (inr.CoordinateMLP, {"batch_norm": "batch_norm"}),
])
def test_each_inr_constructor_takes_its_defaults_from_the_model_schema(cls, names):
    spec, defaults = InrModelSpec(kind="qiren"), keyword_defaults(cls.__init__)
    assert {argument: defaults[argument] for argument in names} == {a: getattr(spec, s) for a, s in names.items()}


def test_qiren_runs_on_the_schema_default_backend_when_given_no_executor():
    from qml_imaging.quantum.backends import backend_spec

    assert keyword_defaults(inr.QIREN.__init__)["executor"] is None  # None: the fast backend
    assert backend_spec(InrModelSpec(kind="qiren").backend) == backend_spec("fast")
    assert all(layer.executor.spec == backend_spec("fast") for layer in inr.QIREN(n_qubits=2).quantum_layers())


def test_qubit_limits_of_the_configs_are_the_simulators():
    for model, field in ((InrModelSpec, "n_qubits"), (NoiseSettings, "n_qubits")):
        limits = [m.le for m in model.model_fields[field].metadata if hasattr(m, "le")]
        assert limits == [MAX_SIMULATED_QUBITS], (model.__name__, field)


def test_option_lists_are_the_literals_the_configs_check():
    assert literal_options(InrImageConfig, "resize") == FITS
    assert literal_options(InrImageConfig, "channels") == CHANNEL_MODES
    assert literal_options(InrImageConfig, "intensity") == INTENSITY_RULES
    assert literal_options(Variant, "bottleneck") == BOTTLENECKS
    assert tuple(inr.QIREN_BLOCKS) == get_args(QirenEntangler) == literal_options(InrModelSpec, "entangler")
    assert keyword_defaults(DiffusionUNet.__init__)["bottleneck"] in BOTTLENECKS
    assert get_args(QirenGenerationConfig.model_fields["embeddings"].annotation)[0].__args__ == EMBEDDINGS
    assert set(SCHEDULES) == set(get_args(BaseSchedule)) == set(literal_options(TailoredSettings, "base"))
    assert literal_options(DiffusionSettings, "schedule") == (*get_args(BaseSchedule), "tailored")
    assert literal_options(Variant, "schedule") == (*get_args(BaseSchedule), "tailored")


def test_the_g2_command_offers_the_options_the_library_checks():
    import argparse

    from qml_imaging.cli_g2 import add_g2_commands
    from qml_imaging.config import GridSettings
    from qml_imaging.data.catalog import CONVENTIONS, DELAY_UNITS
    from qml_imaging.data.histograms import UNITS_NS
    from qml_imaging.physics.settings import BASELINES, PULSED_METHODS

    parser = argparse.ArgumentParser()
    add_g2_commands(parser.add_subparsers())
    g2 = parser._subparsers._group_actions[0].choices["g2"]
    commands = g2._subparsers._group_actions[0].choices
    choices = {action.dest: tuple(action.choices) for command in commands.values() for action in command._actions
               if action.choices is not None and action.dest != "help"}
    assert choices["baseline"] == BASELINES and choices["convention"] == CONVENTIONS
    assert choices["areas"] == PULSED_METHODS and set(DELAY_UNITS) <= set(UNITS_NS)
    assert choices["delay_unit"] == DELAY_UNITS
    assert choices["executor"] == get_args(GridSettings.model_fields["executor"].annotation) == ("local", "ray")
