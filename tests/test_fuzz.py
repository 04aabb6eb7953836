"""Fuzzing the parsers a user types into: any input parses, or is one clear line, never a traceback."""

import json

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.cli import cli
from benchmark.cli import run as run_command
from benchmark.config import RunConfig
from benchmark.errors import FuncbenchError
from benchmark.options import checked_settings
from benchmark.plan import build_plan
from benchmark.plugins import load_registry
from benchmark.selection import parse_selection

REGISTRY = load_registry()
#: Characters that matter to the selector grammar, plus names and numbers that reach the factories.
TOKENS = [*"[]=,. -_:0123456789eaxn", "mlp", "width", "depth", "act", "weighted_sum", "linear", "relu", "addition",
          "nalu", "hidden", "knn", "poly_ridge", "degree", "sine", "all", "default"]
SELECTOR_TEXT = st.lists(st.sampled_from(TOKENS), max_size=16).map("".join)


def one_line(error: FuncbenchError) -> None:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message


@settings(max_examples=300, deadline=None)
@given(st.one_of(SELECTOR_TEXT, st.text(max_size=30)))
def test_selection_parser(text):
    try:
        selectors = parse_selection(text)
    except FuncbenchError as error:
        one_line(error)
    else:
        assert selectors and all(s.name for s in selectors)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(targets=SELECTOR_TEXT, models=SELECTOR_TEXT)
def test_selections_through_the_registry(targets, models):
    """Names, parameters and values reach the real factories: each is built or refused in one line."""
    try:
        plan = build_plan(REGISTRY, RunConfig(targets=targets, models=models, seeds=1))
    except FuncbenchError as error:
        one_line(error)
    else:
        assert plan.cells


OPTION_NAMES = sorted({name for param in run_command.params for name in [param.name, *param.opts] if name})
TOML_VALUES = st.recursive(
    st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(OPTION_NAMES), st.text(max_size=10)), TOML_VALUES, max_size=5))
def test_config_settings(settings_):
    try:
        chosen = checked_settings(settings_, "fuzz.toml")
    except FuncbenchError as error:
        one_line(error)
        assert str(error).startswith("fuzz.toml: ")
    else:
        assert set(chosen) <= {param.name for param in run_command.params}


# Keys that would reach outside the test: files written, modules imported, hosts contacted.
UNSAFE = {"out", "plugin", "plugins", "scheduler", "executor", "run_id", "run-id", "config", "help", "jobs"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=60),
    st.dictionaries(st.sampled_from([n.lstrip("-") for n in OPTION_NAMES if n.lstrip("-") not in UNSAFE]), TOML_VALUES,
                    max_size=4).map(lambda d: "\n".join(f"{k} = {toml_value(v)}" for k, v in d.items())),
))
def test_config_files_through_the_command_line(tmp_path, text):
    """Any file: `bench run` stops with exit 2 and one line (the target 'xyzzy' ends even a valid one)."""
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["run", "--config", str(path), "--targets", "xyzzy", "--out", str(tmp_path / "out"),
                                      "--quiet"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (text, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), (text, result.stderr)
    assert not (tmp_path / "out").exists()


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else "-inf" if value == float("-inf") else repr(value))
    if isinstance(value, str):
        return json.dumps(value)  # JSON's string escapes are TOML's (a lone surrogate is invalid in both)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)
