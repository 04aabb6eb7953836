"""funcbench from Python: `run` a benchmark, `load` a run folder; both give a `benchmark.runs.Run`.

::

    import benchmark
    r = benchmark.run(targets="addition,product", models="linear", seeds=2)
    r.results                                   # the tidy table, one row per (target, model, seed, split)
    r.predict("addition", "linear", [[3, 4]])   # every seed's answer, without retraining
    benchmark.load(r.path).summary()

`run` takes the options of ``bench run``, with the same names (`benchmark.options`) and defaults, and
gives the same run folder and numbers: ``bench run`` is a thin layer over `execute`, which both
share. Errors are `benchmark.errors.FuncbenchError` (a ValueError) with the line ``bench`` prints.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import RunConfig, read_config, recorded_options
from .errors import FuncbenchError
from .options import BY_NAME, CONFIG_OPTIONS, OPTIONS, checked_settings

log = logging.getLogger("benchmark")
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
#: `benchmark.run`'s name in its messages.
CALLER = "benchmark.run()"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run: the finished cells are kept, and the message says where.

    `signal` is the signal's number (SIGINT or SIGTERM), from which ``bench`` takes its exit code.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signal = signum


@dataclass(frozen=True)
class Finished:
    """What one invocation did, beside the run folder it leaves (`Run`): for ``bench run``'s last lines."""

    run: Any  # benchmark.runs.Run
    cells: int
    trained: int
    reused: int
    seconds: float  # training, this invocation
    report_seconds: float
    problems: list[str]  # every entry, target and cell that was skipped or failed, as said on stderr


def run(targets: str | Sequence[str] | None = None, models: str | Sequence[str] | None = None,
        seeds: int | None = None, *, suite: str | None = None, config: str | Path | None = None,
        plugins: Iterable[Any] = (), **options: Any):
    """Train every (target, model) pair over all seeds, write the run folder and its report; return the `Run`.

    The options are ``bench run``'s, by their names in `benchmark.options` (``learning_rate`` or
    ``lr``, ``eval_samples``, ``out``, ``run_id``, ``jobs``, ``quiet``...), with its defaults.
    `targets` and `models` take a selection string or a list of selectors. `config` is a TOML file or
    a run folder, as ``--config``; options given here override it. `plugins` are plugin files,
    module names, or objects defined in this session: a function decorated with `@target`, a
    `torch_model` factory, a module.

    Progress shows as a bar (a widget in Jupyter where ipywidgets is installed), unless
    ``quiet=True``. Ctrl-C stops the run, keeps every finished cell (the same call resumes it) and
    raises `RunInterrupted`, a KeyboardInterrupt. A run in which something was skipped still
    returns; `Run.problems` says what, as the warnings logged did.
    """
    strings, objects = _split_plugins(plugins)
    given = {"targets": targets, "models": models, "seeds": seeds, "suite": suite, **options}
    settings = checked_settings({k: v for k, v in given.items() if v is not None}, CALLER, names="python")
    if strings:
        if "plugins" in settings:
            raise FuncbenchError(f"{CALLER}: 'plugin' and 'plugins' set the same option; keep one")
        settings["plugins"] = BY_NAME["plugins"].checked(strings, f"{CALLER}: 'plugins'")
    values = {**(file_settings(config) if config is not None else {}), **settings}
    with _output(values.pop("quiet", False), values.pop("verbose", False)):
        return execute(values, objects).run


def load(path: str | Path, plugins: Iterable[Any] = ()):
    """The run folder at `path` (or its run.json), finished or not, as a `Run`.

    `plugins` are needed only to `predict` with targets or models that `run` was given as objects (defined in
    a notebook, or a module passed itself): give them again; plugins named by a path or a module name are
    found from the run's record.
    """
    from .runs import Run

    return Run.open(path, objects=_split_plugins(plugins)[1])


def file_settings(path: str | Path) -> dict[str, Any]:
    """The options a config file (TOML, a run folder or its run.json) sets, checked: {option name: value}."""
    raw, source = read_config(Path(path))
    return checked_settings(raw, source)


