"""Simulated photon streams of pulsed single-photon sources, written as T3 files or T2 files with the laser on SYNC
(tests and benchmarks).

Per laser pulse the emitter gives one detected photon with probability ``eta`` (a Bernoulli process: one
photon at most, so no coincidence within a pulse) and an uncorrelated source a Poisson number of mean
``mu``; each photon leaves an exponential time ``lifetime`` after its pulse and goes to detector 0 or 1
with equal probability. The pulsed g2(0) is ``(2 eta mu + mu^2) / (eta + mu)^2`` (the emitter alone pairs
with nothing of its own pulse), so ``mu = eta (1 / sqrt(1 - g2) - 1)`` gives a chosen g2(0).
"""

import math

import numpy as np

from tests.data.ptu_writer import MARKER, PHOTON, SYNC, write_ptu


def pulsed_photons(rng, g2_zero, period_ps, lifetime_ps, pulses, eta=0.05):
    """``(times (N,) int64 ps sorted, detector (N,) int, true g2(0))`` of ``pulses`` laser pulses."""
    mu = eta * (1 / math.sqrt(1 - g2_zero) - 1)
    emitter = np.cumsum(rng.geometric(eta, int(pulses * eta * 1.2) + 100)) - 1
    emitter = emitter[emitter < pulses]
    other = rng.integers(0, pulses, rng.poisson(mu * pulses))
    pulse = np.concatenate([emitter, other])
    times = pulse * period_ps + np.round(rng.exponential(lifetime_ps, len(pulse))).astype(np.int64)
    order = np.argsort(times, kind="stable")
    realised_mu = len(other) / pulses
    realised_eta = len(emitter) / pulses
    truth = (2 * realised_eta * realised_mu + realised_mu**2) / (realised_eta + realised_mu) ** 2
    return times[order], rng.integers(0, 2, len(pulse))[order], truth


def write_t3(path, times_ps, detector, period_ps, micro_ps=4, record_type="MultiHarp T3"):
    """A T3 file of the photons: sync number ``t // period``, micro time ``(t mod period) / micro_ps``."""
    sync = times_ps // period_ps
    dtime = (times_ps - sync * period_ps) // micro_ps
    return write_ptu(path, record_type, sync, np.full(len(sync), PHOTON), detector, dtime,
                     resolution_s=period_ps * 1e-12, micro_s=micro_ps * 1e-12, seconds=None)


def write_t2_with_sync(path, times_ps, detector, period_ps, pulses, record_type="HydraHarp v2 T2", with_sync=True):
    """A T2 file of the photons (1 ps tags) and, with ``with_sync``, a SYNC event at every laser pulse."""
    syncs = np.arange(pulses, dtype=np.int64) * period_ps if with_sync else np.zeros(0, dtype=np.int64)
    time = np.concatenate([times_ps, syncs])
    kind = np.concatenate([np.full(len(times_ps), PHOTON), np.full(len(syncs), SYNC)])
    channel = np.concatenate([detector, np.zeros(len(syncs), dtype=np.int64)])
    order = np.argsort(time, kind="stable")
    return write_ptu(path, record_type, time[order], kind[order], channel[order], resolution_s=1e-12,
                     seconds=pulses * period_ps * 1e-12, sync_rate=round(1e12 / period_ps))


def marker_scan_events(rng, image_rates, dwell_s, retrace_s=1e-3, lifetime_s=5e-9, background_cps=0.0, frames=1):
    """Photons of a raster scan with line start (marker bit 1), line stop (bit 2) and frame (bit 4) markers.

    ``image_rates`` ``(E, H, W)``: each emitter's detected rate (counts/s) with the beam on each pixel. Each
    emitter is one single-photon source (a renewal process of rate up to its peak, thinned by its rate at the
    beam's pixel, which keeps g2(0) = 0); ``background_cps`` is Poisson. Returns ``(time ps, kind, channel)``
    sorted, ready for :func:`tests.data.ptu_writer.write_ptu`."""
    _, height, width = image_rates.shape
    line_s = width * dwell_s
    starts = (np.arange(frames * height) * (line_s + retrace_s))
    total = starts[-1] + line_s
    times = []
    for rates in image_rates:
        peak = rates.max()
        gaps = rng.exponential(1 / peak, int(peak * total * 1.1) + 10) + rng.exponential(lifetime_s, int(peak * total * 1.1) + 10)
        emitted = np.cumsum(gaps)
        emitted = emitted[emitted < total]
        line = np.searchsorted(starts, emitted, side="right") - 1
        column = ((emitted - starts[line]) // dwell_s).astype(int)
        inside = column < width
        rate = np.where(inside, rates[line % height, np.minimum(column, width - 1)], 0.0)
        times.append(emitted[rng.random(len(emitted)) < rate / peak])
    times.append(rng.uniform(0, total, rng.poisson(background_cps * total)))
    light = np.round(np.concatenate(times) * 1e12).astype(np.int64)
    marks = np.round(np.concatenate([starts, starts + line_s, starts[::height]]) * 1e12).astype(np.int64)
    bits = np.concatenate([np.full(len(starts), 1), np.full(len(starts), 2), np.full(frames, 4)])
    time = np.concatenate([light, marks])
    kind = np.concatenate([np.full(len(light), PHOTON), np.full(len(marks), MARKER)])
    channel = np.concatenate([rng.integers(0, 2, len(light)), bits])
    order = np.lexsort((-kind, time))  # a frame marker before the line start at the same time
    return time[order], kind[order], channel[order]
