"""The 100 equations of the AI Feynman database as targets: `feynman[eq=I.12.1]`.

Udrescu & Tegmark 2020, "AI Feynman: a physics-inspired method for symbolic
regression" (Science Advances 6, eaay2631): the equations of the Feynman
Lectures on Physics, each with its variables' published sampling ranges.
`data/feynman_equations.csv` is the table as the PySR repository ships it
(MilesCranmer/PySR, `datasets/FeynmanEquations.csv`, commit 52f76fa2); its
`datapoints` column is PySR's and unused here. SRBench's ground-truth track
scores symbolic regressors on the same table, inside the ranges only.

Each equation trains on its published box (every variable uniform on its
range), and is tested on the built-ins' two rings grown from the box's low
corner (`near_and_far(box, anchor="low")`): *near*, the box grown to twice
its width, less the box; *far*, grown to 20 times, less it grown 10 times.
Growing away from the low corner keeps every variable on the side of its
range it was sampled on, so a positive quantity stays positive.

Where a formula has a pole or a domain edge out there, its regions are
restricted (`benchmark.Restricted`), by one rule for every equation:

- every denominator (each base raised to a negative power) that keeps one
  sign on the training box keeps that sign, and at least the magnitude it
  has at its smallest there (99% of it, as found on a sample): the regions
  stay on the training data's side of a pole, and never approach it more
  closely than the training data do;
- the formula must be real and finite there, and below
  `checks.LARGEST_VALUE` in magnitude (the float32 models' squared errors
  overflow beyond it): sqrt and arcsin stay on their domains, exp does not
  overflow.

`bench list targets feynman` shows each equation's regions as restricted.
"""

from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from benchmark import Box, Restricted, Target, near_and_far, suite, target_family
from benchmark.checks import LARGEST_VALUE
from benchmark.formula import Symbolic

TABLE = Path(__file__).parent / "data" / "feynman_equations.csv"
#: Points of the training box on which each denominator's smallest magnitude is found, and of each
#: region on which the conditions that restrict it are found.
MARGIN_SAMPLES = 20_000
#: The share of that smallest magnitude a denominator keeps outside: a sample's minimum lies a little
#: above the box's, and a variable's own lower bound must not read as a pole.
MARGIN_SLACK = 0.99


@dataclass(frozen=True)
class Equation:
    """One row of the table: `output = formula`, each input uniform on [low, high]."""

    id: str
    output: str
    formula: str
    inputs: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def box(self) -> Box:
        return Box(self.low, self.high)


def read_table(path: Path = TABLE) -> dict[str, Equation]:
    """The equations by id, each row checked: its variable count matches the variables it names."""
    equations = {}
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            count = int(row["# variables"])
            named = [i for i in range(1, 11) if row.get(f"v{i}_name")]
            if named != list(range(1, count + 1)):
                raise ValueError(f"{path.name}: {row['Filename']} says {count} variables but names {len(named)}")
            equations[row["Filename"]] = Equation(
                id=row["Filename"], output=row["Output"], formula=row["Formula"],
                inputs=tuple(row[f"v{i}_name"] for i in named),
                low=tuple(float(row[f"v{i}_low"]) for i in named), high=tuple(float(row[f"v{i}_high"]) for i in named),
            )
    return equations


EQUATIONS = read_table()


def equation(eq: str) -> Equation:
    """The equation with id `eq`, or a one-line error naming the closest ids."""
    if eq in EQUATIONS:
        return EQUATIONS[eq]
    if not eq:
        raise ValueError("name an equation, e.g. feynman[eq=I.12.1] ('bench list targets feynman' lists all 100)")
    closest = difflib.get_close_matches(eq, EQUATIONS, n=4, cutoff=0)
    raise ValueError(f"no equation '{eq}'; the closest ids are {', '.join(closest)} "
                     "('bench list targets feynman' lists all 100)")


@target_family(
    description="the AI Feynman equations (Udrescu & Tegmark 2020): eq = an id such as I.12.1; 'bench list targets "
                "feynman' shows all 100 with formulas and ranges",
    in_all=False,
    instances=lambda: [{"eq": eq} for eq in EQUATIONS],
)
def feynman(eq: str = "") -> Target:
    return feynman_target(equation(eq.strip()))


