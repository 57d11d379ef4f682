"""``qml-imaging render``, ``sample`` and ``export``: use a trained model after its run ended.

    qml-imaging render RUN_DIR [--fit F] --size 256 [--backend B] [--out DIR]
    qml-imaging sample RUN_DIR [--fit F] --n 64 [--steps 50] [--eta 0] [--seed 0] [--backend B] --out DIR
    qml-imaging export RUN_DIR [--fit F] --out DIR

``export`` writes one fit as safetensors weights, its model arguments (JSON) and a model card
(:mod:`qml_imaging.training.export`); RUN_DIR of ``render`` and ``sample`` may be such an export.

``render`` evaluates a fitted INR (``inr_image``: on a ``size x size`` or ``HxW`` grid; ``inr_signal``:
at ``size`` samples) and writes ``<fit>_<size>.npy`` (float32 in [-1, 1]: ``(H, W, C)`` or ``(n,)``) with
``.png`` (8-bit, [-1, 1] -> 0..255) or ``.wav`` (float, peak as fitted). ``sample`` draws ``n`` images
from a trained ``diffusion_fewshot`` model by DDIM, or from a ``qiren_generation`` generator, and writes ``samples.npy`` (float32 ``(n, C, S, S)``
in [-1, 1]), ``samples.png`` (a grid) and ``sample_info.json``. ``--backend`` runs every quantum layer
on another backend spec (``fast``, ``aer_shots``, ``ibm_fake_brisbane``, an IBM device, a YAML path);
the weights are the run's (EMA where it used EMA), loaded by :func:`qml_imaging.load_model`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from qml_imaging.extras import require
from qml_imaging.limits import (MAX_RENDER_POINTS, MAX_SAMPLE_IMAGES, MAX_WAV_RATE, OptionError, check_count, check_number,
                                integer)


def add_model_commands(commands) -> None:
    """Register ``render``, ``sample`` and ``export`` on the main parser's ``commands``."""
    render = commands.add_parser("render", help="evaluate a fitted INR on any grid or sample count (PNG/NPY/WAV)")
    render.add_argument("run_dir", help="a finished inr_image or inr_signal run folder")
    render.add_argument("--fit", default=None, help="IMAGE/MODEL/seedN or MODEL/seedN (default: the first fit)")
    render.add_argument("--size", required=True, help="grid side (256), HxW (256x128), or samples for a signal")
    render.add_argument("--backend", default=None, help="backend spec for the quantum layers (default: as fitted)")
    render.add_argument("--rate", type=float, default=None, help="WAV sample rate in Hz (default: the fitted "
                                                                 "signal's rate scaled to the new sample count)")
    render.add_argument("--out", default=None, help="folder for the files (default: RUN_DIR/renders)")
    render.set_defaults(handler=_render)
    sample = commands.add_parser("sample", help="draw new images from a trained diffusion model or generator "
                                                "(PNG grid + NPY)")
    sample.add_argument("run_dir", help="a finished diffusion_fewshot or qiren_generation run folder")
    sample.add_argument("--fit", default=None, help="DATASET/kK/VARIANT/seedS or EMBEDDING/seedS (default: the "
                                                    "first model)")
    sample.add_argument("--n", type=integer, default=64, help=f"images to draw (at most {MAX_SAMPLE_IMAGES:,})")
    sample.add_argument("--steps", type=integer, default=None, help="DDIM steps (default: the run's sampling.ddim_steps)")
    sample.add_argument("--eta", type=float, default=None, help="DDIM eta (default: the run's sampling.eta)")
    sample.add_argument("--seed", type=integer, default=0, help="seed of the start noise or latents")
    sample.add_argument("--backend", default=None, help="backend spec for the quantum bottleneck (default: as trained)")
    sample.add_argument("--out", required=True, help="folder for samples.npy, samples.png and sample_info.json")
    sample.set_defaults(handler=_sample)
    export = commands.add_parser("export", help="one fit as safetensors weights, model arguments and a model card")
    export.add_argument("run_dir", help="a finished run folder")
    export.add_argument("--fit", default=None, help="the fit to export (default: the run's first)")
    export.add_argument("--out", required=True, help="a new folder for the export")
    export.set_defaults(handler=_export)


def _export(arguments: argparse.Namespace) -> int:
    from qml_imaging.training.export import export_model

    out = export_model(arguments.run_dir, arguments.out, arguments.fit)
    card = (out / "README.md").read_text().splitlines()[0]
    print(f"exported {card.removeprefix('# Model card: ')} to {out}; load it with qml_imaging.load_model({str(out)!r})")
    return 0


