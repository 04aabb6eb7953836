"""The ``bench`` command: run a benchmark, list what can be run, rebuild a report, compare and merge runs.

Up front only click, numpy and the configuration are imported; torch,
pandas and the plotting stack load inside the commands that use them, so
that ``bench --help``, ``--version`` and shell completion answer at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import sys
import textwrap
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from . import __version__
from .api import file_settings, warn
from .errors import PROBLEMS_EXIT, FuncbenchError, ResourceError, describe_exception
from .options import BY_NAME, OPTIONS, Option, check_value, plain

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


def click_option(option: Option):
    """`option` as a click option of `bench run`, from its declaration (`benchmark.options`).

    An option of what the run computes defaults to None on the command
    line, so that one not typed leaves the suite's or the family's value;
    its real default is shown in --help. Ranges are checked by `RunConfig`,
    or here for the options of how a run runs, in the same words as a file's.
    """
    declarations = [d for d in (option.short, f"{option.cli_flag}/{option.negative}" if option.negative
                                else option.cli_flag) if d]
    settings: dict = {"help": _sentence(option.help), "show_default": plain(option.shown_default) or False,
                      "metavar": option.metavar}
    if option.kind is bool:  # a flag is off unless typed; a switch with a --no- form says which way it is
        settings.update(is_flag=True, default=option.default, show_default=bool(option.negative))
    elif option.kind is tuple:
        settings.update(multiple=True)
    else:
        settings["type"] = (click.Choice(option.choices) if option.choices else
                            {int: click.INT, float: click.FLOAT, Path: click.Path(path_type=Path)}.get(option.kind))
        settings["default"] = None if option.side == "config" else option.default
        if option.completes:
            settings["shell_complete"] = _complete_names(option.completes)
        if option.side != "config" and (option.low is not None or option.high is not None):
            settings["callback"] = lambda ctx, param, value: check_value(option.name, value)
    return click.option(*declarations, option.name, **settings)


#: What a selection may name beside the registry's entries.
SELECTION_WORDS = {"target": ("all",), "model": ("default", "all"), "suite": ()}


def _complete_names(kind: str):
    """Shell completion of a selection's last name: the registry's targets, models or suites, with the
    entries of any --plugin typed before it (importing them, and torch, takes a second or so)."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from .plugins import load_registry

        done, comma, last = incomplete.rpartition(",")
        try:
            registry = load_registry(ctx.params.get("plugins") or ())
        except Exception:  # noqa: BLE001 - a plugin that fails to import completes nothing, and says nothing
            return []
        names = [*(SELECTION_WORDS[kind] if not done else ()), *registry.table(kind)]
        return [CompletionItem(done + comma + name) for name in names if name.startswith(last)]

    return complete


def _sentence(text: str) -> str:
    # What a user types keeps its case: "`all` or a comma list..." stays "all or a comma list...".
    first = text[:1] if text.startswith("`") else text[:1].upper()
    text = plain(first + text[1:])
    return text + ("" if text.endswith(".") else ".")


def run_options(command):
    """Every option of `bench run` but --config, in the declaration's order."""
    for option in reversed([o for o in OPTIONS if o.side != "output" and o.name != "config"]):
        command = click_option(option)(command)
    return command


def verbosity(command):
    """-q/--quiet and -v/--verbose for a command, through the logging module (logger 'benchmark')."""

    @click_option(BY_NAME["quiet"])
    @click_option(BY_NAME["verbose"])
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


PDF_OPTION = click_option(BY_NAME["pdf"])


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """--config: the file's settings become the defaults of every other option, so the command line wins."""
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **file_settings(value)}
    return value


@cli.command()
@click.option("--config", type=click.Path(path_type=Path), is_eager=True, callback=_load_config, expose_value=False,
              help=_sentence(BY_NAME["config"].help))
