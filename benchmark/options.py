"""Every option of a run, declared once: its name, type, default, range and meaning.

`bench run`'s click options, the checks on a config file's keys, the
keyword arguments of `benchmark.run`, `RunConfig`'s bounds and the README's
table of options all come from `OPTIONS`, so the five cannot drift apart
(tests/test_readme.py checks the table against `options_table`).

An option is one of three sides of a run:

- ``config``: what the run computes, a `RunConfig` field, part of the
  run folder's name and of run.json's ``config``;
- ``run``: how and where this invocation runs it (``--out``, ``--jobs``,
  ``--force``...), recorded in run.json's ``options`` to repeat it;
- ``output``: what it says while it runs (``--quiet``, ``--verbose``).

Help texts are written once, with `backticks` for what a user types: the
README shows them as code, ``--help`` as plain text.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import FuncbenchError, unknown_name

Side = Literal["config", "run", "output"]

#: The optimisers and losses a run may name (`benchmark.train.optimizers`, `benchmark.train.loop`).
OPTIMIZER_NAMES = ("adam", "adamw", "sgd")
LOSS_NAMES = ("mse", "mae")


@dataclass(frozen=True)
class Option:
    """One option of a run.

    `kind` is the type of its value: int, float, str, bool (a flag), Path,
    or tuple (a repeatable string). `default` is what a run gets when the
    option is not given; None where the run decides (each model family's own
    value, or a hash of the configuration), which `default_text` then says.
    A number must lie in [`low`, `high`] (above `low` where `low_open`) and
    be finite.
    """

    name: str
    kind: type
    default: Any
    help: str
    side: Side = "config"
    flag: str = ""  # as typed on the command line; "--" + the name with dashes unless given
    short: str = ""  # a one-letter spelling, e.g. "-q"
    negative: str = ""  # the flag that turns a default-on switch off, e.g. "--no-cell-batching"
    default_text: str = ""  # the default as --help and the README say it, where str(default) does not
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    completes: Literal["target", "model", "suite", ""] = ""  # the registry's names a shell completes it with

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def spellings(self) -> set[str]:
        """The keys a config file or `benchmark.run` may give it under: the name and the flag, with - or _."""
        return {self.name, self.cli_flag.lstrip("-").replace("-", "_")}

    @property
    def shown_default(self) -> str:
        if self.default_text:
            return self.default_text
        if self.kind is bool:
            return "on" if self.default else "off"
        return "" if self.default is None or self.default == () else str(self.default)

    def problem(self, value: Any) -> str | None:
        """Why `value`, of the right type, is outside this option's range or choices; None if it is not."""
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got '{value}'"
        if self.kind not in (int, float) or value is None:
            return None
        if self.kind is float and not math.isfinite(value):
            return self._range_phrase(value)
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        return self._range_phrase(value) if too_low or too_high else None

    def _range_phrase(self, value: Any) -> str:
        if self.high is not None:
            return f"must be between {self.low:g} and {self.high:,}, got {value}"
        if self.low_open:
            return f"must be a positive number, got {value}"
        return f"must be {'a number' if self.kind is float else 'an integer'} of at least {self.low:g}, got {value}"

    def checked(self, value: Any, where: str, within: bool = True) -> Any:
        """`value` as this option takes it from a config file or from Python, or a one-line error.

        `where` begins the message, e.g. "study.toml: 'seeds'". Types are not
        coerced (a file's ``seeds = "5"`` is refused, not read as 5); with
        `within`, so are the range and choices, as on the command line.
        """

        def wrong(expected: str) -> FuncbenchError:
            return FuncbenchError(f"{where} must be {expected}, got {value!r}")

        if self.kind is tuple:  # --plugin: paths or module names
            items = [value] if isinstance(value, (str, os.PathLike)) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(i, (str, os.PathLike)) for i in items):
                raise wrong("a string or a list of strings")
            return [os.path.expanduser(os.fspath(item)) for item in items]  # as a shell would on the command line
        if self.kind is bool:
            if not isinstance(value, bool):
                raise wrong("true or false")
            return value
        if self.kind in (int, float):
            integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            if not (integral or (self.kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool))):
                raise wrong("an integer" if self.kind is int else "a number")
            value = int(value) if self.kind is int else float(value)
        elif self.name in ("targets", "models") and isinstance(value, (list, tuple)):
            # Selections may be lists, which read better than one long comma list.
            if not all(isinstance(v, str) for v in value):
                raise wrong("a string or a list of strings")
            value = ",".join(value)
        elif self.kind is Path:
            if not isinstance(value, (str, os.PathLike)):
                raise wrong("a path")
            value = os.path.expanduser(os.fspath(value))
        elif not isinstance(value, str):
            raise wrong("a string")
        if within and (problem := self.problem(value)):
            raise FuncbenchError(f"{where} {problem}")
        return value


