"""Reading laboratory photon-correlation data: coincidence histograms and T2 time-tag streams.

Every reader returns :class:`~qml_imaging.data.histograms.HbtHistograms` (counts ``(B, K)`` on one
delay axis, singles ``(B, 2)`` and acquisition times ``(B,)`` when the file holds them).

Formats: one :class:`Reader` each in :data:`READERS` (ending, leading bytes, reader, the options it
takes, the decoding errors it turns into one line); chosen by the file name's ending
(case-insensitive), and a file whose first bytes do not fit its ending is refused naming the format
it looks like:

- ``.csv`` / ``.txt`` / ``.dat``: columns named by a header (delay and counts in any order, error and
  index columns recognised and not fitted; one histogram per counts column) or, without a header,
  ``delay, counts[, counts ...]``; separated by semicolons, tabs, commas or spaces, decimal commas
  where the separator is not a comma (the rule: :mod:`qml_imaging.data.hbt_text`). The delay unit
  (``ps``, ``ns``, ``us``, ``s``) comes from the header (``delay_ns``, ``delay (ps)``, ``tau [ns]``)
  or a ``# delay_unit: ns`` line, else from ``delay_unit=``; without one the reader refuses rather
  than guess. Optional ``# key: value`` lines: ``singles_1``, ``singles_2`` (counts),
  ``seconds`` (acquisition time, s), ``zero_delay_ns``.
- ``.npy``: ``(K, 2)`` columns delay, counts (needs ``delay_unit=``), or counts ``(K,)`` / ``(B, K)``
  (needs ``axis=``).
- ``.npz``: ``counts`` ``(K,)`` or ``(B, K)``; ``delay_ns`` ``(K,)`` (or ``delay`` with a
  ``delay_unit`` string); optional ``singles`` ``(2,)`` or ``(B, 2)``, ``seconds`` (a number or
  ``(B,)``), ``zero_delay_ns``, ``g2_true`` (simulated files only, for reports). :func:`write_npz`
  writes this format; the simulator writes per-emitter series of short histograms in it.
- ``.phu`` (PicoQuant histogram file, :func:`~qml_imaging.data.picoquant.read_phu`): every curve becomes a row;
  bin ``k`` is at ``k * resolution`` (``MeasDesc_Resolution`` or ``HistResDscr_MDescResolution``);
  singles from ``HistResDscr_SyncRate`` / ``HistResDscr_InputRate`` (counts/s, recorded at the
  start of the measurement) times ``MeasDesc_AcquisitionTime`` (ms) when present.
- ``.ptu`` (PicoQuant time tags, T2 or T3, every record type of
  :data:`~qml_imaging.data.tttr_records.RECORD_TYPES`, streamed in chunks by
  :mod:`qml_imaging.data.picoquant`) and ``.h5`` / ``.hdf5`` (Photon-HDF5, through h5py, the ``[lab]``
  extra; :mod:`qml_imaging.data.photon_hdf5`): the events of the two channels of ``channels=(a, b)``
  (detector inputs by number, ``"sync"`` for the SYNC input) become one histogram of delays
  ``t_b - t_a`` on ``axis`` (default: 215 bins over +-250 ns) in one streaming pass
  (:func:`~qml_imaging.data.tag_streams.correlate_source`); T3 photons are timed absolutely (sync
  number times sync period plus micro time), ``gate_ns`` keeps a micro-time window; singles are the
  events counted per channel, the acquisition time is the stated one (``MeasDesc_AcquisitionTime``,
  ``acquisition_duration``) or else the span of the tags; ``period_ns`` is the laser period the file
  states (:func:`stated_period_ns`).

Errors: ``ValueError`` naming the file and the fix (unknown ending, missing unit, ragged or
non-numeric columns, negative counts, unequal bins, an empty channel, a damaged file); ``ImportError``
naming ``pip install "qml-imaging[lab]"`` when h5py is missing for Photon-HDF5.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qml_imaging.data.hbt_text import read_table
from qml_imaging.data.histograms import UNITS_NS, HbtHistograms
from qml_imaging.data.npy_checks import load_checked
from qml_imaging.data.photon_hdf5 import HDF5_MAGIC, open_photon_hdf5, read_photon_hdf5
from qml_imaging.data.picoquant import PHU_MAGIC, PTU_MAGIC, open_ptu, read_phu, read_ptu
from qml_imaging.data.tag_streams import TagSource
from qml_imaging.physics.delay_axis import DelayAxis
from qml_imaging.runs import save_arrays_atomic

TEXT_ENDINGS = (".csv", ".txt", ".dat")


def read_histograms(path: str | Path, *, delay_unit: str | None = None, axis: DelayAxis | None = None,
                    channels: tuple | None = None, convention: str | None = None,
                    gate_ns: tuple[float, float] | None = None) -> HbtHistograms:
    """Read a histogram file or a time-tag file (see the module docstring for the formats).

    The reader is chosen by the file name's ending in :data:`READERS`, and the file's first bytes must
    fit it (:meth:`Reader.sniff`). ``delay_unit``: ``ps``, ``ns``, ``us`` or ``s`` for files that do not
    state it; ``axis``: the delay axis of bare NPY counts and of time-tag correlations; ``channels``
    (default ``(0, 1)``; inputs by number, ``"sync"`` for SYNC events), ``convention`` (default
    ``all-pairs``), ``gate_ns`` (a T3 micro-time gate): time tags only (see
    :func:`~qml_imaging.data.tag_streams.correlate_source`). An option given
    for a format it does not apply to is refused rather than ignored. ``FileNotFoundError`` for a
    missing file, ``ValueError`` for the rest (a damaged file: one line naming it and the fix).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such histogram file: {path}")
    if delay_unit is not None and delay_unit not in UNITS_NS:
        raise ValueError(f"delay_unit must be one of {sorted(UNITS_NS)}, got {delay_unit!r}")
    reader = reader_for(path)
    given = {"delay_unit": delay_unit, "axis": axis, "channels": channels, "convention": convention,
             "gate_ns": gate_ns}
    _refuse_options(path, reader, given)
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    reader.check_head(path, head)
    try:
        return reader.read(path, **{key: value for key, value in given.items() if key in reader.options and
                                    value is not None})
    except reader.errors as error:
        raise ValueError(f"{path}: a damaged {reader.name} file ({type(error).__name__}: {error}); "
                         f"{reader.fix}") from None


