"""Experiment configs: YAML files validated into typed, fully resolved settings.

A config is a YAML mapping whose ``experiment`` key names a pipeline
(see :mod:`qml_imaging.registry`). The pipeline's pydantic schema gives every
key its type, default and allowed range, so an unknown key, a wrong type or an
out-of-range value stops the run before any work, with a message that names the
dotted key and what is allowed.

This module imports no torch: validating a config takes well under a second.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from qml_imaging.environment import Precision
from qml_imaging.extras import EXTRA_OF_MODULE, install_hint, missing
from qml_imaging.precedence import ineffective_override
from qml_imaging.registry import PIPELINES, resolve
from qml_imaging.resources import EXPERIMENTS, shipped_file


BaseModelT = TypeVar("BaseModelT", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key and what is allowed."""


def absolute_path(path: str) -> str:
    """A path a user wrote (``~`` expanded, relative to the current directory) as an absolute one, so that a
    run's stored ``config.yaml`` names the same file when it is read again from another folder."""
    return str(Path(path).expanduser().absolute())


UserPath = Annotated[str, AfterValidator(absolute_path)]
"""A file or folder path in a config: stored absolute (:func:`absolute_path`)."""


def check_folder_path(key: str, choice: str, path: str | None) -> None:
    """A data set whose ``key`` (``source``, ``kind``) is ``choice`` reads ``path`` exactly when ``choice`` is
    ``folder``, and that folder exists. Raises ValueError naming the key otherwise."""
    if choice == "folder":
        if path is None:
            raise ValueError(f"{key}: folder needs path: a folder of image files")
        if not Path(path).expanduser().is_dir():
            raise ValueError(f"image folder {path!r} does not exist")
    elif path is not None:
        raise ValueError(f"path is for {key}: folder, not {choice}")


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are checked on assignment, NaN and
    infinities are refused wherever a number is expected, and a boolean is never read as a number
    (YAML reads ``yes`` / ``on`` as true, which pydantic would otherwise turn into 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        if _holds_bool(value) and not _admits_bool(cls.model_fields[str(info.field_name)].annotation):
            raise ValueError(f"expected a number, not the boolean {value!r}")
        return value


class LiveLogSettings(Section):
    """Live mirrors of ``metrics.jsonl`` written while a fit trains (see :mod:`qml_imaging.training.live_logs`).

    ``metrics.jsonl`` stays the source of truth; each sink repeats its records as they are written.
    A sink whose package is missing is refused at validation, naming the install command.
    """

    tensorboard: bool = Field(False, description="TensorBoard event files in <metrics folder>/tensorboard/<fit>/ "
                                                 "(pip install 'qml-imaging[logging]')")
    csv: bool = Field(False, description="one CSV per fit in <metrics folder>/csv/<fit>.csv: fit, epoch, name, value")
    mlflow: bool = Field(False, description="MLflow run per fit, to MLFLOW_TRACKING_URI or ./mlruns (pip install mlflow)")

    @field_validator("tensorboard", "mlflow")
    @classmethod
    def _package_installed(cls, wanted: bool, info: ValidationInfo) -> bool:
        package = str(info.field_name)
        command = install_hint(package) if package in EXTRA_OF_MODULE else f"pip install {package}"
        if wanted and files_checked(info) and missing(package):
            raise ValueError(f"{info.field_name}: true needs the {package} package, which is not installed: {command}")
        return wanted


class TrainSettings(Section):
    """Settings of :class:`qml_imaging.training.Trainer` (the one training loop)."""

    epochs: int = Field(100, ge=1, description="passes over the training data")
    batch_size: int | None = Field(None, ge=1, description="samples per step; null = whole data set in one step")
    optimizer: Literal["adam", "adamw", "adamax"] = "adam"
    lr: float = Field(1e-3, gt=0, description="learning rate; a model's own lr (models.NAME.lr, gan.*_lr) wins over it")
    weight_decay: float = Field(0.0, ge=0)
    lr_schedule: Literal["constant", "cosine", "step", "exponential"] = "constant"
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up before the schedule starts")
    step_size: int = Field(30, ge=1, description="epochs between decays (lr_schedule: step)")
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor (lr_schedule: step, exponential)")
    grad_clip: float | None = Field(None, gt=0, description="max global gradient norm; null = no clipping")
    ema_decay: float | None = Field(None, gt=0, lt=1, description="EMA of weights; null = off")
    eval_every: int = Field(50, ge=1, description="epochs between evaluations (the last epoch is always evaluated)")
    checkpoint_every: int = Field(10, ge=1, description="epochs between checkpoints (the last epoch always saves)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Precision = Field(
        "auto", description="autocast of the convolutional networks' training forward passes; auto: bf16 on CPUs "
                            "with AMX/AVX512-BF16 and on CUDA (fp16 where a GPU lacks bf16), else fp32; fp16: CUDA only")
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="NHWC weights while training; auto: for the models measured to gain (the QCRB U-Net)")
    progress: bool = Field(True, description="show a progress bar with the live loss")
    logging: LiveLogSettings = Field(default_factory=LiveLogSettings,
                                     description="live mirrors of metrics.jsonl: TensorBoard, CSV, MLflow")


