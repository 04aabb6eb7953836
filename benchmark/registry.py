"""Targets, model families and the registry that names them.

Everything selectable on the command line is an `Entry`: a name, a
description, and a factory whose typed keyword parameters are the knobs a
selector such as ``weighted_sum[n=10]`` may set. The decorators below turn a
plain function into an entry; plugin loading (`benchmark.plugins`) collects the
entries a module defines at top level, so importing a module twice never
registers anything twice.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .config import HEADLINES, REFERENCE_MODEL
from .domains import Domain, Region, diagonal_line
from .errors import FuncbenchError, unknown_name
from .fingerprint import code_fingerprint, origin_fingerprint, stable_hash
from .model import ModelSpec

if TYPE_CHECKING:
    from .references import Reference

Kind = Literal["target", "model", "suite"]
#: What a name in a selection may look like; `all` and `default` select groups.
SELECTABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
RESERVED_NAMES = ("all", "default")


@dataclass(frozen=True)
class LinearSolution:
    """The exact affine map y = weights . x + bias, where the target is one."""

    weights: tuple[float, ...]
    bias: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        object.__setattr__(self, "bias", float(self.bias))


@dataclass(frozen=True, eq=False)
class Target:
    """A function to approximate, where it is trained and where it is tested.

    `fn` maps an (n, d) float64 array to an (n, 1) array. `extrapolation`
    names regions that lie wholly outside `domain`.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    domain: Domain
    extrapolation: Mapping[str, Region]
    description: str
    inputs: tuple[str, ...] = ()
    probes: tuple[tuple[float, ...], ...] = ()
    linear_solution: LinearSolution | None = None
    #: The published near-perfect model's output, f(x, eps): the exact solution
    #: with every weight of 1 moved to 1 - eps and every weight of 0 to eps.
    #: Its MSE is the success threshold. Derived from `linear_solution` where
    #: that is given.
    near_exact: Callable[[np.ndarray, float], np.ndarray] | None = None
    #: For targets that differ per seed (the published subset tasks draw
    #: their subsets per seed): seed -> this target as that seed sees it.
    seeded: Callable[[int], Target] | None = None
    #: The target as a formula of its inputs (Python syntax, numpy's names: `benchmark.formula.parse_formula`),
    #: where it is one: a learned formula is then also checked against it symbolically.
    expression: str = ""
    # Filled in by the registry: the entry's name, the parameters that made
    # this instance and the selector that names it (e.g. "weighted_sum[n=10]").
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    origin: str = ""  # the plugin that defined it, for messages

    def __post_init__(self) -> None:
        inputs = self.inputs or tuple(f"x{i + 1}" for i in range(self.domain.dim))
        object.__setattr__(self, "inputs", tuple(inputs))
        object.__setattr__(self, "probes", tuple(tuple(float(v) for v in p) for p in self.probes))
        solution = self.linear_solution
        if solution is not None and not isinstance(solution, LinearSolution):
            weights, bias = solution
            object.__setattr__(self, "linear_solution", LinearSolution(weights, bias))
        object.__setattr__(self, "extrapolation", dict(self.extrapolation))

    @property
    def dim(self) -> int:
        return self.domain.dim

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)

    def at_seed(self, seed: int) -> Target:
        """The target that seed `seed` trains on (itself, unless it varies per seed)."""
        if self.seeded is None:
            return self
        return replace(self.seeded(int(seed)), name=self.name, params=self.params, label=self.label, origin=self.origin)

    def near_exact_values(self, x: np.ndarray, eps: float) -> np.ndarray | None:
        """The near-perfect model's outputs (n, 1) at x, or None where the target states no exact solution."""
        if self.near_exact is not None:
            return np.asarray(self.near_exact(x, eps), dtype=np.float64).reshape(len(x), 1)
        solution = self.linear_solution
        if solution is None:
            return None
        weights = np.array([w * (1 - eps) if w else eps for w in solution.weights])
        bias = solution.bias * (1 - eps) if solution.bias else eps
        return x @ weights[:, None] + bias

    def describe(self) -> dict:
        """Everything about the target but its code, as JSON-ready values.

        Stored in run.json, so a report can be drawn without the plugin.
        """
        solution = self.linear_solution
        line = diagonal_line(self.domain, self.extrapolation.values())
        return {
            "label": self.label,
            "name": self.name,
            "params": dict(self.params),
            "description": self.description,
            "inputs": list(self.inputs),
            "domain": self.domain.describe(),
            "extrapolation": {name: region.describe() for name, region in self.extrapolation.items()},
            "probes": [list(p) for p in self.probes],
            "linear_solution": None if solution is None else {"weights": list(solution.weights), "bias": solution.bias},
            "line": {"origin": line.origin.tolist(), "direction": line.direction.tolist(),
                     "from": float(line.position[0]), "to": float(line.position[-1])},
            # Only where there is one, so that the other targets' descriptions, and cell ids, stay as they were.
            **({"expression": self.expression} if self.expression else {}),
        }

    def fingerprint(self) -> str:
        """A hash of the target's definition: its functions' code and everything they are defined among.

        Part of a cell's identity: editing a plugin's function, a helper or a
        constant it uses, or its domains makes new cells rather than reusing
        results of the old definition (see `benchmark.fingerprint`).
        """
        code = [[code_fingerprint(f), origin_fingerprint(f)] for f in (self.fn, self.near_exact, self.seeded)
                if f is not None]
        return stable_hash([self.describe(), *code])


