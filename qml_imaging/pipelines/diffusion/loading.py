"""Loader of a trained few-shot denoiser (``diffusion_fewshot``: ``DATASET/kK/VARIANT/seedS``), named by the registry.

The U-Net is rebuilt from the run's config and the ``model.json`` its task stored (image channels and side;
:func:`qml_imaging.pipelines.diffusion.model_task.run_task`), so no data set is read; its final (EMA) weights
are those of the main fit under the tailored schedule. :meth:`DiffusionModel.sample` draws images by DDIM.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qml_imaging.models.diffusion_unet import DiffusionUNet
from qml_imaging.pipelines.diffusion.model_task import sample_images, tailored_pilot_epochs
from qml_imaging.pipelines.diffusion.pipeline import planned_models
from qml_imaging.runs import RunDir
from qml_imaging.training.artifacts import TrainedModel, choose_fit, final_weights, load_weights, model_arguments
from qml_imaging.precedence import own_or_shared


class DiffusionModel(TrainedModel):
    """A trained denoiser; :meth:`sample` draws images with DDIM."""

    def sample(self, n: int, *, steps: int | None = None, eta: float | None = None, seed: int = 0,
               batch_size: int | None = None) -> np.ndarray:
        """``n`` new images, float32 ``(n, C, S, S)`` in [-1, 1]: DDIM from pseudo-random start noise drawn with
        ``seed``; ``steps`` and ``eta`` default to the run's ``sampling`` (see
        :func:`~qml_imaging.pipelines.diffusion.model_task.sample_images`)."""
        return sample_images(self, n, steps=steps, eta=eta, seed=seed, batch_size=batch_size)

    def sample_settings(self, steps: int | None, eta: float | None) -> dict[str, Any]:
        """The DDIM ``steps`` and ``eta`` :meth:`sample` uses: the given ones, else the run's ``sampling``."""
        sampling = self.config.sampling
        return {"steps": sampling.ddim_steps if steps is None else steps, "eta": sampling.eta if eta is None else eta}


def load_denoiser(run: RunDir, fit: str | None) -> DiffusionModel:
    """The denoiser of ``fit`` (default: the run's first model)."""
    config = run.config
    tasks = {task.name: task for task in planned_models(config)}
    fit = choose_fit(run, fit, list(tasks))
    task, shape = tasks[fit], model_arguments(run, fit)
    variant = config.variants[task.variant]
    schedule = own_or_shared(variant.schedule, config.diffusion.schedule)
    model = DiffusionUNet.from_spec(config.unet, shape["channels"], variant.bottleneck, side=shape["side"])
    tailored = schedule == "tailored"
    weights, ema, metrics = final_weights(run, fit, f"{fit}/main" if tailored else fit,
                                          config.train.epochs - (tailored_pilot_epochs(config) if tailored else 0))
    load_weights(model, weights, run, fit)
    preprocessing = {"dataset": config.datasets[task.dataset].model_dump(mode="json"), "channels": shape["channels"],
                     "image_side": shape["side"], "value_range": [-1.0, 1.0],
                     "schedule": schedule if schedule != "tailored" else f"tailored ({config.tailored.base} base)",
                     "timesteps": config.diffusion.timesteps}
    return DiffusionModel(model.eval(), config, fit, run.path, ema, preprocessing, metrics,
                          extras={"task": task, **shape})
