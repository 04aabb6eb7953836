"""Reading a trained model as a formula: the article's own step, made systematic.

The article reads the linear unit's weights [1, 1] as "addition". Here a
model whose parameters have a closed form (the linear unit, NAC, NAU, NMU)
returns an `Expression`; its text is the formula with every coefficient
rounded to `DECIMALS` places, and `is_exact` asks whether that rounded
formula *is* the target: it must reproduce the target on its training domain
and every extrapolation region to `RELATIVE_TOLERANCE`. A coefficient
therefore has to be within 0.0005 of a value that makes the formula exact,
and the formula is exactly what the report prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
