"""The ``qml-imaging`` command.

    qml-imaging run CONFIG.yaml [key=value ...] [--out DIR] [--data-dir DIR]
    qml-imaging run --resume RUN_DIR
    qml-imaging validate CONFIG.yaml [key=value ...]
    qml-imaging list
    qml-imaging hardware {backends,plan,submit,status,fetch} ...   (see qml_imaging.cli_hardware)

Configs are validated before torch is imported, so a bad key fails in well under two seconds.
Under ``torchrun`` the same ``run`` trains data-parallel and writes one run folder.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import yaml

from qml_imaging.cli_hardware import add_hardware_commands
from qml_imaging.config import ConfigError, dump_config, load_config
from qml_imaging.data.catalog import DATA_ENV


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if "=" not in item or item.startswith("-")]
    if stray or (extra and not hasattr(arguments, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        arguments.overrides = [*arguments.overrides, *extra]  # key=value given after an option such as --out
    try:
        return arguments.handler(arguments)
    except ConfigError as error:
        print(f"qml-imaging: invalid config: {error}", file=sys.stderr)
        return 2
    except (FileExistsError, FileNotFoundError, PermissionError) as error:
        print(f"qml-imaging: {error}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as error:
        if arguments.command != "hardware":
            raise
        print(f"qml-imaging hardware: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qml-imaging", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run an experiment config, or resume a run folder")
    run.add_argument("config", nargs="?", help="experiment YAML (see `qml-imaging list`)")
    run.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=10")
    run.add_argument("--out", help="run folder to create (default: runs/<name>-<timestamp>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoints")
    run.add_argument("--data-dir", help=f"data directory (default: ${DATA_ENV} or ~/.cache/qml_imaging/data)")
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", help="check a config and print it fully resolved")
    validate.add_argument("config")
    validate.add_argument("overrides", nargs="*", metavar="key=value")
    validate.set_defaults(handler=_validate)

    listing = commands.add_parser("list", help="list the experiments shipped in experiments/")
    listing.set_defaults(handler=_list)
    add_hardware_commands(commands)
    return parser


def _validate(arguments: argparse.Namespace) -> int:
    print(dump_config(load_config(arguments.config, arguments.overrides)), end="")
    return 0


def _run(arguments: argparse.Namespace) -> int:
    if arguments.resume and (arguments.overrides or "=" in (arguments.config or "")):
        raise ConfigError("--resume continues a run with its saved config; overrides are not allowed")
    if bool(arguments.config) == bool(arguments.resume):
        raise ConfigError("give either CONFIG (a new run) or --resume RUN_DIR, not both or neither")
    if arguments.data_dir:
        os.environ[DATA_ENV] = arguments.data_dir
    if arguments.config:
        config = load_config(arguments.config, arguments.overrides)
    else:
        config = load_config(Path(arguments.resume) / "config.yaml")

    import torch

    from qml_imaging.pipelines import PIPELINES
    from qml_imaging.runs import RunDir
    from qml_imaging.training import distributed

    train = getattr(config, "train", None)
    use_cuda = torch.cuda.is_available() and (train is None or train.device != "cpu")
    group = distributed.init_process_group(use_cuda)
    if arguments.resume:
        run_dir = RunDir.open(arguments.resume)
    else:
        path = RunDir.create(config, arguments.out).path if group.is_main else None
        run_dir = RunDir(distributed.broadcast_object(path), config)
    module_name, _, function_name = PIPELINES[config.experiment].run.partition(":")
    pipeline = getattr(importlib.import_module(module_name), function_name)
    try:
        summary = pipeline(config, run_dir)
    except KeyboardInterrupt:
        if group.is_main:
            print(f"\ninterrupted; continue with: qml-imaging run --resume {run_dir.path}", file=sys.stderr)
        return 130
    finally:
        if group.is_distributed:
            torch.distributed.destroy_process_group()
    if group.is_main:
        print(json.dumps(summary, indent=1, default=str))
        print(f"run folder: {run_dir.path}")
    return 0


def experiments_dir() -> Path:
    """The shipped ``experiments/`` folder: ``./experiments`` if present, else the one beside the package."""
    local = Path("experiments")
    return local if local.is_dir() else Path(__file__).resolve().parents[1] / "experiments"


def _list(arguments: argparse.Namespace) -> int:
    del arguments
    folder = experiments_dir()
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        print(f"no experiments found in {folder}", file=sys.stderr)
        return 1
    for path in paths:
        raw = yaml.safe_load(path.read_text()) or {}
        description = str(raw.get("description", "")).strip().splitlines()
        print(f"{path}  [{raw.get('experiment', '?')}]  {description[0] if description else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