def execute(values: Mapping[str, Any], objects: Sequence[Any] = ()) -> Finished:
    """``bench run`` and `run` alike: the options (`benchmark.options` names) in, a trained and reported run out.

    Options absent from `values`, or None, take their defaults (for what the run computes: the suite's, or
    the family's, value). `objects` are entries or modules defined in the caller's
    session (`run`'s `plugins`). Raises `FuncbenchError` for bad input, before anything runs, and
    `RunInterrupted` when stopped.
    """
    from .plan import build_plan, resolve_config, run_headline, setting_warnings
    from .plugins import add_objects, canonical_plugin, load_registry
    from .references import suite_reference
    from .store import RunStore

    known = {option.name for option in OPTIONS if option.side != "output"}
    if unknown := sorted(set(values) - known):
        raise TypeError(f"execute() got unknown option(s) {', '.join(unknown)}")  # a caller's bug, not the user's
    side = {o.name: values.get(o.name, o.default) for o in OPTIONS if o.side == "run" and o.name != "config"}
    if side["scheduler"] is not None and side["executor"] == "local":
        raise FuncbenchError("--scheduler runs cells on a Dask cluster; drop --executor local or --scheduler")
    dask = side["scheduler"] is not None or side["executor"] == "dask"
    if objects and dask:
        raise FuncbenchError("targets or models defined in this session train on this machine only; put them in a "
                             "plugin file to train them on a Dask cluster")
    given = {o.name: values[o.name] for o in CONFIG_OPTIONS if values.get(o.name) is not None}
    # A plugin file is named by its absolute path: the run, and a repeat of it from its run.json,
    # then find it whatever folder it runs in.
    plugins = tuple(canonical_plugin(str(spec)) for spec in given.pop("plugins", ()))
    registry = load_registry(plugins)
    add_objects(registry, objects)
    config = resolve_config(registry, given.pop("suite", None), {**given, "plugins": plugins})
    check_device(config.device)
    try:
        plan = build_plan(registry, config)
    except FuncbenchError:
        warn(registry.problems)  # a plugin that failed to import may explain the error
        raise
    # Problems of entries this run does not select are warnings; the plan's own are said below, and counted.
    warn([p for p in registry.problems if p not in plan.problems])
    warn(setting_warnings(config, plan))
    out = Path(side["out"])
    store = RunStore.open(out / run_folder(side["run_id"], config))
    recorded = recorded_options({**asdict(config), **{k: v for k, v in side.items() if k not in ("force", "replace")}})
    with store.locked():
        store.claim(asdict(config), side["replace"])
        return _train_and_report(plan, config, store, side, objects, recorded,
                                 reference=suite_reference(registry, config), headline=run_headline(registry, config, plan.targets))


def _train_and_report(plan, config: RunConfig, store, side: Mapping[str, Any], objects: Sequence[Any],
                      recorded: dict, reference: dict | None, headline: dict) -> Finished:
    """The run once its folder is held: train, write the tables and the report."""
    from .executors import DaskExecutor, LocalExecutor
    from .report import write_report
    from .resources import check_fits
    from .runner import execute as train
    from .runs import Run
    from .threads import usable_cores

    warn(plan.problems)
    # On a GPU, one process drives it by default; more would each hold their own context on it.
    processes = side["jobs"] or (usable_cores() if config.device == "cpu" else 1)
    local = side["executor"] != "dask" and side["scheduler"] is None  # a Dask worker holds its ensembles on its own machine
    estimate = check_fits(plan, config, processes if local else 1)
    log.debug(f"memory estimate: {estimate.total / 1024**3:.2f} GiB")
    workers = DaskExecutor(side["scheduler"], processes) if not local else LocalExecutor(processes)
    log.debug(f"{len(plan.cells)} cells ({len(plan.targets)} targets x {len(plan.models)} models) into {store.root}")
    with progress_bar(len(plan.cells), f"training ({config.seeds} seeds per cell)",
                      enabled=log.isEnabledFor(logging.INFO)) as advance:
        try:
            with terminate_as_interrupt(), workers:
                outcome = train(plan, config, store, force=side["force"], batch_cells=side["cell_batching"],
                                keep_models=side["keep_models"], executor=workers, on_cell=advance, options=recorded, reference=reference,
                                headline=headline)
        except KeyboardInterrupt as stop:
            raise RunInterrupted(f"interrupted: finished cells are saved in {store.root}; run the same command "
                                 "again to resume", signal_of(stop)) from None
    warn(outcome.problems)
    finished = Run.open(store.root, objects=objects)
    report_start = time.perf_counter()
    try:
        with terminate_as_interrupt():
            write_report(store.root, finished.meta, finished.tables(), pdf=side["pdf"])
    except KeyboardInterrupt as stop:
        raise RunInterrupted(f"interrupted while drawing the report: the run is finished and its tables are saved in "
                             f"{store.root}; run `bench report {store.root}` to draw it", signal_of(stop)) from None
    return Finished(finished, len(plan.cells), outcome.trained, outcome.reused, outcome.seconds,
                    time.perf_counter() - report_start, plan.problems + outcome.problems)


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool) -> Iterator[Any]:
    """A bar of cells done, on stderr or as a Jupyter widget; yields the callback that advances it.

    On a terminal it shows; elsewhere (stderr a file or a pipe) tqdm leaves it out, except in a Jupyter
    kernel, whose stderr is never a terminal but is read by a person.
    """
    shown = (True if _in_jupyter() else None) if enabled else False
    bar = _bar_class()(total=total, unit="cell", desc=description, disable=None if shown is None else not shown,
                       file=sys.stderr)

    def advance(cell, reused: bool) -> None:
        bar.set_postfix_str(f"{cell.target.label} x {cell.model.label}{' (done before)' if reused else ''}")
        bar.update()

    try:
        yield advance
    finally:
        bar.close()