SNIFF_BYTES = 64
"""How many leading bytes :meth:`Reader.sniff` sees."""


@dataclass(frozen=True)
class Reader:
    """One format of :func:`read_histograms`: chosen by ``endings``, recognised by ``sniff``, read by ``read``.

    ``read(path, **options)`` returns :class:`HbtHistograms`; ``options`` names the keyword options it
    takes (``delay_unit``, ``axis``, ``channels``, ``convention``; ``delay_unit`` is ignored by formats
    that state their unit, the others are refused there); ``what`` says in a few words what those
    options act on (for the refusal message). ``magic``: the bytes the file starts with (``None``:
    a text table, recognised by the absence of NUL bytes). ``errors``: the exception types its
    decoder raises on damaged bytes, turned into one line naming the file and ``fix``. ``opener``: for
    time-tag formats, opens the file for streaming without reading its events (its header's period).
    """

    name: str
    endings: tuple[str, ...]
    read: Callable[..., HbtHistograms]
    magic: bytes | None
    options: frozenset[str]
    what: str
    errors: tuple[type[BaseException], ...]
    fix: str
    opener: Callable[[Path], TagSource] | None = None

    def sniff(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` (its first :data:`SNIFF_BYTES` bytes) can be this format."""
        if self.magic is None:
            return b"\0" not in head
        return head.startswith(self.magic)

    def check_head(self, path: Path, head: bytes) -> None:
        """``ValueError`` naming the file when ``head`` is not this format (and the format it looks like)."""
        if self.sniff(head):
            return
        if not head:
            raise ValueError(f"{path}: the file is empty; expected a {self.name} file")
        other = next((r for r in READERS if r.magic is not None and r.sniff(head)), None)
        like = f"; it looks like a {other.name} file: give it the ending {other.endings[0]}" if other else ""
        raise ValueError(f"{path}: not a {self.name} file (it starts with {head[:8]!r}){like}")


def stated_period_ns(path: str | Path) -> float | None:
    """The laser repetition period (ns) a time-tag file's header states (T3 sync period, T2 sync rate, Photon-HDF5
    ``laser_repetition_rate``), read without its events; ``None`` for other files or when none is stated."""
    path = Path(path)
    reader = reader_for(path)
    if reader.opener is None:
        return None
    with path.open("rb") as handle:
        reader.check_head(path, handle.read(SNIFF_BYTES))
    period = reader.opener(path).period_s
    return None if period is None else period * 1e9


def is_time_tags(path: str | Path) -> bool:
    """Whether ``path``'s ending names a time-tag format (its histogram is made on a delay axis one chooses)."""
    return reader_for(Path(path)).opener is not None


def reader_for(path: Path) -> Reader:
    """The :data:`READERS` entry for ``path``'s ending (case-insensitive); ``ValueError`` for an unknown one."""
    ending = path.suffix.lower()
    for reader in READERS:
        if ending in reader.endings:
            return reader
    raise ValueError(f"{path}: unknown histogram file ending {ending!r}; expected one of {', '.join(ENDINGS)}")


def _refuse_options(path: Path, reader: Reader, given: dict) -> None:
    ending = path.suffix.lower()
    if given["axis"] is not None and "axis" not in reader.options:
        users = " and ".join(r.what for r in READERS if "axis" in r.options)
        raise ValueError(f"{path}: a delay axis (--axis) is for {users}; a {ending} file states its own delays")
    if (given["channels"] is not None or given["convention"] is not None) and "channels" not in reader.options:
        users = " and ".join(r.what for r in READERS if "channels" in r.options)
        raise ValueError(f"{path}: channels and convention (--channels, --convention) choose how {users} are "
                         f"correlated; a {ending} file holds histograms already")
    if given["gate_ns"] is not None and "gate_ns" not in reader.options:
        raise ValueError(f"{path}: a micro-time gate (--gate) selects T3 time tags before they are correlated; a "
                         f"{ending} file holds histograms already")


def _read_text(path: Path, delay_unit: str | None = None) -> HbtHistograms:
    """A text table read by its header (:func:`qml_imaging.data.hbt_text.read_table`: the rule is recorded there)."""
    table = read_table(path, delay_unit, UNITS_NS)
    metadata = table.metadata
    axis = DelayAxis.from_centres(table.delay_ns)
    singles = seconds = None
    if "singles_1" in metadata and "singles_2" in metadata:
        singles = np.array([[_number(path, metadata, "singles_1"), _number(path, metadata, "singles_2")]])
        singles = np.repeat(singles, len(table.counts), 0)
    if "seconds" in metadata:
        seconds = _number(path, metadata, "seconds")
    zero = _number(path, metadata, "zero_delay_ns") if "zero_delay_ns" in metadata else None
    return HbtHistograms(table.counts, axis, singles, seconds, zero, str(path))


def _number(path: Path, metadata: dict[str, str], key: str) -> float:
    try:
        return float(metadata[key])
    except ValueError:
        raise ValueError(f"{path}: header value {key}: {metadata[key]!r} is not a number") from None


def _read_npy(path: Path, delay_unit: str | None = None, axis: DelayAxis | None = None) -> HbtHistograms:
    array = load_checked(path)
    if array.ndim == 2 and array.shape[1] == 2 and axis is None:
        if delay_unit is None:
            raise ValueError(f"{path}: an NPY (K, 2) table of delay, counts does not state its delay unit; "
                             f"pass delay_unit (ps, ns, us, s)")
        return HbtHistograms(array[:, 1], DelayAxis.from_centres(array[:, 0] * UNITS_NS[delay_unit]), source=str(path))
    if axis is None:
        raise ValueError(f"{path}: NPY counts of shape {array.shape} need the delay axis (axis=DelayAxis(...)); "
                         f"or store a (K, 2) table of delay, counts")
    return HbtHistograms(array, axis, source=str(path))


def _read_npz(path: Path) -> HbtHistograms:
    with load_checked(path) as data:
        keys = set(data.files)
        if "counts" not in keys:
            raise ValueError(f"{path}: an HBT NPZ needs 'counts' (and 'delay_ns'); it holds {sorted(keys)}")
        if "delay_ns" in keys:
            centres = data["delay_ns"]
        elif "delay" in keys and "delay_unit" in keys:
            unit = str(data["delay_unit"])
            if unit not in UNITS_NS:
                raise ValueError(f"{path}: delay_unit {unit!r} is not one of {sorted(UNITS_NS)}")
            centres = data["delay"] * UNITS_NS[unit]
        else:
            raise ValueError(f"{path}: an HBT NPZ needs 'delay_ns' (bin centres in ns) or 'delay' with 'delay_unit'")
        get = lambda key: data[key] if key in keys else None  # noqa: E731
        zero = get("zero_delay_ns")
        return HbtHistograms(data["counts"], DelayAxis.from_centres(centres), get("singles"), get("seconds"),
                             None if zero is None else float(zero), str(path), get("g2_true"))


def write_npz(path: str | Path, histograms: HbtHistograms) -> Path:
    """Write ``histograms`` in the NPZ format :func:`read_histograms` reads (``counts``, ``delay_ns`` and, when
    present, ``singles``, ``seconds``, ``zero_delay_ns``, ``g2_true``); returns the path."""
    path = Path(path)
    arrays = {"counts": histograms.counts, "delay_ns": histograms.axis.centres_ns()}
    for key in ("singles", "seconds", "g2_true"):
        if getattr(histograms, key) is not None:
            arrays[key] = getattr(histograms, key)
    if histograms.zero_delay_ns is not None:
        arrays["zero_delay_ns"] = np.float64(histograms.zero_delay_ns)
    save_arrays_atomic(path, **arrays)
    return path


def scan_files(folder: str | Path) -> dict[tuple[int, int], Path]:
    """Per-pixel files ``pixel_<row>_<col>.<ending>`` of a scan folder, keyed by ``(row, col)``.

    ``ValueError`` when the folder holds none, or two files for one pixel."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such scan folder: {folder}")
    found: dict[tuple[int, int], Path] = {}
    for path in sorted(folder.iterdir()):
        match = re.fullmatch(r"pixel_(\d+)_(\d+)", path.stem)
        if match and path.suffix.lower() in ENDINGS:
            key = (int(match.group(1)), int(match.group(2)))
            if key in found:
                raise ValueError(f"{folder}: two files for pixel {key}: {found[key].name} and {path.name}")
            found[key] = path
    if not found:
        raise ValueError(f"{folder} holds no per-pixel files named pixel_<row>_<col>.<{'|'.join(e[1:] for e in ENDINGS)}>, "
                         f"and no scan.npz")
    return found


def _read_scan_npz(single: Path) -> tuple[HbtHistograms, tuple[int, int]]:
    with load_checked(single) as data:
        if "counts" not in data.files or data["counts"].ndim != 3 or "delay_ns" not in data.files:
            raise ValueError(f"{single}: a scan NPZ needs 'counts' (H, W, K) and 'delay_ns' (K,)")
        counts = data["counts"]
        height, width = counts.shape[:2]
        singles = data["singles"].reshape(-1, 2) if "singles" in data.files else None
        seconds = data["seconds"] if "seconds" in data.files else None
        if seconds is not None and np.ndim(seconds) == 2:
            seconds = seconds.reshape(-1)
        zero = float(data["zero_delay_ns"]) if "zero_delay_ns" in data.files else None
        return (HbtHistograms(counts.reshape(height * width, -1), DelayAxis.from_centres(data["delay_ns"]),
                              singles, seconds, zero, str(single)), (height, width))


def read_scan(folder: str | Path, **options) -> tuple[HbtHistograms, tuple[int, int]]:
    """A scan as one :class:`HbtHistograms` of ``H * W`` rows (row-major) and its shape ``(H, W)``.

    ``folder/scan.npz`` (``counts`` ``(H, W, K)``, ``delay_ns``, optional ``singles`` ``(H, W, 2)``,
    ``seconds``) or per-pixel files (:func:`scan_files`, one histogram each, on one delay axis;
    missing pixels are an error). ``options`` go to :func:`read_histograms`.
    """
    folder = Path(folder)
    single = folder / "scan.npz"
    if single.is_file():
        try:
            return _read_scan_npz(single)
        except _NUMPY_ERRORS as error:
            raise ValueError(f"{single}: a damaged NumPy .npz file ({type(error).__name__}: {error}); "
                             f"write it again with numpy.savez") from None
    files = scan_files(folder)
    height = max(r for r, _ in files) + 1
    width = max(c for _, c in files) + 1
    if len(files) != height * width:  # counted, not listed: pixel_99999_99999 alone would list 1e10 pixels
        first = next((r, c) for r in range(height) for c in range(width) if (r, c) not in files)
        raise ValueError(f"{folder}: {height * width - len(files):,} of {height * width:,} pixels have no file (first: "
                         f"pixel_{first[0]}_{first[1]}); a scan needs every pixel")
    parts = [read_histograms(files[(r, c)], **options) for r in range(height) for c in range(width)]
    axis = parts[0].axis
    for part in parts:
        if len(part) != 1:
            raise ValueError(f"{part.source}: a pixel file must hold one histogram, it holds {len(part)}")
        if part.axis.bins != axis.bins or abs(part.axis.start_ns - axis.start_ns) > 1e-6 * axis.width_ns \
                or abs(part.axis.width_ns - axis.width_ns) > 1e-6 * axis.width_ns:
            raise ValueError(f"{part.source}: its delay axis differs from {parts[0].source}'s; a scan needs one axis")
    with_singles = [p.has_singles for p in parts]
    if any(with_singles) and not all(with_singles):
        raise ValueError(f"{folder}: some pixel files have singles counts and some do not; give them for all or none")
    singles = np.concatenate([p.singles for p in parts]) if all(with_singles) else None
    seconds = np.concatenate([p.seconds for p in parts]) if all(with_singles) else None
    return (HbtHistograms(np.concatenate([p.counts for p in parts]), axis, singles, seconds, parts[0].zero_delay_ns,
                          str(folder)), (height, width))


_TAG_OPTIONS = frozenset({"axis", "channels", "convention", "gate_ns"})
_TEXT_ERRORS = (UnicodeDecodeError,)
_NUMPY_ERRORS = (zipfile.BadZipFile, EOFError, OSError)
READERS: tuple[Reader, ...] = (
    Reader("text table", TEXT_ENDINGS, _read_text, None,
           frozenset({"delay_unit"}), "text tables", _TEXT_ERRORS, "save it again as plain text (UTF-8)"),
    Reader("NumPy .npy", (".npy",), _read_npy,
           b"\x93NUMPY", frozenset({"delay_unit", "axis"}), "bare NPY counts", _NUMPY_ERRORS,
           "write it again with numpy.save"),
    Reader("NumPy .npz", (".npz",), _read_npz, b"PK", frozenset(), "NPZ histograms",
           _NUMPY_ERRORS, "write it again (qml_imaging.data.hbt_files.write_npz or numpy.savez)"),
    Reader("PicoQuant PHU", (".phu",), read_phu, PHU_MAGIC, frozenset(), "PHU histograms",
           (), "export it again from the PicoQuant software"),
    Reader("PicoQuant PTU", (".ptu",), read_ptu, PTU_MAGIC, _TAG_OPTIONS, "PTU time tags", (),
           "export it again from the PicoQuant software", open_ptu),
    Reader("Photon-HDF5", (".h5", ".hdf5"), read_photon_hdf5, HDF5_MAGIC, _TAG_OPTIONS, "Photon-HDF5 time tags", (),
           "convert it again (phconvert)", open_photon_hdf5),
)
"""The formats :func:`read_histograms` reads, one entry each; a new format is one more entry."""
ENDINGS = tuple(ending for reader in READERS for ending in reader.endings)
