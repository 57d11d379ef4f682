"""``diffusion_fewshot``: few-shot DDPMs with none / classical / quantum bottlenecks, scored by FID and KID.

For every data set the run first trains (or reloads) a feature classifier on the data set's
classifier images and saves it to ``feature_nets/<dataset>.pt`` with what made it; FID and KID are
computed in its 128-d feature space (:mod:`qml_imaging.diffusion.evaluation`) between
``sampling.samples`` DDIM samples and the ``split.reference`` held-out real images. If a variant
uses quantum noise, one noise bank is generated (or loaded) and stored as ``noise_bank.npz``;
each such model reads its own disjoint region of it.

Then one model per data set x k x variant x seed (:mod:`.model_task`), each a task of one grid
(:func:`qml_imaging.grid.run_grid`, ``grid``: in this process or on Ray). Finished models are
skipped, so ``qml-imaging run --resume`` continues where a run stopped (and each model from its checkpoint).

Two references bracket the scores per data set: ``real_control`` (FID of ``split.control`` real
images, the floor) and ``training_copies`` (FID of the k training images tiled to the sample count:
what a model that only memorised would score).

With ``evaluation.scores: false`` (a small folder of your own images) every image is in the few-shot
pool; models are trained and sampled, sample grids drawn, and nothing is scored (summary: per model
its final training loss and the distance of its samples to the nearest training image).

Summary (``report.json``): ``fid`` and ``kid`` {dataset: {k: {variant: {"mean", "std", "n"}}}} over seeds
(``std`` None for one seed), ``quantum_minus_classical_fid`` {dataset: {k: {"mean", "std", "n", "p_value",
"differences"}}} (paired by seed; ``p_value`` None for one seed) with ``verdict``,
references, classifier accuracy, parameters and times. ``table.md`` holds the same as a table.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from dataclasses import replace
from pathlib import Path

import torch

from qml_imaging.data.images import folder_preprocessing
from qml_imaging.diffusion.evaluation import (
    accuracy,
    feature_scale,
    fid_kid,
    train_classifier,
)
from qml_imaging.grid import Task, run_grid
from qml_imaging.models.diffusion_unet import make_bottleneck
from qml_imaging.pipelines.diffusion.config import DiffusionFewShotConfig
from qml_imaging.pipelines.diffusion.data import load_split
from qml_imaging.pipelines.diffusion.figures import write_figures, write_sample_figures
from qml_imaging.pipelines.diffusion.model_task import (
    ModelTask,
    feature_extractor,
    feature_network_path,
    noise_needed,
    run_task,
)
from qml_imaging.pipelines.diffusion.table import summarise, write_table
from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.noise import NoiseBank, noise_statistics
from qml_imaging.reporting.stats import summary_stat
from qml_imaging.runs import MetricsLog, RunDir, atomic_replace
from qml_imaging.training.checkpoints import load_state_file


def run(config: DiffusionFewShotConfig, run_dir: RunDir) -> dict:
    """Prepare feature networks and the noise bank, train and score every model, write the report."""
    check_models(config)
    scores = config.evaluation.scores
    accuracies = {name: prepare_feature_network(config, run_dir, name) for name in config.datasets} if scores else {}
    tasks = plan_tasks(config)
    bank = prepare_noise_bank(config, run_dir, tasks)
    results = run_tasks(config, run_dir, tasks)
    if not scores:
        summary = unscored_summary(config, results)
        if bank is not None:
            summary["noise_bank"] = {**bank.provenance, **noise_statistics(bank.samples[: 10**6])}
        write_sample_figures(config, run_dir, tasks)
        run_dir.write_report(summary, {"models": results, "datasets": dataset_preprocessing(config)})
        return summary
    references = {name: reference_scores(config, run_dir, name) for name in config.datasets}
    summary = summarise(config, results, references, accuracies)
    if bank is not None:
        summary["noise_bank"] = {**bank.provenance, **noise_statistics(bank.samples[: 10**6])}
    write_table(run_dir.path / "table.md", config, summary)
    write_figures(config, run_dir, tasks, summary["fid"])
    run_dir.write_report(summary, {"models": results, "datasets": dataset_preprocessing(config)})
    return summary


def dataset_preprocessing(config: DiffusionFewShotConfig) -> dict:
    """Per data set, how its images were prepared (folders: :func:`folder_preprocessing`)."""
    return {name: folder_preprocessing(spec.path, spec.size, channels=spec.channels) if spec.source == "folder"
            else {"source": spec.source, "flag": spec.flag if spec.source == "medmnist" else None, "size": spec.size,
                  "value_range": [-1.0, 1.0]}
            for name, spec in config.datasets.items()}


def planned_models(config: DiffusionFewShotConfig) -> list[ModelTask]:
    """Every data set x k x variant x seed the config asks for, in run order, without noise offsets (no data read)."""
    return [ModelTask(dataset, k, name, seed) for dataset in config.datasets for k in config.shots
            for name, variant in config.variants.items()
            if not (variant.datasets and dataset not in variant.datasets) and not (variant.shots and k not in variant.shots)
            for seed in config.seeds]


def plan_tasks(config: DiffusionFewShotConfig) -> list[ModelTask]:
    """:func:`planned_models` with bank offsets for quantum-noise models (in run order)."""
    tasks, offset, shapes = [], 0, {}
    for task in planned_models(config):
        if task.dataset not in shapes:
            split = load_split(config.datasets[task.dataset], config.split, config.evaluation.scores)
            shapes[task.dataset] = (split.channels, split.side)
        noise = config.variants[task.variant].noise
        if noise != "pseudo":
            channels, side = shapes[task.dataset]
            task, offset = replace(task, noise_offset=offset), offset + noise_needed(config, channels, noise, side)
        tasks.append(task)
    return tasks


def check_models(config: DiffusionFewShotConfig) -> None:
    """Build every variant's bottleneck block once, so one that cannot be parameter-matched fails before training."""
    for name, variant in config.variants.items():
        try:
            make_bottleneck(variant.bottleneck, config.unet.channels[-1], config.unet.n_qubits, config.unet.quantum_layers)
        except ValueError as error:
            raise ValueError(f"variants.{name}: {error}; change unet.channels, unet.n_qubits or unet.quantum_layers") from error


