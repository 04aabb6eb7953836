"""Symbolic regression as a model family: pyoperon's genetic programming, whose learned model is a formula.

Each seed gets its own `SymbolicRegressor` (`random_state` = the seed)
fitted on its own training sample, so a seed's formula is the same whichever
seeds run beside it. The formula it finds is the model: pyoperon's text of
it at full precision is parsed once (`benchmark.formula.Symbolic`) and every
prediction evaluates that formula in float64, so a model rebuilt from its
stored text predicts bit for bit what the trained one did. A seed whose fit
raises, runs past its time limit or yields a formula that does not parse or
is not finite on its own training data fails alone (`failures`): it predicts
NaN and has no formula, and the other seeds go on.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import FuncbenchError, first_line
from ..formula import Symbolic
from ..model import (
    Model,
    ModelSpec,
    TrainingData,
    TrainingLog,
    TrainSettings,
    fitted_once_log,
)
from ..registry import model_family
from ..threads import worker_threads

if TYPE_CHECKING:  # pyoperon is imported when the family trains, not by every `bench` command
    from pyoperon.sklearn import SymbolicRegressor

#: pyoperon's operator sets by name; every one prints as text that `parse_formula` reads.
LIBRARIES = {
    "arithmetic": "add,sub,mul,div",
    "physics": "add,sub,mul,div,square,sqrt,exp,log,sin,cos",
    "extended": "add,sub,mul,div,square,sqrt,exp,log,sin,cos,tan,tanh,asin,acos,atan,abs",
}
#: Levenberg-Marquardt steps on an offspring's constants, and the share of offspring that get them:
#: a formula's inner constants (the 0.5 of exp(-0.5*x**2)) come out exact, for a small share of the time.
LOCAL_ITERATIONS = 1
LOCAL_SEARCH_PROBABILITY = 0.05
#: What the stored state says it is (`SymbolicEnsemble.state`).
STATE_FORMAT = "funcbench-symbolic"
STATE_VERSION = 1


@dataclass(frozen=True)
class Member:
    """One seed's outcome: its formula (as text over x0, x1, ... and parsed) and its length, or why it has none."""

    text: str | None = None
    formula: Symbolic | None = None
    length: int = 0  # pyoperon's nodes, the measure `max_length` bounds
    failure: str | None = None


@dataclass(frozen=True)
class Search:
    """pyoperon's search, as the family's parameters set it."""

    generations: int
    population: int
    max_length: int
    time_limit: int
    library: str


class SymbolicEnsemble:
    """The `Model` protocol for one pyoperon regressor per seed, each kept as the formula it found."""

    def __init__(self, search: Search, inputs: tuple[str, ...], seeds: tuple[int, ...]):
        self.search = search
        self.inputs = inputs
        self.seeds = seeds
        self.trained: list[Member] = [Member(failure="not trained") for _ in seeds]

    def fit(self, data: TrainingData, settings: TrainSettings) -> TrainingLog:
        x, y = data.x.astype(np.float64), data.y[:, :, 0].astype(np.float64)
        # pyoperon's search runs in C++ without the GIL: seeds fit side by side in threads.
        with ThreadPoolExecutor(max_workers=max(1, min(worker_threads(), len(self.seeds)))) as pool:
            fits = list(pool.map(partial(_search, self.search), self.seeds, x, y))
        self.trained = [_member(regressor, x[s]) for s, regressor in enumerate(fits)]
        return fitted_once_log(self.predict, data, len(self.seeds))

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.stack([_predictions(member, x[s]) for s, member in enumerate(self.trained)])

    def readable_parameters(self) -> list[dict[str, float]]:
        return [{"length": float(m.length)} if m.formula is not None else {} for m in self.trained]

    def formulas(self) -> list[Symbolic | None]:
        return [m.formula for m in self.trained]

    def failures(self) -> list[str | None]:
        """Per seed, why it has no formula (one line), or None."""
        return [m.failure for m in self.trained]

    def state(self) -> bytes:
        """Each seed's formula as text (or why it has none), as JSON: no pickle, nothing to run but the parser."""
        members = [{"failure": m.failure} if m.formula is None else {"formula": m.text, "length": m.length}
                   for m in self.trained]
        return json.dumps({"format": STATE_FORMAT, "version": STATE_VERSION, "inputs": len(self.inputs),
                           "members": members}).encode()

    def load_state(self, data: bytes) -> None:
        try:
            stored = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FuncbenchError(f"it is not the symbolic family's JSON state: {exc}") from None
        if not isinstance(stored, dict) or stored.get("format") != STATE_FORMAT:
            raise FuncbenchError(f"it is not the symbolic family's state (no format '{STATE_FORMAT}')")
        if stored.get("version") != STATE_VERSION:
            raise FuncbenchError(f"it is version {stored.get('version')!r} of the symbolic family's state; "
                                 f"this funcbench reads version {STATE_VERSION}")
        if stored.get("inputs") != len(self.inputs):
            raise FuncbenchError(f"it holds formulas of {stored.get('inputs')!r} inputs, not {len(self.inputs)}")
        members = stored.get("members")
        if not isinstance(members, list) or len(members) != len(self.seeds):
            raise FuncbenchError(f"it should hold {len(self.seeds)} seeds' formulas, as a list")
        self.trained = [_stored_member(m, len(self.inputs), s) for s, m in enumerate(members)]

    def members(self, index: slice, inputs: tuple[str, ...]) -> SymbolicEnsemble:
        part = copy.copy(self)
        part.trained, part.seeds, part.inputs = self.trained[index], self.seeds[index], inputs
        return part


