"""Fast training steps where they are safe: bfloat16 autocast and channels_last (``train.precision``,
``train.channels_last``).

**Autocast** runs only the forward pass of the modules whose class declares ``autocast_safe = True``
(the convolutional networks: the QCRB and diffusion U-Nets, the GAN discriminator), and only while
the :class:`~qml_imaging.training.Trainer` computes a training loss. Their floating outputs come back
as float32, so losses, metrics, evaluation (the QCRB evaluation runs in float64), the quantum layers
(which switch autocast off inside, see :class:`~qml_imaging.quantum.layer.QuantumLayer`) and the
physics never see a reduced-precision tensor. ``precision: auto`` picks bfloat16 on a CPU with native
bfloat16 instructions (AMX-BF16 tiles or AVX512-BF16, as torch reports them) and on CUDA (float16 with
loss scaling where the GPU lacks bfloat16), else float32. Mixed precision itself: Micikevicius et al.
2018, "Mixed Precision Training"; the mechanism is :class:`torch.autocast`.

**channels_last** stores the 4-D weights of a model in NHWC order for the duration of a fit (oneDNN's
convolutions then run in that layout); the model is given back in the default layout when the fit
ends, so evaluation and saved weights are exactly as without it. ``auto`` applies it to the models
whose class sets ``channels_last_pays = True`` (the QCRB U-Net; the diffusion U-Net, whose GroupNorm
layers are slower in NHWC, does not).

``torch.compile`` is not used: over a whole run on a CPU it costs more than it saves (see
``benchmarks/training_throughput.py --compile`` and ``docs/results.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from qml_imaging.environment import autocast_choice

def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``precision`` (one of :data:`~qml_imaging.environment.PRECISIONS`) means on ``device``;
    None for float32. Errors as :func:`qml_imaging.environment.autocast_choice`."""
    name = autocast_choice(precision, device.type)
    return None if name is None else getattr(torch, name)


def uses_channels_last(setting: bool | str, module: nn.Module) -> bool:
    """Whether ``train.channels_last`` (``"auto"``, True, False) puts ``module`` in channels_last: ``auto``
    does when one of its sub-modules' classes sets ``channels_last_pays = True`` (measured to gain:
    ``benchmarks/training_throughput.py``). Raises ValueError for another value."""
    if setting == "auto":
        return any(getattr(type(layer), "channels_last_pays", False) for layer in module.modules())
    if not isinstance(setting, bool):
        raise ValueError(f"train.channels_last: expected auto, true or false, got {setting!r}")
    return setting


def autocast_regions(module: nn.Module) -> list[nn.Module]:
    """The outermost sub-modules of ``module`` (itself included) whose class sets ``autocast_safe = True``."""
    regions: list[nn.Module] = []

    def visit(part: nn.Module) -> None:
        if getattr(type(part), "autocast_safe", False):
            regions.append(part)
            return
        for child in part.children():
            visit(child)

    visit(module)
    return regions


class StepPrecision:
    """The fast-step choices of one fit of ``module`` on ``device``: ``dtype`` (autocast, None = float32)
    and ``channels_last``. :meth:`fit_layout` holds the layout for a fit; :meth:`autocast` wraps the
    forward passes of the autocast-safe regions while a loss is computed."""

    def __init__(self, module: nn.Module, device: torch.device, dtype: torch.dtype | None, channels_last: bool):
        self.module = module
        self.device_type = device.type
        self.dtype = dtype
        self.channels_last = channels_last
        self.regions = autocast_regions(module) if dtype is not None else []

    def describe(self) -> dict[str, Any]:
        """The choices as recorded in ``report.json`` and the fit's first metrics record."""
        return {"autocast": str(self.dtype).removeprefix("torch.") if self.regions else "none",
                "autocast_modules": sorted({type(region).__name__ for region in self.regions}),
                "channels_last": self.channels_last, "compile": False}

    @contextmanager
    def fit_layout(self) -> Iterator[None]:
        """The model in channels_last (when chosen) inside the block, in the default layout after it."""
        if not self.channels_last:
            yield
            return
        self.module.to(memory_format=torch.channels_last)
        try:
            yield
        finally:
            self.module.to(memory_format=torch.contiguous_format)

    @contextmanager
    def autocast(self) -> Iterator[None]:
        """Inside the block, each autocast-safe region's forward runs under autocast and returns float32."""
        dtype = self.dtype
        if dtype is None:
            yield
            return
        for region in self.regions:
            region.forward = _autocast_forward(region.forward, self.device_type, dtype)
        try:
            yield
        finally:
            for region in self.regions:
                del region.forward


def _autocast_forward(forward: Callable[..., Any], device_type: str, dtype: torch.dtype) -> Callable[..., Any]:
    @functools.wraps(forward)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            output = forward(*args, **kwargs)
        return _as_float32(output)

    return wrapped


def _as_float32(output: Any) -> Any:
    """Every reduced-precision floating tensor in ``output`` (a tensor or a tuple/list/dict of them) as float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype in (torch.bfloat16, torch.float16) else output
    if isinstance(output, (tuple, list)):
        return type(output)(_as_float32(item) for item in output)
    if isinstance(output, dict):
        return {key: _as_float32(value) for key, value in output.items()}
    return output
