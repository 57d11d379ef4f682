"""Photon-HDF5 files (Ingargiola et al., Biophys. J. 110, 26 (2016); photon-hdf5.org), read through h5py in chunks.

Read: ``photon_data/timestamps`` (int64 macro times), ``photon_data/timestamps_specs/timestamps_unit``
(s), ``photon_data/detectors`` (detector ids; the channels of :func:`~qml_imaging.data.tag_streams.correlate_source`),
optional ``photon_data/nanotimes`` with ``photon_data/nanotimes_specs/tcspc_unit`` (s) for TCSPC data,
``photon_data/measurement_specs/laser_repetition_rate`` (Hz) and ``acquisition_duration`` (s). With
nanotimes the data are T3-like: a photon's time is ``timestamp * timestamps_unit + nanotime * tcspc_unit``
(phconvert writes PicoQuant T3 sync counts as timestamps with the sync period as their unit); without,
T2-like. :func:`write_photon_hdf5` writes these fields (the tests' round trips).

h5py is the optional ``[lab]`` extra: imported when a file is read, with a one-line error naming the
install command when it is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from qml_imaging.data.catalog import CONVENTIONS
from qml_imaging.data.histograms import HbtHistograms
from qml_imaging.data.tag_streams import CHUNK_RECORDS, TagSource, correlate_source
from qml_imaging.data.tttr_records import PHOTON, Events
from qml_imaging.extras import require
from qml_imaging.physics.delay_axis import DelayAxis

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_PHOTONS = "photon_data"


def _h5py():
    return require("h5py", "reading Photon-HDF5 files")


def open_photon_hdf5(path: str | Path) -> TagSource:
    """A Photon-HDF5 file opened for streaming (see the module docstring). ``ValueError`` naming the file and the
    missing field for a file that is not Photon-HDF5 or is damaged."""
    h5py = _h5py()
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            fields = _fields(path, handle)
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error}); write it again (phconvert or "
                         f"qml_imaging.data.photon_hdf5.write_photon_hdf5)") from None
    count, unit, tcspc, rate, duration = fields
    t3 = tcspc is not None
    period = unit if t3 else (1.0 / rate if rate else None)
    return TagSource(str(path), "Photon-HDF5", t3, tcspc if t3 else unit, period, duration,
                     partial(_chunks, path, count, t3))


def _fields(path: Path, handle) -> tuple[int, float, float | None, float | None, float | None]:
    def value(name: str, required: bool = True) -> float | None:
        if name not in handle:
            if required:
                raise ValueError(f"{path}: not a Photon-HDF5 file: it lacks /{name}")
            return None
        number = float(np.asarray(handle[name][()]).reshape(-1)[0])
        if not np.isfinite(number) or number <= 0:
            raise ValueError(f"{path}: /{name} is {number}; expected a positive number")
        return number

    for name in ("timestamps", "detectors"):
        if f"{_PHOTONS}/{name}" not in handle:
            raise ValueError(f"{path}: not a Photon-HDF5 file: it lacks /{_PHOTONS}/{name}")
    count = len(handle[f"{_PHOTONS}/timestamps"])
    if len(handle[f"{_PHOTONS}/detectors"]) != count:
        raise ValueError(f"{path}: /{_PHOTONS}/detectors and timestamps differ in length")
    unit = value(f"{_PHOTONS}/timestamps_specs/timestamps_unit")
    tcspc = value(f"{_PHOTONS}/nanotimes_specs/tcspc_unit") if f"{_PHOTONS}/nanotimes" in handle else None
    rate = value(f"{_PHOTONS}/measurement_specs/laser_repetition_rate", required=False)
    return count, unit, tcspc, rate, value("acquisition_duration", required=False)


def _chunks(path: Path, count: int, t3: bool, size: int) -> Iterator[Events]:
    try:
        with _h5py().File(path, "r") as handle:
            photons = handle[_PHOTONS]
            for first in range(0, count, size):
                yield _events(photons, slice(first, first + size), t3)
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: a damaged Photon-HDF5 file ({error}); convert it again (phconvert)") from None


def _events(photons, part: slice, t3: bool) -> Events:
    time = photons["timestamps"][part].astype(np.int64)
    channel = photons["detectors"][part].astype(np.int16)
    if channel.size and channel.min() < 0:
        raise ValueError(f"detector ids must be >= 0, found {int(channel.min())}")
    dtime = photons["nanotimes"][part].astype(np.int64) if t3 else None
    return Events(time, np.full(len(time), PHOTON, dtype=np.uint8), channel, dtime)


def write_photon_hdf5(path: str | Path, timestamps: np.ndarray, detectors: np.ndarray, timestamps_unit: float, *,
                      nanotimes: np.ndarray | None = None, tcspc_unit: float | None = None,
                      laser_repetition_rate: float | None = None, acquisition_duration: float | None = None) -> Path:
    """Write the Photon-HDF5 fields this module reads (``timestamps`` int64 ``(N,)`` sorted, ``detectors`` ``(N,)``,
    units in s, ``nanotimes`` ``(N,)`` with ``tcspc_unit`` for TCSPC data); returns the path. Written to a
    temporary name and renamed."""
    h5py = _h5py()
    path = Path(path)
    partial_path = path.with_name(path.name + ".partial")
    with h5py.File(partial_path, "w") as handle:
        photons = handle.create_group(_PHOTONS)
        photons["timestamps"] = np.asarray(timestamps, dtype=np.int64)
        photons["detectors"] = np.asarray(detectors, dtype=np.uint8)
        photons["timestamps_specs/timestamps_unit"] = float(timestamps_unit)
        if nanotimes is not None:
            photons["nanotimes"] = np.asarray(nanotimes, dtype=np.uint16)
            photons["nanotimes_specs/tcspc_unit"] = float(tcspc_unit)
        if laser_repetition_rate is not None:
            photons["measurement_specs/laser_repetition_rate"] = float(laser_repetition_rate)
        if acquisition_duration is not None:
            handle["acquisition_duration"] = float(acquisition_duration)
    partial_path.replace(path)
    return path


def read_photon_hdf5(path: str | Path, *, axis: DelayAxis = DelayAxis(), channels: tuple = (0, 1),
                     convention: str = "all-pairs", gate_ns: tuple[float, float] | None = None,
                     chunk_records: int = CHUNK_RECORDS) -> HbtHistograms:
    """A Photon-HDF5 file's photons on ``channels=(a, b)`` (detector ids) correlated into one histogram of
    ``t_b - t_a`` on ``axis`` in one streaming pass (:func:`~qml_imaging.data.tag_streams.correlate_source`)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return correlate_source(open_photon_hdf5(path), axis, channels, convention=convention, gate_ns=gate_ns,
                            chunk_records=chunk_records)
