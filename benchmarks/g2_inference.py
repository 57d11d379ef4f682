"""g2(0) of 1024 pixel histograms: CNN inference against Levenberg-Marquardt fits, in one run.

    python benchmarks/g2_inference.py [--repeats 5] [--lm-pixels 64] [--executor local|ray]

CNN: the paper's architecture with 260 filters (its size) and 64 filters (``g2_regression.yaml``),
untrained (the time does not depend on the weights), on 1024 simulated 5 s histograms, median of
``--repeats`` runs in float32. L-M: the known-baseline multi-start fit of
:func:`qml_imaging.physics.g2_fit.fit_g2` on ``--lm-pixels`` of them, in this process or in one Ray task per core
(``--executor ray``), scaled to 1024 pixels. The machine is shared: compare the ratios printed by the same run.
"""

from __future__ import annotations

import argparse

import torch
from timing import median_seconds

from qml_imaging.models.g2_cnn import G2CNN
from qml_imaging.config import GridSettings
from qml_imaging.pipelines.g2.config import HistogramSimulation
from qml_imaging.pipelines.g2.lm import fit_g2_grid
from qml_imaging.pipelines.g2.simulation import held_out_set

PIXELS = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lm-pixels", type=int, default=64)
    parser.add_argument("--executor", default="local", choices=("local", "ray"))
    arguments = parser.parse_args()

    histograms, _, baselines, _ = held_out_set(HistogramSimulation(), PIXELS, 5, seed=0)
    print(f"{PIXELS} histograms of 5 s, torch threads {torch.get_num_threads()}")
    grid = GridSettings(executor=arguments.executor)
    lm = median_seconds(lambda: fit_g2_grid(grid, histograms[: arguments.lm_pixels], baseline=baselines[: arguments.lm_pixels],
                                            zero_delay_ns=0.0), 1)
    lm_total = lm / arguments.lm_pixels * PIXELS
    print(f"  L-M fits ({arguments.executor:>5})          {lm_total:8.2f} s per {PIXELS} ({1e3 * lm / arguments.lm_pixels:.1f} ms/pixel)")
    for filters in (260, 64):
        model = G2CNN(filters=filters)
        model.predict(histograms)
        seconds = median_seconds(lambda model=model: model.predict(histograms), arguments.repeats)
        print(f"  CNN {filters:>3} filters             {seconds:8.3f} s per {PIXELS}  "
              f"(L-M / CNN = {lm_total / seconds:,.0f}x)")


if __name__ == "__main__":
    main()
