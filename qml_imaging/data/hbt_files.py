"""Reading laboratory photon-correlation data: coincidence histograms and T2 time-tag streams.

Every reader returns :class:`HbtHistograms`: ``counts`` ``(B, K)`` float64 coincidences on one
:class:`~qml_imaging.physics.hbt.DelayAxis` (bin centres in ns, any width and span), and, when the
file holds them, the singles counts of the two channels ``(B, 2)`` and the acquisition times
``(B,)`` in s, from which the uncorrelated level per bin is ``N1 N2 w / T``
(:meth:`HbtHistograms.baseline`).

Formats (chosen by the file name's ending, case-insensitive):

- ``.csv`` / ``.txt`` / ``.dat``: columns ``delay, counts[, counts ...]`` (bin centres; one
  histogram per counts column), separated by commas, semicolons, tabs or spaces. The delay unit
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
- ``.phu`` (PicoQuant histogram file, read with ``ptufile.PhuFile``): every curve becomes a row;
  bin ``k`` is at ``k * resolution`` (``MeasDesc_Resolution`` or ``HistResDscr_MDescResolution``);
  singles from ``HistResDscr_SyncRate`` / ``HistResDscr_InputRate`` (counts/s, recorded at the
  start of the measurement) times ``MeasDesc_AcquisitionTime`` (ms) when present.
- ``.ptu`` in T2 mode (PicoQuant time tags, decoded with ``ptufile.PtuFile.decode_records``): the
  photons of the two channels of ``channels=(a, b)`` become one histogram of delays
  ``t_b - t_a`` on ``axis`` (default: 215 bins over +-250 ns) by :func:`correlate`; singles are the
  photons counted per channel, the acquisition time is ``MeasDesc_AcquisitionTime`` (ms) when the
  file has it, else the span of the records (ptufile's ``acquisition_time``).

Errors: ``ValueError`` naming the file and the fix (unknown ending, missing unit, ragged or
non-numeric columns, negative counts, unequal bins, a T3 file); ``ImportError`` naming
``pip install ptufile`` when PicoQuant support is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from qml_imaging.physics.hbt import DelayAxis, baseline_from_singles

UNITS_NS = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "µs": 1e3, "s": 1e9}
TEXT_ENDINGS = (".csv", ".txt", ".dat")
ENDINGS = (*TEXT_ENDINGS, ".npy", ".npz", ".phu", ".ptu")
CONVENTIONS = ("all-pairs", "start-stop")


@dataclass(frozen=True)
class HbtHistograms:
    """Histograms ``counts`` ``(B, K)`` (float64 counts >= 0) on ``axis``; ``singles`` ``(B, 2)`` photons per
    channel and ``seconds`` ``(B,)`` acquisition times in s, or ``None`` when the file lacks them;
    ``zero_delay_ns`` from the file (``None``: unknown, fit it); ``source``: where it was read."""

    counts: np.ndarray
    axis: DelayAxis
    singles: np.ndarray | None = None
    seconds: np.ndarray | None = None
    zero_delay_ns: float | None = None
    source: str = ""
    g2_true: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, dtype=np.float64)
        if counts.ndim == 1:
            counts = counts[None]
        where = f" in {self.source}" if self.source else ""
        if counts.ndim != 2 or counts.shape[1] != self.axis.bins:
            raise ValueError(f"counts{where} must be (B, {self.axis.bins}) for its delay axis, got {counts.shape}")
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise ValueError(f"counts{where} must be finite and >= 0 (coincidence counts)")
        object.__setattr__(self, "counts", counts)
        batch = len(counts)
        if self.singles is not None:
            singles = np.asarray(self.singles, dtype=np.float64).reshape(-1, 2) if np.size(self.singles) else None
            if singles is None or singles.shape != (batch, 2) or not np.all(np.isfinite(singles)) or np.any(singles < 0):
                raise ValueError(f"singles{where} must be finite counts >= 0 of shape ({batch}, 2), got "
                                 f"{np.shape(self.singles)}")
            object.__setattr__(self, "singles", singles)
        if self.seconds is not None:
            seconds = np.broadcast_to(np.asarray(self.seconds, dtype=np.float64), (batch,)).copy()
            if not np.all(np.isfinite(seconds)) or np.any(seconds <= 0):
                raise ValueError(f"seconds{where} (acquisition time) must be finite and > 0")
            object.__setattr__(self, "seconds", seconds)
        if self.g2_true is not None:
            object.__setattr__(self, "g2_true", np.broadcast_to(np.asarray(self.g2_true, dtype=np.float64), (batch,)).copy())

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def has_singles(self) -> bool:
        return self.singles is not None and self.seconds is not None

    def baseline(self) -> torch.Tensor | None:
        """``(B,)`` float64 uncorrelated coincidences per bin ``N1 N2 w / T``, or ``None`` without singles and time."""
        if not self.has_singles:
            return None
        return baseline_from_singles(self.singles[:, 0], self.singles[:, 1], self.axis.width_ns, self.seconds)

    def rates(self) -> np.ndarray | None:
        """``(B,)`` mean singles rate per channel ``(N1 + N2) / 2T`` in counts/s, or ``None``."""
        return None if not self.has_singles else self.singles.mean(1) / self.seconds


def read_histograms(path: str | Path, *, delay_unit: str | None = None, axis: DelayAxis | None = None,
                    channels: tuple[int, int] | None = None, convention: str | None = None) -> HbtHistograms:
    """Read a histogram file or a PTU T2 stream (see the module docstring for the formats).

    ``delay_unit``: ``ps``, ``ns``, ``us`` or ``s`` for files that do not state it; ``axis``: the delay
    axis of bare NPY counts and of PTU correlations; ``channels`` (default ``(0, 1)``), ``convention``
    (default ``all-pairs``): PTU only (see :func:`correlate`). An option given for a format it does not
    apply to is refused rather than ignored. ``FileNotFoundError`` for a missing file, ``ValueError``
    for the rest.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such histogram file: {path}")
    ending = path.suffix.lower()
    if delay_unit is not None and delay_unit not in UNITS_NS:
        raise ValueError(f"delay_unit must be one of {sorted(UNITS_NS)}, got {delay_unit!r}")
    if axis is not None and ending in ENDINGS and ending not in (".npy", ".ptu"):
        raise ValueError(f"{path}: a delay axis (--axis) is for bare NPY counts and PTU time tags; a {ending} "
                         f"file states its own delays")
    if (channels is not None or convention is not None) and ending in ENDINGS and ending != ".ptu":
        raise ValueError(f"{path}: channels and convention (--channels, --convention) choose how PTU time tags are "
                         f"correlated; a {ending} file holds histograms already")
    if ending in TEXT_ENDINGS:
        return _read_text(path, delay_unit)
    if ending == ".npy":
        return _read_npy(path, delay_unit, axis)
    if ending == ".npz":
        return _read_npz(path)
    if ending == ".phu":
        return _read_phu(path)
    if ending == ".ptu":
        return read_ptu(path, axis=axis or DelayAxis(), channels=channels or (0, 1),
                        convention=convention or "all-pairs")
    raise ValueError(f"{path}: unknown histogram file ending {ending!r}; expected one of {', '.join(ENDINGS)}")


