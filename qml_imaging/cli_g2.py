"""``qml-imaging g2 ...``: g2(0) from laboratory photon-correlation files.

    qml-imaging g2 fit FILE... [--zero fit|NS] [--baseline auto|singles|tails|fit] [--rho R]
                       [--delay-unit ps|ns|us|s] [--axis BINS,SPAN_NS[,FIRST_NS]] [--channels A,B]
                       [--convention all-pairs|start-stop] [--gate LOW,HIGH] [--jitter NS|fit] [--cnn RUN]
                       [--out FITS.csv] [--plot]
    qml-imaging g2 fit FILE... --mode pulsed [--period NS] [--window NS] [--side-peaks N]
                       [--areas auto|windows|fit] [--channels A,B] [--gate LOW,HIGH] [--out FITS.csv]
    qml-imaging g2 scan DIR [--cnn RUN] [--background-rate R] [--out OUT_DIR]
    qml-imaging g2 scan SCAN.ptu [--pixels W] [--lines H] [--markers START,STOP[,FRAME]] [--axis ...] [--channels A,B]

``fit`` prints one line per histogram: the emitter's ``g2(0) +- sigma``, the measured curve's value at
zero delay, ``a1, t1, a2, t2``, the jitter, the zero delay, the baseline (each with its sigma) and the
reduced deviance (and the CNN's estimate with ``--cnn``, a finished ``g2_regression`` or ``g2_measured``
run whose CNN reads histograms of the same length), or ``refused: <reason>: <fix>`` when the file or the
fit cannot give a measurement (:mod:`qml_imaging.physics.g2_fit`, :mod:`qml_imaging.pipelines.g2.lab_checks`);
``--mode pulsed``: the central coincidence peak against the side peaks,
:func:`~qml_imaging.pipelines.g2.pulsed.fit_pulsed`. Every row goes to a CSV (written atomically; a refused
row has an empty g2(0) and its reason in ``status``); ``--plot`` draws data, fit and residuals per
histogram into ``<out>_plots/<file>_<row>.png``. ``scan`` reads ``DIR/scan.npz``,
``DIR/pixel_<row>_<col>.<ending>`` files, or one PTU file with line/frame markers
(:mod:`qml_imaging.data.marker_scan`, one streaming pass), and
writes ``maps.npz`` (g2 maps, uncertainty, photon counts, G2 images, dark mask) and ``maps.png``.
File formats: :mod:`qml_imaging.data.hbt_files`; fits and maps: :mod:`qml_imaging.pipelines.g2.lab`.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from pathlib import Path
from typing import get_args

from qml_imaging.config import GridSettings
from qml_imaging.data.catalog import CONVENTIONS, DELAY_UNITS
from qml_imaging.physics.settings import BASELINES, PULSED_METHODS

from qml_imaging.limits import MAX_HISTOGRAM_BINS, OptionError, check_count, check_number, integer


def add_g2_commands(commands) -> None:
    """Register ``g2 fit`` and ``g2 scan`` on the main parser's ``commands``."""
    g2 = commands.add_parser("g2", help="g2(0) from photon-correlation files: fit, scan")
    actions = g2.add_subparsers(dest="g2_command", required=True)
    fit = actions.add_parser("fit", help="L-M (and CNN) g2(0) +- sigma of every histogram in the files")
    fit.add_argument("files", nargs="+", help="CSV/TXT, NPY/NPZ, PHU histograms; PTU T2/T3 or Photon-HDF5 time tags")
    fit.add_argument("--zero", default="fit", help="zero delay: 'fit' (default) or its position in ns on the axis")
    fit.add_argument("--baseline", default="auto", choices=BASELINES,
                     help="uncorrelated level: singles (N1 N2 w / T), tails, fit; auto = singles when present")
    fit.add_argument("--rho", type=float, default=None, help="signal share S / (S + B) for background correction")
    fit.add_argument("--delay-unit", default=None, choices=DELAY_UNITS, help="for files that do not state it")
    fit.add_argument("--axis", default=None, help="BINS,SPAN_NS[,FIRST_NS]: delay axis of PTU correlations and bare NPY")
    fit.add_argument("--channels", default=None,
                     help="time tags: the two channels A,B (delays t_B - t_A; default 0,1): input numbers, or 'sync' "
                          "for the SYNC input, which is never a photon unless named")
    fit.add_argument("--convention", default=None, choices=CONVENTIONS,
                     help="PTU correlation (default all-pairs)")
    fit.add_argument("--jitter", default="0", help="timing jitter (Gaussian sigma of the delay, ns; default 0) or 'fit'")
    fit.add_argument("--cnn", default=None, help="a finished g2_regression or g2_measured run")
    fit.add_argument("--out", default="g2_fits.csv", help="CSV of every row (default g2_fits.csv)")
    fit.add_argument("--plot", action="store_true", help="write data, fit and residuals per histogram (PNG)")
    _add_pulsed_options(fit)
    fit.set_defaults(handler=_fit)
    scan = actions.add_parser("scan", help="g2(0) maps, uncertainty, photon counts and the G2 image of a scan")
    scan.add_argument("folder", help="DIR with scan.npz or pixel_<row>_<col>.<ending> files, or one PTU file with "
                                     "line/frame markers")
    scan.add_argument("--pixels", type=int, default=None, help="marker file: pixels per line (default: the header)")
    scan.add_argument("--lines", type=int, default=None, help="marker file: lines per frame (default: the header)")
    scan.add_argument("--markers", default=None, help="marker file: START,STOP[,FRAME] marker numbers (default: header)")
    scan.add_argument("--axis", default=None, help="marker file: BINS,SPAN_NS[,FIRST_NS] delay axis (default 215,500)")
    scan.add_argument("--channels", default=None, help="marker file: the two detector inputs A,B (default 0,1)")
    scan.add_argument("--cnn", default=None, help="a finished g2_regression or g2_measured run")
    scan.add_argument("--background-rate", type=float, default=None, help="counts/s per channel off the emitters")
    scan.add_argument("--executor", default="local", choices=get_args(GridSettings.model_fields["executor"].annotation),
                      help="L-M fits here, or in chunks on Ray (pip install -e '.[ray]'; $RAY_ADDRESS joins a cluster)")
    scan.add_argument("--tasks-at-once", type=integer, default=None, help="Ray: chunks of pixels (default: the cores)")
    scan.add_argument("--out", default=None, help="output folder (default DIR/g2_maps)")
    scan.set_defaults(handler=_scan)


