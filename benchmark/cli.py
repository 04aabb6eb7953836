"""The ``bench`` command: run a benchmark, list what can be run, rebuild a report, compare and merge runs.

Up front only click, numpy and the configuration are imported; torch,
pandas and the plotting stack load inside the commands that use them, so
that ``bench --help``, ``--version`` and shell completion answer at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import shutil
import signal
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import click

from . import __version__
from .config import (
    LOSS_NAMES,
    OPTIMIZER_NAMES,
    RunConfig,
    option_defaults,
    read_config,
    recorded_options,
)
from .errors import PROBLEMS_EXIT, FuncbenchError, ResourceError, describe_exception

DEFAULTS = RunConfig()
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
log = logging.getLogger("benchmark")


class BenchGroup(click.Group):
    """Turns every user error into one line on stderr and an exit code, never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message())  # `bench` alone: the help is the answer
            sys.exit(0)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split())  # click's own messages may span lines
            hint = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) else ""
            click.echo(f"error: {message}{hint}", err=True)
            sys.exit(exc.exit_code)
        except FuncbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except MemoryError:
            click.echo("error: out of memory; use fewer --samples, --eval-samples or --seeds, or a smaller model", err=True)
            sys.exit(ResourceError.exit_code)


@click.group(name="bench", cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="funcbench")
def cli() -> None:
    """funcbench: train model families on target functions, measure how far they extrapolate."""


class _EchoHandler(logging.Handler):
    """Log records as 'level: message' lines on the stderr of the moment (click's, under a test runner)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"{record.levelname.lower()}: {record.getMessage()}", err=True)


def verbosity(command):
    """-q/--quiet and -v/--verbose for a command, through the logging module (logger 'benchmark')."""

    @click.option("-q", "--quiet", is_flag=True, help="Less output: the result, warnings and errors only.")
    @click.option("-v", "--verbose", is_flag=True, help="Also say what is done, step by step (debug: lines).")
    @functools.wraps(command)
    def wrapper(*args, quiet: bool, verbose: bool, **kwargs):
        if quiet and verbose:
            # One from a config file and one on the command line: the command line wins.
            context = click.get_current_context()
            typed = [name for name in ("quiet", "verbose")
                     if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
            if len(typed) != 1:
                raise FuncbenchError("--quiet and --verbose contradict each other; give one")
            quiet, verbose = typed == ["quiet"], typed == ["verbose"]
        log.handlers[:] = [_EchoHandler()]
        log.propagate = False
        log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
        return command(*args, **kwargs)

    return wrapper


PDF_OPTION = click.option("--pdf", is_flag=True,
                          help="Write a PDF of every figure beside its SVG, for papers (drawing each figure again).")


def _default(name: str) -> str:
    value = getattr(DEFAULTS, name)
    return "each family's own" if value is None else str(value)


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--config: the file's settings become the defaults of every other option, so the command line wins."""
    if value is not None:
        settings, source = read_config(value)
        ctx.default_map = {**(ctx.default_map or {}), **option_defaults(ctx.command, settings, source)}
    return value


@cli.command()
@click.option("--config", type=click.Path(path_type=Path), is_eager=True, callback=_load_config, expose_value=False,
              help="A TOML file of options (keys as the options' names), or a run folder or its run.json to repeat "
                   "that run; options given here override it.")
