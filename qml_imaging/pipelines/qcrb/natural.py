"""``qcrb_natural``: U-Net denoisers of natural shot-noise images against the SQL and the Heisenberg limit.

Natural images have no finite parameterisation, so there is no QCRB; the references are the SQL
(the pixel-wise estimator ``n / nbar``, total error ``1 / nbar``) and the Heisenberg limit
(``1 / nbar^2``; see :mod:`qml_imaging.physics.bounds`). A network that has learnt the pixel
correlations of a kind of image can beat the per-pixel SQL, which assumes pixels are independent.

A data set is scikit-image crops, MNIST, a MedMNIST flag, or a folder of your own image files
(``kind: folder``; the first ``train_images`` files by name train, the last ``test_images`` are held out).
Per data set one U-Net is trained on its training images (intensity in [0, 1] plus ``floor``,
normalised to sum 1), then ``realisations`` shot-noise copies of each held-out image are denoised
at every evaluated ``nbar``.

Summary (``report.json``): ``mse_over_sql`` and ``mse_over_heisenberg`` {dataset: {nbar: ratio}}
(total squared error averaged over held-out images), ``pixels_below_sql`` {dataset: {nbar:
fraction of pixels whose MSE is below their SQL phi_k / nbar}}, ``parameters`` and
``training_seconds`` per data set.
"""

from __future__ import annotations

import numpy as np
import torch

from qml_imaging.data.datasets import load_medmnist, load_mnist, load_skimage_image
from qml_imaging.data.images import folder_preprocessing, load_image_folder
from qml_imaging.grid import Task, run_grid
from qml_imaging.models.inr import parameter_count
from qml_imaging.physics.bounds import heisenberg_total, sql_pixel
from qml_imaging.physics.estimation import error_statistics
from qml_imaging.physics.shot_noise import normalise, shot_noise_counts
from qml_imaging.pipelines.qcrb.config import DenoiserExperiment, ImageSource, QcrbNaturalConfig
from qml_imaging.pipelines.qcrb.denoising import denoiser_threads, denoise, train_denoiser, upsample_images
from qml_imaging.pipelines.qcrb.figures import error_vs_nbar
from qml_imaging.reporting import figures
from qml_imaging.runs import RunDir
from qml_imaging.training.distributed import current_process_group

EVALUATION_SEED_OFFSET = 2_000_003


def run(config: QcrbNaturalConfig, run_dir: RunDir) -> dict:
    """Train and evaluate one U-Net per data set and loss, each a task of one grid (``config.grid``;
    resuming from checkpoints); return the summary."""
    tasks = []
    for dataset, source in config.datasets.items():
        sampler, held_out = image_sampler(source, config.image_size, config.seed)
        data_range = float((held_out * held_out[0].numel()).amax() - (held_out * held_out[0].numel()).amin())
        for loss_name in config.denoisers:
            tasks.append(Task(f"{dataset}/{loss_name}", fit_and_evaluate,
                              (config, dataset, loss_name, sampler, held_out, data_range, str(run_dir.path)),
                              threads=denoiser_threads(config)))
    outcome = run_grid(tasks, config.grid, run_dir.path, label="denoisers", progress=config.train.progress)
    if not current_process_group().is_main:
        return {}
    done = [(task.name, result) for task, result in zip(tasks, outcome.results, strict=True) if result is not None]
    rows = [row for _, result in done for row in result["rows"]]
    training = {name: result["training"] for name, result in done}
    examples = {name: result["examples"] for name, result in done}
    summary = _summarise(config, rows, training)
    summary["failed_tasks"] = outcome.failures
    _figures(config, run_dir, rows, examples)
    folders = {name: folder_preprocessing(source.path, config.image_size, value_range=(0.0, 1.0))
               for name, source in config.datasets.items() if source.kind == "folder"}
    run_dir.write_report(summary, {"rows": rows, "training": training, "folders": folders})
    return summary


def fit_and_evaluate(config: QcrbNaturalConfig, dataset: str, loss_name: str, sampler, held_out: torch.Tensor,
                     data_range: float, run_path: str) -> dict:
    """One grid task: train the U-Net of ``dataset`` x ``loss_name``, evaluate it on ``held_out`` ``(N, H, W)``
    (rank 0 only under torchrun); return ``training`` (seconds, parameters, validation), ``rows`` and ``examples``."""
    name = f"{dataset}/{loss_name}"
    trainer, result = train_denoiser(name, config.denoisers[loss_name], config, sampler, run_path, data_range)
    rows, examples = [], {}
    if current_process_group().is_main:
        rows, examples = evaluate(config, trainer.eval_model, held_out, dataset, loss_name)
    return {"training": {"seconds": result.seconds, "parameters": parameter_count(trainer.module),
                         "validation": result.metrics}, "rows": rows, "examples": examples}