@dataclass(frozen=True)
class Parameter:
    name: str
    type: type
    default: Any
    choices: tuple[Any, ...] | None = None

    def parse(self, text: str) -> Any:
        """Convert a selector's text to this parameter's type, or say why not."""
        value = _convert(self.type, text)
        if value is None:
            raise ValueError(f"'{self.name}' expects {_type_phrase(self.type)}, got '{text}'")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"'{self.name}' must be one of {', '.join(map(str, self.choices))}; got '{text}'")
        return value


@dataclass(frozen=True)
class Entry:
    """A named, selectable factory of targets or model specs."""

    kind: Kind
    name: str
    description: str
    factory: Callable[..., Any]
    parameters: tuple[Parameter, ...] = ()
    origin: str = ""
    #: False for targets that belong to a suite's protocol: selectable by
    #: name and through the suite, but not part of `--targets all`.
    in_all: bool = True
    #: What is wrong with the entry as it is defined, found when it was made (a model
    #: class's misspelt hook, say): a run that selects it skips it in one line.
    problems: tuple[str, ...] = ()
    #: For a family with a fixed set of members (the AI Feynman equations): the parameter values of each,
    #: which `bench list targets NAME` shows one by one.
    instances: Callable[[], Sequence[Mapping[str, Any]]] | None = None

    def create(self, **values: Any) -> Any:
        """Build the target or model spec for these parameter values.

        Values may be given typed or as selector text; the factory may reject
        a value by raising ValueError, which becomes a one-line error here.
        """
        known = {p.name: p for p in self.parameters}
        bound = {p.name: p.default for p in self.parameters}
        for key, value in values.items():
            if key not in known:
                hint = f"its parameters are {', '.join(known)}" if known else "it takes no parameters"
                raise FuncbenchError(f"{self.kind} '{self.name}' has no parameter '{key}'; {hint}")
            try:
                bound[key] = known[key].parse(value) if isinstance(value, str) else value
            except ValueError as exc:
                raise FuncbenchError(f"{self.kind} '{self.name}': {exc}") from None
        try:
            made = self.factory(**bound)
        except (ValueError, FuncbenchError) as exc:
            raise FuncbenchError(f"{self.kind} '{self.name}': {exc}") from None
        expected = {"target": Target, "model": ModelSpec, "suite": Suite}[self.kind]
        if not isinstance(made, expected):
            raise TypeError(f"its factory returned {type(made).__name__}, not a {expected.__name__}")
        changed = {k: v for k, v in bound.items() if v != known[k].default}
        label = self.name + (f"[{','.join(f'{k}={v}' for k, v in changed.items())}]" if changed else "")
        if self.kind != "suite":
            made = replace(made, origin=self.origin)
        return replace(made, name=self.name, params=bound, label=label)

    def __call__(self, **values: Any) -> Any:
        return self.create(**values)


