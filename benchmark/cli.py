"""The ``bench`` command: run a benchmark, list what can be run, rebuild a report."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import pandas as pd
from tqdm import tqdm

from . import __version__
from .errors import FuncbenchError
from .plan import RunConfig, build_plan
from .plugins import load_registry
from .registry import Entry
from .report import target_summary, write_report
from .store import RunStore, read_run

DEFAULTS = RunConfig()


class BenchGroup(click.Group):
    """Turns every user error into one line on stderr and an exit code, never a traceback."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if getattr(exc, "ctx", None) else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except FuncbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="funcbench")
def cli() -> None:
    """funcbench: train model families on target functions, measure how far they extrapolate."""


@cli.command()
@click.option("--targets", default=DEFAULTS.targets, show_default=True, help="'all' or a comma list, e.g. 'addition,weighted_sum[n=10]'.")
@click.option("--models", default=DEFAULTS.models, show_default=True, help="'default', 'all' or a comma list, e.g. 'linear,mlp[width=128]'.")
@click.option("--seeds", type=int, default=DEFAULTS.seeds, show_default=True, help="Seeds 0..N-1, trained together per cell.")
@click.option("--epochs", type=int, default=DEFAULTS.epochs, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=None, help="Adam learning rate for every model [default: each family's own].")
@click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True)
@click.option("--samples", type=int, default=DEFAULTS.samples, show_default=True, help="Training samples per seed.")
@click.option("--eval-samples", type=int, default=DEFAULTS.eval_samples, show_default=True, help="Fresh samples per seed and evaluation split.")
@click.option("--device", default=DEFAULTS.device, show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--plugin", "plugins", multiple=True, help="A .py file or module name defining targets (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help="Folder that holds the run folders.")
@click.option("--run-id", default=None, help="Name of the run folder [default: a hash of the configuration, so rerunning resumes].")
@click.option("--force", is_flag=True, help="Recompute cells already present in the run folder.")
def run(out: Path, run_id: str | None, force: bool, plugins: tuple[str, ...], **options) -> None:
    """Train every (target, model) pair over all seeds and write a report."""
    config = RunConfig(plugins=plugins, **options)
    _check_device(config.device)
    registry = load_registry(config.plugins)
    plan = build_plan(registry, config)
    store = RunStore.open(out / (run_id or f"run-{config.digest()}"))
    for problem in plan.problems:
        click.echo(f"warning: {problem}", err=True)

    from .runner import execute

    bar = tqdm(total=len(plan.cells), unit="cell", desc="training", disable=None, file=sys.stderr)

    def advance(cell, reused):
        bar.set_postfix_str(f"{cell.target.label} x {cell.model.label}{' (done before)' if reused else ''}")
        bar.update()

    try:
        outcome = execute(plan, config, store, force=force, on_cell=advance)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"\ninterrupted: finished cells are saved in {store.root}; run the same command again to resume", err=True)
        sys.exit(130)
    bar.close()

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
    if plan.problems:
        click.echo(f"{len(plan.problems)} problem(s) above: those targets were skipped, the others ran", err=True)
        sys.exit(1)


@cli.command(name="list")
@click.argument("what", type=click.Choice(["targets", "models"]))
@click.option("--plugin", "plugins", multiple=True, help="A .py file or module name defining targets (repeatable).")
def list_entries(what: str, plugins: tuple[str, ...]) -> None:
    """Show every registered target or model family, plugins included."""
    registry = load_registry(plugins)
    entries = registry.targets if what == "targets" else registry.models
    for entry in entries.values():
        click.echo(_describe_entry(entry))
    for problem in registry.problems:
        click.echo(f"warning: {problem}", err=True)
    if registry.problems:
        sys.exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild RUN_DIR/index.html from the stored results, without retraining."""
    meta, tables = read_run(run_dir)
    click.echo(f"report: {write_report(run_dir, meta, tables)}")


def _describe_entry(entry: Entry) -> str:
    params = ", ".join(f"{p.name}={p.default}" for p in entry.parameters)
    head = f"{entry.name}{f'[{params}]' if params else ''}: {entry.description}"
    lines = [head, f"    from {entry.origin}"]
    if entry.kind == "target":
        try:
            t = entry.create()
            lines.insert(1, f"    inputs ({', '.join(t.inputs)}) trained on {t.domain.describe()}")
            for name, region in t.extrapolation.items():
                lines.insert(-1, f"    extrapolation {name}: {region.describe()}")
        except FuncbenchError as exc:
            lines.insert(1, f"    cannot be built with its defaults: {exc}")
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
        torch.device(device)
    except RuntimeError:
        raise FuncbenchError(f"invalid device '{device}'; use cpu, cuda or cuda:N") from None


def main() -> None:
    cli()
