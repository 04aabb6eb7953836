"""The README is the user guide: what it tells a newcomer to type must be true."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from benchmark.cli import cli
from benchmark.options import options_table

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_the_two_commands_are_the_makefile_targets_ci_runs():
    commands = re.search(r"## Two commands.*?```sh\n(.*?)```", README, re.S).group(1)
    assert [line.split()[:2] for line in commands.strip().splitlines()] == [["make", "run"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: .*\n\t\$\(BIN\)/bench run --targets all$", makefile, re.M)
    assert re.search(r"^test: .*\n\t\$\(BIN\)/python -m pytest$", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_image_it_shows_exists():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images
    for image in images:
        assert (ROOT / image).is_file(), image


def bench_lines() -> list[str]:
    """Every command line of the shell blocks, and every `$ bench` prompt of the others (trailing comments dropped)."""
    lines = []
    for kind, block in re.findall(r"```([a-z]*)\n(.*?)```", README, re.S):
        for line in block.splitlines():
            if kind == "sh" or line.startswith("$ "):
                lines.append(line.removeprefix("$ ").split("  #")[0].strip())
    return [line for line in lines if line.startswith("bench ")]


@pytest.mark.parametrize("line", bench_lines())
def test_every_bench_command_it_shows_parses(line, monkeypatch):
    """Each `bench ...` line names a real command, real options and valid values (parsed by click, not run).

    Parsing runs the options' callbacks too: a `--config` line reads and checks its file.
    """
    monkeypatch.chdir(ROOT)
    args = shlex.split(line)[1:]
    command = cli
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        command = command.commands[args.pop(0)]
    try:
        command.make_context(command.name, list(args))
    except click.exceptions.Exit as done:  # --version and --help answer while parsing
        assert done.exit_code == 0, line


def test_the_options_table_is_the_declaration():
    """The README's table is `benchmark.options`' own rendering, and names every option of `bench run`."""
    assert options_table() in README
    run = cli.commands["run"]
    for param in run.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert all(f"`{opt}`" in options_table() for opt in param.opts + param.secondary_opts), param.opts


def test_every_command_is_documented():
    for name in cli.commands:
        assert f"bench {name}" in README, name
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0


def test_the_python_example_prints_what_it_shows(tmp_path, monkeypatch, capsys):
    """The *From Python* example, run: the same lines, its numbers to three digits (errors of 1e-14 are
    float32's rounding, and equal only in being below 1e-9)."""
    section = README[README.index("## From Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    number = r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?"
    assert re.sub(number, "#", printed) == re.sub(number, "#", shown)
    for got, want in zip(re.findall(number, printed), re.findall(number, shown)):
        got, want = float(got), float(want)
        assert got == pytest.approx(want, rel=1e-3) or max(abs(got), abs(want)) < 1e-9, (got, want)