@dataclass(frozen=True, eq=False)
class Suite:
    """A named study: which targets and models, and how to train them.

    `settings` are `bench run` options (RunConfig fields: seeds, steps,
    batch_size, learning_rate, eval_every, samples, eval_samples, epochs);
    an option given on the command line overrides the suite's value.
    `model_settings` maps a model family's name to training options for
    that family alone (learning_rate, reg_strength, reg_start, reg_end,
    optimizer, loss, clip_value, clip_norm: the NPU's published learning
    rate beside the others', each unit's published regulariser), which win
    over `settings` and lose to the command line.
    """

    targets: str
    models: str
    description: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    model_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    #: Published results of this study, which the report sets beside the run's (`benchmark.references`).
    reference: Reference | None = None
    #: What its report and summary lead with: "verdict", "success" or "linearity" (`config.HEADLINES`).
    headline: str = "verdict"
    #: The family whose verdict per target the report shows (the linear unit by default); None: none.
    reference_model: str | None = REFERENCE_MODEL


def suite(name: str, *, description: str, targets: str, models: str,
          model_settings: Mapping[str, Mapping[str, Any]] | None = None, reference: Reference | None = None,
          headline: str = "verdict", reference_model: str | None = REFERENCE_MODEL, **settings: Any) -> Entry:
    """Register a suite: `bench run --suite NAME` runs these targets and models with these settings.

    A suite with a `reference` reproduces a publication: its settings
    should be the published ones, since a run that changes any of them gets
    the published numbers as context, without verdicts. `headline` is what
    its report and summary lead with (one of `config.HEADLINES`), and
    `reference_model` the family whose verdict per target they show (None
    for none).

    >>> arithmetic = suite("arithmetic", description="...", targets="static[op=add]", models="nau,npu", steps=20_000,
    ...                    learning_rate=1e-3, model_settings={"npu": {"learning_rate": 5e-3}},
    ...                    reference=Reference.from_csv("published.csv", source="A. Author, 2020, Table 2"))
    """
    from .references import Reference

    if reference is not None and not isinstance(reference, Reference):
        raise TypeError(f"suite '{name}': reference must be a benchmark.Reference, got {type(reference).__name__}")
    if headline not in HEADLINES:
        raise TypeError(f"suite '{name}': headline must be one of {', '.join(HEADLINES)}, got {headline!r}")
    made = Suite(targets, models, description, dict(settings), {k: dict(v) for k, v in (model_settings or {}).items()},
                 reference=reference, headline=headline, reference_model=reference_model)
    return Entry("suite", name, description, lambda: made)


def target(
    *,
    domain: Domain,
    extrapolation: Mapping[str, Region],
    description: str,
    inputs: Sequence[str] = (),
    probes: Sequence[Sequence[float]] = (),
    linear_solution: LinearSolution | tuple[Sequence[float], float] | None = None,
    near_exact: Callable[[np.ndarray, float], np.ndarray] | None = None,
    name: str | None = None,
    in_all: bool = True,
) -> Callable[[Callable[[np.ndarray], np.ndarray]], Entry]:
    """Register a vectorised function as a target.

    >>> @target(domain=Box.cube(2, 0, 1), extrapolation={...}, description="a + b")
    ... def addition(x):
    ...     return x[:, [0]] + x[:, [1]]
    """

    def register(fn: Callable[[np.ndarray], np.ndarray]) -> Entry:
        def make() -> Target:
            return Target(
                fn=fn,
                domain=domain,
                extrapolation=extrapolation,
                description=description,
                inputs=tuple(inputs),
                probes=tuple(tuple(p) for p in probes),
                linear_solution=linear_solution,  # type: ignore[arg-type]
                near_exact=near_exact,
            )

        return Entry("target", name or fn.__name__, description, make, in_all=in_all)

    return register


def target_family(
    *, description: str, name: str | None = None, in_all: bool = True,
    instances: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
) -> Callable[[Callable[..., Target]], Entry]:
    """Register a factory of targets whose keyword parameters are selectable.

    The factory's parameters must have defaults and int, float, bool, str or
    Literal annotations; ``name[key=value]`` on the command line sets them.
    `in_all=False` leaves the family out of ``--targets all`` (for targets
    that belong to a suite). `instances`, for a family of a fixed set of
    members, gives each member's parameter values: `bench list targets NAME`
    then lists every member.
    """
    return _family("target", description, name, in_all, instances)


def model_family(*, description: str, name: str | None = None) -> Callable[[Callable[..., Any]], Entry]:
    """Register a factory of model specs (see `benchmark.models`)."""
    return _family("model", description, name)