def prepare_feature_network(config: DiffusionFewShotConfig, run_dir: RunDir, dataset: str) -> float:
    """Train and save ``dataset``'s feature classifier unless the run has it; return its control accuracy."""
    path = feature_network_path(run_dir.path, dataset)
    split = load_split(config.datasets[dataset], config.split)
    if not path.is_file():
        classifier = train_classifier(split.classifier, split.classifier_labels, split.classes,
                                      config.evaluation.classifier, seed=config.split.seed,
                                      checkpoint_dir=run_dir.checkpoint_dir(f"feature_net/{dataset}"))
        stored = {"state_dict": classifier.state_dict(), "in_channels": split.channels, "classes": split.classes,
                  "control_accuracy": accuracy(classifier, split.control, split.control_labels),
                  "feature_scale": feature_scale(classifier, split.reference),
                  "training_images": len(split.classifier),  # plain data only: it is loaded with weights_only
                  "settings": config.evaluation.classifier.model_dump(mode="json"),
                  "dataset": config.datasets[dataset].model_dump(mode="json"), "split": config.split.model_dump(mode="json"),
                  "made_by": _provenance()}
        with atomic_replace(path) as temporary:
            torch.save(stored, temporary)
    return float(load_state_file(path)["control_accuracy"])


def prepare_noise_bank(config: DiffusionFewShotConfig, run_dir: RunDir, tasks: list[ModelTask]) -> NoiseBank | None:
    """The run's noise bank (``noise_bank.npz``): loaded, copied from ``noise.bank``, or generated."""
    quantum = [t for t in tasks if t.noise_offset is not None]
    if not quantum:
        return None
    last = quantum[-1]
    split = load_split(config.datasets[last.dataset], config.split, config.evaluation.scores)
    needed = last.noise_offset + noise_needed(config, split.channels, config.variants[last.variant].noise, split.side)
    path = run_dir.path / "noise_bank.npz"
    if path.is_file():
        bank = NoiseBank.load(path)
    elif config.noise.bank is not None:
        bank = NoiseBank.load(config.noise.bank)
    else:
        bank = NoiseBank.generate(needed, backend_spec(config.noise.backend), n_qubits=config.noise.n_qubits,
                                  seed=config.seed)
    if len(bank) < needed:
        raise ValueError(f"the noise bank {config.noise.bank or path} holds {len(bank)} normals; the {len(quantum)} "
                         f"quantum-noise models need {needed}: make one with `qml-imaging hardware noise-bank "
                         f"--size {needed} ...`")
    if not path.is_file():
        bank.save(path)
    return bank


