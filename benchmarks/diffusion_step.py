"""Training-step time of the diffusion U-Net with each bottleneck block, measured in one run.

    python benchmarks/diffusion_step.py [--batch 64] [--repeats 10]

One step = eps objective (cosine schedule, 1000 steps) forward + backward + Adam on a batch of
28x28 single-channel images, default widths 32/64/128; the quantum block runs the 8-qubit,
3-layer bottleneck ansatz on the fast backend. Medians; compare the ratios of one run.
"""

from __future__ import annotations

import argparse

import torch
from timing import median_seconds

from qml_imaging.diffusion.ddpm import EpsilonObjective
from qml_imaging.diffusion.schedules import cosine_schedule
from qml_imaging.models.diffusion_unet import BOTTLENECKS, DiffusionUNet
from qml_imaging.models.inr import parameter_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    arguments = parser.parse_args()
    objective = EpsilonObjective(cosine_schedule(1000))
    images = torch.rand(arguments.batch, 1, 28, 28) * 2 - 1
    seconds = {}
    for kind in BOTTLENECKS:
        torch.manual_seed(0)
        model = DiffusionUNet(bottleneck=kind)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer) -> None:
            optimizer.zero_grad()
            objective(model, images).backward()
            optimizer.step()

        step()
        seconds[kind] = median_seconds(step, arguments.repeats)
        print(f"  {kind:<10} {parameter_count(model):>9,} parameters  {seconds[kind] * 1e3:8.1f} ms per step")
    print(f"  quantum / classical step time: {seconds['quantum'] / seconds['classical']:.2f}x "
          f"(quantum / none: {seconds['quantum'] / seconds['none']:.2f}x)")


if __name__ == "__main__":
    main()
