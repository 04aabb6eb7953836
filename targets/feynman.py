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

- every denominator (each base raised to a negative power) keeps at least
  the magnitude it has at its smallest on the training box (99% of it, as
  found on a sample): a pole is never approached more closely than the
  training data approaches it;
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import Box, Restricted, Target, near_and_far, suite, target_family
from benchmark.checks import LARGEST_VALUE
from benchmark.formula import parse_formula

TABLE = Path(__file__).parent / "data" / "feynman_equations.csv"
SOURCE = ('Udrescu & Tegmark 2020, "AI Feynman" (Science Advances 6, eaay2631), the 100 equations of its '
          "database as MilesCranmer/PySR ships them (datasets/FeynmanEquations.csv)")
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
    import sympy

    expression = parse_formula(found.formula, found.inputs)
    symbols = [sympy.Symbol(name, real=True) for name in found.inputs]
    compiled = sympy.lambdify(symbols, expression, modules="numpy", dummify=True)
    values = _vectorised(compiled)
    denominators = [(str(base), _vectorised(sympy.lambdify(symbols, base, modules="numpy", dummify=True)))
                    for base in _denominators(expression)]
    box = found.box
    rng = np.random.default_rng(list(found.id.encode()))
    training = box.sample(MARGIN_SAMPLES, rng)
    with np.errstate(all="ignore"):
        margins = [(text, g, MARGIN_SLACK * float(np.min(np.abs(g(training))))) for text, g in denominators]
    regions = {name: _restricted(region, values, margins, rng) for name, region in near_and_far(box, "low").items()}

    def fn(x: np.ndarray) -> np.ndarray:
        return values(x)[:, None]

    return Target(
        fn=fn, domain=box, extrapolation=regions, inputs=found.inputs, expression=found.formula,
        description=f"{found.id}: {found.output} = {found.formula}",
    )


def _vectorised(compiled: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """A lambdified formula as a function of points (n, d) giving (n,): a constant sub-formula broadcasts."""

    def at(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(compiled(*x.T), dtype=np.float64), (len(x),))

    return at


def _denominators(expression) -> list:
    """Every base the formula raises to a negative power, once each: where it has poles."""
    import sympy

    found = {node.base for node in sympy.preorder_traversal(expression) if node.is_Pow and node.exp.is_negative}
    return sorted(found, key=sympy.default_sort_key)


def _restricted(region, values, margins, rng: np.random.Generator):
    """`region` cut back to where the formula is defined and no pole is nearer than in training (module docstring).

    Only the conditions that remove points of the region (on a sample of it)
    are kept and named, so an equation defined everywhere keeps its ring.
    """
    probe = region.sample(MARGIN_SAMPLES, rng)
    with np.errstate(all="ignore"):
        conditions = [(f"|{text}| >= {margin:.3g}", lambda x, g=g, m=margin: np.abs(g(x)) >= m)
                      for text, g, margin in margins if margin > 0 and np.any(np.abs(g(probe)) < margin)]
        y = values(probe)
    defined = np.isfinite(y) & (np.abs(y) <= LARGEST_VALUE)
    if not np.all(defined):
        conditions.append((f"the formula is real and below {LARGEST_VALUE:.2g} in magnitude",
                           lambda x: np.isfinite(v := values(x)) & (np.abs(v) <= LARGEST_VALUE)))
    if not conditions:
        return region

    def keep(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            mask = np.ones(len(x), dtype=bool)
            for _, condition in conditions:
                mask &= condition(x)
        return mask

    return Restricted(region, keep, " and ".join(text for text, _ in conditions))


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
