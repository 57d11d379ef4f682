"""``qiren_generation``: INR GANs whose coordinate embedding is QIREN's circuits or a classical one.

Paper 003 (Zhao et al., ICML 2024), Table 2: FID of INR generators on 32x32 FFHQ / CelebA-HQ (50k
samples, ~1.1 M parameters) with QIREN, ReLU + random Fourier features, SIREN, Tanh and ReLU coordinate
embeddings (:data:`PAPER_FID`). This pipeline trains one generator per embedding x seed at the same
generator parameter count (:func:`qml_imaging.models.inr_generator.matched_width`) and the same
training budget, adversarially through the one Trainer (:mod:`qml_imaging.training.gan`), each model one
task of the run's grid (:func:`qml_imaging.grid.run_grid`: ``grid.executor`` local or Ray).

Steps: the data are split once (``split``: reference | control | training | classifier images); with
``evaluation.features: lenet`` a LeNet classifier is trained on the classifier images and stored in
``feature_nets/<data>.pt``, and FID / KID are computed in its feature space
(:mod:`qml_imaging.diffusion.evaluation`); with ``inception`` in torchmetrics' Inception space. Then one
model per embedding x seed (:func:`train_model`, a grid task; products in ``models/<embedding>/seed<s>/``:
``samples.npz``, ``result.json``; its metrics in the task folder, merged into the run's log by the grid, which
keeps the result: ``--resume`` skips finished models and continues others from their checkpoints). Two references:
``real_control`` (held-out real images: the floor) and ``training_copies`` (training images drawn as
samples: a generator that only memorised).

Summary (``report.json``, ``table.md``): per embedding parameters, FID, KID and training seconds (each
``{"mean", "std", "n"}`` over seeds, ``std`` None for one seed), QIREN - ReLU+RFF and QIREN - SIREN FID paired
by seed (one-sample t-test of the differences, as in the diffusion table; ``p_value`` None for one seed), the measured ranking beside the paper's, and sample grids
(``samples.png``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from qml_imaging.diffusion.evaluation import (
    KID_SEED,
    FeatureExtractor,
    LeNetClassifier,
    accuracy,
    feature_scale,
    fid_kid,
    train_classifier,
)
from qml_imaging.grid import Task, run_grid, task_folder
from qml_imaging.models.inr import parameter_count
from qml_imaging.models.inr_generator import Discriminator, InrGenerator, matched_width
from qml_imaging.pipelines.generation.config import QirenGenerationConfig
from qml_imaging.pipelines.generation.data import GenerationImages, load_images
from qml_imaging.quantum import backends
from qml_imaging.quantum.backends import BackendSpec
from qml_imaging.quantum.executors import Executor
from qml_imaging.quantum.factory import make_executor
from qml_imaging.reporting.figures import image_grid, save_figure
from qml_imaging.reporting.stats import format_difference, format_stat, paired_test, summary_stat
from qml_imaging.runs import (MetricsLog, RunDir, atomic_replace, make_folder, register_run_folder, save_arrays_atomic,
                              write_text_atomic)
from qml_imaging.training import Trainer, seed_everything
from qml_imaging.training.artifacts import save_model_arguments
from qml_imaging.training.checkpoints import load_state_file
from qml_imaging.training.gan import PLAYERS, GanObjective, GanPair, gan_batches
from qml_imaging.precedence import own_or_shared

PAPER_FID = {"qiren": (11.53, 11.78), "rff": (15.01, 13.91), "siren": (22.31, 20.97), "tanh": (26.98, 25.17),
             "relu": (84.94, 110.81)}
"""Paper 003, Table 2: FID on FFHQ and CelebA-HQ at 32x32 (50k samples), generators of 1.13-1.16 M parameters."""
PAPER_PARAMETERS = {"qiren": 1.13e6, "rff": 1.14e6, "siren": 1.16e6, "tanh": 1.16e6, "relu": 1.16e6}
COMPARED = ("rff", "siren")
SIGNIFICANCE = 0.05
SAMPLING_SEED = 6_000_011


def run(config: QirenGenerationConfig, run_dir: RunDir) -> dict:
    """Train and score every embedding x seed (one grid task each, ``config.grid``), then write ``table.md``,
    ``samples.png`` and the report. A model that still fails after ``grid.max_retries`` stops the run naming it
    (the table needs every model; finished ones are kept for ``--resume``)."""
    images = load_images(config.data, config.split, labels=config.evaluation.features == "lenet")
    spec = backends.backend_spec(config.backend)  # resolved once; the tasks get the spec
    widths = {embedding: matched_width(config.generator, embedding, channels=images.channels, side=images.side,
                                       executor=spec) for embedding in config.embeddings}
    scorer = make_scorer(config, run_dir, images)  # the feature network is trained here, before any task reads it
    quiet = config if config.grid.executor == "local" else config.model_copy(
        update={"train": config.train.model_copy(update={"progress": False})})
    tasks = [Task(f"{embedding}/seed{seed}", train_model,
                  (quiet, str(run_dir.path), embedding, seed, widths[embedding], spec))
             for embedding in config.embeddings for seed in config.seeds]
    outcome = run_grid(tasks, config.grid, run_dir.path, label="generators", progress=config.train.progress)
    outcome.raise_failures()
    results = outcome.results
    references = reference_scores(config, images, scorer)
    summary = summarise(config, results, references)
    write_table(run_dir.path / "table.md", config, summary)
    write_sample_grid(config, run_dir, images)
    run_dir.write_report(summary, {"models": results})
    return summary


def model_folder(run_path: Path, embedding: str, seed: int) -> Path:
    """The folder of one generator's products: ``<run>/models/<embedding>/seed<seed>``."""
    return register_run_folder(run_path) / "models" / embedding / f"seed{seed}"


