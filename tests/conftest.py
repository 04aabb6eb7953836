"""Shared helpers: run the `bench` command in-process and read back its run folder."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from benchmark.cli import cli


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def run_dir(self) -> Path:
        match = re.search(r"^report: (.+)index\.html$", self.stdout, re.M)
        assert match, f"no report path in output:\n{self.stdout}\n{self.stderr}"
        return Path(match.group(1))

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.run_dir / f"{name}.parquet")

    def meta(self) -> dict:
        return json.loads((self.run_dir / "run.json").read_text())


@pytest.fixture
def bench(tmp_path):
    """Call `bench ARGS...`; `bench run` writes under a temporary --out."""

    def invoke(*args: str) -> Invocation:
        args = list(args)
        if args[:1] == ["run"] and "--out" not in args:
            args += ["--out", str(tmp_path / "reports")]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        return Invocation(result.exit_code, result.stdout, result.stderr)

    return invoke


def assert_one_line_error(result: Invocation, *fragments: str, code: int = 2) -> None:
    """The user sees exactly one line on stderr naming the problem, and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
