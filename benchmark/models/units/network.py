"""What every arithmetic unit here shares, and the network of units the published protocols train.

A unit is one layer (..., in) -> (..., out) written for one seed, in the
way of the field's reference code (stable-nalu, nalm-benchmark): its
parameters have the shapes of one seed's, and it defines the hooks of
`benchmark.models.torch_model.ModelHooks` it needs. Every operation in a
unit broadcasts over leading axes, parameters included (``x @ W``,
reductions over the trailing axes), so funcbench runs a stack of them
directly (``broadcasts_over_members``); `tests/test_units.py` checks that
this gives the numbers `torch.func.vmap` gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ...formula import Expression

#: Added to |x| before the log of the multiplicative units, as in the reference code.
LOG_EPSILON = 1e-7


def uniform_(tensor: torch.Tensor, low: float, high: float) -> nn.Parameter:
    """A parameter drawn from U[low, high] with torch's global generator (seeded per member by funcbench)."""
    return nn.Parameter(tensor.uniform_(low, high))


def xavier_uniform(fan_in: int, fan_out: int) -> nn.Parameter:
    """U[-b, b], b = sqrt(6 / (fan_in + fan_out)), of shape (fan_in, fan_out)."""
    bound = math.sqrt(6 / (fan_in + fan_out))
    return uniform_(torch.empty(fan_in, fan_out), -bound, bound)


def product(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w, for one seed's (n, in) and (in, out) or for all seeds' stacked (members, n, in) and (members, in, out).

    Stacked, it is `torch.bmm`, the kernel `@` calls there too, without
    `torch.matmul`'s shape handling, which was measured to add a fifth to
    half again to a small unit's forward and backward pass.
    """
    return torch.bmm(x, w) if x.dim() == 3 and w.dim() == 3 else x @ w


def sparsity(w: torch.Tensor) -> torch.Tensor:
    """mean(min(|W|, 1 - |W|)) over a weight's two trailing axes: 0 when every weight is 0 or +-1."""
    w = w.abs()
    return torch.minimum(w, 1 - w).mean(dim=(-2, -1))


class Unit(nn.Module):
    """One arithmetic layer; subclasses define `weight` (the effective (in, out) matrix) and `forward`."""

    broadcasts_over_members = True
    #: The formula of one output given its column of the effective weight and the input terms
    #: (`Affine`, `PowerProduct`, `GatedProduct`); None where the unit has no closed form.
    expression: type[Expression] | None = None

    def weight(self) -> torch.Tensor:
        raise NotImplementedError

    def expressions(self, w: np.ndarray, terms: tuple[Expression, ...]) -> list[Expression] | None:
        """Each output's formula given the effective weight (in, out)."""
        if self.expression is None:
            return None
        return [self.expression(tuple(float(v) for v in w[:, j]), terms) for j in range(w.shape[1])]


class UnitNetwork(nn.Sequential):
    """Units in sequence (one, or the published inputs -> hidden -> 1), with their hooks combined.

    Terms of the same name from several layers add up; every layer's
    `after_step` runs; the formula is the layers' formulas composed.
    """

    broadcasts_over_members = True

    def __init__(self, units: Sequence[Unit]):
        super().__init__(*units)
        # Which layers have each hook, found once: these run at every step.
        self._regularized = tuple(i for i, unit in enumerate(units) if hasattr(unit, "regularizer"))
        self._stepped = tuple(i for i, unit in enumerate(units) if hasattr(unit, "after_step"))
        self.unused_hooks = tuple(name for name, used in (("regularizer", self._regularized),
                                                          ("after_step", self._stepped)) if not used)

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for i in self._regularized:
            for name, term in self[i].regularizer(progress).items():
                terms[name] = terms[name] + term if name in terms else term
        return terms

    def after_step(self, loss: torch.Tensor) -> None:
        for i in self._stepped:
            self[i].after_step(loss)

    def _weights(self) -> list[np.ndarray]:
        return [unit.weight().detach().cpu().double().numpy() for unit in self]

    def formula(self, inputs: Sequence[Expression]) -> Expression | None:
        terms: tuple[Expression, ...] | None = tuple(inputs)
        for unit, w in zip(self, self._weights()):
            outputs = unit.expressions(w, terms)
            if outputs is None:
                return None
            terms = tuple(outputs)
        return terms[0]

    def readable_parameters(self, inputs: Sequence[str]) -> dict[str, float]:
        """Every effective weight, and the sparsity error.

        Sparsity error (Madsen & Johansen): max over weights of
        min(|W|, |1 - |W||), the distance of the worst weight from 0 or +-1.
        """
        weights = self._weights()
        names = [list(inputs)] + [[f"h{j + 1}" for j in range(w.shape[1])] for w in weights[:-1]]
        single = len(weights) == 1
        values: dict[str, float] = {}
        for depth, (w, rows) in enumerate(zip(weights, names), start=1):
            prefix = "" if single else f"layer{depth}."
            for i, row in enumerate(rows):
                for j in range(w.shape[1]):
                    column = "" if w.shape[1] == 1 else f",h{j + 1}"
                    values[f"{prefix}weight[{row}{column}]"] = float(w[i, j])
        magnitudes = np.abs(np.concatenate([w.ravel() for w in weights]))
        values["sparsity_error"] = float(np.max(np.minimum(magnitudes, np.abs(1 - magnitudes))))
        return values


def widths(inputs: int, hidden: int) -> list[int]:
    """The layer widths: inputs -> 1, or inputs -> hidden -> 1."""
    if not 0 <= hidden <= 4096:
        raise ValueError(f"hidden must be between 0 (one layer) and 4096, got {hidden}")
    return [inputs, hidden, 1] if hidden else [inputs, 1]