_PER_FAMILY = "each family's own"

OPTIONS: tuple[Option, ...] = (
    Option("config", Path, None, side="run",
           help="a TOML file of options (keys as the options' names), or a run folder or its `run.json` to repeat "
                "that run; options given beside it override it (see *Configuration files*)"),
    Option("suite", str, None, completes="suite",
           help="a published protocol or other named study, e.g. `arithmetic-single-layer` (see `bench list "
                "suites`); the other options override its settings"),
    Option("targets", str, "all", completes="target", help="`all` or a comma list of selectors `name` / `name[key=value,...]`, "
                                       "e.g. `addition,weighted_sum[n=10]`"),
    Option("models", str, "default", completes="model",
           help="`default` (linear, mlp, mlp_tanh), `all`, or a comma list of selectors, e.g. `linear,mlp[width=128]`"),
    Option("seeds", int, 5, low=1, high=10_000, help="seeds 0..N-1, trained together per cell; each gets its own "
                                                     "data and initialisation", metavar="N"),
    Option("epochs", int, 100, low=1, high=10_000_000, help="passes over the fixed training set (when `--steps` is 0)"),
    Option("steps", int, 0, low=0, high=1_000_000_000,
           help="when above 0: train by this many optimiser steps, each on a fresh batch, and keep each seed's "
                "parameters with the best validation MSE; 0 trains by `--epochs` and keeps the final parameters"),
    Option("eval_every", int, 0, low=0, high=1_000_000_000, default_text="0: about 20 per training",
           help="steps between evaluations of every split during training (`evaluations.parquet`, \"solved at\")"),
    Option("reg_start", int, None, low=0, high=1_000_000_000, default_text="each family's own: 40% of the steps for most",
           help="the step at which a model's regulariser (`progress` of its `regularizer` hook) starts to ramp up"),
    Option("reg_end", int, None, low=0, high=1_000_000_000, default_text="each family's own: 70% of the steps for most",
           help="the step at which it reaches full strength"),
    Option("reg_strength", float, None, low=0, default_text=f"{_PER_FAMILY}: 10 for NAU and NMU, else 1",
           help="the weight of a model's regulariser terms in the loss"),
    Option("learning_rate", float, None, flag="--lr", low=0, low_open=True,
           default_text=f"{_PER_FAMILY}: 0.1 for `linear` (the article's), 0.01 for MLPs and most units, 5e-3 for the NPUs",
           help="learning rate for every model"),
    Option("optimizer", str, None, choices=OPTIMIZER_NAMES, default_text=f"{_PER_FAMILY}: `adam` for most",
           help="`adam`, `adamw` (decoupled weight decay 0.01) or `sgd` (no momentum), for every torch model"),
    Option("loss", str, None, choices=LOSS_NAMES, default_text=f"{_PER_FAMILY}: `mse` for most",
           help="the training loss, `mse` or `mae`, for every torch model; every split is scored by MSE whatever the loss"),
    Option("clip_value", float, None, low=0, low_open=True, default_text=f"{_PER_FAMILY}: none (iNALU: 0.1)",
           help="clip every gradient element to [-V, V]"),
    Option("clip_norm", float, None, low=0, low_open=True, default_text=f"{_PER_FAMILY}: none",
           help="then clip each seed's whole gradient to this norm"),
    Option("batch_size", int, 200, low=1, high=10_000_000, help="minibatch size, reshuffled every epoch"),
    Option("samples", int, 1000, low=1, high=10_000_000, help="training samples per seed (the fixed training set)"),
    Option("eval_samples", int, 1000, low=2, high=10_000_000, help="fresh samples per seed for each evaluation split"),
    Option("device", str, "cpu", help="`cpu`, `cuda` or `cuda:N`"),
    Option("plugins", tuple, (), flag="--plugin",
           help="a `.py` file or module name defining targets, model families or suites; repeatable"),
    Option("out", Path, Path("reports"), side="run", help="the folder that holds the run folders"),
    Option("run_id", str, None, side="run", default_text="a hash of the configuration, so rerunning resumes",
           help="the name of the run folder"),
    Option("force", bool, False, side="run", help="recompute cells already present in the run folder"),
    Option("replace", bool, False, side="run",
           help="empty a run folder (named by `--run-id`) that holds another configuration's run and run this one "
                "there; without it such a folder is refused (see *What is guaranteed*)"),
    Option("cell_batching", bool, True, side="run", negative="--no-cell-batching",
           help="train the cells of a model family on targets of one input dimension as one ensemble (the same "
                "numbers, in fewer, larger steps); off, every cell trains on its own"),
    Option("keep_models", bool, True, side="run", negative="--no-keep-models",
           help="keep each cell's trained models in its folder, to ask them new points later (`bench predict`); "
                "a few KB to 100 KB a cell for the torch families, up to 11 MB for a random forest"),
    Option("jobs", int, 0, side="run", low=0, high=10_000, metavar="N", default_text="0: one per core",
           help="worker processes training cells in parallel on this machine, each with an equal share of the cores "
                "(never more than there are ensembles to train; with `--device cuda` one by default; with "
                "`--executor dask` and no `--scheduler`, the local cluster's workers)"),
    Option("executor", str, None, side="run", choices=("local", "dask"), default_text="local",
           help="where cells train: `local` (worker processes on this machine) or `dask` (a Dask cluster, a local "
                "one started for the run unless `--scheduler` names one)"),
    Option("scheduler", str, None, side="run", metavar="tcp://HOST:PORT",
           help="a running Dask scheduler to train the cells on; implies `--executor dask`"),
    Option("pdf", bool, False, side="run",
           help="also write a PDF of every figure beside its SVG, for papers (each figure is drawn again)"),
    Option("quiet", bool, False, side="output", short="-q",
           help="less output: no progress bar and no summary, only the result, warnings and errors"),
    Option("verbose", bool, False, side="output", short="-v",
           help="also say what is done, step by step (`debug:` lines: the grid, each ensemble as it finishes)"),
)

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
#: The options that define what a run computes: `RunConfig`'s fields, in order.
CONFIG_OPTIONS = tuple(option for option in OPTIONS if option.side == "config")
#: The one option a file cannot set: another file.
NOT_IN_FILES = ("config",)


