"""Training-step and sampling time of the diffusion U-Net with each bottleneck block, measured in one run.

    python benchmarks/diffusion_step.py [--batch 32] [--channels 16 32 64] [--repeats 10] [--samples 1000]

One step = eps objective (cosine schedule, 1000 steps) forward + backward + Adam on a batch of
28x28 single-channel images; the quantum block runs the 8-qubit, 3-layer bottleneck ansatz on the
fast backend. Sampling = ``--samples`` images by 20-step DDIM in batches of 250. Defaults are those
of ``experiments/diffusion_fewshot.yaml``. Medians; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import median_seconds

from qml_imaging.diffusion.ddpm import EpsilonObjective, ddim_sample, torch_noise
from qml_imaging.diffusion.schedules import cosine_schedule
from qml_imaging.models.diffusion_unet import BOTTLENECKS, DiffusionUNet
from qml_imaging.models.inr import parameter_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, nargs=3, default=[16, 32, 64])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000, help="DDIM samples timed per model (0: skip)")
    arguments = parser.parse_args()
    schedule = cosine_schedule(1000)
    objective = EpsilonObjective(schedule)
    images = torch.rand(arguments.batch, 1, 28, 28) * 2 - 1
    step_seconds, sampling_seconds = {}, {}
    for kind in BOTTLENECKS:
        torch.manual_seed(0)
        model = DiffusionUNet(channels=tuple(arguments.channels), bottleneck=kind)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer) -> None:
            optimizer.zero_grad()
            objective(model, images).backward()
            optimizer.step()

        step()
        step_seconds[kind] = median_seconds(step, arguments.repeats)
        line = f"  {kind:<10} {parameter_count(model):>9,} parameters  {step_seconds[kind] * 1e3:8.1f} ms per step"
        if arguments.samples:
            model.eval()
            started = time.perf_counter()
            for start in range(0, arguments.samples, 250):
                count = min(250, arguments.samples - start)
                ddim_sample(model, schedule, (count, 1, 28, 28), torch_noise(), steps=20)
            sampling_seconds[kind] = time.perf_counter() - started
            line += f"  {sampling_seconds[kind]:6.1f} s for {arguments.samples} DDIM samples"
        print(line, flush=True)
    print(f"  quantum / classical step time: {step_seconds['quantum'] / step_seconds['classical']:.2f}x "
          f"(quantum / none: {step_seconds['quantum'] / step_seconds['none']:.2f}x)")
    if sampling_seconds:
        print(f"  quantum / classical sampling time: {sampling_seconds['quantum'] / sampling_seconds['classical']:.2f}x")


if __name__ == "__main__":
    main()