def _bar_class():
    """tqdm's notebook widget inside a Jupyter kernel that can show it, else its text bar."""
    from tqdm import tqdm

    if _in_jupyter():
        try:
            import ipywidgets  # noqa: F401 - the widget needs it; without it, the text bar
            from tqdm.notebook import tqdm as widget
        except ImportError:
            return tqdm
        return widget
    return tqdm


def _in_jupyter() -> bool:
    """Whether stderr is a Jupyter kernel's: a process that merely imported ipykernel (a test's) is not in one."""
    return type(sys.stderr).__module__.startswith("ipykernel")


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (a scheduler's or `kill`'s stop) ends a run as Ctrl-C does: workers stopped, finished cells kept."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signum)

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding application): leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def signal_of(stop: KeyboardInterrupt) -> int:
    """The signal that stopped a run: SIGTERM where `terminate_as_interrupt` turned one into the interrupt."""
    return stop.args[0] if stop.args and isinstance(stop.args[0], int) else signal.SIGINT


def run_folder(run_id: str | None, config: RunConfig) -> str:
    """The run folder's name: `run_id`, or a hash of the configuration, so that the same run finds its folder."""
    if run_id is None:
        return f"run-{config.digest()}"
    if not RUN_ID.fullmatch(run_id):
        raise FuncbenchError(
            f"--run-id '{run_id}' must be a plain folder name: letters, digits, _ . - and not starting with . or -"
        )
    return run_id


def check_device(device: str) -> None:
    """A device this machine has, or a one-line error saying what to use instead."""
    if device == "cpu":
        return
    import torch

    if not device.startswith("cuda"):
        raise FuncbenchError(f"unknown device '{device}'; use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise FuncbenchError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    try:
        index = torch.device(device).index or 0
    except RuntimeError:
        raise FuncbenchError(f"invalid device '{device}'; use cpu, cuda or cuda:N") from None
    if index >= torch.cuda.device_count():
        raise FuncbenchError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0")


def _split_plugins(plugins: Iterable[Any]) -> tuple[list[str], list[Any]]:
    """Plugins named (files, modules) apart from plugins given as objects (entries, modules)."""
    from .registry import Entry

    if isinstance(plugins, (str, Path, Entry, ModuleType)):
        plugins = [plugins]
    strings, objects = [], []
    for plugin in plugins:
        if isinstance(plugin, (str, Path)):
            strings.append(str(plugin))
        elif isinstance(plugin, (Entry, ModuleType)):
            objects.append(plugin)
        else:
            raise FuncbenchError(f"{CALLER}: plugins takes files, module names, modules or objects made by "
                                 f"@target, @target_family, @model_family, @torch_model or suite(); got "
                                 f"{type(plugin).__name__}")
    return strings, objects


def warn(problems: Iterable[str]) -> None:
    """Each problem as a warning of the logger 'benchmark' (a `warning:` line from `bench`)."""
    for problem in problems:
        log.warning(problem)


@contextlib.contextmanager
def _output(quiet: bool, verbose: bool) -> Iterator[None]:
    """The logger's level for one call of `run`: warnings only when quiet, debug lines when verbose."""
    if quiet and verbose:
        raise FuncbenchError(f"{CALLER}: quiet and verbose contradict each other; give one")
    previous = log.level
    if quiet or verbose or log.level == logging.NOTSET:
        log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        log.setLevel(previous)