def parse_size(text: str) -> int | tuple[int, int]:
    """``"256"`` -> 256, ``"256x128"`` -> (256, 128); ValueError otherwise, also beyond
    :data:`~qml_imaging.limits.MAX_RENDER_POINTS` points."""
    found = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not found or int(found.group(1)) < 1 or (found.group(2) is not None and int(found.group(2)) < 1):
        raise OptionError(f"--size must be a positive integer or HxW (e.g. 256 or 256x128), got {text!r}")
    sides = [int(side) for side in found.groups() if side is not None]
    points = sides[0] ** 2 if len(sides) == 1 else sides[0] * sides[1]
    if points > MAX_RENDER_POINTS and not (len(sides) == 1 and sides[0] <= MAX_RENDER_POINTS):
        raise OptionError(f"--size {text.strip()} asks for {points:,} grid points; at most {MAX_RENDER_POINTS:,} "
                         "(a 4096x4096 image) are rendered at once")
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def to_uint8(values):
    """Values in [-1, 1] -> uint8 0..255 (clipped)."""
    import numpy as np

    return np.round((np.clip(values, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _backend_spec(name: str | None):
    """``--backend`` resolved into a validated backend spec (None: the one the model was fitted with)."""
    from qml_imaging.quantum.backends import backend_spec

    return backend_spec(name) if name is not None else None


def _render(arguments: argparse.Namespace) -> int:
    from qml_imaging.runs import make_folder
    from qml_imaging.training.artifacts import load_model

    size = parse_size(arguments.size)
    if arguments.rate is not None:
        check_number("--rate", arguments.rate, 1, MAX_WAV_RATE, "a WAV sample rate in Hz")
    trained = load_model(arguments.run_dir, arguments.fit, executor=_backend_spec(arguments.backend))
    out = make_folder(Path(arguments.out) if arguments.out else trained.run_dir / "renders")
    values, stem = trained.render(size), trained.fit.replace("/", "_")
    if values.ndim == 3:  # an image (H, W, C)
        written = _write_image(values, out, f"{stem}_{values.shape[0]}x{values.shape[1]}")
    else:
        written = _write_signal(values, out, f"{stem}_{size}", trained, arguments.rate)
    info = {"run_dir": str(trained.run_dir), "fit": trained.fit, "size": size, "ema": trained.ema,
            "backend": arguments.backend or "as fitted", "files": written, "preprocessing": trained.preprocessing}
    _write_json(out / f"{stem}_render.json", info)
    for name in written:
        print(out / name)
    return 0


def _write_image(grid, out: Path, stem: str) -> list[str]:
    """A rendered image ``(H, W, C)`` in [-1, 1] as ``stem.npy`` (float32) and ``stem.png`` (8-bit)."""
    save_npy(out / f"{stem}.npy", grid)
    save_png(out / f"{stem}.png", to_uint8(grid))
    return [f"{stem}.npy", f"{stem}.png"]


def _write_signal(samples, out: Path, stem: str, trained, rate: float | None) -> list[str]:
    """A rendered signal ``(n,)`` as ``stem.npy`` and ``stem.wav`` (float); the rate is ``rate``, else the fitted
    signal's rate scaled to the new sample count, else 8000 Hz."""
    save_npy(out / f"{stem}.npy", samples)
    fitted_rate = trained.preprocessing.get("sample_rate")
    if rate is None:
        rate = fitted_rate * (len(samples) - 1) / (len(trained.inputs) - 1) if fitted_rate else 8000.0
    _save_wav(out / f"{stem}.wav", samples, int(round(rate)))
    return [f"{stem}.npy", f"{stem}.wav"]


def _write_json(path: Path, info: dict) -> None:
    from qml_imaging.runs import write_text_atomic

    write_text_atomic(path, json.dumps(info, indent=1, default=str) + "\n")


def _sample(arguments: argparse.Namespace) -> int:
    from qml_imaging.runs import make_folder
    from qml_imaging.training.artifacts import load_model

    check_count("--n", arguments.n, 1, MAX_SAMPLE_IMAGES, "draw more by running again with another --seed")
    if arguments.eta is not None:
        check_number("--eta", arguments.eta, 0.0, 1.0, "0 is deterministic DDIM, 1 is DDPM-like")
    trained = load_model(arguments.run_dir, arguments.fit, executor=_backend_spec(arguments.backend))
    images = trained.sample(arguments.n, steps=arguments.steps, eta=arguments.eta, seed=arguments.seed)
    out = make_folder(arguments.out)
    save_npy(out / "samples.npy", images)
    _save_grid(images, out / "samples.png")
    info = {"run_dir": str(trained.run_dir), "fit": trained.fit, "n": arguments.n, "seed": arguments.seed,
            **trained.sample_settings(arguments.steps, arguments.eta), "backend": arguments.backend or "as trained",
            "ema": trained.ema, "shape": list(images.shape), "value_range": [-1.0, 1.0],
            "preprocessing": trained.preprocessing}
    _write_json(out / "sample_info.json", info)
    print(out / "samples.npy")
    print(out / "samples.png")
    return 0


def _save_grid(images, path: Path) -> None:
    """``(n, C, S, S)`` in [-1, 1] -> one 8-bit PNG, images in rows of ceil(sqrt(n)) with 1-pixel gaps."""
    import numpy as np

    n, channels, side, _ = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = np.zeros((rows * (side + 1) + 1, columns * (side + 1) + 1, channels), dtype=np.uint8)
    for index, image in enumerate(to_uint8(images)):
        row, column = divmod(index, columns)
        top, left = 1 + row * (side + 1), 1 + column * (side + 1)
        canvas[top:top + side, left:left + side] = image.transpose(1, 2, 0)
    save_png(path, canvas)


def save_npy(path: Path, array) -> None:
    """``np.save`` to a temporary file renamed to ``path`` (:func:`~qml_imaging.runs.atomic_replace`): a full disk
    or a crash leaves the old file or none, never a truncated one."""
    import numpy as np

    from qml_imaging.runs import atomic_replace

    with atomic_replace(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array)


def save_png(path: Path, pixels) -> None:
    """``(H, W, C)`` uint8 ``pixels`` (C = 1, 3 or 4) as a PNG, written atomically like :func:`save_npy`."""
    from PIL import Image

    from qml_imaging.runs import atomic_replace

    with atomic_replace(path) as temporary:
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(temporary, format="PNG")


def _save_wav(path: Path, samples, rate: int) -> None:
    """Float WAV at ``rate`` Hz, written atomically like :func:`save_npy`."""
    from qml_imaging.runs import atomic_replace

    soundfile = require("soundfile", "writing a rendered signal as WAV")
    with atomic_replace(path) as temporary:
        soundfile.write(str(temporary), samples, rate, subtype="FLOAT", format="WAV")
