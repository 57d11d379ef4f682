"""The ``qml-imaging`` command.

    qml-imaging run CONFIG.yaml [key=value ...] [--out DIR] [--data-dir DIR]
    qml-imaging run --resume RUN_DIR
    qml-imaging run CONFIG.yaml grid.executor=ray [--ray-address ADDRESS]   (a grid's tasks on Ray)
    qml-imaging validate CONFIG.yaml [key=value ...]
    qml-imaging list
    qml-imaging hardware {backends,plan,submit,status,fetch} ...   (see qml_imaging.cli_hardware)
    qml-imaging render RUN_DIR --size 256 | sample RUN_DIR --n 64 --out DIR   (see qml_imaging.cli_models)
    qml-imaging g2 {fit,scan} ...                                 (see qml_imaging.cli_g2)

Configs are validated before torch is imported, so a bad key fails in well under two seconds.
Under ``torchrun`` the same ``run`` trains data-parallel and writes one run folder.

Errors: a user error (bad config or input file, unreadable data, no GPU for ``train.device: cuda``,
a run folder of the wrong kind or in use by another process, ...) is one line on stderr and exit
status 2 (1 for ``hardware`` service errors); an unexpected error is one line and status 1. A run
whose grid kept failing tasks writes its report (``failed_tasks``), names them in one line and exits 1.
``--debug`` (before or after the sub-command) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import warnings
import wave
from pathlib import Path

import yaml

from qml_imaging.cli_g2 import add_g2_commands
from qml_imaging.cli_hardware import add_hardware_commands
from qml_imaging.cli_models import add_model_commands
from qml_imaging.config import ConfigError, dump_config, load_config
from qml_imaging.data.catalog import DATA_ENV
from qml_imaging.environment import toolkit_version
from qml_imaging.extras import MissingExtraError
from qml_imaging.limits import OptionError
from qml_imaging.registry import PIPELINES, resolve
from qml_imaging.resources import EXPERIMENTS, shipped_folder
from qml_imaging.runs import RunFolderError, release_locks


def main(argv: list[str] | None = None) -> int:
    """Run the ``qml-imaging`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status (0 done, 1 failed tasks, 2 user error), printing a user error as one line."""
    parser = _parser()
    arguments, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if "=" not in item or item.startswith("-")]
    if stray or (extra and not hasattr(arguments, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        arguments.overrides = [*arguments.overrides, *extra]  # key=value given after an option such as --out
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            return arguments.handler(arguments)
    except Exception as error:  # the one error boundary: one line, no traceback (unless --debug)
        if arguments.debug:
            raise
        message, status = _error_line(error, arguments.command)
        print(message, file=sys.stderr)
        return status
    finally:
        release_locks()


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one stderr line (no source file or line of ours), e.g. a fitted dip off the axis zero."""
    print(f"qml-imaging: warning: {message}", file=sys.stderr)


# Exceptions a user's input or environment causes (bad values, files, devices); anything else is a bug.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, RuntimeError, OSError, EOFError, ArithmeticError, MemoryError, wave.Error, struct.error, RunFolderError,
    MissingExtraError)


def _error_line(error: Exception, command: str) -> tuple[str, int]:
    """The one stderr line and exit status for ``error`` raised by ``command``."""
    notes = [*getattr(error, "__notes__", [])]
    text = "; ".join(line.strip() for line in [str(error), *notes] if line.strip()) or type(error).__name__
    if isinstance(error, ConfigError):
        return f"qml-imaging: invalid config: {text}", 2
    if isinstance(error, (OSError, RunFolderError, OptionError)):
        return f"qml-imaging: {text}", 2
    if isinstance(error, (ValueError, RuntimeError)) and command == "hardware":
        return f"qml-imaging hardware: {text}", 1
    if isinstance(error, _USER_ERRORS):
        return f"qml-imaging: {text}", 2
    return (f"qml-imaging: internal error ({type(error).__name__}: {text}); this is a bug: rerun with "
            "--debug for the traceback and report it"), 1


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line naming the option and where to read the usage (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="qml-imaging", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    parser.add_argument("--version", action="version", version=f"qml-imaging {toolkit_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an experiment config, or resume a run folder")
    run.add_argument("config", nargs="?", help="experiment YAML (see `qml-imaging list`)")
    run.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=10")
    run.add_argument("--out", help="run folder to create (default: runs/<name>-<timestamp>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoints")
    run.add_argument("--data-dir", help=f"data directory (default: ${DATA_ENV} or ~/.cache/qml_imaging/data)")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="join this Ray cluster for grid.executor: ray (default: $RAY_ADDRESS, else Ray on this machine)")
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", help="check a config and print it fully resolved")
    validate.add_argument("config")
    validate.add_argument("overrides", nargs="*", metavar="key=value")
    validate.set_defaults(handler=_validate)

    listing = commands.add_parser("list", help="list the experiments shipped in experiments/")
    listing.set_defaults(handler=_list)
    add_hardware_commands(commands)
    add_model_commands(commands)
    add_g2_commands(commands)
    _accept_debug_everywhere(commands)
    return parser


def _accept_debug_everywhere(commands: argparse._SubParsersAction) -> None:
    """Let every sub-command take ``--debug`` too (``qml-imaging run X --debug``), without overriding the global one."""
    for subparser in commands.choices.values():
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_debug_everywhere(action)


def _validate(arguments: argparse.Namespace) -> int:
    print(dump_config(load_config(arguments.config, arguments.overrides)), end="")
    return 0


def _run(arguments: argparse.Namespace) -> int:
    config = _run_config(arguments)
    grid = getattr(config, "grid", None)
    if arguments.ray_address:
        _join_ray_cluster(arguments.ray_address, config, grid)

    import torch

    from qml_imaging.training import distributed

    group = distributed.init_process_group(_use_cuda(getattr(config, "train", None)))
    if group.is_distributed and grid is not None and grid.executor == "ray":
        raise ConfigError("grid.executor: ray runs each task on its own workers; under torchrun use grid.executor=local")
    run_dir = _open_run_dir(arguments, config, group)
    try:
        summary = resolve(PIPELINES[config.experiment].run)(config, run_dir)
    except Exception as error:
        if group.is_main:
            _leave_no_empty_run(run_dir, error, new=not arguments.resume)
        raise
    except KeyboardInterrupt:
        if group.is_main:
            print(f"\ninterrupted; continue with: qml-imaging run --resume {run_dir.path}", file=sys.stderr)
        return 130
    finally:
        if group.is_distributed:
            torch.distributed.destroy_process_group()
    return _report_run(summary, run_dir) if group.is_main else int(bool(summary.get("failed_tasks")))


def _run_config(arguments: argparse.Namespace):
    """The config of a new run (CONFIG and overrides) or of the run to resume; checks the run's arguments first."""
    if arguments.resume and (arguments.overrides or "=" in (arguments.config or "")):
        raise ConfigError("--resume continues a run with its saved config; overrides are not allowed")
    if bool(arguments.config) == bool(arguments.resume):
        raise ConfigError("give either CONFIG (a new run) or --resume RUN_DIR, not both or neither")
    if arguments.data_dir:
        os.environ[DATA_ENV] = arguments.data_dir
    from qml_imaging.runs import RunDir

    config = load_config(arguments.config, arguments.overrides) if arguments.config else \
        RunDir.open(arguments.resume).config
    if arguments.out and Path(arguments.out).exists() and not Path(arguments.out).is_dir():
        raise FileExistsError(f"--out {arguments.out!r} is an existing file, not a folder; give a folder path for the run")
    return config


def _join_ray_cluster(address: str, config, grid) -> None:
    """Point ``grid.executor: ray`` at the cluster at ``address`` (``--ray-address``); ConfigError for other runs."""
    if grid is None or grid.executor != "ray":
        raise ConfigError("--ray-address joins a Ray cluster for `grid.executor: ray`; "
                          + (f"this run's grid.executor is {grid.executor!r}" if grid is not None
                             else f"{config.experiment} runs no grid of tasks"))
    from qml_imaging.grid import check_ray_address

    check_ray_address(address)
    os.environ["RAY_ADDRESS"] = address


def _use_cuda(train) -> bool:
    """Whether the run uses CUDA: when torch sees a GPU and ``train.device`` is not cpu; ConfigError for ``cuda``
    without a GPU."""
    import torch

    if train is not None and train.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but torch sees no CUDA GPU on this machine; "
                          "use train.device=auto (GPU when present) or train.device=cpu")
    return torch.cuda.is_available() and (train is None or train.device != "cpu")


def _open_run_dir(arguments: argparse.Namespace, config, group):
    """The run folder: the one to resume, or a new one that rank 0 creates (locked) and broadcasts."""
    from qml_imaging.runs import RunDir
    from qml_imaging.training import distributed

    if arguments.resume:
        return RunDir.open(arguments.resume, lock=group.is_main)
    created = RunDir.create(config, arguments.out, lock=True) if group.is_main else None
    path = distributed.broadcast_object(created.path if created else None)
    return created or RunDir(path, config)


def _report_run(summary: dict, run_dir) -> int:
    """Print the summary and the run folder, and the failed tasks in one line; 1 when tasks failed."""
    print(json.dumps(summary, indent=1, default=str))
    print(f"run folder: {run_dir.path}")
    failed = summary.get("failed_tasks") or {}
    if failed:
        print(f"qml-imaging: {len(failed)} task(s) failed after retries (failed_tasks in report.json): "
              + "; ".join(f"{name}: {error}" for name, error in failed.items())
              + f"; run them again with `qml-imaging run --resume {run_dir.path}`", file=sys.stderr)
    return 1 if failed else 0


def _leave_no_empty_run(run_dir, error: Exception, *, new: bool) -> None:
    """After a failed run: remove a new run folder that holds no work yet, else say how to continue."""
    if new and run_dir.discard_if_unused():
        return
    error.add_note(f"the run folder {run_dir.path} keeps the work done so far; "
                   f"continue it with `qml-imaging run --resume {run_dir.path}` once the cause is fixed")


def _list(arguments: argparse.Namespace) -> int:
    del arguments
    for entry in sorted(shipped_folder(EXPERIMENTS).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        raw = yaml.safe_load(entry.read_text()) or {}
        description = str(raw.get("description", "")).strip().splitlines()
        print(f"experiments/{entry.name}  [{raw.get('experiment', '?')}]  {description[0] if description else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
