"""From a run's configuration to the grid of cells it trains.

A cell is one (target, model) pair with all its seeds: the unit that trains
as one vectorised ensemble, is stored as one atomic write and is skipped on
resume. Its id hashes everything that determines its result, so a changed
setting, or edited code, is a new cell, never a stale reuse (see
`benchmark.fingerprint` for what the id covers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from . import __version__
from .checks import check_target
from .config import RunConfig
from .errors import FuncbenchError, describe_exception
from .fingerprint import (
    code_fingerprint,
    library_versions,
    origin_fingerprint,
    stable_hash,
)
from .models import DEFAULT_MODELS, ModelSpec, TrainSettings
from .registry import Kind, Registry, Target
from .selection import parse_selection


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
        return stable_hash(
            {
                "target": self.target.fingerprint(),
                "model": [self.model.name, dict(self.model.params), self.model.description,
                          code_fingerprint(self.model.build), origin_fingerprint(self.model.build)],
                "seeds": list(self.seeds),
                "settings": asdict(self.settings),
                "samples": [self.samples, self.eval_samples],
                "device": self.device,
                "version": __version__,
                "libraries": library_versions(),
            }
        )[:16]


@dataclass
class Plan:
    cells: list[Cell]
    targets: list[Target]
    models: list[ModelSpec]
    problems: list[str] = field(default_factory=list)


def resolve_config(registry: Registry, suite: str | None, options: dict[str, Any]) -> RunConfig:
    """The run's configuration: RunConfig's defaults, then the suite's settings, then the options given.

    `options` holds only what the user set explicitly; each overrides the suite.
    """
    if suite is None:
        return RunConfig(**options)
    selectors = parse_selection(suite, "suite selection")
    if len(selectors) != 1:
        raise FuncbenchError(f"--suite takes one suite, got {len(selectors)}; run suites one at a time")
    chosen = registry.entry("suite", selectors[0].name).create(**dict(selectors[0].params))
    values = {"targets": chosen.targets, "models": chosen.models, **chosen.settings, **options, "suite": chosen.label}
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FuncbenchError(f"suite '{chosen.label}' sets unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return RunConfig(**values)
    except TypeError as exc:  # a plugin's suite gave, say, seeds="5"
        raise FuncbenchError(f"suite '{chosen.label}' ({chosen.description}) has a setting of the wrong type: {exc}") from None


def build_plan(registry: Registry, config: RunConfig) -> Plan:
    """Resolve the selections, check the targets, and lay out the grid.

    A target that fails its checks is left out with a one-line problem; a
    name that does not exist is the user's error and stops the run.
    """
    chosen_targets, target_problems = _select(registry, "target", config.targets)
    models, model_problems = _select(registry, "model", config.models)
    problems = registry.failed_plugins + target_problems + model_problems
    targets = []
    for made in chosen_targets:
        problem = check_target(made)
        if problem:
            problems.append(f"{made.origin}: target '{made.label}' {problem}; it is skipped")
        else:
            targets.append(made)
    if not models:
        raise FuncbenchError("no model left to run: " + model_problems[-1])
    if not targets:
        raise FuncbenchError("no target left to run: " + problems[-1])
    seeds = tuple(range(config.seeds))
    cells = [
        Cell(
            target=t,
            model=m,
            seeds=seeds,
            settings=train_settings(config, m),
            samples=config.samples,
            eval_samples=config.eval_samples,
            device=config.device,
        )
        for t in targets
        for m in models
    ]
    return Plan(cells, targets, models, problems)


def train_settings(config: RunConfig, model: ModelSpec) -> TrainSettings:
    """The settings a model trains with: the run's, its family's learning rate unless --lr, the ramp in steps."""
    settings = TrainSettings(config.epochs, config.batch_size, config.learning_rate or model.learning_rate,
                             config.steps, config.eval_every)
    total = settings.total_steps(config.samples)
    start = config.reg_start if config.reg_start is not None else round(0.4 * total)
    end = config.reg_end if config.reg_end is not None else max(start, round(0.7 * total))
    if end < start:
        raise FuncbenchError(
            f"--reg-end {end} comes before the regulariser's start, step {start} (40% of {total:,} steps); give --reg-start too"
        )
    return replace(settings, reg_start=start, reg_end=end)


def setting_warnings(config: RunConfig, plan: Plan) -> list[str]:
    """Settings that are accepted but do nothing, or next to nothing, each said in one line."""
    warnings = []
    for settings in dict.fromkeys(cell.settings for cell in plan.cells):  # one per distinct setting
        total = settings.total_steps(config.samples)
        if config.reg_start is not None and config.reg_start >= total:
            warnings.append(f"--reg-start {config.reg_start} is at or after the last of {total:,} steps: "
                            "the sparsity regulariser never applies")
        elif config.reg_end is not None and config.reg_end > total:
            warnings.append(f"--reg-end {config.reg_end} is after the last of {total:,} steps: "
                            "the sparsity regulariser never reaches full strength")
        interval = settings.evaluation_interval(config.samples)
        evaluations = 1 + total // interval + (1 if total % interval else 0)  # step 0 and the last step too
        if settings.by_steps and evaluations < 5:
            warnings.append(f"--eval-every {settings.eval_every} with {total:,} steps scores only {evaluations} "
                            "checkpoints to keep the best of; lower --eval-every")
        if not settings.by_steps and settings.batch_size > config.samples:
            warnings.append(f"--batch-size {settings.batch_size} is more than the {config.samples:,} training samples: "
                            "every step is one full batch")
    return list(dict.fromkeys(warnings))


def _select(registry: Registry, kind: Kind, text: str) -> tuple[list[Any], list[str]]:
    """The targets or model specs a selection configures, and the entries that could not be built.

    A name that does not exist, or a value the user gave that its factory
    refuses, stops the run. An entry that cannot be built from its own
    defaults is the plugin's fault: it becomes a problem and is skipped.
    """
    table = registry.table(kind)
    if text.strip() == "all":
        chosen = [(entry, {}) for entry in table.values() if entry.in_all]
    else:
        if kind == "model" and text.strip() == "default":
            text = ",".join(DEFAULT_MODELS)
        chosen = [(registry.entry(kind, s.name), dict(s.params)) for s in parse_selection(text, f"{kind} selection")]
    made, problems = [], []
    for entry, params in chosen:
        if (kind, entry.name) in registry.conflicts:  # the run selects a name two plugins define
            problems.append(registry.conflicts[(kind, entry.name)])
        try:
            made.append(entry.create(**params))
        except FuncbenchError as exc:
            if params:
                raise
            problems.append(f"{entry.origin}: {kind} '{entry.name}' cannot be built: {exc}; it is skipped")
        except Exception as exc:  # noqa: BLE001 - a plugin's factory may raise anything
            problems.append(f"{entry.origin}: {kind} '{entry.name}' cannot be built: {describe_exception(exc)}; it is skipped")
    labels = [m.label for m in made]
    for label in labels:
        if labels.count(label) > 1:  # e.g. weighted_sum and weighted_sum[n=5], its default
            raise FuncbenchError(f"{kind} selection names {label} twice; give each once")
    return made, problems