def build_pair(config: QirenGenerationConfig, embedding: str, width: int, channels: int, side: int,
               executor: Executor | BackendSpec | None = None) -> GanPair:
    """The generator (``embedding``, synthesis ``width``) and discriminator of one model, freshly initialised;
    ``executor`` runs a ``qiren`` embedding's circuits (None: the executor of ``config.backend``'s spec)."""
    if executor is None and embedding == "qiren":
        executor = backends.backend_spec(config.backend)
    generator = InrGenerator(config.generator, embedding, width, channels=channels, side=side, executor=executor)
    return GanPair(generator, Discriminator(channels, side, config.generator.discriminator_channels))


def players(config: QirenGenerationConfig) -> dict[str, dict]:
    """Optimizer options of the two players (Adam betas, learning rates)."""
    lrs = {"discriminator": config.gan.discriminator_lr, "generator": config.gan.generator_lr}
    return {name: {"betas": (config.gan.beta1, config.gan.beta2), "lr": own_or_shared(lrs[name], config.train.lr)}
            for name in PLAYERS}


def train_model(config: QirenGenerationConfig, run_path: str, embedding: str, seed: int, width: int,
                backend_spec: BackendSpec) -> dict:
    """One grid task: train (resuming from its checkpoints), sample and score the ``embedding`` generator of
    ``seed``, in this process or a Ray worker (the data split and the stored feature network are read here);
    a ``qiren`` embedding runs its circuits on an executor of its own for the driver's resolved ``backend_spec``."""
    run_dir = RunDir(Path(run_path), config)
    images = load_images(config.data, config.split, labels=config.evaluation.features == "lenet")
    return run_model(config, run_dir, images, make_scorer(config, run_dir, images), embedding, seed, width, backend_spec)


def run_model(config: QirenGenerationConfig, run_dir: RunDir, images: GenerationImages, scorer, embedding: str,
              seed: int, width: int, backend_spec: BackendSpec) -> dict:
    """Train (resuming), sample and score one generator; returns its result (also written to ``result.json``)."""
    folder = model_folder(run_dir.path, embedding, seed)
    result_file = folder / "result.json"
    make_folder(folder)
    seed_everything(seed)
    executor = make_executor(backend_spec) if embedding == "qiren" else None
    pair = build_pair(config, embedding, width, images.channels, images.side, executor)
    name = f"{embedding}/seed{seed}"
    save_model_arguments(run_dir.checkpoint_dir(name), {"width": width, "channels": images.channels,
                                                        "side": images.side})
    trainer = Trainer(pair, config.train, objective=GanObjective(config.gan.r1_gamma), players=players(config),
                      checkpoint_dir=run_dir.checkpoint_dir(name), metrics=MetricsLog(task_folder(run_dir.path, name) / "metrics.jsonl"),
                      seed=seed, fit_name=name)
    fit = trainer.fit(gan_batches(images.training, config.train.batch_size, config.batches_per_epoch,
                                  config.generator.latent_dim))
    started = time.perf_counter()
    samples = generate(trainer.eval_model.generator, config.sampling.samples, config.sampling.batch_size,
                       SAMPLING_SEED + seed)
    sampling_seconds = time.perf_counter() - started
    save_arrays_atomic(folder / "samples.npz", samples=to_uint8(samples))
    records = trainer.metrics.records(name)
    result = {"embedding": embedding, "seed": seed, "width": width, **scorer(samples),
              "parameters": parameter_count(pair.generator),
              "discriminator_parameters": parameter_count(pair.discriminator),
              "training_seconds": fit.seconds, "sampling_seconds": sampling_seconds,
              "steps": config.train.epochs * config.batches_per_epoch,
              "final_losses": {p: records[-1].get(f"train_loss/{p}") for p in PLAYERS} if records else {}}
    write_text_atomic(result_file, json.dumps(result, indent=1) + "\n")
    return result