def follow_train_device(train: TrainSettings, classifier: TrainSettings) -> None:
    """Let ``classifier`` (an evaluation network's own training settings) run on ``train.device`` unless its
    ``device`` was set itself: one knob for the machine a run uses (:mod:`qml_imaging.precedence`)."""
    if "device" not in classifier.model_fields_set:
        classifier.device = train.device


class GridSettings(Section):
    """How a pipeline's grid of independent tasks (fits, models, chunks of pixel fits) runs; see
    :mod:`qml_imaging.grid`. ``num_gpus`` applies to ``executor: ray`` only."""

    executor: Literal["local", "ray"] = Field(
        "local", description="local: on this machine (tasks that take 10 s or more run side by side in worker "
                             "processes); ray: Ray tasks (pip install 'qml-imaging[ray]')")
    tasks_at_once: int | None = Field(
        None, ge=1, description="tasks running at once; null = this machine's cores // each task's threads "
                                "(local, embedded Ray) or as many as the cluster fits (--ray-address)")
    num_cpus: int | None = Field(
        None, ge=1, description="torch threads (and Ray CPUs) of every task; null = chosen per task from the "
                                "fit's size (1 for small fits), the same on every machine. The thread count "
                                "changes float rounding: same num_cpus, same metrics")
    num_gpus: float = Field(0.0, ge=0, description="ray: GPUs per task (fractions share one GPU)")
    max_retries: int = Field(1, ge=0, description="runs of a failed task after its first; then it is reported failed")

    @field_validator("executor")
    @classmethod
    def _ray_installed(cls, executor: str, info: ValidationInfo) -> str:
        if executor == "ray" and files_checked(info) and missing("ray"):
            raise ValueError(f"executor 'ray' needs Ray, which is not installed: {install_hint('ray')} "
                             "(or use grid.executor=local)")
        return executor


RETIRED_KEYS = {
    "workers": "tasks now run through the grid runner: use grid: {executor: ray, tasks_at_once: N} "
               "(README, 'Scale out')",
    "threads_per_worker": "use grid.num_cpus (cores, and torch threads, per Ray task)",
    "amp": "mixed precision is set by train.precision: auto, fp32, bf16 or fp16 (amp: false is precision: fp32)",
}
"""Keys earlier versions accepted -> what replaces them (named when a config still holds one)."""


class ExperimentConfig(Section):
    """Keys shared by every experiment; each pipeline subclasses this with its own sections."""

    experiment: str = Field(description="pipeline that runs this config")
    name: str = Field(min_length=1, description="run name, used in the run folder's name")
    description: str = ""
    seed: int = Field(0, ge=0)


class GridExperiment(ExperimentConfig):
    """An experiment made of independent tasks, run by :func:`qml_imaging.grid.run_grid` as ``grid`` says."""

    grid: GridSettings = Field(default_factory=GridSettings)


def pipeline_schema(experiment: str) -> type[ExperimentConfig]:
    """The config class of the pipeline named ``experiment``."""
    if experiment not in PIPELINES:
        raise ConfigError(
            f"experiment: unknown pipeline {experiment!r}; expected one of {sorted(PIPELINES)}"
            + _suggestion(experiment, PIPELINES)
        )
    return resolve(PIPELINES[experiment].config)


