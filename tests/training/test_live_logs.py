"""Live logs: TensorBoard and CSV mirrors of metrics.jsonl, and the Trainer's callback hooks."""

import csv
import importlib.machinery
import json
import sys
import types

import pytest
import torch.nn.functional as F

from qml_imaging.cli import main
from qml_imaging.config import ConfigError, LiveLogSettings, validate
from qml_imaging.extras import missing
from qml_imaging.runs import MetricsLog
from qml_imaging.training import Trainer, supervised
from qml_imaging.training.callbacks import Callback
from tests.conftest import EXPERIMENTS
from tests.training.test_trainer import Interrupted, evaluate_on, regression_data, settings, small_model


def jsonl_values(path, fit):
    """{(name, epoch): value} of ``fit``'s records in a metrics.jsonl."""
    values = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["fit"] == fit:
            values.update({(k, record["epoch"]): v for k, v in record.items() if k not in ("fit", "epoch")})
    return values

needs_tensorboard = pytest.mark.skipif(bool(missing("tensorboard")), reason="TensorBoard is the [logging] extra")


def tensorboard_values(folder):
    """{(tag, step): value} read back with the reader the TensorBoard server uses (float64 tensor scalars)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    pairs = [((tag, event.step), float(tensor_util.make_ndarray(event.tensor_proto)))
             for tag in events.Tags()["tensors"] for event in events.Tensors(tag)]
    return unique(pairs)


def unique(pairs):
    """The pairs as a dict; a key logged twice (an epoch mirrored twice) fails."""
    values = dict(pairs)
    assert len(values) == len(pairs), "an epoch is mirrored twice"
    return values


def csv_values(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return unique([((row["name"], int(row["epoch"])), float(row["value"])) for row in rows])


@needs_tensorboard
def test_a_smoke_run_tensorboard_event_file_holds_the_values_of_metrics_jsonl(tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(EXPERIMENTS / "g2_smoke.yaml"), "--out", str(out),
                 "train.logging.tensorboard=true", "train.logging.csv=true"]) == 0
    expected = jsonl_values(out / "metrics.jsonl", "cnn")
    assert {name for name, _ in expected} == {"train_loss", "lr", "eval/mape@5s"} and len(expected) == 6
    assert list((out / "tensorboard" / "cnn").glob("events.out.tfevents.*"))
    assert tensorboard_values(out / "tensorboard" / "cnn") == expected
    assert csv_values(out / "csv" / "cnn.csv") == expected


@needs_tensorboard
def test_a_resumed_fit_drops_the_mirrored_epochs_past_its_checkpoint(tmp_path):
    logging = LiveLogSettings(tensorboard=True, csv=True)

    def trainer(epochs_before_kill=None):
        def source(epoch, generator):
            if epochs_before_kill is not None and epoch == epochs_before_kill:
                raise Interrupted
            data = regression_data()
            return [data.tensors]

        fit = Trainer(small_model(), settings(epochs=6, checkpoint_every=2, logging=logging),
                      objective=supervised(F.mse_loss), evaluate=evaluate_on(regression_data()),
                      checkpoint_dir=tmp_path / "ckpt", metrics=MetricsLog(tmp_path / "metrics.jsonl"), fit_name="f")
        return fit, source

    first, source = trainer(epochs_before_kill=3)
    with pytest.raises(Interrupted):
        first.fit(source)  # epochs 1-3 logged, checkpoint at 2
    second, source = trainer()
    second.fit(source)
    expected = jsonl_values(tmp_path / "metrics.jsonl", "f")
    assert sorted({epoch for _, epoch in expected}) == [1, 2, 3, 4, 5, 6]
    assert tensorboard_values(tmp_path / "tensorboard" / "f") == expected
    assert csv_values(tmp_path / "csv" / "f.csv") == expected


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, trainer, start_epoch):
        self.calls.append(("start", start_epoch))

    def on_epoch_end(self, trainer, record):
        self.calls.append(("epoch", record["epoch"], record["fit"]))

    def on_evaluation(self, trainer, record):
        self.calls.append(("eval", record["epoch"], sorted(record)))

    def on_checkpoint(self, trainer, epoch, folder):
        self.calls.append(("checkpoint", epoch, folder.name))

    def on_fit_end(self, trainer, result):
        self.calls.append(("end", result.epochs))


def test_a_user_callback_sees_epochs_evaluations_and_checkpoints_in_order(tmp_path):
    recorder = Recorder()
    Trainer(small_model(), settings(epochs=4, eval_every=2, checkpoint_every=3), objective=supervised(F.mse_loss),
            evaluate=evaluate_on(regression_data()), checkpoint_dir=tmp_path / "c", fit_name="mine",
            callbacks=[recorder]).fit(regression_data())
    evaluation = ["epoch", "eval/mse", "fit"]
    assert recorder.calls == [
        ("start", 0), ("epoch", 1, "mine"), ("epoch", 2, "mine"), ("eval", 2, evaluation),
        ("epoch", 3, "mine"), ("checkpoint", 3, "c"), ("epoch", 4, "mine"), ("eval", 4, evaluation),
        ("checkpoint", 4, "c"), ("end", 4),
    ]


def test_a_sink_whose_package_is_missing_is_refused_at_validation(monkeypatch):
    for name in ("tensorboard", "mlflow"):
        monkeypatch.setitem(sys.modules, name, None)  # how qml_imaging.extras.missing sees an absent package
    with pytest.raises(ConfigError, match=r"tensorboard: true needs the tensorboard package.*qml-imaging\[logging\]"):
        validate(LiveLogSettings, {"tensorboard": True}, "logging")
    with pytest.raises(ConfigError, match="mlflow: true needs the mlflow package, which is not installed: pip install mlflow"):
        validate(LiveLogSettings, {"mlflow": True}, "logging")
    assert validate(LiveLogSettings, {"csv": True}, "logging").csv


def test_the_mlflow_sink_logs_each_record_in_a_run_per_fit(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("mlflow")
    fake.__spec__ = importlib.machinery.ModuleSpec("mlflow", None)
    fake.start_run = lambda run_name: calls.append(("start", run_name))
    fake.log_metrics = lambda metrics, step: calls.append(("log", step, metrics))
    fake.end_run = lambda: calls.append(("end",))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    Trainer(small_model(), settings(epochs=2, eval_every=2, logging=LiveLogSettings(mlflow=True)),
            objective=supervised(F.mse_loss), evaluate=evaluate_on(regression_data()),
            metrics=MetricsLog(tmp_path / "metrics.jsonl"), fit_name="tracked").fit(regression_data())
    logged = [(step, metrics) for kind, *rest in calls if kind == "log" for step, metrics in [rest]]
    assert calls[0] == ("start", "tracked") and calls[-1] == ("end",)
    assert logged == [(k[1], v) for k, v in _grouped(jsonl_values(tmp_path / "metrics.jsonl", "tracked"))]


def _grouped(values):
    """{(name, epoch): value} -> [((kind, epoch), {name: value})] in logging order: epoch record, then evaluation."""
    out = []
    for epoch in sorted({epoch for _, epoch in values}):
        train = {n: v for (n, e), v in values.items() if e == epoch and not n.startswith("eval/")}
        evaluation = {n: v for (n, e), v in values.items() if e == epoch and n.startswith("eval/")}
        out += [(("epoch", epoch), train)] + ([(("eval", epoch), evaluation)] if evaluation else [])
    return out
