"""Reading a trained model as a formula: the article's own step, made systematic.

The article reads the linear unit's weights [1, 1] as "addition". Here a
model whose parameters have a closed form (the linear unit, NAC, NAU, NMU)
returns an `Expression`; its text is the formula with every coefficient
rounded to `DECIMALS` places, and `is_exact` asks whether that rounded
formula *is* the target: it must reproduce the target on its training domain
and every extrapolation region to `RELATIVE_TOLERANCE`. A coefficient
therefore has to be within 0.0005 of a value that makes the formula exact,
and the formula is exactly what the report prints.

A symbolic regressor's formula is a `Symbolic` (a sympy expression), and
every expression reads as sympy (`Expression.sympy`), so that where the
target is a formula too (`parse_formula`), `symbolic_solution` asks SRBench's
question: once constants are rounded as SRBench rounds them
(`round_constants`), is the learned formula the target's, symbolically?
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # sympy is imported when a formula is read or compared, not by every `bench` command
    import sympy

#: Decimal places of every coefficient in a formula's text and in its exactness test.
DECIMALS = 3
#: How close the rounded formula must come to the target, relative to the target's largest value.
RELATIVE_TOLERANCE = 1e-9


class Expression:
    """A node of a learned formula over the model's inputs (numpy in, numpy out)."""

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Values (n,) at inputs (n, d)."""
        raise NotImplementedError

    def rounded(self, decimals: int = DECIMALS) -> Expression:
        raise NotImplementedError

    def text(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        raise NotImplementedError

    def sympy(self, names: Sequence[str]) -> sympy.Expr:
        """The formula as a sympy expression of real symbols named `names` (the model's inputs), coefficients as Floats."""
        raise NotImplementedError

    def formula(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        """The printed formula, e.g. ``y = 1.000*a + 1.000*b``."""
        return "y = " + self.rounded(decimals).text(names, decimals)


@dataclass(frozen=True)
class Input(Expression):
    index: int

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.index]

    def rounded(self, decimals: int = DECIMALS) -> Expression:
        return self

    def text(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        return names[self.index]

    def sympy(self, names: Sequence[str]) -> sympy.Expr:
        return _symbol(names[self.index])


@dataclass(frozen=True)
class Affine(Expression):
    """sum_k weights[k] * terms[k] + bias."""

    weights: tuple[float, ...]
    terms: tuple[Expression, ...]
    bias: float = 0.0

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        total = np.full(len(x), self.bias)
        for w, term in zip(self.weights, self.terms):
            if w:
                total = total + w * term.evaluate(x)
        return total

    def rounded(self, decimals: int = DECIMALS) -> Expression:
        flat = _flatten(self)  # round the composed coefficients once, not each layer's
        if flat is not self:
            return flat.rounded(decimals)
        terms = tuple(t.rounded(decimals) for t in self.terms)
        return Affine(tuple(round(w, decimals) for w in self.weights), terms, round(self.bias, decimals))

    def text(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        parts = []
        for w, term in zip(self.weights, self.terms):
            if w == 0:
                continue
            inner = term.text(names, decimals)
            if not isinstance(term, Input):
                inner = f"({inner})"
            parts.append(("-" if w < 0 else "+", f"{abs(w):.{decimals}f}*{inner}"))
        if self.bias != 0 or not parts:
            parts.append(("-" if self.bias < 0 else "+", f"{abs(self.bias):.{decimals}f}"))
        sign, first = parts[0]
        return ("-" if sign == "-" else "") + first + "".join(f" {s} {p}" for s, p in parts[1:])

    def sympy(self, names: Sequence[str]) -> sympy.Expr:
        import sympy

        terms = [sympy.Float(w) * term.sympy(names) for w, term in zip(self.weights, self.terms) if w]
        return sympy.Add(*terms, sympy.Float(self.bias))


@dataclass(frozen=True)
class PowerProduct(Expression):
    """prod_k |terms[k]| ** exponents[k]: NAC*'s exp(W . log|x|)."""

    exponents: tuple[float, ...]
    terms: tuple[Expression, ...]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        total = np.ones(len(x))
        with np.errstate(all="ignore"):
            for p, term in zip(self.exponents, self.terms):
                if p:
                    total = total * np.abs(term.evaluate(x)) ** p
        return total

    def rounded(self, decimals: int = DECIMALS) -> Expression:
        return PowerProduct(tuple(round(p, decimals) for p in self.exponents), tuple(t.rounded(decimals) for t in self.terms))

    def text(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        factors = [f"|{t.text(names, decimals)}|^{p:.{decimals}f}" for p, t in zip(self.exponents, self.terms) if p != 0]
        return " * ".join(factors) or "1"

    def sympy(self, names: Sequence[str]) -> sympy.Expr:
        import sympy

        return sympy.Mul(*(sympy.Abs(t.sympy(names)) ** sympy.Float(p) for p, t in zip(self.exponents, self.terms) if p))


@dataclass(frozen=True)
class GatedProduct(Expression):
    """prod_k (gates[k] * terms[k] + 1 - gates[k]): the NMU, each factor between 1 and its term."""

    gates: tuple[float, ...]
    terms: tuple[Expression, ...]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        total = np.ones(len(x))
        for g, term in zip(self.gates, self.terms):
            if g:
                total = total * (g * term.evaluate(x) + 1 - g)
        return total

    def rounded(self, decimals: int = DECIMALS) -> Expression:
        return GatedProduct(tuple(round(g, decimals) for g in self.gates), tuple(t.rounded(decimals) for t in self.terms))

    def text(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        factors = []
        for g, term in zip(self.gates, self.terms):
            if g == 0:
                continue
            inner = term.text(names, decimals)
            inner = inner if isinstance(term, Input) else f"({inner})"
            factors.append(inner if g == 1 else f"({g:.{decimals}f}*{inner} + {1 - g:.{decimals}f})")
        return " * ".join(factors) or "1"

    def sympy(self, names: Sequence[str]) -> sympy.Expr:
        import sympy

        return sympy.Mul(*(sympy.Float(g) * t.sympy(names) + sympy.Float(1 - g) for g, t in zip(self.gates, self.terms) if g))


@dataclass(frozen=True)
class Symbolic(Expression):
    """A formula found by a symbolic regressor: a sympy expression of the inputs by position (`input_symbol`).

    By position rather than by name, so that one formula serves every cell
    of an ensemble trained for several targets of one input dimension, each
    naming its inputs its own way.
    """

    expression: sympy.Expr

    @classmethod
    def parse(cls, text: str, names: Sequence[str]) -> Symbolic:
        """The formula `text` (as `parse_formula` reads it) over the inputs `names`."""
        return cls(_by_position(parse_formula(text, names), names))

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        function, used = _compiled(self.expression)
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            values = np.asarray(function(*(x[:, i] for i in used)))
        if np.iscomplexobj(values):  # a root or log of a negative number: no real value there
            values = np.where(values.imag == 0, values.real, np.nan)
        return np.broadcast_to(values.astype(np.float64), (len(x),)).copy()

    def rounded(self, decimals: int = DECIMALS) -> Symbolic:
        return Symbolic(round_constants(self.expression, decimals))

    def text(self, names: Sequence[str], decimals: int = DECIMALS) -> str:
        return _printer(decimals).doprint(self.sympy(names))

    def sympy(self, names: Sequence[str]) -> sympy.Expr:
        return self.expression.xreplace({input_symbol(i): _symbol(name) for i, name in enumerate(names)})


def input_symbol(index: int) -> sympy.Symbol:
    """The symbol of the model's input `index` in a `Symbolic` formula."""
    return _symbol(f"x{index}")


def _symbol(name: str) -> sympy.Symbol:
    import sympy

    return sympy.Symbol(name, real=True)


def _by_position(expression: sympy.Expr, names: Sequence[str]) -> sympy.Expr:
    return expression.xreplace({_symbol(name): input_symbol(i) for i, name in enumerate(names)})


@lru_cache(maxsize=4096)
def _compiled(expression: sympy.Expr) -> tuple[Callable[..., np.ndarray], tuple[int, ...]]:
    """The formula as a numpy function of the inputs it uses, and their positions; compiled once per formula."""
    import sympy

    used = tuple(sorted(int(s.name[1:]) for s in expression.free_symbols))
    # A division by a constant 0 (one pyoperon printed as 0.000..., or one rounded away) has no value: NaN.
    defined = expression.xreplace({sympy.zoo: sympy.nan})
    return sympy.lambdify([input_symbol(i) for i in used], defined, modules="numpy"), used


@lru_cache(maxsize=16)
def _printer(decimals: int):
    """sympy's text of a formula, with every float at `decimals` places, as the other formulas print theirs."""
    from sympy.printing.str import StrPrinter

    class FixedDecimals(StrPrinter):
        def _print_Float(self, expr) -> str:
            return f"{float(expr):.{decimals}f}"

    return FixedDecimals()


def linear_form(weights: Sequence[float], bias: float = 0.0) -> Affine:
    """sum_i weights[i] * x_i + bias over the model's inputs."""
    return Affine(tuple(float(w) for w in weights), tuple(Input(i) for i in range(len(weights))), float(bias))


def _flatten(expression: Affine) -> Affine:
    """An affine map of affine maps of the inputs is one affine map of the inputs; say it once."""
    terms = expression.terms
    if not terms or not all(isinstance(t, Affine) and all(isinstance(u, Input) for u in t.terms) for t in terms):
        return expression
    dim = max((u.index for t in terms for u in t.terms), default=-1) + 1  # type: ignore[attr-defined]
    combined = np.zeros(dim)
    bias = expression.bias
    for w, t in zip(expression.weights, terms):
        for v, u in zip(t.weights, t.terms):  # type: ignore[attr-defined]
            combined[u.index] += w * v  # type: ignore[attr-defined]
        bias += w * t.bias  # type: ignore[attr-defined]
    return linear_form(combined.tolist(), bias)


def is_exact(expression: Expression, target_values: np.ndarray, x: np.ndarray, decimals: int = DECIMALS) -> bool:
    """Does the rounded formula reproduce the target's values at the points x (n, d)?"""
    with np.errstate(all="ignore"):
        predicted = expression.rounded(decimals).evaluate(x)
    truth = np.asarray(target_values, dtype=np.float64).reshape(len(x))
    if not np.all(np.isfinite(predicted)):
        return False
    scale = max(1.0, float(np.max(np.abs(truth))))
    return bool(np.max(np.abs(predicted - truth)) <= RELATIVE_TOLERANCE * scale)


#: Names a formula's text may use for functions, as the AI Feynman table and numpy spell them.
FUNCTION_NAMES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "ln": "log"}
#: The longest formula text read, and the largest constant exponent: sympy computes 9**9**9 exactly, for ever.
MAX_FORMULA_CHARACTERS = 20_000
MAX_EXPONENT = 1_000


def parse_formula(text: str, names: Sequence[str]):
    """A formula's text (Python syntax, numpy's function names) as a sympy expression of the symbols `names`.

    Every name in `names` is a symbol, also where sympy has a meaning for it
    (I, E, gamma, beta). The text is read as Python's syntax tree and built
    into sympy node by node; nothing of it is evaluated as Python. Only
    numbers, the inputs, pi, the known functions of one argument and + - * /
    ** are accepted, and a constant exponent at most `MAX_EXPONENT` in
    magnitude: a stored model's formula comes from a run folder that may be
    someone else's. Anything else is refused in one line (ValueError).
    """
    import ast

    if len(text) > MAX_FORMULA_CHARACTERS:
        raise ValueError(f"formula of {len(text)} characters is longer than {MAX_FORMULA_CHARACTERS}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise ValueError(f"formula '{_shown(text)}' does not parse: {type(exc).__name__}") from None
    try:
        return _Builder(names).build(tree.body)
    except RecursionError:
        raise ValueError(f"formula '{_shown(text)}' is nested too deeply") from None
    except _Refused as exc:
        raise ValueError(f"formula '{_shown(text)}' {exc}") from None


class _Refused(Exception):
    """Why a formula's text is not a formula funcbench reads."""


class _Builder:
    """A formula's syntax tree as sympy, node by node, for the whitelisted nodes only."""

    def __init__(self, names: Sequence[str]):
        import sympy

        self.sympy = sympy
        self.names = tuple(names)
        self.symbols = {name: sympy.Symbol(name, real=True) for name in names}
        functions = {"exp": sympy.exp, "sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
                     "tanh": sympy.tanh, "sinh": sympy.sinh, "cosh": sympy.cosh, "log": sympy.log,
                     "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan, "abs": sympy.Abs}
        functions.update({alias: functions[name] for alias, name in FUNCTION_NAMES.items()})
        self.functions = functions

    def build(self, node):
        import ast

        sympy = self.sympy
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(repr(node.value))
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return self.symbols[node.id]
            if node.id == "pi":
                return sympy.pi
            raise _Refused(f"uses {node.id}, which is neither an input ({', '.join(self.names)}) nor pi")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = self.build(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
            left, right = self.build(node.left), self.build(node.right)
            if isinstance(node.op, ast.Pow):
                if right.is_number and not (right.is_finite and abs(float(right.evalf(15))) <= MAX_EXPONENT):
                    raise _Refused(f"raises to a power beyond {MAX_EXPONENT}")
                return left**right
            return {ast.Add: lambda: left + right, ast.Sub: lambda: left - right, ast.Mult: lambda: left * right,
                    ast.Div: lambda: left / right}[type(node.op)]()
        if isinstance(node, ast.Call):
            called = node.func.id if isinstance(node.func, ast.Name) else _shown(ast.unparse(node.func))
            if called not in self.functions:
                raise _Refused(f"calls {called}, which is not a known function ({', '.join(sorted(self.functions))})")
            if len(node.args) != 1 or node.keywords:
                raise _Refused(f"calls {called} with {len(node.args) + len(node.keywords)} arguments, not 1")
            return self.functions[called](self.build(node.args[0]))
        raise _Refused(f"holds {type(node).__name__}, which is not part of a formula (numbers, inputs, pi, "
                       "+ - * / ** and functions of one argument)")


def _shown(text: str) -> str:
    """A formula's text as an error message quotes it: on one line, and not too long."""
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


#: Constants smaller than this in magnitude are rounded to 0, whatever the decimal places (SRBench's rule).
NEGLIGIBLE = 1e-4
#: Formulas whose operations (sympy's count_ops, of both together) exceed this are not compared symbolically.
MAX_OPERATIONS = 120
#: Two rounded formulas that differ by more than this, relative to the target's largest value at the
#: comparison points, are different without asking sympy.
NUMERIC_TOLERANCE = 1e-6


def round_constants(expression: sympy.Expr, decimals: int = DECIMALS) -> sympy.Expr:
    """The formula with its constants rounded as SRBench rounds them (La Cava et al. 2021, `round_floats`).

    Every numeric sub-expression is evaluated to one float (the target's
    1/sqrt(2*pi), a product's numeric factors together); a float below
    `NEGLIGIBLE` in magnitude becomes 0 and any other is rounded to
    `decimals` places. Integers stay exact, and so do rational exponents;
    a float exponent is rounded and then held as the exact decimal it
    rounds to, so that x**2.0 and x**2 compare equal.

    The negligible constants go first: a sum inside a product that loses
    all its terms but one becomes part of the product, whose coefficients
    then combine and are rounded as one (c*z*(d*x/y + 3e-8*z) reads as
    (c*d)*x*z/y). Rebuilding a formula can combine rounded constants into
    new ones, so rounding repeats until nothing changes, three times at most.
    """
    expression = _map_constants(expression, _without_negligible)
    for _ in range(3):
        rounded = _map_constants(expression, lambda number, exponent: _rounded(number, exponent, decimals))
        if rounded == expression:
            break
        expression = rounded
    return expression


def _map_constants(node: sympy.Expr, change: Callable[[sympy.Expr, bool], sympy.Expr]) -> sympy.Expr:
    """The formula with `change(number, is_exponent)` applied to each numeric sub-expression but integers
    and rational exponents; a product's or a sum's numeric parts are one sub-expression."""
    import sympy

    if node.is_Integer:
        return node
    if node.is_number:
        return change(node, False)
    if node.is_Pow:
        base, exponent = node.args
        if not exponent.is_Rational:
            exponent = change(exponent, True) if exponent.is_number else _map_constants(exponent, change)
        return sympy.Pow(_map_constants(base, change), exponent)
    if node.is_Add or node.is_Mul:
        numbers = [a for a in node.args if a.is_number]
        parts = [_map_constants(a, change) for a in node.args if not a.is_number]
        return node.func(*([_map_constants(node.func(*numbers), change)] if numbers else []), *parts)
    if not node.args:
        return node
    return node.func(*(_map_constants(a, change) for a in node.args))


def _real_value(number: sympy.Expr) -> float | None:
    """A numeric sub-expression's value as a float; None where it has no finite real one (I, zoo, nan)."""
    value = number.evalf()
    if not (value.is_real and value.is_finite):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _without_negligible(number: sympy.Expr, is_exponent: bool) -> sympy.Expr:
    import sympy

    value = _real_value(number)
    return sympy.Integer(0) if value is not None and abs(value) < NEGLIGIBLE else number


def _rounded(number: sympy.Expr, is_exponent: bool, decimals: int) -> sympy.Expr:
    import sympy

    value = _real_value(number)
    if value is None:
        return number
    rounded = round(value, decimals) if abs(value) >= NEGLIGIBLE else 0.0
    if is_exponent:
        return sympy.Rational(repr(rounded))  # the exact decimal: x**2.0 is x**2
    return sympy.Integer(0) if rounded == 0 else sympy.Float(rounded)


def symbolic_solution(expression: Expression, target: str, names: Sequence[str], x: np.ndarray | None = None) -> bool:
    """SRBench's "symbolic solution": the learned formula minus the target's simplifies to 0, constants rounded.

    `target` is the target's formula as text (`parse_formula`), over the
    inputs `names`. The constants of both are rounded (`round_constants`) as
    they stand, as SRBench rounds them: a learned coefficient split over
    factors, as in 2.303*z*(0.438*m - 8.875), is rounded factor by factor,
    so such a formula is a solution only if its printed, rounded form is.
    The two must then agree numerically at the points `x` (n, d), by default
    a few hundred on a box of positive inputs, to `NUMERIC_TOLERANCE`; only
    then does sympy decide, trying the cheap canonical forms before
    `simplify`, and rounding the difference again as SRBench does. sympy's
    simplify can take minutes on a large formula, so formulas of more than
    `MAX_OPERATIONS` operations are never a symbolic solution here.
    """
    import sympy

    truth_operations, truth = _target_formula(target, tuple(names))
    learned = expression.sympy(names)
    if sympy.count_ops(learned) + truth_operations > MAX_OPERATIONS:
        return False
    learned = round_constants(learned)
    points = np.random.default_rng(0).uniform(1, 5, (256, len(names))) if x is None else x
    if not _agree(Symbolic(_by_position(learned, names)), Symbolic(_by_position(truth, names)), points):
        return False
    difference = learned - truth
    for canonical in (_unchanged, _multiplied_out, _simplified):
        if round_constants(canonical(difference)) == 0:
            return True
    return False


@lru_cache(maxsize=256)
def _target_formula(target: str, names: tuple[str, ...]) -> tuple[int, sympy.Expr]:
    """A target's formula's operation count and its form with constants rounded: read once, not once per
    seed and model."""
    import sympy

    truth = parse_formula(target, names)
    return sympy.count_ops(truth), round_constants(truth)


def _agree(learned: Symbolic, truth: Symbolic, x: np.ndarray) -> bool:
    """Do two formulas give the same values at x, wherever the target has one?"""
    expected, got = truth.evaluate(x), learned.evaluate(x)
    defined = np.isfinite(expected)
    if not defined.any():
        return True  # nothing to compare here: sympy decides
    if not np.isfinite(got[defined]).all():
        return False
    scale = float(np.max(np.abs(expected[defined])))
    return bool(np.max(np.abs(got[defined] - expected[defined])) <= NUMERIC_TOLERANCE * scale)


def _unchanged(expression: sympy.Expr) -> sympy.Expr:
    return expression


def _multiplied_out(expression: sympy.Expr) -> sympy.Expr:
    """Products over sums multiplied out, inside functions too; exponentials and logarithms left whole."""
    import sympy

    return sympy.expand(expression, power_exp=False, power_base=False, log=False)


def _simplified(expression: sympy.Expr) -> sympy.Expr:
    import sympy
    from sympy.polys.polyerrors import BasePolynomialError

    try:
        return sympy.simplify(expression)
    except (BasePolynomialError, NotImplementedError, RecursionError):  # sympy gives up on some formulas
        return expression
