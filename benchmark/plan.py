"""From a run's configuration to the grid of cells it trains.

A cell is one (target, model) pair with all its seeds: the unit that trains
as one vectorised ensemble, is stored as one atomic write and is skipped on
resume. Its id hashes everything that determines its result, so a changed
setting is a new cell, never a stale reuse.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import __version__
from .data import INTERPOLATION, TRAIN, evaluate_target
from .errors import FuncbenchError
from .models import DEFAULT_MODELS, ModelSpec, TrainSettings
from .registry import Entry, Kind, Registry, Target
from .selection import parse_selection


@dataclass(frozen=True)
class RunConfig:
    """Everything `bench run` is asked to do; recorded in run.json."""

    targets: str = "all"
    models: str = "default"
    seeds: int = 5
    epochs: int = 100
    learning_rate: float | None = None  # None: each family's own default
    batch_size: int = 200
    samples: int = 1000
    eval_samples: int = 1000
    device: str = "cpu"
    plugins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        at_least = {"seeds": 1, "epochs": 1, "batch_size": 1, "samples": 1, "eval_samples": 2}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                flag = name.replace("_", "-")
                raise FuncbenchError(f"--{flag} must be at least {low}, got {getattr(self, name)}")
        if self.learning_rate is not None and not (self.learning_rate > 0 and np.isfinite(self.learning_rate)):
            raise FuncbenchError(f"--lr must be a positive number, got {self.learning_rate}")

    def digest(self) -> str:
        """A short hash naming the run, so the same command finds its own folder."""
        return _hash(asdict(self))[:10]


@dataclass(frozen=True, eq=False)
class Cell:
    target: Target
    model: ModelSpec
    seeds: tuple[int, ...]
    settings: TrainSettings
    samples: int
    eval_samples: int
    device: str

    @cached_property
    def id(self) -> str:
        return _hash(
            {
                "target": [self.target.name, _jsonable(self.target.params)],
                "model": [self.model.name, _jsonable(self.model.params)],
                "seeds": list(self.seeds),
                "settings": asdict(self.settings),
                "samples": [self.samples, self.eval_samples],
                "device": self.device,
                "version": __version__,
            }
        )[:16]


@dataclass
class Plan:
    cells: list[Cell]
    targets: list[Target]
    models: list[ModelSpec]
    problems: list[str] = field(default_factory=list)


def build_plan(registry: Registry, config: RunConfig) -> Plan:
    """Resolve the selections, check the targets, and lay out the grid.

    A target that fails its checks is left out with a one-line problem; a
    name that does not exist is the user's error and stops the run.
    """
    chosen_targets = _select(registry, "target", config.targets)
    models = [model for _, model in _select(registry, "model", config.models)]
    problems = list(registry.problems)
    targets = []
    for entry, made in chosen_targets:
        problem = check_target(made)
        if problem:
            problems.append(f"{entry.origin}: target '{made.label}' {problem}; it is skipped")
        else:
            targets.append(made)
    if not targets:
        raise FuncbenchError("no target left to run: " + (problems[-1] if problems else "the selection is empty"))
    seeds = tuple(range(config.seeds))
    cells = [
        Cell(
            target=t,
            model=m,
            seeds=seeds,
            settings=TrainSettings(config.epochs, config.batch_size, config.learning_rate or m.learning_rate),
            samples=config.samples,
            eval_samples=config.eval_samples,
            device=config.device,
        )
        for t in targets
        for m in models
    ]
    return Plan(cells, targets, models, problems)


def check_target(target: Target) -> str | None:
    """Why `target` cannot be run, or None: dimensions, regions, and its function."""
    d = target.dim
    if len(target.inputs) != d:
        return f"names {len(target.inputs)} inputs but its domain has {d} dimensions"
    if len(target.extrapolation) < 2:
        return "needs at least two extrapolation regions (say, near and far)"
    for name, region in target.extrapolation.items():
        if name in (TRAIN, INTERPOLATION):
            return f"names an extrapolation region '{name}', which is reserved; rename it"
        if region.dim != d:
            return f"has extrapolation region '{name}' of dimension {region.dim}, not {d}"
    if any(len(p) != d for p in target.probes):
        return f"has a probe point that is not of dimension {d}"
    if target.linear_solution is not None and len(target.linear_solution.weights) != d:
        return f"has a linear solution with {len(target.linear_solution.weights)} weights, not {d}"
    rng = np.random.default_rng(0)
    try:
        for name, region in [("domain", target.domain), *target.extrapolation.items()]:
            x = region.sample(256, rng)
            if name != "domain" and target.domain.contains(x).any():
                return f"has extrapolation region '{name}' that overlaps its training domain"
            try:
                evaluate_target(target, x)
            except Exception as exc:  # noqa: BLE001 - a plugin's function may raise anything
                return f"function fails on its {'training domain' if name == 'domain' else f'region {name!r}'}: {_brief(exc)}"
    except ValueError as exc:
        return str(exc)
    return None


def _select(registry: Registry, kind: Kind, text: str) -> list[tuple[Entry, Any]]:
    """The entries a selection names, each with the target or model spec it configures."""
    table = registry.targets if kind == "target" else registry.models
    if text.strip() == "all":
        chosen = [(entry, {}) for entry in table.values()]
    else:
        if kind == "model" and text.strip() == "default":
            text = ",".join(DEFAULT_MODELS)
        chosen = [(registry.entry(kind, s.name), dict(s.params)) for s in parse_selection(text, f"{kind} selection")]
    made = [(entry, entry.create(**params)) for entry, params in chosen]
    labels = [m.label for _, m in made]
    for label in labels:
        if labels.count(label) > 1:  # e.g. weighted_sum and weighted_sum[n=5], its default
            raise FuncbenchError(f"{kind} selection names {label} twice; give each once")
    return made


def _brief(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, ValueError) and text.startswith("returned"):
        return text  # evaluate_target's own shape and finiteness checks
    return f"raised {type(exc).__name__}: {text}"


def _jsonable(params: object) -> object:
    return json.loads(json.dumps(params, sort_keys=True, default=str))


def _hash(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

