"""Each network's constructor defaults are its spec's defaults, and ``from_spec`` builds what the spec says."""

import inspect

import pytest

from qml_imaging.models.diffusion_unet import DiffusionUNet
from qml_imaging.models.g2_cnn import G2CNN
from qml_imaging.models.specs import DiffusionUNetSpec, G2CnnSpec, UNetSpec
from qml_imaging.models.unet import DenoisingUNet
from qml_imaging.models.inr import parameter_count

PAIRS = [(DenoisingUNet, UNetSpec), (DiffusionUNet, DiffusionUNetSpec), (G2CNN, G2CnnSpec)]


@pytest.mark.parametrize("network, spec", PAIRS, ids=lambda item: item.__name__)
def test_constructor_defaults_are_the_specs_defaults(network, spec):
    defaults = spec().model_dump()
    parameters = inspect.signature(network).parameters
    shared = [name for name in parameters if name in defaults]
    assert shared, "the network and its spec share no argument"
    for name in shared:
        default = parameters[name].default
        assert (list(default) if isinstance(default, tuple) else default) == defaults[name], name


@pytest.mark.parametrize("network, spec, arguments", [
    (DenoisingUNet, UNetSpec(depth=3, base_channels=4, max_channels=8, res_blocks=2, skip_from_level=1), (2,)),
    (DiffusionUNet, DiffusionUNetSpec(channels=[8, 16, 24], n_qubits=3, quantum_layers=2), (1, "quantum")),
    (G2CNN, G2CnnSpec(filters=6, kernel=3, dense=[5]), ()),
], ids=lambda item: getattr(item, "__name__", ""))
def test_from_spec_builds_the_network_the_spec_describes(network, spec, arguments):
    fields = {name: value for name, value in spec.model_dump().items()
              if name in inspect.signature(network).parameters}
    fields = {name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()}
    expected = network(*arguments[:1], **fields, **({"bottleneck": arguments[1]} if len(arguments) > 1 else {}))
    built = network.from_spec(spec, *arguments)
    assert parameter_count(built) == parameter_count(expected)
    assert [tuple(p.shape) for p in built.parameters()] == [tuple(p.shape) for p in expected.parameters()]