def preset(family: Entry, name: str, description: str, **values: Any) -> Entry:
    """A named entry that is `family` with other defaults (still overridable)."""
    by_name = {p.name: p for p in family.parameters}
    unknown = set(values) - set(by_name)
    if unknown:
        raise ValueError(f"preset {name}: {family.name} has no parameter {', '.join(sorted(unknown))}")
    parameters = tuple(replace(p, default=values.get(p.name, p.default)) for p in family.parameters)
    return Entry(family.kind, name, description, family.factory, parameters)


def _family(kind: Kind, description: str, name: str | None, in_all: bool = True,
            instances: Callable[[], Sequence[Mapping[str, Any]]] | None = None) -> Callable[[Callable[..., Any]], Entry]:
    def register(factory: Callable[..., Any]) -> Entry:
        return Entry(kind, name or factory.__name__, description, factory, parameters_of(factory), in_all=in_all,
                     instances=instances)

    return register


def parameters_of(factory: Callable[..., Any], skip: int = 0) -> tuple[Parameter, ...]:
    """The selectable parameters of a factory, after its first `skip` (which funcbench fills in)."""
    hints = typing.get_type_hints(factory)
    parameters = []
    for p in list(inspect.signature(factory).parameters.values())[skip:]:
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{factory.__name__}: parameter '{p.name}' needs a default value")
        hint = hints.get(p.name, type(p.default))
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            parameters.append(Parameter(p.name, type(choices[0]), p.default, choices))
        elif hint in (int, float, bool, str):
            parameters.append(Parameter(p.name, hint, p.default))
        else:
            raise TypeError(f"{factory.__name__}: parameter '{p.name}' must be int, float, bool, str or Literal")
    return tuple(parameters)


def _convert(kind: type, text: str) -> Any:
    text = text.strip()
    if kind is bool:
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text.lower())
    if kind is int:
        try:
            return int(text)
        except ValueError:
            return None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    return text or None


def _type_phrase(kind: type) -> str:
    return {int: "an integer", float: "a finite number", bool: "true or false"}.get(kind, "a non-empty string")


@dataclass
class Registry:
    """Every entry known to this run, and the problems met while loading them.

    `problems` are all of them, for `bench list`. A run fails (exit 1) only
    for those that concern it: a ``--plugin`` it was given that could not be
    imported (`failed_plugins`), a name it selects that two plugins
    define (`conflicts`), or an entry it selects that is broken as defined
    (`broken`); the rest are warnings.
    """

    targets: dict[str, Entry] = field(default_factory=dict)
    models: dict[str, Entry] = field(default_factory=dict)
    suites: dict[str, Entry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    failed_plugins: list[str] = field(default_factory=list)
    conflicts: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name): the problem
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name): its first problem

    def table(self, kind: Kind) -> dict[str, Entry]:
        return {"target": self.targets, "model": self.models, "suite": self.suites}[kind]

    def add(self, entry: Entry) -> None:
        table = self.table(entry.kind)
        if not SELECTABLE_NAME.fullmatch(entry.name) or entry.name in RESERVED_NAMES:
            self.problems.append(
                f"{entry.origin}: {entry.kind} name '{entry.name}' cannot be selected on the command line; "
                f"use letters, digits and _ . - (and not {' or '.join(RESERVED_NAMES)})"
            )
            return
        if entry.name in table:
            known = table[entry.name]
            if known.factory is entry.factory and known.parameters == entry.parameters:
                return  # the same definition reached twice, e.g. re-imported by another plugin
            first = table[entry.name].origin
            problem = (f"{entry.origin}: {entry.kind} '{entry.name}' is already registered by {first}; "
                       f"the second definition is ignored (rename it)")
            self.problems.append(problem)
            self.conflicts[(entry.kind, entry.name)] = problem
            return
        table[entry.name] = entry
        for problem in entry.problems:
            line = f"{entry.origin}: {entry.kind} '{entry.name}': {problem}; it is skipped"
            self.problems.append(line)
            self.broken.setdefault((entry.kind, entry.name), line)

    def entry(self, kind: Kind, name: str) -> Entry:
        table = self.table(kind)
        if name not in table:
            raise unknown_name(kind, name, table)
        return table[name]
