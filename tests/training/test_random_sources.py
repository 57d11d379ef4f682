"""Generators that layers, executors, objectives and other objects keep for themselves are saved in checkpoints
and given back on resume (qml_imaging.random_sources), so a resumed fit draws what an uninterrupted one would."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from qml_imaging.config import TrainSettings
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.circuits import qiren_block
from qml_imaging.quantum.factory import make_executor
from qml_imaging.random_sources import find_random_sources, generator_state, set_generator_state
from qml_imaging.runs import MetricsLog
from qml_imaging.training import Trainer, seed_everything


class Stop(Exception):
    pass


class NoisyLinear(nn.Module):
    """A layer that adds noise from its own generator: a random source."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.generator = torch.Generator().manual_seed(11)

    def forward(self, x):
        return self.linear(x) + 0.1 * torch.randn(x.shape[0], 1, generator=self.generator)

    def random_state(self):
        return generator_state(self.generator)

    def set_random_state(self, state):
        set_generator_state(self.generator, state)


class JitteredObjective:
    """An objective that jitters its targets from a NumPy generator of its own: a random source."""

    def __init__(self):
        self.rng = np.random.default_rng(5)

    def __call__(self, model, batch):
        x, y = batch
        return F.mse_loss(model(x), y + torch.as_tensor(self.rng.normal(0, 0.1, y.shape), dtype=y.dtype))

    def random_state(self):
        return generator_state(self.rng)

    def set_random_state(self, state):
        set_generator_state(self.rng, state)


class Counter:
    """A source the fit does not reach by itself (given as random_sources=)."""

    def __init__(self):
        self.draws = 0

    def random_state(self):
        return {"draws": self.draws}

    def set_random_state(self, state):
        self.draws = state["draws"]


def losses(tmp_path, name, stop_at=None):
    seed_everything(0)
    model, objective, counter = nn.Sequential(NoisyLinear()), JitteredObjective(), Counter()
    x = torch.linspace(-1, 1, 48).reshape(16, 3)
    data = TensorDataset(x, x.sum(1, keepdim=True))

    def batches(epoch, generator):
        if epoch == stop_at:
            raise Stop
        counter.draws += 1
        return [data.tensors]

    trainer = Trainer(model, TrainSettings(epochs=5, lr=0.05, checkpoint_every=2, progress=False, device="cpu"),
                      objective=objective, checkpoint_dir=tmp_path / name, metrics=MetricsLog(tmp_path / f"{name}.jsonl"),
                      fit_name=name, random_sources={"counter": counter})
    assert set(trainer.random_sources) == {"module:0", "objective", "counter"}
    trainer.fit(batches)
    return [r["train_loss"] for r in trainer.metrics.records(name)], counter.draws


def test_a_resumed_fit_continues_every_random_source_where_the_checkpoint_left_it(tmp_path):
    expected = losses(tmp_path, "full")
    with pytest.raises(Stop):
        losses(tmp_path, "resumed", stop_at=3)  # the checkpoint of epoch 2 holds the sources' states
    assert losses(tmp_path, "resumed") == expected


def test_an_object_that_is_no_random_source_is_refused_by_name():
    with pytest.raises(TypeError, match=r"random_sources\['bank'\] is a list, which lacks random_state\(\)"):
        find_random_sources(nn.Linear(1, 1), None, {"bank": []})
    with pytest.raises(ValueError, match="a torch generator cannot take the state of a numpy generator"):
        set_generator_state(torch.Generator(), generator_state(np.random.default_rng(0)))


def test_a_shot_sampling_device_resumes_its_shot_noise():
    """default.qubit with shots samples from its own generator on every call; a new executor given the state
    (before its device exists, as on resume) samples what the first would have sampled next."""
    spec = backend_spec({"backend": "default.qubit", "shots": 50, "seed": 3})
    template = qiren_block(2, 1, 1)
    inputs, weights = torch.rand(4, 2), torch.rand(template.weight_shape)
    first = make_executor(spec)
    first.expvals(template, inputs, weights)
    state = first.random_state()
    following = first.expvals(template, inputs, weights)
    fresh, resumed = make_executor(spec), make_executor(spec)
    resumed.set_random_state(state)
    assert torch.equal(resumed.expvals(template, inputs, weights), following)
    assert not torch.equal(fresh.expvals(template, inputs, weights), following)
