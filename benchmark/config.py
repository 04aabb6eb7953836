"""What a run is asked to do (`RunConfig`), and the files that say it: TOML kept in git, or a run's run.json.

A file sets `bench run` options by name, with the command line's spelling
(``eval-samples`` or ``eval_samples``; ``lr`` or ``learning_rate``;
``plugin`` or ``plugins``)::

    # study.toml
    targets = ["addition", "weighted_sum[n=10]"]   # or "addition,weighted_sum[n=10]"
    models = "linear,mlp"
    seeds = 10
    lr = 0.01
    out = "reports/study"

Precedence, lowest first: funcbench's defaults, a `suite`'s settings, the
file, the options on the command line. Paths in a file are read as they
would be on the command line, from the folder `bench` runs in.

Every run writes the options it ran with into its run.json (``options``),
so ``bench run --config RUN_DIR`` (or ``RUN_DIR/run.json``) runs the same
configuration again: in the same folder, where every finished cell is
reused, unless ``--out``/``--run-id`` or ``--force`` say otherwise.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from .errors import FuncbenchError, unknown_name
from .fingerprint import stable_hash

#: What `bench run` trains when no --models is given.
DEFAULT_MODELS = ("linear", "mlp", "mlp_tanh")
#: The family whose verdict a run leads with unless its suite names another (or none): the
#: article's single linear unit, which every other family is read against.
REFERENCE_MODEL = "linear"
#: What a report opens with: the reference family's verdict per target, the published success
#: statistics, or the extrapolation linearity of the ReLU study.
HEADLINES = ("verdict", "success", "linearity")
#: The optimisers and losses a run may name (`benchmark.train.optimizers`, `benchmark.train.loop`).
OPTIMIZER_NAMES = ("adam", "adamw", "sgd")
LOSS_NAMES = ("mse", "mae")
#: The one option a file cannot set: another file.
NOT_CONFIGURABLE = ("config",)
#: What a run.json's options leave out: --force and --replace act once, they do not describe the run;
#: a suite's per-family settings come from the suite, which is recorded by name.
NOT_RECORDED = ("force", "replace", "model_settings")


#: The range of each numeric option. Upper bounds are far beyond any sensible run; they turn a typo
#: into a message instead of an allocation that takes the machine down.
BOUNDS = {"seeds": (1, 10_000), "epochs": (1, 10_000_000), "steps": (0, 1_000_000_000),
          "eval_every": (0, 1_000_000_000), "reg_start": (0, 1_000_000_000), "reg_end": (0, 1_000_000_000),
          "batch_size": (1, 10_000_000), "samples": (1, 10_000_000), "eval_samples": (2, 10_000_000)}


def out_of_bounds(name: str, value: Any) -> str | None:
    """Why `value` is outside option `name`'s range, or None."""
    low, high = BOUNDS.get(name, (None, None))
    if low is not None and not low <= value <= high:
        return f"must be between {low} and {high:,}, got {value}"
    return None


@dataclass(frozen=True)
class RunConfig:
    """Everything `bench run` is asked to do; recorded in run.json."""

    targets: str = "all"
    models: str = "default"
    suite: str | None = None  # the suite these settings came from, if any
    seeds: int = 5
    epochs: int = 100
    steps: int = 0  # > 0: train by steps on fresh batches, keeping the best validation checkpoint
    eval_every: int = 0  # steps between evaluations; 0: about 20 per training
    reg_start: int | None = None  # the units' sparsity regulariser ramp; None: 40% of the steps
    reg_end: int | None = None  # None: 70% of the steps
    learning_rate: float | None = None  # None: each family's own default
    reg_strength: float | None = None  # None: each family's own (TrainSettings.regularizer_strength)
    optimizer: str | None = None  # None: each family's own, adam for most
    loss: str | None = None  # None: each family's own, mse for most
    clip_value: float | None = None  # None: each family's own, no clipping for most
    clip_norm: float | None = None
    batch_size: int = 200
    samples: int = 1000
    eval_samples: int = 1000
    device: str = "cpu"
    plugins: tuple[str, ...] = ()
    #: A suite's options for single families, by family name: they win over the options above that
    #: came from the suite, and lose to those given on the command line (`plan.resolve_config`).
    model_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in BOUNDS:
            value = getattr(self, name)
            if value is not None and (problem := out_of_bounds(name, value)):
                raise FuncbenchError(f"--{name.replace('_', '-')} {problem}")
        if self.reg_start is not None and self.reg_end is not None and not 0 <= self.reg_start <= self.reg_end:
            raise FuncbenchError(f"need 0 <= --reg-start <= --reg-end, got {self.reg_start} and {self.reg_end}")
        for name, option in (("learning_rate", "lr"), ("clip_value", "clip-value"), ("clip_norm", "clip-norm")):
            value = getattr(self, name)
            if value is not None and not (value > 0 and np.isfinite(value)):
                raise FuncbenchError(f"--{option} must be a positive number, got {value}")
        if self.reg_strength is not None and not (self.reg_strength >= 0 and np.isfinite(self.reg_strength)):
            raise FuncbenchError(f"--reg-strength must be a number of at least 0, got {self.reg_strength}")
        for name, known in (("optimizer", OPTIMIZER_NAMES), ("loss", LOSS_NAMES)):
            value = getattr(self, name)
            if value is not None and value not in known:
                raise FuncbenchError(f"--{name} must be one of {', '.join(known)}, got '{value}'")

    def digest(self) -> str:
        """A short hash naming the run, so the same command finds its own folder."""
        return stable_hash(asdict(self))[:10]


