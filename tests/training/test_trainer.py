import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from qml_imaging.config import TrainSettings
from qml_imaging.runs import MetricsLog
from qml_imaging.training import Trainer, seed_everything, supervised
from qml_imaging.training.checkpoints import load_checkpoint


class Interrupted(Exception):
    pass


def regression_data(n=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=generator) * 2 - 1
    y = torch.sin(3 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]
    return TensorDataset(x, y)


def small_model(dropout=0.1):
    return nn.Sequential(nn.Linear(3, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


def settings(**overrides):
    base = dict(epochs=8, batch_size=16, lr=0.02, eval_every=2, checkpoint_every=3, progress=False, device="cpu")
    return TrainSettings(**{**base, **overrides})


def evaluate_on(dataset):
    x, y = dataset.tensors

    def evaluate(model):
        return {"mse": F.mse_loss(model(x), y).item()}

    return evaluate


def fit(tmp_path, name, train_settings, data=None, seed=0, checkpoints=True):
    data = data if data is not None else regression_data()
    seed_everything(seed)
    trainer = Trainer(
        small_model(),
        train_settings,
        objective=supervised(F.mse_loss),
        evaluate=evaluate_on(regression_data()),
        checkpoint_dir=tmp_path / name if checkpoints else None,
        metrics=MetricsLog(tmp_path / f"{name}.jsonl"),
        seed=seed,
        fit_name=name,
    )
    return trainer, trainer.fit(data)


def test_training_reduces_the_loss(tmp_path):
    _, result = fit(tmp_path, "a", settings(epochs=30, eval_every=30))
    records = MetricsLog(tmp_path / "a.jsonl").records("a")
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]
    assert result.metrics["mse"] == records[-1]["eval/mse"]  # the last epoch is always evaluated
    targets = regression_data().tensors[1]
    assert result.metrics["mse"] < 0.5 * targets.var().item()  # clearly better than predicting the mean
    assert result.epochs == 30 and result.seconds > 0


def test_same_seed_same_numbers_different_seed_different_numbers(tmp_path):
    _, first = fit(tmp_path, "a", settings(), seed=3)
    _, second = fit(tmp_path, "b", settings(), seed=3)
    _, other = fit(tmp_path, "c", settings(), seed=4)
    assert first.metrics == second.metrics
    assert first.final_loss == second.final_loss
    assert other.metrics != first.metrics


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"ema_decay": 0.9, "lr_schedule": "cosine", "warmup_epochs": 2, "optimizer": "adamw", "weight_decay": 0.01},
        {"lr_schedule": "step", "step_size": 2, "gamma": 0.5, "grad_clip": 0.5, "optimizer": "adamax"},
    ],
)
def test_resumed_run_ends_with_the_same_metrics_as_an_uninterrupted_one(tmp_path, overrides):
    """Interrupt at epoch 5 (checkpoint at 3), resume in a fresh Trainer: the trajectory must be identical."""
    train_settings = settings(**overrides)
    _, uninterrupted = fit(tmp_path, "full", train_settings)

    data = regression_data()

    def interrupting_source(epoch, generator):
        if epoch == 4:
            raise Interrupted
        order = torch.randperm(len(data), generator=generator)
        return [tuple(t[order[i : i + 16]] for t in data.tensors) for i in range(0, len(data), 16)]

    def full_source(epoch, generator):
        order = torch.randperm(len(data), generator=generator)
        return [tuple(t[order[i : i + 16]] for t in data.tensors) for i in range(0, len(data), 16)]

    _, reference = fit(tmp_path, "source_full", train_settings, data=full_source)
    with pytest.raises(Interrupted):
        fit(tmp_path, "resumed", train_settings, data=interrupting_source)
    assert load_checkpoint(tmp_path / "resumed")["epoch"] == 3
    trainer, resumed = fit(tmp_path, "resumed", train_settings, data=full_source)
    assert resumed.resumed_from_epoch == 3
    assert resumed.metrics == pytest.approx(reference.metrics, rel=1e-6, abs=1e-9)
    assert resumed.final_loss == pytest.approx(reference.final_loss, rel=1e-6)
    epochs = [r["epoch"] for r in MetricsLog(tmp_path / "resumed.jsonl").records() if "train_loss" in r]
    assert epochs == list(range(1, 9)), "metrics after the checkpoint must be logged exactly once"
    assert uninterrupted.epochs == resumed.epochs == 8


