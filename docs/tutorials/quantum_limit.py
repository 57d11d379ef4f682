# %% [markdown]
# # A U-Net and the Poisson MLE against the quantum Cramér-Rao bound
#
# A sinusoidal transmittance image `phi(theta)` (3 parameters, 16x16 pixels) is imaged with `nbar`
# photons: the counts are Poisson. The quantum Cramér-Rao bound (QCRB) is the smallest total squared
# error of `phi` any unbiased estimator can reach. We train a small denoising U-Net on fresh shot-noise
# images, fit the Poisson maximum-likelihood estimator (MLE) on the same counts, and compare both
# with the bound, the standard quantum limit (SQL, `1/N`) and the Heisenberg limit (`1/N²`).
# At smoke size the U-Net is far from trained; the MLE sits near the bound from the start.

# %%
# %matplotlib inline
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from qml_imaging.cli import main
from qml_imaging.physics.bounds import heisenberg_total, sql_total
from qml_imaging.physics.parametric import get_family
from qml_imaging.pipelines.qcrb.figures import error_vs_nbar
from qml_imaging.reporting.figures import image_grid

work = Path(tempfile.mkdtemp())

# %% [markdown]
# The image family, its truth and one shot-noise realisation at 100 photons:

# %%
family = get_family("sinusoid")
theta = torch.tensor([[2.0, 1.0, 1.0]], dtype=torch.float64)
phi = family.phi(theta, 16)[0]
counts = torch.poisson(100 * phi, generator=torch.Generator().manual_seed(0))
print(f"phi sums to {float(phi.sum()):.3f}; {int(counts.sum())} photons detected")
image_grid([[phi.numpy(), counts.numpy()]], column_titles=["phi", "counts, N = 100"])

# %% [markdown]
# The `qcrb_smoke` experiment trains the U-Net (2 epochs of 3 batches) and evaluates both
# estimators over 20 realisations at 100 and 10 000 photons:

# %%
assert main(["run", "qcrb_smoke", "--out", str(work / "run")]) == 0
report = json.loads((work / "run" / "report.json").read_text())
for estimator, by_nbar in report["summary"]["mse_over_qcrb"].items():
    print(estimator, {n: round(v, 2) for n, v in by_nbar.items()}, "(MSE / QCRB)")

# %% [markdown]
# Total squared error against the photon number, with the bounds:

# %%
rows = report["details"]["rows"]
nbars = np.array(sorted({row["nbar"] for row in rows}), dtype=float)
measured = {name: [next(r["mse"] for r in rows if r["estimator"] == name and r["nbar"] == n) for n in nbars]
            for name in ("unet", "mle")}
bounds = {"QCRB": [next(r["qcrb_total"] for r in rows if r["nbar"] == n) for n in nbars]}
print("SQL at N=100:", float(sql_total(100.0)), " Heisenberg limit at N=100:", float(heisenberg_total(100.0)))
error_vs_nbar(nbars, measured, bounds)
