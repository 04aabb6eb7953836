"""From a run's configuration to the grid of cells it trains.

A cell is one (target, model) pair with all its seeds: the unit that trains
as one vectorised ensemble, is stored as one atomic write and is skipped on
resume. Its id hashes everything that determines its result, so a changed
setting, or edited code, is a new cell, never a stale reuse (see
`benchmark.fingerprint` for what the id covers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from typing import Any

import numpy as np

from . import __version__
from .checks import check_target
from .config import DEFAULT_MODELS, REFERENCE_MODEL, RunConfig
from .errors import FuncbenchError, describe_exception
from .fingerprint import (
    code_fingerprint,
    library_versions,
    origin_fingerprint,
    stable_hash,
)
from .model import ModelSpec, TrainSettings
from .registry import Kind, Registry, Suite, Target
from .selection import parse_selection

#: The run options a family may have its own default for (`ModelSpec.training`) and a suite may set per
#: family: RunConfig's name -> TrainSettings' name.
PER_MODEL = {"learning_rate": "learning_rate", "reg_strength": "regularizer_strength", "optimizer": "optimizer",
             "loss": "loss", "clip_value": "clip_value", "clip_norm": "clip_norm"}
#: The regulariser's schedule (steps at which it starts and reaches full strength), which a suite may also set per model.
PER_MODEL_SCHEDULE = ("reg_start", "reg_end")
#: Where a family's regulariser ramps from 0 to full strength, as fractions of the training, unless it says otherwise.
DEFAULT_SCHEDULE = (0.4, 0.7)


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
                          code_fingerprint(self.model.build), origin_fingerprint(self.model.build),
                          self.model.identity(self.target.dim) if self.model.identity else None],
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


def run_suite(registry: Registry, suite: str) -> Suite:
    """The suite a `--suite` selection names, built with its parameters."""
    selectors = parse_selection(suite, "suite selection")
    if len(selectors) != 1:
        raise FuncbenchError(f"--suite takes one suite, got {len(selectors)}; run suites one at a time")
    return registry.entry("suite", selectors[0].name).create(**dict(selectors[0].params))


def run_headline(registry: Registry, config: RunConfig, targets: Sequence[Target] = ()) -> dict[str, str | None]:
    """What the run's report leads with, as run.json records it: its suite's headline and reference family.

    A run of no suite leads with the reference family's verdict, or, where every target is a formula
    (`Target.expression`: the AI Feynman equations), with how often each family recovers it.
    """
    if config.suite is None:
        formulas = bool(targets) and all(t.expression for t in targets)
        return {"section": "solutions" if formulas else "verdict", "reference_model": REFERENCE_MODEL}
    chosen = run_suite(registry, config.suite)
    return {"section": chosen.headline, "reference_model": chosen.reference_model}


def resolve_config(registry: Registry, suite: str | None, options: dict[str, Any]) -> RunConfig:
    """The run's configuration: RunConfig's defaults, then the suite's settings, then the options given.

    `options` holds only what the user set explicitly; each overrides the suite.
    """
    if suite is None:
        return RunConfig(**options)
    chosen = run_suite(registry, suite)
    for family, settings in chosen.model_settings.items():
        if unknown := sorted(set(settings) - {*PER_MODEL, *PER_MODEL_SCHEDULE}):
            raise FuncbenchError(f"suite '{chosen.label}' sets {', '.join(unknown)} for model '{family}'; "
                                 f"a suite may set only {', '.join([*PER_MODEL, *PER_MODEL_SCHEDULE])} per model")
    # What the command line sets wins over the suite's settings for one family, too; but an option
    # given with the very value the suite sets is the suite's (a run repeated from its run.json gives
    # every option the run had), so it leaves the suite's settings for single families alone.
    overridden = {k for k, v in options.items() if k not in chosen.settings or chosen.settings[k] != v}
    if overridden & set(PER_MODEL_SCHEDULE):  # the ramp is one setting: --reg-start alone replaces a family's too
        overridden |= set(PER_MODEL_SCHEDULE)
    per_model = {family: {k: v for k, v in settings.items() if k not in overridden}
                 for family, settings in chosen.model_settings.items()}
    values = {"targets": chosen.targets, "models": chosen.models, **chosen.settings, **options, "suite": chosen.label,
              "model_settings": {family: settings for family, settings in per_model.items() if settings}}
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
    unfit = unfit_models(models, targets)
    problems += list(dict.fromkeys(unfit.values()))
    if all((t.dim, m.label) in unfit for t in targets for m in models):
        raise FuncbenchError("no model left to run: " + problems[-1])
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
        if (t.dim, m.label) not in unfit
    ]
    return Plan(cells, targets, models, problems)


#: Points of a target's training domain a model family is checked on before training (`ModelSpec.check`).
CHECK_POINTS = 16


def unfit_models(models: list[ModelSpec], targets: list[Target]) -> dict[tuple[int, str], str]:
    """(input dimension, model label) -> why the family cannot train on such targets, for the families that check.

    Each family is checked once per input dimension, on points drawn from
    the first target of that dimension's training domain.
    """
    first_of_dim = {}
    for t in targets:
        first_of_dim.setdefault(t.dim, t)
    unfit = {}
    for model in models:
        if model.check is None:
            continue
        for dim, target in first_of_dim.items():
            x = target.domain.sample(CHECK_POINTS, np.random.default_rng([dim, 0xC4EC]))
            try:
                problem = model.check(x)
            except ValueError as exc:  # the factory refused a parameter's value
                if model.label != model.name:  # a value the user chose: theirs to fix, as for a target family
                    raise FuncbenchError(f"model '{model.label}': {exc}") from None
                problem = f"cannot be built with its defaults for {dim} input(s): {describe_exception(exc)}"
            if problem:
                unfit[(dim, model.label)] = (f"{model.origin}: model '{model.label}': {problem}; "
                                             f"it is skipped on targets of {dim} input(s)")
    return unfit


def train_settings(config: RunConfig, model: ModelSpec) -> TrainSettings:
    """The settings a model trains with: each of the run's options where given, else the family's default.

    A suite's settings for the model's family come before the run's (and
    after the command line's, which `resolve_config` has already applied).
    The regulariser's ramp is in steps: --reg-start and --reg-end (or the
    suite's for this family) where given, else the family's schedule
    (fractions of the training; 40% and 70% unless the family says otherwise).
    """
    family = dict(model.training)
    suite_says = config.model_settings.get(model.name, {})
    run = {option: suite_says.get(option, getattr(config, option)) for option in PER_MODEL}
    overrides = {field: run[option] if run[option] is not None else family[field]
                 for option, field in PER_MODEL.items()
                 if option != "learning_rate" and (run[option] is not None or field in family)}
    settings = TrainSettings(config.epochs, config.batch_size, run["learning_rate"] or model.learning_rate,
                             config.steps, config.eval_every, **overrides)
    total = settings.total_steps(config.samples)
    start_fraction, end_fraction = family.get("regularizer_schedule", DEFAULT_SCHEDULE)
    reg_start, reg_end = (suite_says.get(option, getattr(config, option)) for option in PER_MODEL_SCHEDULE)
    start = reg_start if reg_start is not None else round(start_fraction * total)
    end = reg_end if reg_end is not None else max(start, round(end_fraction * total))
    if end < start:
        raise FuncbenchError(
            f"--reg-end {end} comes before the regulariser's start, step {start} "
            f"({start_fraction:.0%} of {total:,} steps for {model.label}); give --reg-start too"
        )
    return replace(settings, reg_start=start, reg_end=end)


@dataclass(frozen=True)
class ModelTraining:
    """How one model of a run trains; `regularized` where its family or the suite gives it a regulariser's settings."""

    label: str
    settings: TrainSettings
    regularized: bool

    def describe(self) -> str:
        """'learning rate 0.001, adam, mse loss, regulariser x0.01, ramped from step 20,000 to 35,000'."""
        s = self.settings
        if s.learning_rate is None:  # scikit-learn's and the symbolic regressor: fitted by their own solvers
            return "fitted by its own solver, on the fixed training set (no learning rate, optimiser or loss)"
        parts = [f"learning rate {s.learning_rate:g}", s.optimizer, f"{s.loss} loss"]
        if self.regularized:
            ramp = (f"in full from step {s.reg_start:,}" if s.reg_start == s.reg_end
                    else f"ramped from step {s.reg_start:,} to {s.reg_end:,}")
            parts.append(f"regulariser x{s.regularizer_strength:g}, {ramp}")
        if s.clip_value is not None:
            parts.append(f"gradients clipped to +-{s.clip_value:g}")
        if s.clip_norm is not None:
            parts.append(f"gradient norm clipped to {s.clip_norm:g}")
        return ", ".join(parts)


def model_trainings(registry: Registry, config: RunConfig) -> list[ModelTraining]:
    """The settings each model of a run's selection trains with (those that cannot be built are left out)."""
    models, _ = _select(registry, "model", config.models)
    trainings = []
    for model in models:
        suite_says = set(config.model_settings.get(model.name, {}))
        regularized = bool({"regularizer_strength", "regularizer_schedule"} & set(model.training)
                           or {"reg_strength", *PER_MODEL_SCHEDULE} & suite_says)
        trainings.append(ModelTraining(model.label, train_settings(config, model), regularized))
    return trainings


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
        if (kind, entry.name) in registry.broken:  # broken as defined: said when it was loaded
            problems.append(registry.broken[(kind, entry.name)])
            continue
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