def test_resuming_a_finished_fit_trains_nothing(tmp_path):
    _, first = fit(tmp_path, "a", settings())
    trainer, again = fit(tmp_path, "a", settings())
    assert again.metrics == first.metrics
    assert again.resumed_from_epoch == 8
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len([json.loads(row) for row in lines if "train_loss" in row]) == 8


def test_ema_weights_are_evaluated_and_differ_from_the_raw_weights(tmp_path):
    trainer, _ = fit(tmp_path, "a", settings(ema_decay=0.8))
    raw = dict(trainer.module.named_parameters())
    averaged = dict(trainer.eval_model.named_parameters())
    assert trainer.eval_model is not trainer.module
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw)


def test_warmup_then_cosine_schedule_reaches_zero(tmp_path):
    fit(tmp_path, "a", settings(epochs=6, warmup_epochs=2, lr_schedule="cosine", lr=0.1))
    lrs = [r["lr"] for r in MetricsLog(tmp_path / "a.jsonl").records() if "lr" in r]
    assert lrs[0] < lrs[1] <= 0.1 + 1e-12
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    def objective(model, batch):
        return model(batch[0]).sum() * float("nan")

    trainer = Trainer(small_model(), settings(), objective=objective, fit_name="nan")
    with pytest.raises(FloatingPointError, match=r"nan in epoch 1; lower the learning rate \(lr = [0-9.e-]+: train.lr, or the model.s own lr"):
        trainer.fit(regression_data())


