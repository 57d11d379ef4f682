import subprocess
import sys
import textwrap

import pytest

from qml_imaging.config import ConfigError, TrainSettings, apply_override, config_from_dict, load_config
from qml_imaging.extras import QISKIT_MODULES, missing
from qml_imaging.precedence import ineffective_override
from tests.conftest import EXPERIMENTS


def smoke_dict():
    import yaml

    return yaml.safe_load((EXPERIMENTS / "inr_smoke.yaml").read_text())


def test_every_shipped_experiment_validates():
    paths = sorted(EXPERIMENTS.glob("*.yaml"))
    assert paths
    without_qiskit = bool(missing(*QISKIT_MODULES))
    for path in paths:
        try:
            load_config(path)
        except ConfigError as error:  # a core install: a config naming a Qiskit backend names the extra instead
            if not (without_qiskit and 'pip install "qml-imaging[qiskit]"' in str(error)):
                raise


def test_misspelt_top_level_key_is_named_with_a_suggestion():
    raw = smoke_dict()
    raw["seedz"] = 3
    with pytest.raises(ConfigError, match=r"unknown key 'seedz'.*did you mean 'seed'"):
        config_from_dict(raw)


def test_misspelt_nested_key_names_the_dotted_path_and_allowed_keys():
    with pytest.raises(ConfigError) as error:
        config_from_dict(smoke_dict(), ["train.lrr=0.1"])
    message = str(error.value)
    assert "'train.lrr'" in message and "'lr'" in message and "grad_clip" in message


def test_misspelt_key_inside_a_mapping_of_sections():
    with pytest.raises(ConfigError, match=r"unknown key 'models.tanh.omega'.*did you mean 'omega_0'"):
        config_from_dict(smoke_dict(), ["models.tanh.omega=3"])


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.lr=-1", "train.lr: Input should be greater than 0"),
        ("train.epochs=ten", "train.epochs: Input should be a valid integer"),
        ("train.optimizer=sgd", "train.optimizer: Input should be 'adam', 'adamw' or 'adamax'"),
        ("size=2", "size: Input should be greater than or equal to 4"),
        ("images=[lena]", "unknown image(s) ['lena']"),
        ("reference_model=relu", "reference_model 'relu' is not one of the models"),
    ],
)
def test_wrong_types_and_ranges_are_rejected_with_the_key(override, fragment):
    with pytest.raises(ConfigError) as error:
        config_from_dict(smoke_dict(), [override])
    assert fragment in str(error.value)


def test_a_folder_given_as_an_image_is_named_as_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"is a folder; images lists image files \(one fit each\)"):
        config_from_dict(smoke_dict(), [f"images=[{tmp_path}]"])


def test_unknown_pipeline_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown pipeline 'inr_imag'.*did you mean 'inr_image'"):
        config_from_dict({"experiment": "inr_imag", "name": "x"})


def test_overrides_parse_yaml_values_and_resolve_defaults():
    config = config_from_dict(smoke_dict(), ["train.weight_decay=1e-2", "train.grad_clip=null", "seeds=2", "images=[camera, coffee]"])
    assert config.train.weight_decay == pytest.approx(0.01)
    assert config.train.grad_clip is None
    assert config.seeds == 2 and config.images == ["camera", "coffee"]
    assert config.models["tanh"].omega_0 == 30.0  # defaults are filled in


def test_override_into_a_value_is_an_error():
    raw = {"train": {"lr": 0.1}}
    with pytest.raises(ConfigError, match="train.lr is a value, not a section"):
        apply_override(raw, "train.lr.x=1")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override(raw, "train.lr")


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


def test_train_settings_reject_unknown_keys_directly():
    with pytest.raises(ValueError):
        TrainSettings(epochs=1, momentum=0.9)