def checked_settings(settings: Mapping[str, Any], source: str,
                     names: Literal["command line", "python"] = "command line") -> dict[str, Any]:
    """`settings`, keyed by any spelling of an option, checked: {option name: value}, or a one-line error.

    A key that names no option is refused with the closest valid ones
    suggested, spelt as the command line spells them (a config file) or as
    Python does (`benchmark.run`'s keywords); so is one option given twice
    under two spellings. `source` begins every message: a file's path, or
    ``benchmark.run()``.
    """
    by_spelling = {spelling: option for option in OPTIONS if option.name not in NOT_IN_FILES
                   for spelling in option.spellings}
    chosen: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in settings.items():
        option = by_spelling.get(str(key).replace("-", "_"))
        if option is None:
            known = {o.name if names == "python" else o.cli_flag.lstrip("-") for o in OPTIONS if o.name not in NOT_IN_FILES}
            what = "keyword argument" if names == "python" else "option"
            raise FuncbenchError(f"{source}: {unknown_name(what, str(key), known)}")
        if option.name in chosen:
            raise FuncbenchError(f"{source}: '{given_as[option.name]}' and '{key}' set the same option; keep one")
        if names == "python":
            # Out of range, the line the command line prints: `RunConfig` says it for what a run computes.
            value = option.checked(value, f"{source}: '{key}'", within=False)
            chosen[option.name] = value if option.side == "config" else check_value(option.name, value)
        else:
            chosen[option.name] = option.checked(value, f"{source}: '{key}'")
        given_as[option.name] = str(key)
    return chosen


def check_value(name: str, value: Any) -> Any:
    """`value` within option `name`'s range and choices, or a one-line error in the command line's words."""
    option = BY_NAME[name]
    if value is not None and (problem := option.problem(value)):
        raise FuncbenchError(f"{option.cli_flag} {problem}")
    return value


def options_table() -> str:
    """The README's table of `bench run`'s options, in Markdown, from the declaration."""
    rows = ["| option | in Python | default | meaning |", "| --- | --- | --- | --- |"]
    for option in OPTIONS:
        flags = ", ".join(f"`{flag}`" for flag in (option.short, option.cli_flag, option.negative) if flag)
        default = option.shown_default
        if default and " " not in default and option.kind is not bool:
            default = f"`{default}`"
        rows.append(f"| {flags} | `{option.name}` | {default} | {option.help} |")
    return "\n".join(rows)


def plain(text: str) -> str:
    """A help text as a terminal shows it: without the Markdown backticks and emphasis."""
    return text.replace("`", "").replace("*", "'")
