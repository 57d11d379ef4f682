"""The model card (``README.md``) of an export (:mod:`qml_imaging.training.export`): what the model is, the
data it was trained on, how long, its metrics from the checkpoint and the run's ``report.json``, and how to
load it. Plain Markdown built from the run's own records; nothing is estimated here."""

from __future__ import annotations

import json
from typing import Any

import yaml

from qml_imaging.config import dump_config
from qml_imaging.training.artifacts import TrainedModel

# config keys that are not about the data (the rest of the config describes the data and the model)
_NOT_DATA = ("experiment", "name", "description", "seed", "seeds", "train", "grid", "evaluation", "sampling",
             "models", "unet", "cnn", "variants", "logging")


def model_card(trained: TrainedModel, report: dict[str, Any], checkpoints: dict[str, dict], marker: dict) -> str:
    """The card's Markdown text for the exported ``trained`` fit (``checkpoints``: {name: weights info})."""
    config = trained.config
    settings = yaml.safe_load(dump_config(config))
    parameters = sum(p.numel() for p in trained.model.parameters())
    final = checkpoints[max(checkpoints, key=lambda name: checkpoints[name]["epoch"])]
    seconds = sum(info["seconds"] for info in checkpoints.values())
    data = {key: value for key, value in settings.items() if key not in _NOT_DATA}
    sections = [
        f"# Model card: `{trained.fit}` ({config.experiment})",
        f"Exported by qml-imaging on {marker['exported']} from the run `{config.name}` ({marker['source']}).",
        "## Model",
        f"- class `{type(trained.model).__name__}`, {parameters:,} parameters, "
        f"{'EMA' if trained.ema else 'final'} weights, {len(trained.quantum_layers())} quantum layer(s)",
        f"- built from `config.yaml` and the arguments in `checkpoints/{trained.fit}/model.json`",
        "## Data", _block(yaml.safe_dump(data, sort_keys=False).strip() or "(none)", "yaml"),
        _block(json.dumps(trained.preprocessing, indent=1, default=str), "json"),
        "## Training",
        f"- {settings['train']['epochs']} epochs (final checkpoint at epoch {final['epoch']}), {seconds:.1f} s of "
        f"training, optimizer {settings['train']['optimizer']}, lr {settings['train']['lr']:g}, batch size "
        f"{settings['train']['batch_size']}",
        "## Metrics",
        "The fit's last evaluation:", _block(json.dumps(final["metrics"], indent=1), "json"),
        "The run's summary (`report.json`):", _block(json.dumps(report.get("summary", {}), indent=1), "json"),
        "## How to load",
        _block(f'import qml_imaging\n\nmodel = qml_imaging.load_model("THIS_FOLDER")  # fit {trained.fit!r}\n'
               "model.model  # the torch.nn.Module, in eval mode", "python"),
        "The weights are safetensors (`checkpoints/*/weights.safetensors`); nothing here is unpickled.",
    ]
    return "\n\n".join(sections) + "\n"


def _block(text: str, language: str) -> str:
    return f"```{language}\n{text}\n```"