def _add_pulsed_options(fit: argparse.ArgumentParser) -> None:
    fit.add_argument("--mode", default="cw", choices=("cw", "pulsed"),
                     help="cw: L-M fit of the antibunching dip; pulsed: central peak against the side peaks at k*T")
    fit.add_argument("--period", type=float, default=None, help="pulsed: laser period in ns (default: the file's header)")
    fit.add_argument("--window", type=float, default=None, help="pulsed: integration window in ns (default: the period)")
    fit.add_argument("--side-peaks", type=integer, default=4, help="pulsed: side peaks on each side (default 4)")
    fit.add_argument("--areas", default="auto", choices=PULSED_METHODS,
                     help="pulsed: peak areas from windows, from a fit of the pulsed model, or auto (fit when peaks overlap)")
    fit.add_argument("--gate", default=None, help="T3 time tags: LOW,HIGH micro-time gate in ns")


def _gate(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(p) for p in text.split(","))
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError
    except ValueError:
        raise OptionError(f"--gate must be LOW,HIGH in ns with LOW < HIGH (e.g. 1.5,40), got {text!r}") from None
    return low, high


def _fit_pulsed(arguments: argparse.Namespace, channels: tuple | None) -> int:
    from qml_imaging.data.hbt_files import is_time_tags, read_histograms, stated_period_ns
    from qml_imaging.pipelines.g2.pulsed import fit_pulsed
    from qml_imaging.physics.pulsed_g2 import pulsed_axis

    cw_only = [name for name, value, default in (("--zero", arguments.zero, "fit"), ("--baseline", arguments.baseline,
               "auto"), ("--rho", arguments.rho, None), ("--cnn", arguments.cnn, None), ("--jitter", arguments.jitter, "0"),
               ("--plot", arguments.plot, False)) if value != default]
    if cw_only:
        raise ValueError(f"{', '.join(cw_only)}: CW fit options; --mode pulsed compares peak areas")
    rows = []
    for path in arguments.files:
        period = arguments.period if arguments.period is not None else stated_period_ns(path)
        if period is None:
            raise ValueError(f"{path}: the file states no laser repetition period; give it with --period NS")
        axis = _axis(arguments.axis) or (pulsed_axis(period, arguments.side_peaks) if is_time_tags(path) else None)
        data = read_histograms(path, delay_unit=arguments.delay_unit, axis=axis, channels=channels,
                               convention=arguments.convention, gate_ns=_gate(arguments.gate))
        for row in fit_pulsed(data, period_ns=period, window_ns=arguments.window, side_peaks=arguments.side_peaks,
                              method=arguments.areas):
            rows.append(row)
            lifetime = f", lifetime {row['lifetime_ns']:.1f} ns" if row["lifetime_ns"] is not None else ""
            print(f"{row['source']}[{row['row']}]: pulsed g2(0) = {row['g2']:.3f} +- {row['sigma']:.3f}  (central "
                  f"{row['central']:.0f}, mean of {2 * row['side_peaks']} side peaks {row['side']:.1f}, areas from "
                  f"{row['method']}, period {row['period_ns']:.4g} ns, window {row['window_ns']:.4g} ns{lifetime})")
    _write_rows(arguments.out, rows)
    return 0