def image_sampler(source: ImageSource, size: int, seed: int):
    """``(sampler, held_out)``: a training-image sampler ``(n, generator) -> phi (n, size, size)`` and held-out phi."""
    if source.kind == "skimage":
        train = torch.stack([load_skimage_image(n, source.source_size, value_range=(0.0, 1.0))[0] for n in source.names])
        test = torch.stack([load_skimage_image(n, source.source_size, value_range=(0.0, 1.0))[0] for n in source.held_out])
        held_out = _crops(test, size, source.test_images, torch.Generator().manual_seed(seed))

        def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
            return _to_phi(_augment(_crops(train, size, n, generator), generator), source.floor)

        return sampler, _to_phi(held_out, source.floor)
    images = _dataset_images(source, size)
    if len(images) < source.train_images + source.test_images:
        raise ValueError(f"{source.kind} has {len(images)} images, fewer than train_images + test_images "
                         f"({source.train_images} + {source.test_images})")
    images = upsample_images(images, size)
    train, test = images[: source.train_images], images[-source.test_images:]

    def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
        picks = torch.randint(len(train), (n,), generator=generator)
        return _to_phi(_augment(train[picks], generator), source.floor)

    return sampler, _to_phi(test, source.floor)


def evaluate(config: DenoiserExperiment, model: torch.nn.Module, held_out: torch.Tensor, dataset: str, loss_name: str) -> tuple[list[dict], dict]:
    """Rows per nbar: total MSE over held-out images, its ratios to SQL and HL, pixels below their SQL."""
    rows, examples = [], {}
    realisations = config.evaluation.realisations
    for index, nbar in enumerate(config.evaluation.nbars):
        generator = torch.Generator().manual_seed(config.seed + EVALUATION_SEED_OFFSET + index)
        totals, below = [], []
        for image in held_out.to(torch.float64):
            counts = shot_noise_counts(image.expand(realisations, -1, -1).contiguous(), nbar, generator)
            stats = error_statistics(denoise(model, counts, nbar, config.unet), image)
            totals.append(float(stats["mse"]))
            below.append(float((stats["mse_map"] < sql_pixel(image, nbar)).double().mean()))
        mse = float(np.mean(totals))
        rows.append({"dataset": dataset, "loss": loss_name, "nbar": nbar, "mse": mse, "mse_over_sql": mse * nbar,
                     "mse_over_heisenberg": mse / float(heisenberg_total(nbar)), "pixels_below_sql": float(np.mean(below)),
                     "in_training_range": config.training.nbar_min <= nbar <= config.training.nbar_max})
        image = held_out[0].to(torch.float64)
        counts = shot_noise_counts(image.unsqueeze(0), nbar, generator)
        examples[nbar] = (image, counts[0] / nbar, denoise(model, counts, nbar, config.unet)[0])
    return rows, examples


def _dataset_images(source: ImageSource, size: int) -> torch.Tensor:
    """All images of an MNIST / MedMNIST source as float ``(N, 28, 28)`` in [0, 1]; a folder's files
    (:func:`~qml_imaging.data.images.load_image_folder`: grey, intensity by the auto rule, resized) as ``(N, size, size)``."""
    if source.kind == "folder":
        return load_image_folder(source.path, size, fit="stretch", channels="grey", value_range=(0.0, 1.0))[:, 0]
    if source.kind == "mnist":
        images, _ = load_mnist(train=False)
        return images.float() / 255.0
    images, _ = load_medmnist(source.flag, split="train")
    if images.ndim == 4:
        images = images.mean(axis=-1)
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)


def _crops(images: torch.Tensor, size: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random ``size x size`` crops ``(n, size, size)`` of random images ``(N, S, S)``."""
    picks = torch.randint(len(images), (n,), generator=generator)
    limit = images.shape[-1] - size + 1
    rows = torch.randint(limit, (n,), generator=generator)
    columns = torch.randint(limit, (n,), generator=generator)
    return torch.stack([images[p, r:r + size, c:c + size] for p, r, c in zip(picks, rows, columns, strict=True)])


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and 90-degree rotations of ``(n, H, W)`` images."""
    flips = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flips[:, None, None], images.flip(-1), images)
    turns = int(torch.randint(4, (), generator=generator))
    return torch.rot90(images, turns, dims=(-2, -1))


def _to_phi(intensity: torch.Tensor, floor: float) -> torch.Tensor:
    return normalise(intensity.to(torch.float32) + floor)


def _summarise(config: QcrbNaturalConfig, rows: list[dict], training: dict) -> dict:
    def table(key: str) -> dict:
        result: dict = {}
        for row in rows:
            result.setdefault(f"{row['dataset']}/{row['loss']}", {})[f"{row['nbar']:g}"] = row[key]
        return result

    return {"mse_over_sql": table("mse_over_sql"), "mse_over_heisenberg": table("mse_over_heisenberg"),
            "pixels_below_sql": table("pixels_below_sql"),
            "parameters": {name: t["parameters"] for name, t in training.items()},
            "training_seconds": {name: t["seconds"] for name, t in training.items()},
            "realisations": config.evaluation.realisations}


def _figures(config: QcrbNaturalConfig, run_dir: RunDir, rows: list[dict], examples: dict) -> None:
    nbars = np.array(config.evaluation.nbars)
    measured = {}
    for row in rows:
        measured.setdefault(f"{row['dataset']}/{row['loss']}", []).append(row["mse"])
    figures.save_figure(error_vs_nbar(nbars, measured, {}), run_dir.figure_path("mse_vs_nbar"))
    grid, titles = [], []
    for name, by_nbar in examples.items():
        for nbar, (truth, noisy, estimate) in by_nbar.items():
            grid.append([truth.numpy(), noisy.numpy(), estimate.numpy()])
            titles.append(f"{name}\nN={nbar:g}")
    figure = figures.image_grid(grid, column_titles=["truth", "n / N", "U-Net"], row_titles=titles)
    figures.save_figure(figure, run_dir.figure_path("reconstructions"))