@run_options
@verbosity
def run(**options) -> None:
    """Train every (target, model) pair over all seeds and write a report."""
    from .api import RunInterrupted, execute
    from .report import headline, run_summary
    from .report.tables import learned_lines

    # What plugins print goes to stderr: stdout holds the summary and the `report:` line that scripts read.
    stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            done = execute(options)
    except RunInterrupted as stop:
        click.echo(f"\n{stop}", err=True)
        sys.exit(128 + stop.signal)
    if log.isEnabledFor(logging.INFO):
        meta, tables = done.run.meta, done.run.tables()
        click.echo(_text_table(run_summary(meta, tables)), file=stdout)
        if headline(meta)["section"] == "verdict":  # the article's headline: the weights, the answer for (9, 90)
            if learned := learned_lines(meta, tables, headline(meta)["reference_model"]):
                click.echo("\n" + "\n".join(learned), file=stdout)
        click.echo(f"\n{done.cells} cells x {done.run.config.seeds} seeds in {done.seconds:.1f} s "
                   f"({done.trained} trained, {done.reused} reused); report in {done.report_seconds:.1f} s", file=stdout)
    click.echo(f"report: {done.run.path / 'index.html'}", file=stdout)
    if done.problems:
        click.echo(f"{len(done.problems)} problem(s) above: those were skipped, the rest ran", err=True)
        sys.exit(PROBLEMS_EXIT)


@cli.command(name="list")
@click.argument("what", type=click.Choice(["targets", "models", "suites"]))
@click.argument("names", nargs=-1)
@click.option("--details", "-d", is_flag=True, help="Every entry in full: parameters, domains, regions, probes, origin.")
@click_option(BY_NAME["plugins"])
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
    warn(registry.problems)
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
    from .api import load, signal_of, terminate_as_interrupt

    try:
        with terminate_as_interrupt():
            index = load(run_dir).report(out, pdf=pdf)
    except KeyboardInterrupt as stop:
        click.echo("interrupted: the previous report, if any, is left whole; run the same command again", err=True)
        sys.exit(128 + signal_of(stop))
    click.echo(f"report: {index}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("points", nargs=-1, required=True, metavar="POINT...")
@click.option("--target", required=True, help="The target whose trained models answer, as the run labels it.")
@click.option("--model", required=True, help="The model family, as the run labels it (e.g. 'mlp[width=128]').")
@verbosity
def predict(run_dir: Path, points: tuple[str, ...], target: str, model: str) -> None:
    """Ask a run's trained models for new points, without retraining: every seed's answer at each POINT.

    A POINT is the inputs separated by commas, e.g. 'bench predict RUN_DIR
    --target addition --model linear 3,4 9,90'; put '--' before the points
    when one starts with a minus sign.
    """
    from .api import load

    answers = load(run_dir).predict(target, model, [_point(text) for text in points])
    # Answers to read, not errors spanning orders of magnitude: eight digits, as float32 holds about seven.
    for column in ("y_pred", "y_true"):
        answers[column] = [f"{v:.8g}" for v in answers[column]]
    click.echo(_text_table(answers, right=("y_pred", "y_true")))


def _point(text: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        raise FuncbenchError(f"point '{text}' is not numbers separated by commas, e.g. 3,4") from None


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


def _describe_entry(entry, registry) -> str:
    from .plan import model_trainings, resolve_config
    from .report.tables import format_point, format_solution

    params = ", ".join(f"{p.name}={p.default}" for p in entry.parameters)
    lines = [f"{entry.name}{f'[{params}]' if params else ''}: {entry.description}"]
    lines += [f"    {p.name}: one of {', '.join(map(str, p.choices))}" for p in entry.parameters if p.choices]
    if entry.kind == "target":
        members = entry.instances() if entry.instances is not None else [{}]
        for values in members:
            try:
                t = entry.create(**values)
            except Exception as exc:  # noqa: BLE001 - shown, not raised: the listing goes on
                what = "with its defaults" if entry.instances is None else f"with {values}"
                lines.append(f"    cannot be built {what}: {describe_exception(exc)}")
                continue
            indent = "    "
            if entry.instances is not None:  # one member of many: its selector, then its details below it
                lines.append(f"  {t.label}: {t.description}")
                indent = "      "
            lines.append(f"{indent}inputs ({', '.join(t.inputs)}) trained on {t.domain.describe()}")
            lines += [f"{indent}extrapolation {name}: {region.describe()}" for name, region in t.extrapolation.items()]
            if t.probes:
                lines.append(f"{indent}probes: {', '.join(format_point(p) for p in t.probes)}")
            if t.linear_solution is not None:
                lines.append(f"{indent}exact linear solution: {format_solution(t.describe()['linear_solution'])}")
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


def main() -> None:
    cli()
