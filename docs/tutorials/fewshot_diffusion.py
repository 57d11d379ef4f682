# %% [markdown]
# # Few-shot diffusion on a folder of images
#
# Train a small denoising diffusion model (DDPM) whose U-Net has a 4-qubit circuit in its bottleneck
# on twelve images from a folder, then draw new images with DDIM. At smoke size (2 epochs, 50
# timesteps) the samples are noise-like; the point is the path from your folder to samples.

# %%
# %matplotlib inline
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

import qml_imaging
from qml_imaging.cli import main
from qml_imaging.reporting.figures import image_grid

work = Path(tempfile.mkdtemp())

# %% [markdown]
# A folder of images (any PNG, JPEG or TIFF files of one size). We draw twelve 32x32 grey discs at
# random places; point `path` at your own folder instead.

# %%
folder = work / "my_pngs"
folder.mkdir()
generator = np.random.default_rng(0)
y, x = np.mgrid[0:32, 0:32]
for index in range(12):
    cy, cx, radius = generator.uniform(10, 22), generator.uniform(10, 22), generator.uniform(4, 9)
    disc = ((y - cy) ** 2 + (x - cx) ** 2 < radius**2).astype(np.uint8) * 220 + 20
    Image.fromarray(disc).save(folder / f"img{index:02d}.png")
image_grid([[np.asarray(Image.open(p)) for p in sorted(folder.iterdir())[:6]]], value_range=(0, 255))

# %% [markdown]
# The config: one data set from the folder, all 12 images as the few shots, one variant with the
# quantum bottleneck. `evaluation.scores: false` skips FID/KID, which need held-out images.

# %%
config = {
    "experiment": "diffusion_fewshot", "name": "my_folder",
    "datasets": {"mine": {"source": "folder", "path": str(folder), "size": 32}},
    "shots": [12], "seeds": [0], "variants": {"quantum": {"bottleneck": "quantum"}},
    "unet": {"channels": [8, 8, 16], "n_qubits": 4, "quantum_layers": 2},
    "diffusion": {"timesteps": 50}, "batches_per_epoch": 2,
    "train": {"epochs": 2, "batch_size": 8, "ema_decay": 0.99, "progress": False},
    "sampling": {"samples": 10, "ddim_steps": 5, "batch_size": 10},
    "evaluation": {"scores": False},
}
(work / "my_diffusion.yaml").write_text(yaml.safe_dump(config))
assert main(["run", str(work / "my_diffusion.yaml"), "--out", str(work / "run")]) == 0

# %% [markdown]
# Load the trained model (EMA weights) and draw eight new images with 5 DDIM steps:

# %%
model = qml_imaging.load_model(work / "run")
print(model.fit, f"{sum(p.numel() for p in model.model.parameters())} parameters")
samples = model.sample(8, steps=5, seed=1)
print(samples.shape, samples.dtype, float(samples.min()), float(samples.max()))
image_grid([list(samples[:, 0])], value_range=(-1, 1))