@functools.cache
def feynman_target(found: Equation) -> Target:
    """The equation as a target, its regions restricted where the formula has poles or domain edges."""
    formula = Symbolic.parse(found.formula, found.inputs)
    box = found.box
    rng = np.random.default_rng(list(found.id.encode()))
    training = box.sample(MARGIN_SAMPLES, rng)
    poles = [_pole(base, found.inputs, training) for base in _denominators(formula.sympy(found.inputs))]
    regions = {name: _restricted(region, formula, [p for p in poles if p is not None], rng)
               for name, region in near_and_far(box, "low").items()}

    def fn(x: np.ndarray) -> np.ndarray:
        return formula.evaluate(x)[:, None]

    return Target(
        fn=fn, domain=box, extrapolation=regions, inputs=found.inputs, expression=found.formula,
        description=f"{found.id}: {found.output} = {found.formula}",
    )


@dataclass(frozen=True)
class Pole:
    """A denominator g of the formula, the sign it keeps on the training box and its smallest magnitude there."""

    text: str
    denominator: Symbolic
    sign: float
    margin: float

    def keeps(self, x: np.ndarray) -> np.ndarray:
        """Points on the training data's side of the pole, no nearer to it than the training data come."""
        with np.errstate(all="ignore"):
            return self.sign * self.denominator.evaluate(x) >= self.margin

    def describe(self) -> str:
        return f"{self.text} >= {self.margin:.3g}" if self.sign > 0 else f"{self.text} <= {-self.margin:.3g}"


def _pole(base, inputs: tuple[str, ...], training: np.ndarray) -> Pole | None:
    """The pole of the denominator `base`, or None where it changes sign on the training box (no margin to keep)."""
    text = str(base)
    denominator = Symbolic.parse(text, inputs)
    values = denominator.evaluate(training)
    sign = float(np.sign(values[0]))
    if sign == 0 or not np.all(np.sign(values) == sign):
        return None
    return Pole(text, denominator, sign, MARGIN_SLACK * float(np.min(np.abs(values))))


def _denominators(expression) -> list:
    """Every base the formula raises to a negative power, once each: where it has poles."""
    import sympy

    found = {node.base for node in sympy.preorder_traversal(expression) if node.is_Pow and node.exp.is_negative}
    return sorted(found, key=sympy.default_sort_key)


def _restricted(region, formula: Symbolic, poles: list[Pole], rng: np.random.Generator):
    """`region` cut back to where the formula is defined and no pole is nearer than in training (module docstring).

    Only the conditions that remove points of the region (on a sample of it)
    are kept and named, so an equation defined everywhere keeps its ring.
    """
    probe = region.sample(MARGIN_SAMPLES, rng)
    conditions = [(pole.describe(), pole.keeps) for pole in poles if not np.all(pole.keeps(probe))]
    with np.errstate(all="ignore"):
        y = formula.evaluate(probe)
    if not np.all(np.isfinite(y) & (np.abs(y) <= LARGEST_VALUE)):
        conditions.append((f"the formula is real and below {LARGEST_VALUE:.2g} in magnitude", partial(_defined, formula)))
    if not conditions:
        return region

    def keep(x: np.ndarray) -> np.ndarray:
        mask = np.ones(len(x), dtype=bool)
        for _, condition in conditions:
            mask &= condition(x)
        return mask

    return Restricted(region, keep, " and ".join(text for text, _ in conditions))


def _defined(formula: Symbolic, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        values = formula.evaluate(x)
    return np.isfinite(values) & (np.abs(values) <= LARGEST_VALUE)


#: The suite's families: the default ones (the article's unit and the two MLPs), the scikit-learn
#: baselines a practitioner would try, and the family that can recover a formula exactly.
FEYNMAN_MODELS = "linear,mlp,mlp_tanh,poly_ridge,random_forest,symbolic"

feynman_suite = suite(
    "feynman",
    description="all 100 AI Feynman equations: which families recover each formula, and carry it outside its ranges",
    targets=",".join(f"feynman[eq={eq}]" for eq in EQUATIONS),
    models=FEYNMAN_MODELS,
    headline="solutions", seeds=5,
)
