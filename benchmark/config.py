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
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import FuncbenchError
from .fingerprint import stable_hash
from .options import BY_NAME, CONFIG_OPTIONS, check_value

#: What `bench run` trains when no --models is given.
DEFAULT_MODELS = ("linear", "mlp", "mlp_tanh")
#: The family whose verdict a run leads with unless its suite names another (or none): the
#: article's single linear unit, which every other family is read against.
REFERENCE_MODEL = "linear"
#: What a report opens with: the reference family's verdict per target, the published success
#: statistics, the extrapolation linearity of the ReLU study, or the solution rates on formula targets.
HEADLINES = ("verdict", "success", "linearity", "solutions")
#: What a run.json's options leave out: --force and --replace act once, they do not describe the run;
#: a suite's per-family settings come from the suite, which is recorded by name.
NOT_RECORDED = ("force", "replace", "model_settings")


def _default(name: str) -> Any:
    return BY_NAME[name].default


@dataclass(frozen=True)
class RunConfig:
    """Everything `bench run` is asked to do; recorded in run.json. Each field's default and range are its
    option's (`benchmark.options`)."""

    targets: str = _default("targets")
    models: str = _default("models")
    suite: str | None = _default("suite")  # the suite these settings came from, if any
    seeds: int = _default("seeds")
    epochs: int = _default("epochs")
    steps: int = _default("steps")  # > 0: train by steps on fresh batches, keeping the best validation checkpoint
    eval_every: int = _default("eval_every")  # steps between evaluations; 0: about 20 per training
    reg_start: int | None = _default("reg_start")  # the units' sparsity regulariser ramp; None: 40% of the steps
    reg_end: int | None = _default("reg_end")  # None: 70% of the steps
    learning_rate: float | None = _default("learning_rate")  # None: each family's own default
    reg_strength: float | None = _default("reg_strength")  # None: each family's own (TrainSettings.regularizer_strength)
    optimizer: str | None = _default("optimizer")  # None: each family's own, adam for most
    loss: str | None = _default("loss")  # None: each family's own, mse for most
    clip_value: float | None = _default("clip_value")  # None: each family's own, no clipping for most
    clip_norm: float | None = _default("clip_norm")
    batch_size: int = _default("batch_size")
    samples: int = _default("samples")
    eval_samples: int = _default("eval_samples")
    device: str = _default("device")
    plugins: tuple[str, ...] = _default("plugins")
    #: A suite's options for single families, by family name: they win over the options above that
    #: came from the suite, and lose to those given on the command line (`plan.resolve_config`).
    model_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for option in CONFIG_OPTIONS:  # the ranges and choices of `benchmark.options`, in the command line's words
            check_value(option.name, getattr(self, option.name))
        if self.reg_start is not None and self.reg_end is not None and not 0 <= self.reg_start <= self.reg_end:
            raise FuncbenchError(f"need 0 <= --reg-start <= --reg-end, got {self.reg_start} and {self.reg_end}")

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


def recorded_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """What run.json keeps of a run's options: everything that configures it, as a config file would say it
    (TOML has no null: an option left to its default is left out)."""
    return {name: list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
            for name, value in values.items() if name not in NOT_RECORDED and value is not None}