def _check_fit_numbers(arguments: argparse.Namespace) -> None:
    """The numeric options of ``g2 fit``, each refused in one line outside its range (before any file is read)."""
    if arguments.rho is not None and not (math.isfinite(arguments.rho) and 0 < arguments.rho <= 1):
        raise OptionError(f"--rho is the signal share S / (S + B), in (0, 1]; got {arguments.rho}")
    for option, value in (("--period", arguments.period), ("--window", arguments.window)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise OptionError(f"{option} must be a positive finite number of ns, got {value!r}")
    check_count("--side-peaks", arguments.side_peaks, 1, 1000, "side peaks on each side of the central one")


def _write_rows(out: str, rows: list[dict]) -> None:
    from qml_imaging.runs import write_text_atomic

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(dict.fromkeys(name for row in rows for name in row)), restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out, text.getvalue())
    print(f"wrote {out}")


def _axis(text: str | None):
    if text is None:
        return None
    from qml_imaging.physics.delay_axis import DelayAxis

    try:
        parts = [float(p) for p in text.split(",")]
        if len(parts) not in (2, 3) or not all(map(math.isfinite, parts)) or parts[0] != int(parts[0]) \
                or parts[1] <= 0:
            raise ValueError
    except ValueError:
        raise OptionError(f"--axis must be BINS,SPAN_NS[,FIRST_NS]: BINS an integer from 3 to {MAX_HISTOGRAM_BINS:,}, "
                         f"SPAN_NS a positive number of ns (e.g. 215,500), got {text!r}") from None
    check_count("--axis BINS", int(parts[0]), 3, MAX_HISTOGRAM_BINS, "bins of one delay axis")
    first = parts[2] if len(parts) == 3 else -(int(parts[0]) // 2) * parts[1] / parts[0]
    return DelayAxis(bins=int(parts[0]), span_ns=parts[1], first_ns=first)


def _channels(text: str | None) -> tuple | None:
    """``--channels A,B``: two detector inputs by number, or ``sync`` for the SYNC input's events."""
    if text is None:
        return None
    parts = [p.strip().lower() for p in text.split(",")]
    if len(parts) != 2 or not all(p == "sync" or p.isdigit() for p in parts) or parts[0] == parts[1]:
        raise ValueError(f"--channels must be two different channels A,B (input numbers, or 'sync' for the SYNC "
                         f"input), got {text!r}")
    return tuple(p if p == "sync" else int(p) for p in parts)


def _number_or_fit(option: str, text: str, *, nonnegative: bool = False) -> float | str:
    if text == "fit":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or abs(value) == float("inf") or (nonnegative and value < 0):
        raise ValueError(f"{option} must be 'fit' or a finite number of ns{' >= 0' if nonnegative else ''}, "
                         f"got {text!r}")
    return value


def _check_paths(arguments: argparse.Namespace) -> None:
    missing = [path for path in arguments.files if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"no histogram file {missing[0]!r}" + (" (a folder: give its files, or use "
                                "`qml-imaging g2 scan` for a scan)" if Path(missing[0]).is_dir() else "")
                                + (f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""))
    if not Path(arguments.out).parent.is_dir():
        raise FileNotFoundError(f"--out {arguments.out!r}: its folder {str(Path(arguments.out).parent)!r} does not exist")


def describe(row: dict) -> str:
    """The printed line of one fitted row: a measurement, or ``refused: <reason>``."""
    where = f"{row['source']}[{row['row']}]"
    if row["status"]:
        return f"{where}: refused: {row['status']}"
    bunching = (f"a2 {row['a2']:.3g} +- {row['a2_sigma']:.2g}, t2 {row['t2_ns']:.4g} +- {row['t2_ns_sigma']:.2g} ns"
                if row["bunching"] else "no bunching")
    tails = " (assumes bunching decays inside the window)" if row["baseline_mode"] == "tails" else ""
    cnn = f"  CNN {row['g2_cnn']:.3f}" if "g2_cnn" in row else ""
    return (f"{where}: g2(0) = {row['g2']:.3f} +- {row['sigma']:.3f} (measured at zero delay {row['g2_measured']:.3f} "
            f"+- {row['g2_measured_sigma']:.3f}; a1 {row['a1']:.3g} +- {row['a1_sigma']:.2g}, t1 {row['t1_ns']:.4g} +- "
            f"{row['t1_ns_sigma']:.2g} ns, {bunching}, jitter {row['jitter_ns']:.3g} +- {row['jitter_ns_sigma']:.2g} ns; "
            f"zero delay {row['zero_delay_ns']:.3f} +- {row['zero_delay_sigma']:.3f} ns; baseline {row['baseline']:.4g} "
            f"+- {row['baseline_sigma']:.2g}/bin from {row['baseline_mode']}{tails}; reduced deviance "
            f"{row['reduced_deviance']:.2f}; {row['events']:.0f} events){cnn}")


def _fit(arguments: argparse.Namespace) -> int:
    zero = _number_or_fit("--zero", arguments.zero)
    jitter = _number_or_fit("--jitter", arguments.jitter, nonnegative=True)
    channels = _channels(arguments.channels)
    _check_fit_numbers(arguments)
    _check_paths(arguments)
    if arguments.mode == "pulsed":
        return _fit_pulsed(arguments, channels)
    pulsed_only = [name for name, value, default in (("--period", arguments.period, None), ("--window", arguments.window,
                   None), ("--side-peaks", arguments.side_peaks, 4), ("--areas", arguments.areas, "auto")) if value != default]
    if pulsed_only:
        raise ValueError(f"{', '.join(pulsed_only)}: options of --mode pulsed")
    from qml_imaging.data.hbt_files import read_histograms
    from qml_imaging.pipelines.g2.lab import fit_histograms, load_cnn

    model = load_cnn(arguments.cnn) if arguments.cnn else None
    axis = _axis(arguments.axis)
    rows = []
    for path in arguments.files:
        data = read_histograms(path, delay_unit=arguments.delay_unit, axis=axis, channels=channels,
                               convention=arguments.convention, gate_ns=_gate(arguments.gate))
        found = fit_histograms(data, zero_delay=zero, baseline=arguments.baseline, rho=arguments.rho, jitter=jitter,
                               model=model)
        for row in found:
            print(describe(row))
        if arguments.plot:
            _plot(data, found, Path(arguments.out))
        rows.extend(found)
    _write_rows(arguments.out, rows)
    return 0


def _plot(data, rows: list[dict], out: Path) -> None:
    from qml_imaging.pipelines.g2.lab_plot import plot_rows

    plots = plot_rows(data, rows, out.parent / f"{out.stem}_plots")
    print(f"wrote {len(plots)} plots to {plots[0].parent}")


def _scan(arguments: argparse.Namespace) -> int:
    import numpy as np

    from qml_imaging.config import GridSettings
    from qml_imaging.data.hbt_files import read_scan
    from qml_imaging.pipelines.g2.lab import load_cnn, scan_maps
    from qml_imaging.reporting import figures
    from qml_imaging.runs import make_folder, save_arrays_atomic

    _check_scan_numbers(arguments)
    data, shape = _scan_data(arguments) if Path(arguments.folder).is_file() else read_scan(arguments.folder)
    model = load_cnn(arguments.cnn) if arguments.cnn else None
    grid = GridSettings(executor=arguments.executor, tasks_at_once=arguments.tasks_at_once)
    maps = scan_maps(data, shape, model=model, background_rate=arguments.background_rate, grid=grid)
    folder = Path(arguments.folder)
    out = make_folder(arguments.out or (folder.with_name(folder.stem + "_g2_maps") if folder.is_file()
                                        else folder / "g2_maps"))
    save_arrays_atomic(out / "maps.npz", **maps)
    images = [name for name in ("counts", "g2_lm", "sigma_lm", "G2_lm", "g2_cnn", "G2_cnn") if name in maps]
    grid = figures.image_grid([[maps[name].astype(float) for name in images]], row_titles=["scan"],
                              column_titles=[MAP_TITLES[name] for name in images], colorbars=True, cmap="viridis")
    figures.save_figure(grid, out / "maps.png")
    lit = ~maps["dark"] & ~maps["refused"]
    _say_refused(maps)
    print(f"{shape[0]}x{shape[1]} pixels, {int(maps['dark'].sum())} dark (g2 = 1); zero delay "
          f"{float(maps['zero_delay_ns']):.2f} ns; median L-M g2(0) on lit pixels "
          f"{float(np.median(maps['g2_lm'][lit])) if lit.any() else float('nan'):.3f}")
    print(f"wrote {out / 'maps.npz'} and {out / 'maps.png'}")
    return 0


def _say_refused(maps: dict) -> None:
    """One line on stderr when lit pixels have no measurement: how many, and the first pixel's reason."""
    import numpy as np

    refused = maps["refused"]
    if refused.any():
        row, column = (int(i) for i in np.argwhere(refused)[0])
        print(f"warning: {int(refused.sum())} lit pixels have no g2(0) (drawn at g2 = 1, 'refused' in maps.npz); "
              f"pixel ({row}, {column}): {maps['status'][row, column]}", file=sys.stderr)


MAP_TITLES = {"counts": "photon counts", "g2_lm": "g2(0), L-M", "sigma_lm": "sigma of g2(0), L-M",
              "G2_lm": "G2 image, L-M", "g2_cnn": "g2(0), CNN", "G2_cnn": "G2 image, CNN"}
"""Panel titles of ``maps.png``, by map name."""


def _check_scan_numbers(arguments: argparse.Namespace) -> None:
    """The numeric options of ``g2 scan``, each refused in one line outside its range (before any file is read)."""
    if arguments.background_rate is not None:
        check_number("--background-rate", arguments.background_rate, 0.0, why="counts/s per channel off the emitters")
    if arguments.tasks_at_once is not None:
        check_count("--tasks-at-once", arguments.tasks_at_once, 1, 100_000)


def _scan_data(arguments: argparse.Namespace):
    """A marker-based scan file (:func:`~qml_imaging.data.marker_scan.read_marker_scan`) read with the options."""
    from qml_imaging.data.marker_scan import read_marker_scan
    from qml_imaging.physics.delay_axis import DelayAxis

    markers = None
    if arguments.markers is not None:
        try:
            markers = tuple(int(m) for m in arguments.markers.split(","))
            if len(markers) not in (2, 3):
                raise ValueError
        except ValueError:
            raise ValueError(f"--markers must be START,STOP[,FRAME] marker numbers, got {arguments.markers!r}") from None
    return read_marker_scan(arguments.folder, axis=_axis(arguments.axis) or DelayAxis(),
                            channels=_channels(arguments.channels) or (0, 1), pixels=arguments.pixels,
                            lines=arguments.lines, markers=markers)