def _search(search: Search, seed: int, x: np.ndarray, y: np.ndarray) -> SymbolicRegressor | str:
    """The regressor fitted to one seed's data, or the one-line reason that seed has none."""
    from pyoperon.sklearn import SymbolicRegressor

    regressor = SymbolicRegressor(
        allowed_symbols=LIBRARIES[search.library] + ",constant,variable", generations=search.generations,
        population_size=search.population, max_length=search.max_length, max_time=search.time_limit,
        max_evaluations=2**62,  # only the generations and the time limit end a search
        optimizer_iterations=LOCAL_ITERATIONS, local_search_probability=LOCAL_SEARCH_PROBABILITY,
        n_threads=1, random_state=int(seed))
    started = time.perf_counter()
    try:
        regressor.fit(x, y)
    except Exception as exc:  # noqa: BLE001 - the seed fails, the others go on
        return f"pyoperon raised {type(exc).__name__}: {first_line(exc)}"
    # pyoperon ends a search at its time limit without saying so: it ran short of its generations, that long.
    if regressor.stats_["generations"] < search.generations and time.perf_counter() - started >= search.time_limit:
        return f"timed out after {search.time_limit} s"
    return regressor


def _member(fit: SymbolicRegressor | str, x: np.ndarray) -> Member:
    """A fitted regressor as the formula it found, or the seed's failure; the formula must hold on x, its data."""
    if isinstance(fit, str):
        return Member(failure=fit)
    placeholders = [f"x{i}" for i in range(x.shape[1])]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Model contains no variables")  # a constant is a formula too
        text = python_syntax(fit.get_model_string(fit.model_, 17, placeholders))
    try:
        formula = Symbolic.parse(text, placeholders)
    except ValueError as exc:
        return Member(failure=f"pyoperon's formula does not parse: {first_line(exc)}")
    values = formula.evaluate(x)
    if not np.isfinite(values).all():
        return Member(failure=f"its formula is not finite on {int((~np.isfinite(values)).sum())} of its "
                             f"{len(x)} training points")
    return Member(text, formula, int(fit.stats_["model_length"]))


def python_syntax(text: str) -> str:
    """pyoperon's text of a formula as `parse_formula` reads it: its only operator Python spells otherwise is ^.

    pyoperon puts every operation in parentheses, so ** takes ^'s place
    whatever the precedence.
    """
    return text.replace("^", "**")


def _stored_member(stored, inputs: int, seed: int) -> Member:
    if not isinstance(stored, dict):
        raise FuncbenchError(f"seed {seed}'s entry is not an object")
    if isinstance(stored.get("failure"), str) and set(stored) == {"failure"}:
        return Member(failure=stored["failure"])
    text, length = stored.get("formula"), stored.get("length")
    if not isinstance(text, str) or not isinstance(length, int) or set(stored) != {"formula", "length"}:
        raise FuncbenchError(f"seed {seed}'s entry holds neither a formula and its length nor a failure")
    try:
        return Member(text, Symbolic.parse(text, [f"x{i}" for i in range(inputs)]), length)
    except ValueError as exc:
        raise FuncbenchError(f"seed {seed}'s formula is refused: {first_line(exc)}") from None


def _predictions(member: Member, x: np.ndarray) -> np.ndarray:
    if member.formula is None:
        return np.full((len(x), 1), np.nan)
    return member.formula.evaluate(x).reshape(-1, 1)


@model_family(description="symbolic regression by genetic programming (pyoperon): the model is the formula it finds")
def symbolic(generations: int = 100, population: int = 200, max_length: int = 15, time_limit: int = 60,
             library: Literal["physics", "arithmetic", "extended"] = "physics") -> ModelSpec:
    if not 1 <= generations <= 100_000:
        raise ValueError(f"generations must be between 1 and 100000, got {generations}")
    if not 10 <= population <= 100_000:
        raise ValueError(f"population must be between 10 and 100000, got {population}")
    if not 3 <= max_length <= 1000:
        raise ValueError(f"max_length must be between 3 and 1000, got {max_length}")
    if not 1 <= time_limit <= 86_400:
        raise ValueError(f"time_limit must be between 1 and 86400 seconds, got {time_limit}")
    search = Search(generations, population, max_length, time_limit, library)

    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str) -> Model:
        return SymbolicEnsemble(search, inputs, tuple(int(s) for s in seeds))

    # pyoperon runs on the CPU whatever --device says, and --lr does not apply.
    return ModelSpec(build, f"pyoperon, {library} operators, population {population} x {generations} generations, "
                            f"length <= {max_length}", learning_rate=None)
