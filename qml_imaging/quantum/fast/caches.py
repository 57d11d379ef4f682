"""The fast simulator's caches of tensors: bounded in bytes, and released with the last executor using them.

Index tables such as the ``(2**n, n)`` basis bits of a 20-qubit state (168 MB) are worth keeping
between calls, but not without limit and not after the layers that needed them are gone.
:func:`tensor_cache` memoises a function of hashable arguments returning a tensor in a
least-recently-used cache holding at most ``max_bytes`` (a result larger than that is returned, not
kept). :func:`hold` ties the caches to an owner (a :class:`~qml_imaging.quantum.executors.FastExecutor`,
which its quantum layer keeps): when the last owner is garbage collected, every cache and the plans
are cleared (:func:`release`), so deleting a model returns the memory its simulations kept.
"""

from __future__ import annotations

import collections
import functools
import weakref
from collections.abc import Callable
from typing import Any

import torch

_CACHES: list[TensorCache] = []
_ON_RELEASE: list[Callable[[], None]] = []
_owners = 0  # live owners (see hold)


class TensorCache:
    """A least-recently-used cache of ``function``'s tensors, holding at most ``max_bytes`` of them."""

    def __init__(self, function: Callable[..., torch.Tensor], max_bytes: int):
        self.function, self.max_bytes = function, max_bytes
        self.entries: collections.OrderedDict[tuple, torch.Tensor] = collections.OrderedDict()
        self.bytes = 0
        functools.update_wrapper(self, function)

    def __call__(self, *arguments: Any) -> torch.Tensor:
        if arguments in self.entries:
            self.entries.move_to_end(arguments)
            return self.entries[arguments]
        value = self.function(*arguments)
        size = value.element_size() * value.nelement()
        if size <= self.max_bytes:
            self.entries[arguments] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, dropped = self.entries.popitem(last=False)
                self.bytes -= dropped.element_size() * dropped.nelement()
        return value

    def cache_clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


def tensor_cache(max_bytes: int) -> Callable[[Callable[..., torch.Tensor]], TensorCache]:
    """Decorator: memoise a function returning a tensor in a :class:`TensorCache` of ``max_bytes`` bytes."""
    def wrap(function: Callable[..., torch.Tensor]) -> TensorCache:
        cache = TensorCache(function, max_bytes)
        _CACHES.append(cache)
        return cache
    return wrap


def on_release(clear: Callable[[], None]) -> None:
    """Call ``clear`` too when the caches are released (the plan cache registers itself here)."""
    _ON_RELEASE.append(clear)


def hold(owner: object) -> None:
    """Keep the caches while ``owner`` lives; when the last owner is collected, :func:`release` them."""
    global _owners
    _owners += 1
    weakref.finalize(owner, _let_go)


def _let_go() -> None:
    global _owners
    _owners -= 1
    if _owners == 0:
        release()


def release() -> None:
    """Empty every tensor cache and the plan cache now."""
    for cache in _CACHES:
        cache.cache_clear()
    for clear in _ON_RELEASE:
        clear()


def cached_bytes() -> int:
    """Bytes the tensor caches hold now."""
    return sum(cache.bytes for cache in _CACHES)
