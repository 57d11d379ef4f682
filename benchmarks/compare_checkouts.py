"""The fast backend of two checkouts of this repository, timed alternately in one run.

    git worktree add /tmp/old <commit>   # or: mkdir /tmp/old && git archive <commit> | tar -x -C /tmp/old
    python benchmarks/compare_checkouts.py /tmp/old . [--rounds 5] [--cases qiren8,bn16]

Each round times every case once per checkout, the two in alternating order (old first in even
rounds, new first in odd ones), each in a fresh process whose ``qml_imaging`` is that checkout's;
the measurement is ``benchmarks/quantum_layer.py``'s (forward + backward of ``sum(outputs @ r)``,
float32, median of ``--repeats`` steps after a warm-up), and for the QIREN cases at most 11 qubits
also its interleaved fast / floor ratio. Reported per case: each checkout's median time over
rounds, the median over rounds of new / old, and its range (the noise of a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quantum_layer import CASES  # noqa: E402 (found through the sys.path entry above)

MEASURE = ("import json, sys; sys.path[:0] = [{checkout!r}, {bench!r}]; import qml_imaging, quantum_layer; "
           "assert qml_imaging.__file__.startswith({checkout!r}), qml_imaging.__file__; "
           "print(json.dumps(quantum_layer._measure({case!r}, {backend!r}, 'cpu', {repeats}, 32)))")


def measure(checkout: Path, case: str, backend: str, repeats: int) -> dict:
    """One (case, backend) measurement in a fresh process importing ``checkout``'s package."""
    code = MEASURE.format(checkout=str(checkout), bench=str(HERE), case=case, backend=backend, repeats=repeats)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=checkout,
                          env=environment, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{checkout} {case} {backend}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    arguments = parser.parse_args()
    checkouts = {"old": arguments.old.resolve(), "new": arguments.new.resolve()}
    cases = [c for c in arguments.cases.split(",") if c]
    times: dict = {(case, which): [] for case in cases for which in checkouts}
    floors: dict = {(case, which): [] for case in cases for which in checkouts}
    for round_ in range(arguments.rounds):
        order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
        for case in cases:
            _, kind, n_qubits, _ = CASES[case]
            repeats = arguments.repeats if n_qubits < 16 else max(1, min(arguments.repeats, 3))
            for which in order:
                times[case, which].append(measure(checkouts[which], case, "fast", repeats)["seconds"])
                if kind == "qiren" and n_qubits <= 11:
                    floors[case, which].append(measure(checkouts[which], case, "floor", repeats)["ratio"])
            old, new = times[case, "old"][-1], times[case, "new"][-1]
            print(f"round {round_ + 1}: {case:8s} old {old:.4f} s  new {new:.4f} s", flush=True)
    print("\n| case | old median s | new median s | new / old (median of rounds) | range | "
          "fast / floor old | new |\n| --- | --- | --- | --- | --- | --- | --- |")
    for case in cases:
        ratios = [new / old for old, new in zip(times[case, "old"], times[case, "new"], strict=True)]
        floor = (f"{statistics.median(floors[case, 'old']):.2f} | {statistics.median(floors[case, 'new']):.2f}"
                 if floors[case, "old"] else "- | -")
        print(f"| {CASES[case][0]} | {statistics.median(times[case, 'old']):.4f} | "
              f"{statistics.median(times[case, 'new']):.4f} | {statistics.median(ratios):.3f} | "
              f"{min(ratios):.2f}-{max(ratios):.2f} | {floor} |")


if __name__ == "__main__":
    main()