@torch.no_grad()
def generate(generator: InrGenerator, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """``n`` images ``(n, C, S, S)`` (float32, CPU) from latents drawn with ``seed``; the coordinate
    features are computed once and shared by every batch."""
    generator.eval()
    device = next(generator.parameters()).device
    latents = torch.randn(n, generator.spec.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    features = generator.embed()
    return torch.cat([generator(latents[i:i + batch_size], features).float().cpu()
                      for i in range(0, n, batch_size)])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] -> uint8 0..255 (clipped)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def make_scorer(config: QirenGenerationConfig, run_dir: RunDir, images: GenerationImages):
    """``scorer(samples) -> {"fid", "kid", "kid_std"}`` against the reference images, in the configured feature
    space. KID's random subsets are drawn from a generator seeded with ``KID_SEED`` (the global RNG is left as it
    was), so a score does not depend on what ran before it (a resumed run scores like an uninterrupted one)."""
    evaluation = config.evaluation
    if evaluation.features == "inception":
        from qml_imaging.pipelines.generation.inception import inception_fid_kid

        def score(samples: torch.Tensor) -> dict[str, float]:
            return inception_fid_kid(images.reference, samples, evaluation.kid_subset_size, evaluation.kid_subsets)
    else:
        extractor = feature_extractor(config, run_dir, images)

        def score(samples: torch.Tensor) -> dict[str, float]:
            return fid_kid(images.reference, samples, extractor, evaluation.kid_subset_size, evaluation.kid_subsets)

    def seeded(samples: torch.Tensor) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(KID_SEED)
            return score(samples)

    return seeded


def feature_extractor(config: QirenGenerationConfig, run_dir: RunDir, images: GenerationImages) -> FeatureExtractor:
    """The LeNet feature space: trained on the classifier images (or reloaded from ``feature_nets/``)."""
    path = run_dir.path / "feature_nets" / "classifier.pt"
    if not path.is_file():
        classifier = train_classifier(images.classifier, images.classifier_labels, images.classes,
                                      config.evaluation.classifier, seed=config.split.seed,
                                      checkpoint_dir=run_dir.checkpoint_dir("feature_net"))
        stored = {"state_dict": classifier.state_dict(), "in_channels": images.channels, "classes": images.classes,
                  "control_accuracy": accuracy(classifier, images.control, images.control_labels),
                  "feature_scale": feature_scale(classifier, images.reference)}
        with atomic_replace(path) as temporary:
            torch.save(stored, temporary)
    stored = load_state_file(path)
    classifier = LeNetClassifier(stored["in_channels"], stored["classes"])
    classifier.load_state_dict(stored["state_dict"])
    return FeatureExtractor(classifier, stored["feature_scale"])


def reference_scores(config: QirenGenerationConfig, images: GenerationImages, scorer) -> dict:
    """``real_control``: held-out real images; ``training_copies``: training images in place of samples."""
    count = min(config.sampling.samples, len(images.training))
    return {"real_control": scorer(images.control), "training_copies": scorer(images.training[:count])}


def paired_difference(results: list[dict], first: str, second: str, key: str = "fid") -> dict | None:
    """``key`` of ``first`` minus ``second``, paired by seed: :func:`~qml_imaging.reporting.stats.paired_test`
    (``{"mean", "std", "n", "p_value", "differences"}``), None without a pair."""
    by_seed = {r["seed"]: r[key] for r in results if r["embedding"] == second}
    differences = [r[key] - by_seed[r["seed"]] for r in results if r["embedding"] == first and r["seed"] in by_seed]
    if not differences:
        return None
    return paired_test(differences)


def summarise(config: QirenGenerationConfig, results: list[dict], references: dict) -> dict:
    """Per embedding FID, KID and seconds as ``{"mean", "std", "n"}`` over seeds; paired QIREN comparisons;
    rankings and verdict."""
    by_embedding: dict[str, list[dict]] = {}
    for row in results:
        by_embedding.setdefault(row["embedding"], []).append(row)

    def table(key: str) -> dict:
        return {e: summary_stat([r[key] for r in rows]) for e, rows in by_embedding.items()}

    fid = table("fid")
    comparisons = {f"qiren_minus_{other}": paired_difference(results, "qiren", other)
                   for other in COMPARED if "qiren" in by_embedding and other in by_embedding}
    measured_ranking = sorted(fid, key=lambda e: fid[e]["mean"])
    paper_ranking = [e for e in sorted(PAPER_FID, key=lambda e: PAPER_FID[e][0]) if e in fid]
    return {
        "fid": fid, "kid": table("kid"), "training_seconds": table("training_seconds"),
        "sampling_seconds": table("sampling_seconds"),
        "parameters": {e: rows[0]["parameters"] for e, rows in by_embedding.items()},
        "widths": {e: rows[0]["width"] for e, rows in by_embedding.items()},
        "comparisons": comparisons, "references": references,
        "measured_ranking": measured_ranking, "paper_ranking": paper_ranking,
        "ranking_holds": measured_ranking == paper_ranking,
        "verdict": verdict(comparisons, measured_ranking, paper_ranking),
        "paper_fid": {e: PAPER_FID[e] for e in fid}, "seeds": config.seeds,
        "steps_per_model": config.train.epochs * config.batches_per_epoch,
        "samples_per_model": config.sampling.samples, "feature_space": config.evaluation.features,
    }


def verdict(comparisons: dict, measured: list[str], paper: list[str]) -> str:
    """Plain words: the measured ranking against the paper's, and whether QIREN's differences are significant."""
    parts = [f"measured FID ranking (best first) {' < '.join(measured)}; paper's {' < '.join(paper)}: "
             + ("the paper's ranking holds" if measured == paper else "the paper's ranking does not hold")]
    for name, test in comparisons.items():
        if test is None:
            continue
        other = name.removeprefix("qiren_minus_")
        if test["p_value"] is None:
            outcome = "untested (one seed, no spread)"
        elif test["p_value"] < SIGNIFICANCE:
            outcome = "QIREN significantly better" if test["mean"] < 0 else "QIREN significantly worse"
        else:
            outcome = "no significant difference"
        parts.append(f"QIREN vs {other}: FID difference {format_difference(test)}, paired by seed: {outcome}")
    return "; ".join(parts)


def write_table(path: Path, config: QirenGenerationConfig, summary: dict) -> None:
    """``table.md``: the measured table (mean ± std over seeds, the mean alone for one seed) beside the paper's FID."""
    space = ("the unit-RMS feature space of a LeNet classifier trained on held-out images"
             if config.evaluation.features == "lenet" else "Inception features (torchmetrics)")
    lines = [f"FID / KID in {space}; mean ± std over seeds {config.seeds}; {config.sampling.samples} samples per "
             f"model vs {config.split.reference} held-out images; {summary['steps_per_model']} steps per player "
             f"and model; data {config.data.source} {config.data.size}x{config.data.size}.", "",
             "| embedding | generator parameters | FID | KID | training s | paper FID FFHQ / CelebA-HQ (params) |",
             "|---|---|---|---|---|---|"]
    for embedding, fid in summary["fid"].items():
        kid, seconds = summary["kid"][embedding], summary["training_seconds"][embedding]
        paper = PAPER_FID[embedding]
        lines.append(f"| {embedding} | {summary['parameters'][embedding]} | {format_stat(fid, '.2f')} | "
                     f"{format_stat(kid, '.4f')} | {format_stat(seconds, '.0f')} | {paper[0]} / {paper[1]} "
                     f"({PAPER_PARAMETERS[embedding] / 1e6:.2f} M) |")
    for name, label in (("real_control", "held-out real images"), ("training_copies", "training images (memorised)")):
        scores = summary["references"][name]
        lines.append(f"| *{label}* | - | {scores['fid']:.2f} | {scores['kid']:.4f} | - | - |")
    lines += ["", "QIREN minus classical FID, paired by seed:", ""]
    for name, test in summary["comparisons"].items():
        if test is not None:
            lines.append(f"- {name}: {format_difference(test)}, per seed "
                         f"{', '.join(f'{d:+.2f}' for d in test['differences'])}")
    lines += ["", f"Verdict: {summary['verdict']}", ""]
    write_text_atomic(path, "\n".join(lines))


def write_sample_grid(config: QirenGenerationConfig, run_dir: RunDir, images: GenerationImages) -> None:
    """``samples.png``: a row of training images, then one row per embedding (first seed, EMA generator)."""
    count = config.evaluation.grid_images
    rows = [list(_displayable(to_uint8(images.training[:count])))]
    titles = ["training"]
    for embedding in config.embeddings:
        with np.load(model_folder(run_dir.path, embedding, config.seeds[0]) / "samples.npz") as stored:
            rows.append(list(_displayable(stored["samples"][:count])))
        titles.append(embedding)
    save_figure(image_grid(rows, row_titles=titles, value_range=(0, 255)), run_dir.figure_path("samples"))


def _displayable(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` uint8 -> ``(N, H, W)`` (grey) or ``(N, H, W, 3)`` (colour)."""
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
