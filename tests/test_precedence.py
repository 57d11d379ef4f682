"""One knob per setting: each pair of keys that set one thing has one precedence, and an override that would have
no effect is refused in one line naming the keys that win (qml_imaging.precedence)."""

import pytest

from qml_imaging.config import ConfigError, load_config
from qml_imaging.precedence import SHADOWED, ineffective_override, overridden_keys, own_or_shared
from tests.conftest import EXPERIMENTS

IMAGE = EXPERIMENTS / "qiren_image.yaml"
SMOKE = EXPERIMENTS / "inr_smoke.yaml"
GENERATION = EXPERIMENTS / "qiren_generation.yaml"
DIFFUSION = EXPERIMENTS / "diffusion_fewshot.yaml"


def test_train_lr_is_refused_naming_the_model_lrs_when_every_model_sets_its_own():
    with pytest.raises(ConfigError) as error:
        load_config(IMAGE, ["train.lr=0.1"])
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("override 'train.lr=0.1' has no effect: models.qiren.lr=0.03, models.relu.lr=0.03")
    assert "and 1 more win over train.lr" in message and "models.NAME.lr=null" in message


def test_train_lr_is_taken_by_a_model_without_its_own_lr():
    config = load_config(IMAGE, ["models.siren.lr=null", "train.lr=0.1"])
    lrs = {name: own_or_shared(spec.lr, config.train.lr) for name, spec in config.models.items()}
    assert lrs == {"qiren": 0.03, "relu": 0.03, "tanh": 0.03, "rff": 0.03, "siren": 0.1}
    assert load_config(IMAGE, ["models.siren.lr=0.01"]).models["siren"].lr == 0.01


def test_a_section_override_is_checked_key_by_key():
    assert overridden_keys("train={lr: 0.1, logging: {csv: true}}") == ["train.lr", "train.logging.csv"]
    assert overridden_keys("train.epochs=3") == ["train.epochs"]
    with pytest.raises(ConfigError, match=r"override 'train=\{lr: 0.1, epochs: 3\}' has no effect: models\.qiren"):
        load_config(IMAGE, ["train={lr: 0.1, epochs: 3}"])
    assert load_config(IMAGE, ["train.epochs=3"]).train.epochs == 3


def test_the_gan_players_lrs_win_over_train_lr_only_when_both_are_set():
    with pytest.raises(ConfigError, match="gan.generator_lr=0.0002, gan.discriminator_lr=0.0002 win over train.lr"):
        load_config(GENERATION, ["gan.generator_lr=2e-4", "gan.discriminator_lr=2e-4", "train.lr=0.1"])
    config = load_config(GENERATION, ["gan.generator_lr=2e-4", "train.lr=0.1"])
    assert own_or_shared(config.gan.discriminator_lr, config.train.lr) == 0.1
    assert own_or_shared(config.gan.generator_lr, config.train.lr) == 2e-4


def test_diffusion_schedule_is_refused_when_every_variant_names_its_own():
    overrides = ["variants={a: {schedule: linear}, b: {schedule: cosine}}", "diffusion.schedule=linear"]
    with pytest.raises(ConfigError, match="variants.a.schedule=linear, variants.b.schedule=cosine win over "
                                          "diffusion.schedule"):
        load_config(DIFFUSION, overrides)
    assert load_config(DIFFUSION, ["diffusion.schedule=linear"]).diffusion.schedule == "linear"


@pytest.mark.parametrize("path", [SMOKE, GENERATION])
def test_seed_is_refused_where_seeds_decide_every_fit(path):
    with pytest.raises(ConfigError, match=r"override 'seed=3' has no effect: seeds=.* wins over seed"):
        load_config(path, ["seed=3"])


def test_seed_is_taken_where_it_seeds_something():
    assert load_config(DIFFUSION, ["seed=3"]).seed == 3  # the generated noise bank
    assert load_config(EXPERIMENTS / "g2_smoke.yaml", ["seed=3"]).seed == 3


@pytest.mark.parametrize("path", [GENERATION, DIFFUSION])
def test_the_feature_classifier_follows_train_device_unless_set_itself(path):
    assert load_config(path, ["train.device=cpu"]).evaluation.classifier.device == "cpu"
    assert load_config(path, ["evaluation.kid_subsets=3", "train.device=cpu"]).evaluation.classifier.device == "cpu"
    both = load_config(path, ["train.device=cpu", "evaluation.classifier.device=auto"])
    assert (both.train.device, both.evaluation.classifier.device) == ("cpu", "auto")


def test_a_yaml_file_that_sets_both_levels_is_not_refused(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text(SMOKE.read_text().replace("train:\n", "train:\n  lr: 0.5\n"))
    assert load_config(path).train.lr == 0.5, "a stored config.yaml writes every key out"


def test_every_pair_names_keys_of_a_shipped_schema():
    values = {path.stem: load_config(path).model_dump(mode="json") for path in (IMAGE, GENERATION, DIFFUSION)}
    for pair in SHADOWED:
        assert any(pair.general.split(".")[0] in config for config in values.values()), pair
    assert ineffective_override("inr_image", values["qiren_image"], ["train.epochs=2"]) is None