class ListDataset(Dataset):
    """A map-style dataset that is not a TensorDataset (goes through DataLoader)."""

    def __init__(self, tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


def test_generic_dataset_gives_the_same_result_as_the_tensor_fast_path(tmp_path):
    data = regression_data()
    _, fast = fit(tmp_path, "fast", settings(), data=data, checkpoints=False)
    _, generic = fit(tmp_path, "generic", settings(), data=ListDataset(data.tensors), checkpoints=False)
    assert generic.metrics["mse"] == pytest.approx(fast.metrics["mse"], rel=1e-5)


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        Trainer(small_model(), settings(device="cuda"), objective=supervised(F.mse_loss))


# --- checkpoints that crashes, damage or a hostile folder leave behind -------------------------------


class WritesAFileWhenUnpickled:
    """A pickle payload: unpickling it calls ``open(marker, "w")``, which creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_checkpoint_is_refused_and_its_code_never_runs(tmp_path):
    from qml_imaging.training.checkpoints import UnsafeCheckpointError

    fit(tmp_path, "a", settings(epochs=3))
    marker = tmp_path / "PWNED"
    torch.save({"epoch": WritesAFileWhenUnpickled(marker), "model": {}}, tmp_path / "a" / "last.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load .*last\.pt.*global _?io\.open\)"):
        load_checkpoint(tmp_path / "a")
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        fit(tmp_path, "a", settings(epochs=3))  # resume: refused, no fallback to previous.pt
    assert not marker.exists()


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from qml_imaging.training.checkpoints import capture_rng_state, restore_rng_state, save_checkpoint

    seed_everything(5)
    np.random.normal()  # a cached Gaussian in NumPy's state, a gauss_next in Python's
    random.gauss(0, 1)
    save_checkpoint(tmp_path, {"epoch": 1, "model": {}, "rng": capture_rng_state()})
    expected = (torch.rand(3), np.random.normal(size=3), random.gauss(0, 1), random.random())
    restore_rng_state(load_checkpoint(tmp_path)["rng"])
    got = (torch.rand(3), np.random.normal(size=3), random.gauss(0, 1), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2:] == expected[2:]


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "bit_flip"])
def test_damaged_last_checkpoint_falls_back_to_the_previous_one_and_resumes_exactly(tmp_path, damage, capsys):
    train_settings = settings()  # checkpoints at epochs 3, 6 and 8
    _, uninterrupted = fit(tmp_path, "full", train_settings)
    fit(tmp_path, "damaged", train_settings)
    last = tmp_path / "damaged" / "last.pt"
    assert load_checkpoint(tmp_path / "damaged")["epoch"] == 8
    assert torch.load(tmp_path / "damaged" / "previous.pt", weights_only=True)["epoch"] == 6
    content = bytearray(last.read_bytes())
    if damage == "truncated":
        content = content[: len(content) // 2]
    elif damage == "empty":
        content = bytearray()
    elif damage == "garbage":
        content = bytearray(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    else:
        content[len(content) // 3] ^= 0xFF  # inside the tensor data: only the CRC shows it
    last.write_bytes(bytes(content))
    capsys.readouterr()
    assert load_checkpoint(tmp_path / "damaged")["epoch"] == 6
    assert "last.pt is damaged" in capsys.readouterr().err
    _, resumed = fit(tmp_path, "damaged", train_settings)
    assert resumed.resumed_from_epoch == 6
    assert resumed.metrics == pytest.approx(uninterrupted.metrics, rel=1e-6, abs=1e-9)
    epochs = [r["epoch"] for r in MetricsLog(tmp_path / "damaged.jsonl").records() if "train_loss" in r]
    assert epochs == list(range(1, 9))
    assert load_checkpoint(tmp_path / "damaged")["epoch"] == 8  # the resumed fit wrote a good last.pt again


def test_no_usable_checkpoint_is_a_clear_error_naming_the_files(tmp_path):
    from qml_imaging.training.checkpoints import CheckpointError

    fit(tmp_path, "a", settings())
    for name in ("last.pt", "previous.pt"):
        (tmp_path / "a" / name).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"last\.pt is damaged.*previous\.pt is damaged.*delete"):
        load_checkpoint(tmp_path / "a")


def test_kill_before_the_first_checkpoint_logs_every_epoch_once(tmp_path):
    data = regression_data()

    def source(stop_at):
        def batches(epoch, generator):
            if epoch == stop_at:
                raise Interrupted
            order = torch.randperm(len(data), generator=generator)
            return [tuple(t[order[i : i + 16]] for t in data.tensors) for i in range(0, len(data), 16)]

        return batches

    train_settings = settings(checkpoint_every=5)
    with pytest.raises(Interrupted):
        fit(tmp_path, "a", train_settings, data=source(stop_at=3))  # epochs 1-3 logged, no checkpoint
    assert not (tmp_path / "a" / "last.pt").exists()
    fit(tmp_path, "a", train_settings, data=source(stop_at=None))
    records = MetricsLog(tmp_path / "a.jsonl").records()
    assert [r["epoch"] for r in records if "train_loss" in r] == list(range(1, 9))
    assert [r["epoch"] for r in records if "eval/mse" in r] == [2, 4, 6, 8]


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    data = regression_data()

    def interrupting(epoch, generator):
        if epoch == 4:
            raise Interrupted
        return [data.tensors]

    with pytest.raises(Interrupted):
        fit(tmp_path, "a", settings(), data=interrupting)
    log = tmp_path / "a.jsonl"
    with log.open("a") as stream:
        stream.write('{"fit": "a", "epo')  # a crash in the middle of an append
    fit(tmp_path, "a", settings(), data=lambda epoch, generator: [data.tensors])
    lines = log.read_text().splitlines()
    assert all(json.loads(line)["fit"] == "a" for line in lines)
    assert [json.loads(row)["epoch"] for row in lines if "train_loss" in row] == list(range(1, 9))


# --- BatchNorm and a last batch of one sample ---------------------------------------------------------


class CountingObjective:
    def __init__(self):
        self.sizes = []

    def __call__(self, model, batch):
        inputs, targets = batch
        self.sizes.append(len(inputs))
        return F.mse_loss(model(inputs), targets)


class PlainDataset(Dataset):
    def __init__(self, tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


@pytest.mark.parametrize("wrap", [lambda d: d, lambda d: PlainDataset(d.tensors)], ids=["tensor", "dataloader"])
def test_batchnorm_model_merges_a_last_batch_of_one_sample(tmp_path, wrap):
    objective = CountingObjective()
    trainer = Trainer(small_model(), settings(epochs=2, batch_size=16), objective=objective)
    result = trainer.fit(wrap(regression_data(n=33)))  # 16 + 16 + 1
    assert objective.sizes == [16, 17] * 2  # the lone sample joins the batch before it; none is dropped
    assert math.isfinite(result.final_loss)


def test_model_without_batchnorm_keeps_the_requested_batches(tmp_path):
    objective = CountingObjective()
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    Trainer(model, settings(epochs=1, batch_size=16), objective=objective).fit(regression_data(n=33))
    assert objective.sizes == [16, 16, 1]


def test_batchnorm_errors_name_the_fit_and_the_fix(tmp_path):
    trainer = Trainer(small_model(), settings(epochs=1), objective=supervised(F.mse_loss), fit_name="tiny")
    with pytest.raises(ValueError, match="tiny: the data set gives 1 sample per process.*BatchNorm"):
        trainer.fit(regression_data(n=1))
    data = regression_data(n=4)
    with pytest.raises(ValueError, match="tiny: a training batch of epoch 1 holds one sample.*at least 2"):
        trainer.fit(lambda epoch, generator: [tuple(t[:1] for t in data.tensors)])
