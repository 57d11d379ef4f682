# %% [markdown]
# # QIREN and SIREN on your own image
#
# Fit one image of your own with QIREN (hybrid layers of data re-uploading circuits on the fast
# simulator) and with SIREN at about the same parameter count, then render both at four times the
# training resolution. At smoke size (16x16 pixels, 60 epochs) this takes well under a minute on
# 2 CPU cores; raise `size` and `train.epochs` for a real fit.

# %%
# %matplotlib inline
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from skimage import data, transform

import qml_imaging
from qml_imaging.cli import main
from qml_imaging.reporting.figures import curves, image_grid

work = Path(tempfile.mkdtemp())

# %% [markdown]
# Your image: any PNG, JPEG or TIFF. Here we write one, a crop of scikit-image's astronaut, so the
# tutorial runs anywhere; replace `image` with the path of your own file.

# %%
pixels = (transform.resize(data.astronaut()[30:230, 150:350], (64, 64)) * 255).astype(np.uint8)
image = work / "my_image.png"
Image.fromarray(pixels).save(image)

# %% [markdown]
# A config names the pipeline (`inr_image`), the image, the models and the training. `channels: auto`
# fits one output per colour channel; every model gets the same parameter budget.

# %%
config = {
    "experiment": "inr_image", "name": "my_image", "images": [str(image)], "size": 16, "channels": "auto",
    "parameter_budget": 159, "seeds": 1, "reference_model": "siren", "superres_size": None,
    "models": {
        "qiren": {"kind": "qiren", "lr": 0.03, "n_qubits": 4, "hidden_layers": 2, "reuploads": 1, "sublayers": 2},
        "siren": {"kind": "siren", "lr": 0.001, "hidden_layers": 2},
    },
    "train": {"epochs": 60, "eval_every": 20, "checkpoint_every": 20, "progress": False},
}
(work / "my_image.yaml").write_text(yaml.safe_dump(config))
assert main(["run", str(work / "my_image.yaml"), "--out", str(work / "run")]) == 0

# %% [markdown]
# The run folder holds `metrics.jsonl`; its training loss per epoch:

# %%
records = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
series = {}
for fit in ("my_image/qiren/seed0", "my_image/siren/seed0"):
    losses = [(r["epoch"], r["train_loss"]) for r in records if r["fit"] == fit and "train_loss" in r]
    series[fit.split("/")[1]] = ([e for e, _ in losses], [v for _, v in losses])
curves(series, xlabel="epoch", ylabel="training MSE")

# %% [markdown]
# Load each fitted model and render it on a 64x64 grid, four times the 16x16 training grid.
# `render` returns `(H, W, C)` values in [-1, 1].

# %%
renders = {}
for name in ("qiren", "siren"):
    model = qml_imaging.load_model(work / "run", fit=f"my_image/{name}/seed0")
    renders[name] = model.render(64)
    print(name, renders[name].shape, f"{sum(p.numel() for p in model.model.parameters())} parameters")


def shown(values):
    return np.clip((np.asarray(values) + 1) / 2, 0, 1)


image_grid([[pixels, shown(renders["qiren"]), shown(renders["siren"])]],
           column_titles=["your image", "QIREN at 4x", "SIREN at 4x"])
