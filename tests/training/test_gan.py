import pytest
import torch
from torch import nn

from qml_imaging.config import TrainSettings
from qml_imaging.models.inr_generator import Discriminator, InrGenerator
from qml_imaging.models.specs import InrGeneratorSpec
from qml_imaging.training import Trainer
from qml_imaging.training.checkpoints import load_checkpoint
from qml_imaging.training.gan import GanObjective, GanPair, gan_batches

SPEC = InrGeneratorSpec(features=4, hidden_layers=1, latent_dim=4, style_dim=4, mapping_layers=1)
PLAYERS = {"discriminator": {"betas": (0.0, 0.99)}, "generator": {"betas": (0.0, 0.99), "lr": 1e-3}}


def pair() -> GanPair:
    torch.manual_seed(0)
    return GanPair(InrGenerator(SPEC, "rff", 8, side=8), Discriminator(1, 8, 2))


def test_both_players_step_and_their_optimizers_are_checkpointed(tmp_path):
    model = pair()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, TrainSettings(epochs=2, lr=2e-3, ema_decay=0.9, progress=False),
                      objective=GanObjective(1.0), players=PLAYERS, checkpoint_dir=tmp_path)
    trainer.fit(gan_batches(torch.rand(20, 1, 8, 8) * 2 - 1, 4, 2, SPEC.latent_dim))
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"generator", "discriminator"}
    state = load_checkpoint(tmp_path)
    assert set(state["optimizer"]) == set(state["scheduler"]) == {"discriminator", "generator"}
    assert state["optimizer"]["generator"]["param_groups"][0]["lr"] == 1e-3
    assert state["optimizer"]["discriminator"]["param_groups"][0]["betas"] == (0.0, 0.99)
    assert any(k.startswith("module.generator.") for k in state["ema"])


def test_player_errors_are_clear():
    with pytest.raises(ValueError, match=r"players \['critic'\] are not sub-modules of GanPair"):
        Trainer(pair(), TrainSettings(progress=False), objective=GanObjective(1.0), players={"critic": {}})

    def wrong(model, batch, step):
        step("critic", model(batch["latents"][0]).mean())

    trainer = Trainer(pair(), TrainSettings(epochs=1, progress=False), objective=wrong, players=PLAYERS)
    with pytest.raises(ValueError, match=r"step\('critic'\) names no player"):
        trainer.fit(gan_batches(torch.zeros(4, 1, 8, 8), 2, 1, SPEC.latent_dim))
    with pytest.raises(ValueError, match="r1_gamma must be >= 0"):
        GanObjective(-1.0)


def test_a_player_loss_that_is_not_finite_names_the_player(tmp_path):
    def diverging(model, batch, step):
        loss = model.discriminator(batch["real"]).mean() * float("nan")
        step("discriminator", loss)
        return loss

    trainer = Trainer(pair(), TrainSettings(epochs=1, progress=False), objective=diverging, players=PLAYERS)
    with pytest.raises(FloatingPointError, match="the discriminator loss became nan"):
        trainer.fit(gan_batches(torch.zeros(4, 1, 8, 8), 2, 1, SPEC.latent_dim))


def test_single_player_checkpoints_keep_their_format(tmp_path):
    model = nn.Linear(2, 1)
    Trainer(model, TrainSettings(epochs=1, progress=False), objective=lambda m, b: m(b).pow(2).mean(),
            checkpoint_dir=tmp_path).fit(lambda epoch, generator: [torch.randn(4, 2, generator=generator)])
    assert "param_groups" in load_checkpoint(tmp_path)["optimizer"]
