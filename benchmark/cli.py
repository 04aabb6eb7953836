"""The ``bench`` command: run a benchmark, list what can be run, rebuild a report, merge runs."""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import time
from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from . import __version__
from .errors import FuncbenchError, describe_exception
from .plan import RunConfig, build_plan, resolve_config
from .plugins import load_registry
from .registry import Entry
from .report import target_summary, write_report
from .report.tables import format_point, format_solution
from .store import RunStore, read_run

DEFAULTS = RunConfig()
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


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
            sys.exit(2)
        except MemoryError:
            click.echo("error: out of memory; use fewer --samples, --eval-samples or --seeds, or a smaller model", err=True)
            sys.exit(1)


@click.group(name="bench", cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="funcbench")
def cli() -> None:
    """funcbench: train model families on target functions, measure how far they extrapolate."""


def _default(name: str) -> str:
    value = getattr(DEFAULTS, name)
    return "each family's own" if value is None else str(value)


@cli.command()
@click.option("--suite", default=None, help="A published protocol or other named study (see 'bench list suites'); options given here override its settings.")
@click.option("--targets", default=None, show_default=_default("targets"), help="'all' or a comma list, e.g. 'addition,weighted_sum[n=10]'.")
@click.option("--models", default=None, show_default=_default("models"), help="'default', 'all' or a comma list, e.g. 'linear,mlp[width=128]'.")
@click.option("--seeds", type=int, default=None, show_default=_default("seeds"), help="Seeds 0..N-1, trained together per cell.")
@click.option("--epochs", type=int, default=None, show_default=_default("epochs"), help="Passes over the fixed training set (when --steps is 0).")
@click.option("--steps", type=int, default=None, show_default=_default("steps"), help="Train by this many steps, each on a fresh batch, keeping the best validation checkpoint; 0 trains by --epochs.")
@click.option("--eval-every", type=int, default=None, show_default=_default("eval_every"), help="Steps between evaluations of every split during training; 0: about 20 per training.")
@click.option("--reg-start", type=int, default=None, help="Step at which the arithmetic units' sparsity regulariser starts to ramp up [default: 40% of the steps].")
@click.option("--reg-end", type=int, default=None, help="Step at which it reaches full strength [default: 70% of the steps].")
@click.option("--lr", "learning_rate", type=float, default=None, help="Adam learning rate for every model [default: each family's own].")
@click.option("--batch-size", type=int, default=None, show_default=_default("batch_size"))
@click.option("--samples", type=int, default=None, show_default=_default("samples"), help="Training samples per seed (the fixed training set).")
@click.option("--eval-samples", type=int, default=None, show_default=_default("eval_samples"), help="Fresh samples per seed and evaluation split.")
@click.option("--device", default=None, show_default=_default("device"), help="cpu, cuda or cuda:N.")
@click.option("--plugin", "plugins", multiple=True, help="A .py file or module name defining targets (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help="Folder that holds the run folders.")
@click.option("--run-id", default=None, help="Name of the run folder [default: a hash of the configuration, so rerunning resumes].")
@click.option("--force", is_flag=True, help="Recompute cells already present in the run folder.")
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
def run(out: Path, run_id: str | None, force: bool, cell_batching: bool, jobs: int, executor: str | None,
        scheduler: str | None, plugins: tuple[str, ...], suite: str | None, **options) -> None:
    """Train every (target, model) pair over all seeds and write a report."""
    if scheduler is not None and executor == "local":
        raise FuncbenchError("--scheduler runs cells on a Dask cluster; drop --executor local or --scheduler")
    given = {name: value for name, value in options.items() if value is not None}
    registry = load_registry(plugins)
    config = resolve_config(registry, suite, {**given, "plugins": plugins})
    _check_device(config.device)
    try:
        plan = build_plan(registry, config)
    except FuncbenchError:
        _warn(registry.problems)  # a plugin that failed to import may explain the error
        raise
    store = RunStore.open(out / _run_folder(run_id, config))
    _warn(plan.problems)

    from .executors import DaskExecutor, LocalExecutor, usable_cores
    from .runner import execute

    bar = tqdm(total=len(plan.cells), unit="cell", desc="training", disable=None, file=sys.stderr)

    def advance(cell, reused):
        bar.set_postfix_str(f"{cell.target.label} x {cell.model.label}{' (done before)' if reused else ''}")
        bar.update()

    # On a GPU, one process drives it by default; more would each hold their own context on it.
    jobs = jobs or (usable_cores() if config.device == "cpu" else 1)
    workers = DaskExecutor(scheduler, jobs) if scheduler or executor == "dask" else LocalExecutor(jobs)
    try:
        with _terminate_as_interrupt(), workers:
            outcome = execute(plan, config, store, force=force, batch_cells=cell_batching, executor=workers,
                              on_cell=advance)
    except KeyboardInterrupt as stop:
        bar.close()
        click.echo(f"\ninterrupted: finished cells are saved in {store.root}; run the same command again to resume", err=True)
        sys.exit(128 + (stop.args[0] if stop.args else signal.SIGINT))
    bar.close()

    _warn(outcome.problems)
    meta, tables = read_run(store.root)
    report_start = time.perf_counter()
    index = write_report(store.root, meta, tables)
    report_seconds = time.perf_counter() - report_start
    summary = target_summary(tables["results"])
    click.echo(_format_summary(summary))
    click.echo(
        f"\n{len(plan.cells)} cells x {config.seeds} seeds in {outcome.seconds:.1f} s "
        f"({outcome.trained} trained, {outcome.reused} reused); report in {report_seconds:.1f} s"
    )
    click.echo(f"report: {index}")
    problems = len(plan.problems) + len(outcome.problems)
    if problems:
        click.echo(f"{problems} problem(s) above: those were skipped, the rest ran", err=True)
        sys.exit(1)


@cli.command(name="list")
@click.argument("what", type=click.Choice(["targets", "models", "suites"]))
@click.option("--plugin", "plugins", multiple=True, help="A .py file or module name defining targets (repeatable).")
def list_entries(what: str, plugins: tuple[str, ...]) -> None:
    """Show every registered target, model family or suite, plugins included."""
    registry = load_registry(plugins)
    entries = registry.table(what[:-1])  # type: ignore[arg-type]
    for entry in entries.values():
        click.echo(_describe_entry(entry))
    _warn(registry.problems)
    if registry.problems:
        sys.exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild RUN_DIR/index.html from the stored results, without retraining."""
    meta, tables = read_run(run_dir)
    click.echo(f"report: {write_report(run_dir, meta, tables)}")


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The merged run folder (new or empty).")
def merge(run_dirs: tuple[Path, ...], out: Path) -> None:
    """Combine finished runs made apart (on other machines, or a grid split by hand) into one run folder and report.

    A (target, model) pair held by several runs must be the same cell in each
    (the same settings, code and funcbench version); otherwise nothing is written.
    """
    from .merge import merge_runs

    folder, meta, tables = merge_runs(list(run_dirs), out)
    index = write_report(folder, meta, tables)
    click.echo(f"merged {len(run_dirs)} runs into {meta['counts']['cells']} cells")
    click.echo(f"report: {index}")


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


def _warn(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


def _run_folder(run_id: str | None, config: RunConfig) -> str:
    if run_id is None:
        return f"run-{config.digest()}"
    if not RUN_ID.fullmatch(run_id):
        raise FuncbenchError(
            f"--run-id '{run_id}' must be a plain folder name: letters, digits, _ . - and not starting with . or -"
        )
    return run_id


def _describe_entry(entry: Entry) -> str:
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
    if entry.kind == "target" and not entry.in_all:
        lines.append("    not part of '--targets all': select it by name or through a suite")
    lines.append(f"    from {entry.origin}")
    return "\n".join(lines)


def _format_summary(summary: pd.DataFrame) -> str:
    shown = summary.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.3g}")
    return shown.to_string(index=False)


def _check_device(device: str) -> None:
    import torch

    if device == "cpu":
        return
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
