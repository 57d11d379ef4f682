"""The few-shot diffusion results as ``report.json`` summary tables and a Markdown table."""

from __future__ import annotations

from pathlib import Path

from qml_imaging.pipelines.diffusion.config import DiffusionFewShotConfig
from qml_imaging.reporting.stats import format_difference, format_stat, paired_test, summary_stat
from qml_imaging.runs import write_text_atomic

SIGNIFICANCE = 0.05


def summarise(config: DiffusionFewShotConfig, results: list[dict], references: dict, accuracies: dict) -> dict:
    """``fid`` / ``kid`` {dataset: {k: {variant: {"mean", "std", "n"}}}} over seeds
    (:func:`~qml_imaging.reporting.stats.summary_stat`: ``std`` None for one seed), the paired quantum - classical
    FID ({dataset: {k: {"mean", "std", "n", "p_value", "differences"}}}, :func:`paired_test`), and context."""
    cells: dict = {}
    for row in results:
        cells.setdefault(row["dataset"], {}).setdefault(str(row["k"]), {}).setdefault(row["variant"], []).append(row)

    def table(key: str) -> dict:
        return {d: {k: {v: summary_stat([r[key] for r in rows]) for v, rows in by_variant.items()}
                    for k, by_variant in by_k.items()} for d, by_k in cells.items()}

    difference = {}
    for dataset, by_k in cells.items():
        for k, by_variant in by_k.items():
            if "quantum" in by_variant and "classical" in by_variant:
                classical = {r["seed"]: r["fid"] for r in by_variant["classical"]}
                paired = [r["fid"] - classical[r["seed"]] for r in by_variant["quantum"] if r["seed"] in classical]
                difference.setdefault(dataset, {})[k] = paired_test(paired)
    by_variant = {}
    for row in results:
        by_variant.setdefault(row["variant"], []).append(row)
    return {
        "fid": table("fid"), "kid": table("kid"),
        "nearest_training_distance": table("nearest_training_distance"),
        "quantum_minus_classical_fid": difference, "verdict": verdict(difference),
        "references": references, "feature_classifier_accuracy": accuracies,
        "parameters": {v: rows[0]["parameters"] for v, rows in by_variant.items()},
        "bottleneck_parameters": {v: rows[0]["bottleneck_parameters"] for v, rows in by_variant.items()},
        "training_seconds": {v: summary_stat([r["training_seconds"] for r in rows]) for v, rows in by_variant.items()},
        "sampling_seconds": {v: summary_stat([r["sampling_seconds"] for r in rows]) for v, rows in by_variant.items()},
        "samples_per_model": config.sampling.samples, "seeds": config.seeds,
    }


def verdict(difference: dict) -> str:
    """Where the quantum bottleneck's FID differs from the classical one's (paired t-test, p < 0.05); cells with
    one seed are listed as untested, never as tied."""
    if not difference:
        return "no quantum / classical pair in this run"
    better, worse, tied, untested = [], [], [], []
    for dataset, by_k in difference.items():
        for k, test in by_k.items():
            cell = f"{dataset} k={k}"
            if test["p_value"] is None:
                untested.append(cell)
                continue
            significant = test["p_value"] < SIGNIFICANCE
            (better if significant and test["mean"] < 0 else worse if significant else tied).append(cell)
    return (f"quantum lower FID than the parameter-matched classical block (paired t-test, p < {SIGNIFICANCE:g}): "
            f"{better or 'none'}; higher: {worse or 'none'}; no significant difference: {tied or 'none'}"
            + (f"; untested (one seed, no spread): {untested}" if untested else ""))


def write_table(path: str | Path, config: DiffusionFewShotConfig, summary: dict) -> None:
    """``table.md``: FID and KID mean ± std per data set, k and variant (the mean alone for one seed), with the
    references."""
    caption = (f"FID / KID in the (unit-RMS) feature space of each data set's classifier; mean ± std over seeds "
               f"{config.seeds}; {config.sampling.samples} samples vs {config.split.reference} held-out images.")
    lines = [caption, "",
             "| data set | k | variant | FID | KID | nearest-training RMS |", "|---|---|---|---|---|---|"]
    for dataset, by_k in summary["fid"].items():
        references = summary["references"][dataset]
        for k, by_variant in by_k.items():
            for variant, fid in by_variant.items():
                kid = summary["kid"][dataset][k][variant]
                nearest = summary["nearest_training_distance"][dataset][k][variant]
                lines.append(f"| {dataset} | {k} | {variant} | {format_stat(fid, '.3f')} | {format_stat(kid, '.4f')} | {format_stat(nearest, '.3f')} |")
            copies = references["training_copies"][k]
            lines.append(f"| {dataset} | {k} | *training images tiled* | {format_stat(copies['fid'], '.3f')} | {format_stat(copies['kid'], '.4f')} | 0 |")
        control = references["real_control"]
        lines.append(f"| {dataset} | - | *held-out real images* | {control['fid']:.3f} | {control['kid']:.4f} | - |")
    lines += ["", "Quantum - classical FID, paired by seed:", ""]
    for dataset, by_k in summary["quantum_minus_classical_fid"].items():
        for k, test in by_k.items():
            lines.append(f"- {dataset} k={k}: {format_difference(test, '.3f')}, "
                         f"per seed {', '.join(f'{d:+.2f}' for d in test['differences'])}")
    lines += ["", f"Verdict: {summary['verdict']}", ""]
    write_text_atomic(path, "\n".join(lines))

