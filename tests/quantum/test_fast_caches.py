"""The fast simulator's caches are bounded in bytes and released with the last layer that used them."""

import subprocess
import sys

import torch

from qml_imaging.quantum.fast.caches import TensorCache
from tests.conftest import REPO_ROOT


def test_a_tensor_cache_keeps_at_most_its_bytes_dropping_the_least_recently_used():
    calls = []

    def make(n):
        calls.append(n)
        return torch.zeros(n, dtype=torch.uint8)

    cache = TensorCache(make, max_bytes=1000)
    cache(400), cache(300), cache(400), cache(200)
    assert calls == [400, 300, 200] and cache.bytes == 900
    cache(250)  # 1150 bytes: the least recently used (300) goes
    assert list(cache.entries) == [(400,), (200,), (250,)] and cache.bytes == 850
    assert cache(2000).numel() == 2000 and (2000,) not in cache.entries  # too large to keep
    cache.cache_clear()
    assert cache.bytes == 0 and not cache.entries


def test_deleting_the_last_layer_releases_the_simulator_caches():
    script = """
import gc
import torch
from qml_imaging.quantum.circuits import qiren_block
from qml_imaging.quantum.fast import caches, plan
from qml_imaging.quantum.layer import QuantumLayer

layer = QuantumLayer(qiren_block(14, reuploads=1, sublayers=1))
layer(torch.rand(4, 14)).sum().backward()
held = caches.cached_bytes(), len(plan._PLANS)
del layer
gc.collect()
print(*held, caches.cached_bytes(), len(plan._PLANS))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    held_bytes, held_plans, after_bytes, after_plans = (int(value) for value in done.stdout.split())
    assert held_bytes > 0 and held_plans > 0
    assert after_bytes == 0 and after_plans == 0


def test_building_a_plan_draws_nothing_from_the_global_generators():
    """Plans are built lazily, on a circuit's first call in a process: a resumed run builds them after its
    checkpoint's RNG state is restored, so drawing from torch's generator there would change its numbers."""
    from qml_imaging.quantum.circuits import bottleneck_ansatz, qiren_block
    from qml_imaging.quantum.fast import caches
    from qml_imaging.quantum.layer import QuantumLayer

    layers = [QuantumLayer(qiren_block(3, reuploads=1, sublayers=2)), QuantumLayer(bottleneck_ansatz(4, 2))]
    inputs = [torch.linspace(0, 1, 6).reshape(2, 3), torch.linspace(0, 1, 8).reshape(2, 4)]
    caches.release()
    state = torch.get_rng_state()
    for layer, x in zip(layers, inputs, strict=True):
        layer(x).sum().backward()
    assert torch.equal(torch.get_rng_state(), state)
