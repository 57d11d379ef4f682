"""Loader of a trained INR GAN generator (``qiren_generation``: ``EMBEDDING/seedS``), named by the registry.

The generator and discriminator pair is rebuilt from the run's config and the ``model.json`` its task stored
(synthesis width, channels, image side; :func:`qml_imaging.pipelines.generation.pipeline.run_model`) with
its final (EMA) weights; the model is the generator. :meth:`GeneratorModel.sample` draws images.
"""

from __future__ import annotations

import numpy as np

from qml_imaging.pipelines.generation.pipeline import build_pair, generate
from qml_imaging.runs import RunDir
from qml_imaging.training.artifacts import TrainedModel, choose_fit, final_weights, load_weights, model_arguments


class GeneratorModel(TrainedModel):
    """A trained generator; :meth:`sample` draws images from latents."""

    def sample(self, n: int, *, steps: int | None = None, eta: float | None = None, seed: int = 0,
               batch_size: int | None = None) -> np.ndarray:
        """``n`` images, float32 ``(n, C, S, S)``: the generator on latents drawn with ``seed``, clipped to the data
        range [-1, 1] (the output layer is unbounded), as the run's own sample grids. ``steps`` and ``eta`` are
        DDIM settings: ValueError unless None."""
        if steps is not None or eta is not None:
            raise ValueError("--steps and --eta are DDIM settings; a qiren_generation generator takes neither")
        return generate(self.model, n, batch_size or n, seed).clamp(-1.0, 1.0).numpy().astype(np.float32)


def load_generator(run: RunDir, fit: str | None) -> GeneratorModel:
    """The generator of ``fit`` (default: the first embedding, first seed)."""
    config = run.config
    fit = choose_fit(run, fit, [f"{embedding}/seed{seed}" for embedding in config.embeddings for seed in config.seeds])
    shape = model_arguments(run, fit)
    pair = build_pair(config, fit.split("/")[0], shape["width"], shape["channels"], shape["side"])
    weights, ema, metrics = final_weights(run, fit, fit, config.train.epochs)
    load_weights(pair, weights, run, fit)
    preprocessing = {"data": config.data.model_dump(mode="json"), "channels": shape["channels"],
                     "image_side": shape["side"], "value_range": [-1.0, 1.0], "latent_dim": config.generator.latent_dim}
    return GeneratorModel(pair.generator.eval(), config, fit, run.path, ema, preprocessing, metrics, extras=shape)
