"""Quantum-generated Gaussian noise: construction closed forms and statistical tests per source."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from qml_imaging.quantum.backends import backend_spec
from qml_imaging.quantum.factory import make_executor
from qml_imaging.quantum.noise import (
    NoiseBank,
    measured_bits,
    noise_statistics,
    normals_from_bits,
    von_neumann,
)


def assert_standard_normal(samples):
    stats = noise_statistics(samples)
    n = stats["n"]
    assert abs(stats["mean"]) < 4 / math.sqrt(n)
    assert abs(stats["variance"] - 1) < 4 * math.sqrt(2 / n)
    assert stats["ks_pvalue"] > 1e-3
    assert abs(stats["lag1_correlation"]) < 4 / math.sqrt(n)


def test_bits_map_to_uniforms_and_normals_as_documented():
    half = np.zeros(32, dtype=np.uint8)
    half[0] = 1  # k = 2^31: u just above 1/2
    assert normals_from_bits(half).item() == pytest.approx(0.0, abs=1e-9)
    assert normals_from_bits(np.zeros(32, dtype=np.uint8)).item() == pytest.approx(norm.ppf(2.0**-33), rel=1e-9)
    assert len(normals_from_bits(np.ones(95, dtype=np.uint8))) == 2


def test_von_neumann_keeps_one_bit_per_unequal_pair_of_each_wire():
    column = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=np.uint8)
    assert von_neumann(column[:, None]).tolist() == [0, 1]
    biased = (np.random.default_rng(0).random((40000, 2)) < 0.7).astype(np.uint8)
    assert von_neumann(biased).mean() == pytest.approx(0.5, abs=0.01)


def test_fast_source_noise_bank_passes_the_statistical_tests():
    bank = NoiseBank.generate(20000, seed=3)
    assert_standard_normal(bank.samples)
    assert bank.provenance["backend"]["backend"] == "fast" and bank.provenance["debias"]


@pytest.mark.qiskit
def test_aer_noise_bank_passes_the_statistical_tests():
    bank = NoiseBank.generate(5000, backend_spec("aer_shots"), n_qubits=12, seed=4)
    assert_standard_normal(bank.samples)
    assert bank.provenance["backend"]["backend"] == "qiskit.aer"


@pytest.mark.qiskit
@pytest.mark.parametrize("backend", ["fast", "default.qubit", "aer_shots", "FakeManilaV2"])
def test_every_executor_measures_fair_seeded_bits_of_the_noise_circuit(backend):
    executor = make_executor(backend_spec(backend))
    bits = measured_bits(executor, 3, 4000, seed=11)
    assert bits.shape == (4000, 3) and bits.dtype == np.uint8 and set(np.unique(bits)) <= {0, 1}
    tolerance = 0.06 if backend == "FakeManilaV2" else 5 * 0.5 / math.sqrt(4000)
    assert np.abs(bits.mean(axis=0) - 0.5).max() < tolerance
    np.testing.assert_array_equal(measured_bits(executor, 3, 4000, seed=11), bits)


@pytest.mark.qiskit
def test_debiasing_removes_a_fake_devices_readout_bias():
    bits = measured_bits(make_executor(backend_spec("FakeManilaV2")), 5, 20000, seed=5)
    assert abs(bits.mean() - 0.5) > 4 * 0.5 / math.sqrt(bits.size), "the device's readout errors should bias the bits"
    fair = von_neumann(bits)
    assert abs(fair.mean() - 0.5) < 4 * 0.5 / math.sqrt(fair.size)


def test_bank_hands_out_samples_in_order_saves_and_refuses_to_reuse(tmp_path):
    bank = NoiseBank.generate(100, seed=1)
    first = bank.draw(2, 10)
    assert first.shape == (2, 10) and first.dtype == torch.float32
    torch.testing.assert_close(first.reshape(-1), bank.samples[:20].float())
    bank.save(tmp_path / "bank.npz")
    loaded = NoiseBank.load(tmp_path / "bank.npz")
    torch.testing.assert_close(loaded.samples, bank.samples)
    assert loaded.provenance == bank.provenance
    bank.draw(80)
    with pytest.raises(RuntimeError, match="noise bank exhausted: 0 samples left at offset 100, 1 asked for"):
        bank.draw(1)
    torch.testing.assert_close(bank.window(30, 5), bank.samples[30:35])
    with pytest.raises(RuntimeError, match="5 samples left at offset 95, 10 asked for"):
        bank.window(95, 10)


def test_bank_generated_in_chunks_is_seeded_per_chunk(monkeypatch):
    monkeypatch.setattr(NoiseBank, "CHUNK", 1000)
    bank = NoiseBank.generate(2500, seed=7)
    assert len(bank) == 2500 and bank.provenance["chunk"] == 1000
    assert not torch.equal(bank.samples[:1000], bank.samples[1000:2000])
    torch.testing.assert_close(NoiseBank.generate(2500, seed=7).samples, bank.samples)
    assert_standard_normal(bank.samples)
    with pytest.raises(ValueError, match="n_qubits must be in 1..20"):
        measured_bits(make_executor(backend_spec("fast")), 30, 10)