def run_tasks(config: DiffusionFewShotConfig, run_dir: RunDir, tasks: list[ModelTask]) -> list[dict]:
    """Train and score every model not yet done as one grid (``config.grid``); results in task order.

    A model that still fails after ``grid.max_retries`` retries stops the run with its name and error
    (the table needs every model; the finished ones are kept for ``--resume``). Each model's training records
    (``models/<name>/metrics.jsonl``) are then copied into the run's ``metrics.jsonl``, the one log of every run.
    """
    quiet = config if config.grid.executor == "local" else config.model_copy(
        update={"train": config.train.model_copy(update={"progress": False})})
    bottleneck = backend_spec(config.unet.backend)  # resolved once; the tasks get the spec
    grid = [Task(task.name, run_task, (quiet, str(run_dir.path), task, bottleneck)) for task in tasks]
    outcome = run_grid(grid, config.grid, run_dir.path, label="few-shot models", progress=config.train.progress)
    outcome.raise_failures()
    for task in tasks:
        records = MetricsLog(task.folder(run_dir.path) / "metrics.jsonl").records()
        if records:
            run_dir.metrics.replace_fits(records)
    return outcome.results


def unscored_summary(config: DiffusionFewShotConfig, results: list[dict]) -> dict:
    """Summary of a run with ``evaluation.scores: false``: per model its final training loss, nearest
    training-image distance and times (no FID/KID: there are no held-out images)."""
    return {"scored": False, "models": {
        f"{r['dataset']}/k{r['k']}/{r['variant']}/seed{r['seed']}": {
            key: r.get(key) for key in ("final_train_loss", "nearest_training_distance", "training_seconds",
                                        "sampling_seconds", "parameters", "image_side", "channels")}
        for r in results}}


def reference_scores(config: DiffusionFewShotConfig, run_dir: RunDir, dataset: str) -> dict:
    """FID/KID of real control images, and of the k training images tiled (per k: ``{"fid", "kid"}``, each a
    :func:`~qml_imaging.reporting.stats.summary_stat` over seeds)."""
    split = load_split(config.datasets[dataset], config.split)
    extractor = feature_extractor(run_dir.path, dataset)
    scores = {"real_control": fid_kid(split.reference, split.control, extractor, config.evaluation.kid_subset_size,
                                      config.evaluation.kid_subsets)}
    copies = {}
    for k in config.shots:
        values = []
        for seed in config.seeds:
            images = split.fewshot(k, seed)
            tiled = images.repeat(-(-config.sampling.samples // k), 1, 1, 1)[: config.sampling.samples]
            values.append(fid_kid(split.reference, tiled, extractor, config.evaluation.kid_subset_size,
                                  config.evaluation.kid_subsets))
        copies[str(k)] = {key: summary_stat([v[key] for v in values]) for key in ("fid", "kid")}
    scores["training_copies"] = copies
    return scores


def _provenance() -> str:
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        revision = ""
    version = importlib.metadata.version("qml-imaging")
    return (f"qml_imaging.pipelines.diffusion.pipeline.prepare_feature_network "
            f"(qml-imaging {version}{', git ' + revision if revision else ''})")
