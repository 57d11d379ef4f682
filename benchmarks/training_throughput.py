"""Training-step throughput: eager float32 against the default fast step, as GFLOP/s and fraction of the matmul peak.

    python benchmarks/training_throughput.py [--repeats 15] [--threads N] [--json out.json] [--compile]

Steps timed (forward + backward + optimizer, as the Trainer runs them):

* ``qcrb_unet``: the ``qcrb_sinusoid`` U-Net (depth 5, 16-128 channels), batch 32 of 32x32 images, its
  MSE + SSIM + GDL loss;
* ``diffusion_<bottleneck>``: the diffusion U-Net (16, 32, 64 channels) with no / the classical / the
  quantum bottleneck, batch 32 of 28x28 images, the eps objective;
* ``gan_<embedding>``: one INR-GAN step (discriminator with R1, then generator) at the pipeline's default
  sizes, batch 32 of 28x28 images, for the ``rff`` and ``qiren`` embeddings.

Each workload is built from one seed in five variants: ``fp32`` (train.precision fp32, channels_last
false: eager float32), ``channels_last`` alone, ``bf16`` alone, both, and ``default`` (the config
defaults, ``auto``; the printed choices). They are timed interleaved in the same process (medians), so
machine load hits all alike; speed-ups are against ``fp32``. FLOPs of one step are counted by
``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions) on the fp32 step.
The peak is the median rate of a 2048x2048 float32 matmul on the same threads in the same run.

``--compile`` adds ``torch.compile`` of the QCRB U-Net step in a child process: compile seconds and the
compiled step time, and the number of steps after which compiling would pay back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack

import torch
from torch.utils.flop_counter import FlopCounterMode
from workloads import VARIANTS, WORKLOADS, Workload, build

from qml_imaging.environment import cpu_bf16_support

Step = Callable[[], None]


def matmul_peak(size: int = 2048, repeats: int = 7) -> float:
    """Median float32 matmul rate in GFLOP/s on the current threads."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def step_flops(step: Step) -> int:
    """FLOPs of one call of ``step`` as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def interleaved_medians(steps: dict[str, Step], repeats: int) -> dict[str, float]:
    """Median seconds per call of each step, calling them in turn ``repeats`` times after two warm-up calls."""
    for step in steps.values():
        step()
        step()
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def measure(workload: Workload, repeats: int, peak: float) -> dict[str, float | str]:
    """One workload's step time in every variant, the default's speed-up over fp32, GFLOP/s and fraction of ``peak``.

    FLOPs are counted on the fp32 step; for the GAN without its R1 term (FlopCounterMode's module tracking
    cannot follow ``autograd.grad``), so the GAN's GFLOP/s are lower bounds."""
    with ExitStack() as stack:
        built = {variant: build(workload, variant, stack) for variant in VARIANTS}
        flops = step_flops(build(workload, "fp32", stack, r1_gamma=0.0).step)
        medians = interleaved_medians({variant: item.step for variant, item in built.items()}, repeats)
    row: dict[str, float | str] = {"gflop_per_step": flops / 1e9, "default_choices": built["default"].choices}
    for name, seconds in medians.items():
        row[f"{name}_ms"] = seconds * 1e3
        row[f"{name}_gflops"] = flops / seconds / 1e9
        row[f"{name}_of_peak"] = flops / seconds / 1e9 / peak
        row[f"{name}_speedup"] = medians["fp32"] / seconds
    return row


def compile_cost(repeats: int) -> dict[str, float]:
    """Compile seconds and compiled/eager step times of the QCRB U-Net step (run in a child process)."""
    code = ("import sys; sys.path.insert(0, 'benchmarks'); import json, workloads; "
            f"print(json.dumps(workloads.compiled_step_cost({repeats})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--only", nargs="*", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the QCRB U-Net step")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    peak = matmul_peak()
    result: dict = {"threads": torch.get_num_threads(), "fp32_matmul_peak_gflops": peak,
                    "cpu_bf16": cpu_bf16_support(), "workloads": {}}
    print(f"threads {result['threads']}, fp32 matmul peak {peak:.0f} GFLOP/s, CPU bf16: {result['cpu_bf16']}")
    print(f"  {'workload':<20}{'GFLOP':>7}{'fp32 ms':>9}" + "".join(f"{v + ' x':>20}" for v in list(VARIANTS)[1:])
          + f"{'fp32 GF/s':>10}{'default GF/s':>13}{'of peak':>16}  default")
    for name in arguments.only:
        row = measure(name, arguments.repeats, peak)
        result["workloads"][name] = row
        print(f"  {name:<20}{row['gflop_per_step']:7.2f}{row['fp32_ms']:9.1f}"
              + "".join(f"{row[v + '_speedup']:19.2f}x" for v in list(VARIANTS)[1:])
              + f"{row['fp32_gflops']:10.1f}{row['default_gflops']:13.1f}"
              f"{row['fp32_of_peak']:8.0%} ->{row['default_of_peak']:5.0%}  {row['default_choices']}", flush=True)
    if arguments.compile:
        cost = compile_cost(arguments.repeats)
        result["compile_qcrb_unet"] = cost
        print(f"  torch.compile (qcrb_unet, fp32): compile {cost['compile_s']:.0f} s, step {cost['compiled_ms']:.1f} ms "
              f"against eager {cost['eager_ms']:.1f} ms: pays back after {cost['break_even_steps']:.0f} steps")
    if arguments.json:
        with open(arguments.json, "w") as stream:
            json.dump(result, stream, indent=1)


if __name__ == "__main__":
    main()