def files_checked(info: ValidationInfo) -> bool:
    """Whether a validator should check that data files exist (False for a stored run's config read by
    ``load_config(..., check_files=False)``)."""
    return (info.context or {}).get("check_files", True)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                check_files: bool = True) -> ExperimentConfig:
    """Read ``path``, apply ``key=value`` overrides (dotted keys) and validate.

    ``check_files=False`` skips the checks that a data file still exists (for a finished run's own
    config, read to load its model after the data moved; see :func:`files_checked`).
    Raises :class:`ConfigError` naming the offending key.
    """
    path = shipped_experiment(Path(path))
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; `qml-imaging list` shows the shipped experiments")
    raw = read_yaml_file(path)
    return config_from_dict(raw, overrides, source=str(path), check_files=check_files)


def read_yaml_file(path: Path, source: str | None = None) -> Any:
    """The YAML document in ``path``; a file that is not UTF-8 text or not valid YAML is one
    :class:`ConfigError` line naming ``source`` (default: the path), where it is wrong, and the fix."""
    source = source or str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        byte = error.object[error.start:error.start + 1]
        raise ConfigError(f"{source}: not a text file (byte {error.start} is not UTF-8: {byte!r}); "
                          "a config is a YAML text file: check that the right file was given") from None
    return parse_yaml(text, source)


_YAML_FIX = "fix the file there (an unclosed bracket or quote, or a tab used for indenting, is usual)"


def parse_yaml(text: str, source: str, fix: str = _YAML_FIX) -> Any:
    """``yaml.safe_load(text)``, with a syntax error as one :class:`ConfigError` line naming ``source``,
    the line and column, the problem (PyYAML's message spans several lines) and ``fix``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        context = getattr(error, "context", None)
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        raise ConfigError(f"{source}: not valid YAML{where}: {f'{context}, ' if context else ''}{problem}; {fix}"
                          ) from None


def shipped_experiment(path: Path) -> Path:
    """``path`` itself if it exists; else, for ``NAME``, ``NAME.yaml`` or ``experiments/NAME.yaml``, the
    experiment of that name shipped inside the package (so the README's commands work from any folder)."""
    if path.is_file() or path.parent not in (Path("."), Path(EXPERIMENTS)):
        return path
    shipped = shipped_file(EXPERIMENTS, path.name.removesuffix(".yaml"))
    return Path(str(shipped)) if shipped is not None else path


def config_from_dict(raw: Any, overrides: list[str] | tuple[str, ...] = (), source: str = "config", *,
                     check_files: bool = True) -> ExperimentConfig:
    """Validate a config mapping after applying ``key=value`` overrides (``check_files``: see :func:`load_config`).

    An override that a more specific key shadows everywhere (``train.lr=0.1`` while every model sets its own
    ``lr``) is a :class:`ConfigError` naming the keys that win (:mod:`qml_imaging.precedence`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    raw = dict(raw)
    for override in overrides:
        apply_override(raw, override, _known_schema(raw, overrides))
    if "experiment" not in raw:
        raise ConfigError(f"{source}: missing key 'experiment' (the pipeline to run)")
    config = validate(pipeline_schema(raw["experiment"]), raw, source, context={"check_files": check_files})
    refusal = ineffective_override(config.experiment, config.model_dump(mode="json"), overrides)
    if refusal is not None:
        raise ConfigError(refusal)
    return config


def validate(schema: type[BaseModelT], raw: Any, source: str, context: dict | None = None) -> BaseModelT:
    """``schema`` validated from ``raw``, or a :class:`ConfigError` naming every bad key and what is allowed.

    Values are quoted only for errors of a single key, never the whole mapping.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    try:
        return schema.model_validate(raw, context=context)
    except ValidationError as error:
        raise ConfigError(f"{source}: " + "; ".join(_describe(schema, e) for e in error.errors())) from None


def apply_override(raw: dict, override: str, schema: type[BaseModel] | _Entries | None = None) -> None:
    """Set ``a.b.c=value`` in a nested mapping; the value is parsed as YAML (``3``, ``1e-3``, ``[1, 2]``, ``null``).

    With ``schema`` (the config's class), a section the mapping leaves out is first filled with the
    schema's default for it, so ``simulation.seconds.low=2`` keeps ``simulation.seconds.high`` at its default.
    """
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. train.lr=0.01")
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        if part not in node:
            node[part] = _default_section(schema, part)
        child = node[part]
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} is a value, not a section")
        node[part] = child = dict(child)
        node = child
        schema = _child_schema(schema, part)
    node[parts[-1]] = parse_yaml(text, f"override {override!r}: the value",
                                 "close the bracket, or quote the value in the shell: key='[1, 2]'")