@click.option("--suite", default=None, help="A published protocol or other named study (see 'bench list suites'); options given here override its settings.")
@click.option("--targets", default=None, show_default=_default("targets"), help="'all' or a comma list, e.g. 'addition,weighted_sum[n=10]'.")
@click.option("--models", default=None, show_default=_default("models"), help="'default', 'all' or a comma list, e.g. 'linear,mlp[width=128]'.")
@click.option("--seeds", type=int, default=None, show_default=_default("seeds"), help="Seeds 0..N-1, trained together per cell.")
@click.option("--epochs", type=int, default=None, show_default=_default("epochs"), help="Passes over the fixed training set (when --steps is 0).")
@click.option("--steps", type=int, default=None, show_default=_default("steps"), help="Train by this many steps, each on a fresh batch, keeping the best validation checkpoint; 0 trains by --epochs.")
@click.option("--eval-every", type=int, default=None, show_default=_default("eval_every"), help="Steps between evaluations of every split during training; 0: about 20 per training.")
@click.option("--reg-start", type=int, default=None, help="Step at which a model's regulariser starts to ramp up [default: the family's; 40% of the steps for most].")
@click.option("--reg-end", type=int, default=None, help="Step at which it reaches full strength [default: the family's; 70% of the steps for most].")
@click.option("--reg-strength", type=float, default=None, help="Weight of a model's regulariser terms in the loss [default: each family's own: 10 for NAU and NMU, 1 for the others].")
@click.option("--lr", "learning_rate", type=float, default=None, help="Learning rate for every model [default: each family's own].")
@click.option("--optimizer", type=click.Choice(OPTIMIZER_NAMES), default=None, help="Optimiser for every torch model [default: each family's own; adam for most].")
@click.option("--loss", type=click.Choice(LOSS_NAMES), default=None, help="Training loss for every torch model [default: each family's own; mse for most]. Every split is scored by MSE.")
@click.option("--clip-value", type=float, default=None, help="Clip every gradient element to [-V, V] [default: each family's own; none for most, 0.1 for iNALU].")
@click.option("--clip-norm", type=float, default=None, help="Clip each seed's whole gradient to this norm [default: each family's own; none].")
@click.option("--batch-size", type=int, default=None, show_default=_default("batch_size"))
@click.option("--samples", type=int, default=None, show_default=_default("samples"), help="Training samples per seed (the fixed training set).")
@click.option("--eval-samples", type=int, default=None, show_default=_default("eval_samples"), help="Fresh samples per seed and evaluation split.")
@click.option("--device", default=None, show_default=_default("device"), help="cpu, cuda or cuda:N.")
@click.option("--plugin", "plugins", multiple=True, help="A .py file or module name defining targets, model families or suites (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help="Folder that holds the run folders.")
@click.option("--run-id", default=None, help="Name of the run folder [default: a hash of the configuration, so rerunning resumes].")
@click.option("--force", is_flag=True, help="Recompute cells already present in the run folder.")
@click.option("--replace", is_flag=True,
              help="Empty a run folder (named by --run-id) that holds another configuration's run, and run this one "
                   "there; without it such a folder is refused.")
@click.option("--cell-batching/--no-cell-batching", default=True, show_default=True,
              help="Train the cells of a model family on targets of one input dimension as one ensemble "
                   "(the same numbers, in fewer, larger steps).")
@click.option("--jobs", type=click.IntRange(min=0), default=0, show_default="0: one per core",
              help="Worker processes training cells in parallel on this machine (never more than there are ensembles "
                   "to train); each gets an equal share of the cores. With --device cuda the default is 1. "
                   "With --executor dask: the local cluster's workers.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default=None, show_default="local",
              help="Where cells train: worker processes on this machine, or a Dask cluster "
                   "(a local one started for the run, unless --scheduler names one).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="A running Dask scheduler to train the cells on (implies --executor dask).")
@PDF_OPTION
@verbosity
def run(out: Path, run_id: str | None, force: bool, replace: bool, cell_batching: bool, jobs: int,
        executor: str | None, scheduler: str | None, pdf: bool, plugins: tuple[str, ...], suite: str | None,
        **options) -> None:
    """Train every (target, model) pair over all seeds and write a report."""
    # What plugins print goes to stderr: stdout holds the summary and the `report:` line that scripts read.
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        _run(stdout, out, run_id, force, replace, cell_batching, jobs, executor, scheduler, pdf, plugins, suite, options)


def _run(stdout, out: Path, run_id: str | None, force: bool, replace: bool, cell_batching: bool, jobs: int,
         executor: str | None, scheduler: str | None, pdf: bool, plugins: tuple[str, ...], suite: str | None,
         options: dict) -> None:
    from .plan import build_plan, resolve_config, run_headline, setting_warnings
    from .plugins import canonical_plugin, load_registry
    from .references import suite_reference
    from .store import RunStore

    if scheduler is not None and executor == "local":
        raise FuncbenchError("--scheduler runs cells on a Dask cluster; drop --executor local or --scheduler")
    given = {name: value for name, value in options.items() if value is not None}
    # A plugin file is named by its absolute path: the run, and a repeat of it
    # from its run.json, then find it whatever folder `bench` runs in.
    plugins = tuple(canonical_plugin(spec) for spec in plugins)
    registry = load_registry(plugins)
    config = resolve_config(registry, suite, {**given, "plugins": plugins})
    _check_device(config.device)
    try:
        plan = build_plan(registry, config)
    except FuncbenchError:
        _warn(registry.problems)  # a plugin that failed to import may explain the error
        raise
    # Problems of entries this run does not select are warnings; the plan's own are said below, and counted.
    _warn([p for p in registry.problems if p not in plan.problems])
    _warn(setting_warnings(config, plan))
    store = RunStore.open(out / _run_folder(run_id, config))
    with store.locked():
        store.claim(asdict(config), replace)
        _run_locked(stdout, plan, config, store, force=force, cell_batching=cell_batching, jobs=jobs, executor=executor,
                    scheduler=scheduler, pdf=pdf, reference=suite_reference(registry, config),
                    headline=run_headline(registry, config), recorded=recorded_options(
                        {**asdict(config), "out": out, "run_id": run_id, "cell_batching": cell_batching,
                         "jobs": jobs, "executor": executor, "scheduler": scheduler, "pdf": pdf}))


def _run_locked(stdout, plan, config: RunConfig, store, *, force: bool, cell_batching: bool, jobs: int, executor: str | None,
                scheduler: str | None, pdf: bool, reference: dict | None, headline: dict, recorded: dict) -> None:
    """`bench run` once its folder is held: train, report, summarise; `recorded` are the options for run.json,
    `reference` the suite's published results (`benchmark.references.suite_reference`) and `headline` what the
    report and the summary lead with (`plan.run_headline`)."""
    from tqdm import tqdm

    from .executors import DaskExecutor, LocalExecutor
    from .resources import check_fits
    from .runner import execute
    from .store import read_run
    from .threads import usable_cores

    _warn(plan.problems)
    quiet = not log.isEnabledFor(logging.INFO)
    bar = tqdm(total=len(plan.cells), unit="cell", desc=f"training ({config.seeds} seeds per cell)",
               disable=True if quiet else None, file=sys.stderr)

    def advance(cell, reused):
        bar.set_postfix_str(f"{cell.target.label} x {cell.model.label}{' (done before)' if reused else ''}")
        bar.update()

    # On a GPU, one process drives it by default; more would each hold their own context on it.
    processes = jobs or (usable_cores() if config.device == "cpu" else 1)
    local = executor != "dask" and scheduler is None  # a Dask worker holds its ensembles on its own machine
    estimate = check_fits(plan, config, processes if local else 1)
    log.debug(f"memory estimate: {estimate.total / 1024**3:.2f} GiB")
    workers = DaskExecutor(scheduler, processes) if scheduler or executor == "dask" else LocalExecutor(processes)
    log.debug(f"{len(plan.cells)} cells ({len(plan.targets)} targets x {len(plan.models)} models) into {store.root}")
    try:
        with _terminate_as_interrupt(), workers:
            outcome = execute(plan, config, store, force=force, batch_cells=cell_batching, executor=workers,
                              on_cell=advance, options=recorded, reference=reference, headline=headline)
    except KeyboardInterrupt as stop:
        bar.close()
        _interrupted(stop, f"\ninterrupted: finished cells are saved in {store.root}; run the same command again to resume")
    bar.close()

    _warn(outcome.problems)
    from .report import run_summary, write_report

    meta, tables = read_run(store.root)
    report_start = time.perf_counter()
    try:
        with _terminate_as_interrupt():
            index = write_report(store.root, meta, tables, pdf=pdf)
    except KeyboardInterrupt as stop:
        _interrupted(stop, f"\ninterrupted while drawing the report: the run is finished and its tables are saved in "
                           f"{store.root}; run `bench report {store.root}` to draw it")
    report_seconds = time.perf_counter() - report_start
    if not quiet:
        click.echo(_text_table(run_summary(meta, tables)), file=stdout)
        click.echo(
            f"\n{len(plan.cells)} cells x {config.seeds} seeds in {outcome.seconds:.1f} s "
            f"({outcome.trained} trained, {outcome.reused} reused); report in {report_seconds:.1f} s", file=stdout
        )
    click.echo(f"report: {index}", file=stdout)
    problems = len(plan.problems) + len(outcome.problems)
    if problems:
        click.echo(f"{problems} problem(s) above: those were skipped, the rest ran", err=True)
        sys.exit(PROBLEMS_EXIT)


@cli.command(name="list")
@click.argument("what", type=click.Choice(["targets", "models", "suites"]))
@click.argument("names", nargs=-1)
@click.option("--details", "-d", is_flag=True, help="Every entry in full: parameters, domains, regions, probes, origin.")
@click.option("--plugin", "plugins", multiple=True, help="A .py file or module name defining targets, model families or suites (repeatable).")
@verbosity
def list_entries(what: str, names: tuple[str, ...], details: bool, plugins: tuple[str, ...]) -> None:
    """Show the registered targets, model families or suites (plugins included) as a table; NAMES in full."""
    from .plugins import load_registry

    kind = what[:-1]
    registry = load_registry(plugins)
    entries = [registry.entry(kind, name) for name in names] if names else list(registry.table(kind).values())  # type: ignore[arg-type]
    if names or details:
        click.echo("\n".join(_describe_entry(entry, registry) for entry in entries))
    else:
        click.echo(_entry_table(entries))
        footnote = "* not part of '--targets all': select it by name or through a suite. " if kind == "target" else ""
        click.echo(f"\n{footnote}'bench list {what} NAME' shows one in full, '--details' all of them.")
    _warn(registry.problems)
    if registry.problems:
        sys.exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write the report into this folder instead of RUN_DIR (for a run folder that is read-only, "
                   "archived or shared).")
@PDF_OPTION
@verbosity
def report(run_dir: Path, out: Path | None, pdf: bool) -> None:
    """Rebuild RUN_DIR/index.html (or OUT/index.html) from the stored results, without retraining."""
    from .report import write_report
    from .store import RunStore, read_run

    meta, tables = read_run(run_dir)
    try:
        with _terminate_as_interrupt():
            if out is not None and Path(out).resolve() != Path(run_dir).resolve():
                index = write_report(run_dir, meta, tables, out, pdf=pdf)
            else:
                try:
                    with RunStore(run_dir).locked():
                        index = write_report(run_dir, meta, tables, pdf=pdf)
                except OSError as exc:  # the lock file itself cannot be made: a read-only folder
                    raise FuncbenchError(f"cannot write to '{run_dir}': {exc.strerror.lower()}; "
                                         "give --out to write the report elsewhere") from None
    except KeyboardInterrupt as stop:
        _interrupted(stop, "interrupted: the previous report, if any, is left whole; run the same command again")
    click.echo(f"report: {index}")


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The merged run folder (new or empty).")
@PDF_OPTION
@verbosity
def merge(run_dirs: tuple[Path, ...], out: Path, pdf: bool) -> None:
    """Combine finished runs made apart (on other machines, or a grid split by hand) into one run folder and report.

    A (target, model) pair held by several runs must be the same cell in each
    (the same settings, code and funcbench version); otherwise nothing is written.
    """
    from .merge import merge_runs
    from .report import write_report

    folder, meta, tables = merge_runs(list(run_dirs), out)
    index = write_report(folder, meta, tables, pdf=pdf)
    if log.isEnabledFor(logging.INFO):
        click.echo(f"merged {len(run_dirs)} runs into {meta['counts']['cells']} cells")
    click.echo(f"report: {index}")


@cli.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--metric", type=click.Choice(["nmse", "mse", "max_abs_error"]), default="nmse", show_default=True,
              help="The error compared (median over each pair's non-diverged seeds).")
@click.option("--fail-above", type=click.FloatRange(min=1, min_open=True), default=None, metavar="RATIO",
              help="Flag rows whose error grew by more than RATIO (B/A) and exit with code 1 if there is one "
                   "[default: flag at 2, exit 0].")
@click.option("--floor", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True,
              help="Errors at or below this count as equal to it: differences in rounding noise are no change.")
@click.option("--changes-only", is_flag=True, help="Print only the rows flagged worse or better.")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the comparison as a self-contained HTML page.")
@verbosity
def compare(run_a: Path, run_b: Path, metric: str, fail_above: float | None, floor: float, changes_only: bool,
            html: Path | None) -> None:
    """Compare run B against run A: per (target, model, split), the change of median error and its ratio B/A.

    For CI: 'bench compare BASELINE NEW --fail-above 1.5' exits 1 when any
    error grew by more than half.
    """
    from .compare import BETTER, WORSE, compare_runs
    from .store import read_run

    (meta_a, tables_a), (meta_b, tables_b) = read_run(run_a), read_run(run_b)
    comparison = compare_runs(meta_a, tables_a["results"], meta_b, tables_b["results"], metric,
                              fail_above or 2.0, floor)
    for setting in comparison.settings:
        log.warning(f"the runs differ in {setting}")
    shown = comparison.rows[comparison.rows["flag"].isin([WORSE, BETTER])] if changes_only else comparison.rows
    if not log.isEnabledFor(logging.INFO):
        shown = shown[shown["flag"] == WORSE]
    if len(shown):
        click.echo(_format_comparison(shown))
    click.echo(comparison.summary())
    if html is not None:
        from .report import write_comparison

        try:
            click.echo(f"comparison: {write_comparison(html, comparison, (run_a, meta_a), (run_b, meta_b))}")
        except OSError as exc:
            raise FuncbenchError(f"cannot write '{html}': {exc.strerror}; give another --html path") from None
    if fail_above is not None and comparison.count(WORSE):
        click.echo(f"error: {comparison.count(WORSE)} error(s) grew by more than {fail_above:g}x", err=True)
        sys.exit(1)


@contextlib.contextmanager
def _terminate_as_interrupt():
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


def _interrupted(stop: KeyboardInterrupt, message: str) -> None:
    """Say what is kept, and exit as the signal asks: 130 for SIGINT, 143 for SIGTERM (`_terminate_as_interrupt`)."""
    click.echo(message, err=True)
    sys.exit(128 + (stop.args[0] if stop.args else signal.SIGINT))


def _warn(problems: list[str]) -> None:
    for problem in problems:
        log.warning(problem)


def _run_folder(run_id: str | None, config: RunConfig) -> str:
    if run_id is None:
        return f"run-{config.digest()}"
    if not RUN_ID.fullmatch(run_id):
        raise FuncbenchError(
            f"--run-id '{run_id}' must be a plain folder name: letters, digits, _ . - and not starting with . or -"
        )
    return run_id


def _describe_entry(entry, registry) -> str:
    from .plan import model_trainings, resolve_config
    from .report.tables import format_point, format_solution

    params = ", ".join(f"{p.name}={p.default}" for p in entry.parameters)
    lines = [f"{entry.name}{f'[{params}]' if params else ''}: {entry.description}"]
    lines += [f"    {p.name}: one of {', '.join(map(str, p.choices))}" for p in entry.parameters if p.choices]
    if entry.kind == "target":
        try:
            t = entry.create()
        except Exception as exc:  # noqa: BLE001 - shown, not raised: the listing goes on
            lines.append(f"    cannot be built with its defaults: {describe_exception(exc)}")
        else:
            lines.append(f"    inputs ({', '.join(t.inputs)}) trained on {t.domain.describe()}")
            lines += [f"    extrapolation {name}: {region.describe()}" for name, region in t.extrapolation.items()]
            if t.probes:
                lines.append(f"    probes: {', '.join(format_point(p) for p in t.probes)}")
            if t.linear_solution is not None:
                lines.append(f"    exact linear solution: {format_solution(t.describe()['linear_solution'])}")
    if entry.kind == "suite":
        made = entry.create()
        lines.append(f"    targets {made.targets}")
        lines.append(f"    models {made.models}")
        lines.append("    " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in made.settings.items()))
        try:
            trainings = model_trainings(registry, resolve_config(registry, entry.name, {}))
        except FuncbenchError as exc:
            lines.append(f"    its models' settings cannot be resolved: {exc}")
        else:
            lines.append("    each model trains with:")
            lines += [f"      {training.label}: {training.describe()}" for training in trainings]
    if entry.kind == "target" and not entry.in_all:
        lines.append("    not part of '--targets all': select it by name or through a suite")
    lines.append(f"    from {entry.origin}")
    return "\n".join(lines)