def read_config(path: Path) -> tuple[dict[str, Any], str]:
    """The raw settings in a config file, run.json or run folder, and a name for messages."""
    path = Path(path)
    if path.is_dir():
        if not (path / "run.json").is_file():
            raise FuncbenchError(f"--config '{path}' is a folder without a run.json; give a .toml file or a run folder")
        path = path / "run.json"
    if not path.is_file():
        raise FuncbenchError(f"config file '{path}' does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FuncbenchError(f"cannot read config file '{path}': {exc}") from None
    if path.suffix == ".json":
        return _from_run_json(path, text), str(path)
    if path.suffix != ".toml":
        raise FuncbenchError(f"config file '{path}' must be a .toml file, a run folder or its run.json")
    try:
        return tomllib.loads(text), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise FuncbenchError(f"config file '{path}' is not valid TOML: {exc}") from None


def _from_run_json(path: Path, text: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FuncbenchError(f"'{path}' is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise FuncbenchError(f"'{path}' is not a funcbench run.json (it has no 'config')")
    if meta.get("merged_from"):
        raise FuncbenchError(f"'{path}' is a merged run, made by several commands; "
                             "give the run.json of one of the runs it names in 'merged_from'")
    # Runs before 0.4 recorded only their configuration, not the options around it.
    recorded = meta.get("options", meta["config"])
    if not isinstance(recorded, dict):
        raise FuncbenchError(f"'{path}' is not a funcbench run.json (its 'options' are not a table)")
    settings = {key: value for key, value in recorded.items() if value is not None}
    # The repeat goes beside the original, wherever `bench` runs: into the same
    # folder when nothing is overridden (its configuration names it), so every cell is reused.
    settings["out"] = str(path.resolve().parent.parent)
    return settings


def option_defaults(command: click.Command, settings: Mapping[str, Any], source: str) -> dict[str, Any]:
    """`settings` checked against `command`'s options: a default_map for click, by parameter name.

    A key that names no option, or a value of the wrong type, is a one-line
    error naming the file and the key; so is one option set twice under two spellings.
    """
    options = {
        spelling: param
        for param in command.params
        if isinstance(param, click.Option) and param.name not in NOT_CONFIGURABLE
        for spelling in _spellings(param)
    }
    chosen: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in settings.items():
        param = options.get(str(key).replace("-", "_"))
        if param is None:
            # Suggested as typed on the command line: eval-samples, lr, plugin.
            known = {max(param.opts, key=len).lstrip("-") for param in options.values()}
            raise FuncbenchError(f"{source}: {unknown_name('option', str(key), known)}")
        if param.name in chosen:
            raise FuncbenchError(f"{source}: '{given_as[param.name]}' and '{key}' set the same option; keep one")
        chosen[param.name] = _checked(param, key, value, source)
        given_as[param.name] = str(key)
    return chosen


def recorded_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """What run.json keeps of a run's options: everything that configures it, as a config file would say it
    (TOML has no null: an option left to its default is left out)."""
    return {name: list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
            for name, value in values.items() if name not in NOT_RECORDED and value is not None}


def _spellings(param: click.Option) -> set[str]:
    return {param.name, *(opt.lstrip("-").replace("-", "_") for opt in param.opts)}


def _checked(param: click.Option, key: str, value: Any, source: str) -> Any:
    """The value as the option takes it, or a one-line error; TOML's own types are not coerced."""

    def wrong(expected: str) -> FuncbenchError:
        return FuncbenchError(f"{source}: '{key}' must be {expected}, got {value!r}")

    if param.multiple:  # --plugin: paths or module names
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise wrong("a string or a list of strings")
        return [os.path.expanduser(item) for item in items]  # as a shell would on the command line
    if param.is_flag:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    kind = param.type
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        integer = isinstance(kind, click.types.IntParamType)
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            raise wrong("an integer" if integer else "a number")
        try:
            converted = kind.convert(value, param, None)  # the option's own range, as on the command line
        except click.BadParameter as exc:
            raise FuncbenchError(f"{source}: '{key}': {exc.message}") from None
        if problem := out_of_bounds(param.name, converted):
            raise FuncbenchError(f"{source}: '{key}' {problem}")
        return converted
    if isinstance(kind, click.Choice):
        if value not in kind.choices:
            raise wrong(f"one of {', '.join(map(str, kind.choices))}")
        return value
    # Selections may be TOML lists, which read better than one long comma list.
    if param.name in ("targets", "models") and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if not isinstance(value, str):
        raise wrong("a string")
    return os.path.expanduser(value) if isinstance(kind, click.Path) else value