def _known_schema(raw: dict, overrides: list[str] | tuple[str, ...]) -> type[BaseModel] | None:
    """The schema of the experiment ``raw`` (or an ``experiment=`` override) names, None when it names none we know."""
    experiment = raw.get("experiment")
    for override in overrides:
        if override.startswith("experiment="):
            experiment = override.partition("=")[2].strip()
    return resolve(PIPELINES[experiment].config) if isinstance(experiment, str) and experiment in PIPELINES else None


class _Entries(NamedTuple):
    """A mapping of named sections (``dict[str, Section]``): the schema of its entries."""

    section: type[BaseModel] | None


def _default_section(schema: type[BaseModel] | _Entries | None, key: str) -> dict:
    """The schema's default for section ``key`` as a mapping (an empty one when it has none), holding only the
    values the default sets itself, so that a key left out stays unset (``model_fields_set``) for the validators
    that let it follow another (:func:`follow_train_device`)."""
    field = schema.model_fields.get(key) if isinstance(schema, type) else None
    if field is None or field.is_required():
        return {}
    default = field.get_default(call_default_factory=True)
    if isinstance(default, dict):
        return {name: entry.model_dump(mode="json", exclude_unset=True) if isinstance(entry, BaseModel) else entry
                for name, entry in default.items()}
    return default.model_dump(mode="json", exclude_unset=True) if isinstance(default, BaseModel) else {}


def _child_schema(schema: type[BaseModel] | _Entries | None, key: str) -> type[BaseModel] | _Entries | None:
    """The schema of ``schema``'s section ``key``: a section class, the entries of a mapping, or None (unknown)."""
    if isinstance(schema, _Entries):
        return schema.section
    field = schema.model_fields.get(key) if schema is not None else None
    if field is None:
        return None
    if get_origin(field.annotation) is dict:
        return _Entries(_section_type(field.annotation))
    return _section_type(field.annotation)


def dump_config(config: ExperimentConfig) -> str:
    """The fully resolved config as YAML (every default written out)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _describe(schema: type[BaseModel], error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        if error["loc"][-1] in RETIRED_KEYS:
            return f"key {location!r} was removed: {RETIRED_KEYS[error['loc'][-1]]}"
        allowed = _allowed_keys(schema, error["loc"][:-1])
        return f"unknown key {location!r}; allowed keys here: {allowed}" + _suggestion(str(error["loc"][-1]), allowed)
    message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's ValueError
    if not location:
        return message
    value = error.get("input")
    if isinstance(value, dict):  # a whole section checked at once: its message names the keys
        return f"{location}: {message}"
    return f"{location}: {message} (got {value!r})"


def _allowed_keys(schema: type[BaseModel], parent: tuple) -> list[str]:
    model: Any = schema
    mapping_key_next = False
    for part in parent:
        if isinstance(part, int) or mapping_key_next:
            mapping_key_next = False
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return []
        model = _section_type(field.annotation)
        mapping_key_next = get_origin(field.annotation) is dict
    return list(model.model_fields) if model is not None else []


def _section_type(annotation: Any) -> Any:
    """The Section class inside an annotation such as ``Section``, ``dict[str, Section]`` or ``Section | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _section_type(argument)
        if found is not None:
            return found
    return None


def _suggestion(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _holds_bool(value: Any) -> bool:
    """Whether ``value`` is a boolean, or a list of values holding one."""
    if isinstance(value, list):
        return any(_holds_bool(item) for item in value)
    return isinstance(value, bool)


def _admits_bool(annotation: Any) -> bool:
    """Whether a field of type ``annotation`` can hold a boolean (``bool``, ``Any``, a Literal of booleans...)."""
    if annotation is bool or annotation is Any:
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(choice, bool) for choice in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_admits_bool(argument) for argument in get_args(annotation))
