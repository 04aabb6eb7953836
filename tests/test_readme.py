"""The README is the user guide: what it tells a newcomer to type must be true."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from benchmark.cli import cli

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
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("bench ")]


@pytest.mark.parametrize("line", bench_lines())
def test_every_bench_command_it_shows_parses(line):
    """Each `bench ...` line names a real command and real options (checked by click, without running it)."""
    args = shlex.split(line)[1:]
    command = cli
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        command = command.commands[args.pop(0)]
    context = command.make_context(command.name, list(args), resilient_parsing=True)
    options = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    for arg in args:
        if arg.startswith("-"):
            assert arg.split("=")[0] in options, (line, arg)
    assert context is not None


def test_every_run_option_is_in_the_options_table():
    table = README[README.index("| option | default | meaning |"):]
    table = table[: table.index("\n\n")]
    run = cli.commands["run"]
    for param in run.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert any(f"`{opt}" in table for opt in param.opts + param.secondary_opts), param.opts


def test_every_command_is_documented():
    for name in cli.commands:
        assert f"bench {name}" in README, name
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