def _entry_table(entries) -> str:
    """NAME, PARAMETERS, FROM and DESCRIPTION columns, the description wrapped to the terminal's width."""
    rows = [(entry.name + ("*" if entry.kind == "target" and not entry.in_all else ""),
             ", ".join(f"{p.name}={p.default}" for p in entry.parameters) or "-", _short_origin(entry.origin),
             entry.description)
            for entry in entries]
    header = ("NAME", "PARAMETERS", "FROM", "DESCRIPTION")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    indent = sum(widths) + 6
    room = max(30, shutil.get_terminal_size((100, 24)).columns - indent)
    lines = []
    for name, params, origin, description in [header, *rows]:
        wrapped = textwrap.wrap(description, room) or [""]
        lines.append(f"{name:<{widths[0]}}  {params:<{widths[1]}}  {origin:<{widths[2]}}  {wrapped[0]}")
        lines += [" " * indent + more for more in wrapped[1:]]
    return "\n".join(lines)


def _short_origin(origin: str) -> str:
    """Where an entry came from, short enough for a column: `plugin my_unit.py`, `entry point 'example'`."""
    if origin.startswith("plugin "):
        return "plugin " + Path(origin.removeprefix("plugin ")).name
    return origin.split(" (", 1)[0]


def _format_comparison(rows) -> str:
    shown = rows.copy()
    shown["ratio"] = [f"{v:.3g}x" if v == v else "-" for v in shown["ratio"]]
    return _text_table(shown, right=("ratio",))


def _text_table(table, right: tuple[str, ...] = ()) -> str:
    """A DataFrame as aligned text: names left, numbers right with three significant digits
    (errors span twenty orders of magnitude), '-' where a value is missing."""

    def text(value) -> str:
        if isinstance(value, float):
            return "-" if value != value else f"{value:.3g}"
        return str(value)

    columns = [[str(name), *(text(v) for v in table[name])] for name in table.columns]
    aligned = [table[name].dtype.kind in "iuf" or name in right for name in table.columns]
    widths = [max(map(len, column)) for column in columns]
    return "\n".join(
        "  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, aligned)).rstrip()
        for row in zip(*columns)
    )


def _check_device(device: str) -> None:
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


def main() -> None:
    cli()