def test_cli_rejects_misspelt_key_without_importing_torch(tmp_path):
    """The misspelt-key path must not import torch (that is what keeps it well under two seconds)."""
    config = tmp_path / "bad.yaml"
    config.write_text((EXPERIMENTS / "inr_smoke.yaml").read_text().replace("epochs:", "epocs:"))
    script = textwrap.dedent(
        f"""
        import sys
        from qml_imaging.cli import main
        code = main(["run", {str(config)!r}])
        assert "torch" not in sys.modules, "torch was imported before the config was validated"
        sys.exit(code)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "unknown key 'train.epocs'" in result.stderr and "did you mean 'epochs'" in result.stderr


@pytest.mark.parametrize("key, value, experiment", [
    ("models.qiren.backend", "aer_shot", "inr_smoke.yaml"),
    ("backends", "[aer_shots, aer_noisy_manilla]", "qiren_hardware.yaml"),
    pytest.param("backend", "FakeNowhereV2", "qiren_runtime.yaml", marks=pytest.mark.qiskit),
    ("noise.backend", "fastt", "diffusion_fewshot.yaml"),
])
def test_validate_rejects_a_misspelt_backend_name_without_importing_torch(key, value, experiment):
    script = textwrap.dedent(
        f"""
        import sys
        from qml_imaging.cli import main
        code = main(["validate", {str(EXPERIMENTS / experiment)!r}, "{key}={value}"])
        assert "torch" not in sys.modules, "torch was imported while validating"
        sys.exit(code)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    bad = value.strip("[]").split(", ")[-1]
    assert f"unknown {'fake device' if bad.startswith('Fake') else 'backend'} {bad!r}" in result.stderr
    assert key.split(".")[0] in result.stderr
    assert "aer_shots" in result.stderr or "FakeManilaV2" in result.stderr


def test_a_shipped_experiment_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("experiments/inr_smoke.yaml").experiment == "inr_image"
    assert load_config("inr_smoke").name == load_config("inr_smoke.yaml").name
    with pytest.raises(ConfigError, match="does not exist; `qml-imaging list`"):
        load_config("experiments/no_such_experiment.yaml")


@pytest.mark.parametrize("override, fragment", [
    ("train.epochs=true", "train.epochs: expected a number, not the boolean True"),
    ("seeds=yes", "seeds: expected a number, not the boolean True"),
    ("train.lr=.inf", "train.lr: Input should be a finite number"),
    ("train.weight_decay=.nan", "train.weight_decay: Input should be a finite number"),
])
def test_booleans_and_non_finite_numbers_are_refused_where_a_number_is_expected(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        config_from_dict(smoke_dict(), [override])


def test_booleans_stay_valid_where_a_boolean_is_expected():
    config = config_from_dict(smoke_dict(), ["train.progress=false", "models.qiren.batch_norm=no"])
    assert config.train.progress is False and config.models["qiren"].batch_norm is False


def test_relative_data_paths_are_stored_absolute_so_a_run_reads_them_from_any_folder(tmp_path, monkeypatch):
    from qml_imaging.config import dump_config

    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "pngs").mkdir(parents=True)
    elsewhere.mkdir()
    (data / "photo.png").write_bytes(b"")
    (data / "tone.wav").write_bytes(b"")
    monkeypatch.chdir(data)
    image = load_config(EXPERIMENTS / "inr_smoke.yaml", ["images=[photo.png, camera]"])
    signal = load_config(EXPERIMENTS / "signal_smoke.yaml", ["signal.path=tone.wav"])
    folder = load_config(EXPERIMENTS / "diffusion_fewshot.yaml",
                         ["datasets={mine: {source: folder, path: pngs}}", "variants={quantum: {bottleneck: quantum}}",
                          "evaluation.scores=false"])
    assert image.images == [str(data / "photo.png"), "camera"]
    assert signal.signal.path == str(data / "tone.wav")
    assert folder.datasets["mine"].path == str(data / "pngs")
    monkeypatch.chdir(elsewhere)
    for config in (image, signal, folder):
        stored = tmp_path / f"{config.experiment}.yaml"
        stored.write_text(dump_config(config))
        assert load_config(stored) == config


def test_a_folder_data_set_needs_its_path_and_only_folders_take_one(tmp_path):
    with pytest.raises(ConfigError, match="source: folder needs path: a folder of image files"):
        load_config(EXPERIMENTS / "diffusion_fewshot.yaml", ["datasets={mine: {source: folder}}"])
    with pytest.raises(ConfigError, match="path is for source: folder, not mnist"):
        load_config(EXPERIMENTS / "diffusion_fewshot.yaml", [f"datasets={{mnist: {{source: mnist, path: {tmp_path}}}}}"])
    with pytest.raises(ConfigError, match="kind: folder needs path: a folder of image files"):
        load_config(EXPERIMENTS / "qcrb_natural.yaml", ["datasets={mine: {kind: folder}}"])
    with pytest.raises(ConfigError, match="path is for kind: folder, not mnist"):
        load_config(EXPERIMENTS / "qcrb_natural.yaml", [f"datasets={{digits: {{kind: mnist, path: {tmp_path}}}}}"])


def _leaves(mapping, prefix=""):
    """Dotted keys and values of every leaf of a nested mapping (lists are leaves)."""
    for key, value in mapping.items():
        if "." in str(key):  # a name such as relu_lr0.001 cannot be written as a dotted key
            continue
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.qiskit  # qiren_hardware.yaml names Aer backends
def test_overriding_one_key_of_a_defaulted_section_keeps_the_others():
    """r41: `simulation.seconds.low=2` on a YAML that leaves `simulation.seconds` at its default kept only `low`."""
    import yaml

    config = load_config(EXPERIMENTS / "g2_smoke.yaml", ["simulation.seconds.low=2"])
    assert (config.simulation.seconds.low, config.simulation.seconds.high) == (2, 10)
    for path in sorted(EXPERIMENTS.glob("*.yaml")):  # every key of every shipped experiment, set to its own value
        resolved = load_config(path).model_dump(mode="json")
        for key, value in _leaves(resolved):
            if key in ("experiment", "name"):
                continue
            override = f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
            if ineffective_override(resolved["experiment"], resolved, [override]):
                continue  # refused: a more specific key wins (tests/test_precedence.py)
            assert load_config(path, [override]).model_dump(mode="json") == resolved, (path.name, override)