def _unit_in(text: str) -> str | None:
    match = re.search(r"(?:^|[\s_(\[])(ps|ns|us|µs|s)(?:$|[\s)\]])", text.strip().lower())
    return match.group(1) if match else None


def _read_text(path: Path, delay_unit: str | None) -> HbtHistograms:
    metadata: dict[str, str] = {}
    header_unit = None
    rows: list[list[float]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, separator, value = stripped.lstrip("#").partition(":")
            if not separator:
                key, separator, value = stripped.lstrip("#").partition("=")
            if separator:
                metadata[key.strip().lower()] = value.strip()
            continue
        cells = [c for c in re.split(r"[,;\t ]+", stripped) if c]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if rows:
                raise ValueError(f"{path}:{number}: non-numeric row {stripped!r} after the data started") from None
            header_unit = _unit_in(re.split(r"[,;\t]", stripped)[0])
    if not rows:
        raise ValueError(f"{path}: no numeric rows (expected columns delay, counts)")
    widths = {len(r) for r in rows}
    if len(widths) != 1 or min(widths) < 2:
        raise ValueError(f"{path}: every row needs the same number (>= 2) of columns delay, counts[, ...]; "
                         f"found rows of {sorted(widths)} columns")
    stated = metadata.get("delay_unit") or header_unit
    if delay_unit is not None and stated in UNITS_NS and delay_unit != stated:
        raise ValueError(f"{path}: the file states delays in {stated}, but delay_unit {delay_unit} was given; "
                         f"leave delay_unit unset for files that state their unit")
    unit = delay_unit or stated
    if unit not in UNITS_NS:
        raise ValueError(f"{path}: the delay unit is not stated; name it in the header (delay_ns, delay (ps)), "
                         f"add a '# delay_unit: ns' line, or pass delay_unit (ps, ns, us, s)")
    table = np.array(rows, dtype=np.float64)
    axis = DelayAxis.from_centres(table[:, 0] * UNITS_NS[unit])
    singles = seconds = None
    if "singles_1" in metadata and "singles_2" in metadata:
        singles = np.array([[_number(path, metadata, "singles_1"), _number(path, metadata, "singles_2")]])
        singles = np.repeat(singles, table.shape[1] - 1, 0)
    if "seconds" in metadata:
        seconds = _number(path, metadata, "seconds")
    zero = _number(path, metadata, "zero_delay_ns") if "zero_delay_ns" in metadata else None
    return HbtHistograms(table[:, 1:].T, axis, singles, seconds, zero, str(path))


def _number(path: Path, metadata: dict[str, str], key: str) -> float:
    try:
        return float(metadata[key])
    except ValueError:
        raise ValueError(f"{path}: header value {key}: {metadata[key]!r} is not a number") from None


def _read_npy(path: Path, delay_unit: str | None, axis: DelayAxis | None) -> HbtHistograms:
    array = np.load(path, allow_pickle=False)
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
    with np.load(path, allow_pickle=False) as data:
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
    arrays = {"counts": histograms.counts, "delay_ns": histograms.axis.centres().numpy()}
    for key in ("singles", "seconds", "g2_true"):
        if getattr(histograms, key) is not None:
            arrays[key] = getattr(histograms, key)
    if histograms.zero_delay_ns is not None:
        arrays["zero_delay_ns"] = np.float64(histograms.zero_delay_ns)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


def _ptufile():
    try:
        import ptufile
    except ImportError as error:  # pragma: no cover - ptufile is a dependency
        raise ImportError("reading PicoQuant PTU/PHU files needs ptufile: pip install ptufile") from error
    return ptufile


def _read_phu(path: Path) -> HbtHistograms:
    ptufile = _ptufile()
    try:
        with ptufile.PhuFile(path) as phu:
            curves = [np.asarray(h, dtype=np.float64) for h in phu.histograms()]
            tags = dict(phu.tags)
    except ptufile.PqFileError as error:
        raise ValueError(f"{path}: not a readable PicoQuant PHU file ({error})") from None
    if not curves or len({len(c) for c in curves}) != 1:
        raise ValueError(f"{path}: the PHU file holds {len(curves)} curves of lengths {sorted({len(c) for c in curves})}; "
                         f"expected curves of one length")
    resolutions = tags.get("HistResDscr_MDescResolution") or [tags.get("MeasDesc_Resolution", 0.0)] * len(curves)
    resolution = float(resolutions[0])
    if resolution <= 0 or any(abs(float(r) - resolution) > 1e-6 * resolution for r in resolutions):
        raise ValueError(f"{path}: the PHU curves need one positive bin resolution, got {resolutions}")
    width_ns = resolution * 1e9
    axis = DelayAxis(bins=len(curves[0]), span_ns=width_ns * len(curves[0]), first_ns=0.0)
    seconds = singles = None
    milliseconds = float(tags.get("MeasDesc_AcquisitionTime", 0) or 0)
    if milliseconds > 0:
        seconds = milliseconds * 1e-3
        sync, rate = tags.get("HistResDscr_SyncRate"), tags.get("HistResDscr_InputRate")
        if sync is not None and rate is not None:
            singles = np.column_stack([np.asarray(sync, dtype=np.float64), np.asarray(rate, dtype=np.float64)]) * seconds
    return HbtHistograms(np.stack(curves), axis, singles, seconds, None, str(path))


def read_ptu(path: str | Path, *, axis: DelayAxis = DelayAxis(), channels: tuple[int, int] = (0, 1),
             convention: str = "all-pairs") -> HbtHistograms:
    """A T2 PTU file's photons on ``channels=(a, b)`` correlated into one histogram of ``t_b - t_a`` on ``axis``.

    Records are decoded by ``ptufile`` (``PtuFile.decode_records``: ``time`` in units of the
    global resolution, ``channel`` < 0 for overflows and markers); see :func:`correlate` for
    ``convention``. Singles are the photons per channel; the acquisition time as in the module
    docstring. ``ValueError`` for T3 files, missing channels or an empty stream.
    """
    ptufile = _ptufile()
    path = Path(path)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    try:
        with ptufile.PtuFile(path) as ptu:
            if ptu.is_t3:
                raise ValueError(f"{path}: a T3 PTU file (photons timed against a laser sync) holds no T2 "
                                 f"time tags of two detectors; record the HBT measurement in T2 mode")
            records = ptu.decode_records()
            resolution_ns = ptu.global_resolution * 1e9
            milliseconds = float(ptu.tags.get("MeasDesc_AcquisitionTime", 0) or 0)
            seconds = milliseconds * 1e-3 if milliseconds > 0 else float(ptu.acquisition_time)
    except ptufile.PqFileError as error:
        raise ValueError(f"{path}: not a readable PicoQuant PTU file ({error})") from None
    photons = records["channel"] >= 0
    times = records["time"][photons].astype(np.int64)
    channel = records["channel"][photons]
    first, second = channels
    if first == second:
        raise ValueError(f"channels must name two different detectors, got {channels}")
    streams = [np.sort(times[channel == c]) for c in (first, second)]
    present = sorted({int(c) for c in np.unique(channel)})
    for c, stream in zip((first, second), streams, strict=True):
        if len(stream) == 0:
            raise ValueError(f"{path}: no photons on channel {c}; channels with photons: {present}")
    if seconds <= 0:
        raise ValueError(f"{path}: the acquisition time is not positive ({seconds} s)")
    counts = correlate(streams[0], streams[1], axis, resolution_ns=resolution_ns, convention=convention)
    singles = np.array([[len(streams[0]), len(streams[1])]], dtype=np.float64)
    return HbtHistograms(counts, axis, singles, seconds, None, str(path))


def correlate(start: np.ndarray, stop: np.ndarray, axis: DelayAxis, *, resolution_ns: float = 1.0,
              convention: str = "all-pairs") -> np.ndarray:
    """Histogram ``(K,)`` (float64) of delays ``t_stop - t_start`` on ``axis`` (bins ``[c - w/2, c + w/2)``).

    ``start``, ``stop``: sorted integer time tags ``(N1,)``, ``(N2,)`` in units of ``resolution_ns``.
    ``all-pairs`` counts every pair whose delay falls on the axis (a time tagger's correlation; its
    uncorrelated level is ``N1 N2 w / T``). ``start-stop`` pairs each start only with the first stop
    at or after ``t_start + (axis start - w/2)`` and counts it if that delay is on the axis (a TCSPC
    card's start-stop histogram, without dead time; it approaches all-pairs while the stop rate times
    the span is << 1). Bin edges that fall on the tag grid (within 1e-6 tick) are binned in exact
    integer arithmetic. Vectorised over the k-th stop inside each start's window.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    start, stop = np.asarray(start, dtype=np.int64), np.asarray(stop, dtype=np.int64)
    if np.any(np.diff(start) < 0) or np.any(np.diff(stop) < 0):
        raise ValueError("time tags must be sorted")
    width = axis.width_ns / resolution_ns
    low = (axis.start_ns - axis.width_ns / 2) / resolution_ns
    if abs(width - round(width)) < 1e-6 and abs(low - round(low)) < 1e-6 and round(width) > 0:
        width, low = round(width), round(low)  # edges on the tag grid: exact integer binning
    high = low + axis.bins * width
    # first stop with delay >= low, and first stop with delay >= high (integers: delay >= x <=> delay >= ceil(x))
    first = np.searchsorted(stop, start + int(np.ceil(low)), side="left")
    last = np.searchsorted(stop, start + int(np.ceil(high)), side="left")
    if convention == "start-stop":
        last = np.minimum(last, first + 1)
    histogram = np.zeros(axis.bins, dtype=np.float64)
    inside = last - first
    k = 0
    while True:
        chosen = inside > k
        if not chosen.any():
            break
        delays = stop[first[chosen] + k] - start[chosen]
        index = (delays - low) // width if isinstance(width, int) else np.floor((delays - low) / width).astype(np.int64)
        index = index[(index >= 0) & (index < axis.bins)]
        histogram += np.bincount(index, minlength=axis.bins)
        k += 1
    return histogram


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


def read_scan(folder: str | Path, **options) -> tuple[HbtHistograms, tuple[int, int]]:
    """A scan as one :class:`HbtHistograms` of ``H * W`` rows (row-major) and its shape ``(H, W)``.

    ``folder/scan.npz`` (``counts`` ``(H, W, K)``, ``delay_ns``, optional ``singles`` ``(H, W, 2)``,
    ``seconds``) or per-pixel files (:func:`scan_files`, one histogram each, on one delay axis;
    missing pixels are an error). ``options`` go to :func:`read_histograms`.
    """
    folder = Path(folder)
    single = folder / "scan.npz"
    if single.is_file():
        with np.load(single, allow_pickle=False) as data:
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
    files = scan_files(folder)
    height = max(r for r, _ in files) + 1
    width = max(c for _, c in files) + 1
    missing = [(r, c) for r in range(height) for c in range(width) if (r, c) not in files]
    if missing:
        raise ValueError(f"{folder}: {len(missing)} of {height * width} pixels have no file (first: "
                         f"pixel_{missing[0][0]}_{missing[0][1]}); a scan needs every pixel")
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
