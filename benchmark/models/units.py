"""Neural arithmetic units, stacked over seeds like every torch family here.

Each layer maps (seeds, n, in) to (seeds, n, out) with a weight of shape
(seeds, in, out), so one batched matmul (or product) runs every member.

- NAC+ (Trask et al. 2018): y = x W, W = tanh(W^) * sigmoid(M^).
- NAC* : y = exp(log(|x| + eps) W), the same W, in log space.
- NALU: g * NAC+(x) + (1 - g) * NAC*(x), one shared W, g = sigmoid(x G).
- NAU (Madsen & Johansen 2020): y = x W, W clamped to [-1, 1].
- NMU: y_j = prod_i (W_ij x_i + 1 - W_ij), W clamped to [0, 1].

Initialisations follow the papers' reference code: Xavier-uniform for W^,
M^ and G; NAU uniform on [-r, r] with r = min(0.5, sqrt(3) * sqrt(2 / (in + out)))
(Xavier's variance, kept inside the clamp); NMU uniform on [0.25, 0.75]
(mean 1/2, so every factor starts halfway between 1 and its input). NAU and
NMU weights are clamped after every optimiser step, and both carry the
sparsity regulariser lambda_t * mean(min(|W|, 1 - |W|)), lambda_t ramping
linearly from 0 to `sparsity` between the steps `TrainSettings.reg_start`
and `reg_end` (`bench run --reg-start/--reg-end`; by default 40% and 70% of
the training, the proportions of the single-layer benchmark's 20,000 and
35,000 of 50,000 steps).

A member draws its initial weights from its own seed's generator, layer by
layer, so a seed's network does not depend on the others in the ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..formula import Affine, Expression, GatedProduct, Input, PowerProduct
from ..registry import model_family
from .base import Model, ModelSpec, layer_sizes
from .torch_ensemble import TorchEnsemble, seed_generators

#: Added to |x| before the log of NAC* and NALU, as in the reference code.
LOG_EPSILON = 1e-7

UnitKind = Literal["nac", "nac_mul", "nalu", "nau", "nmu"]


def _uniform(shape: tuple[int, int], low: float, high: float, generators: Sequence[torch.Generator]) -> nn.Parameter:
    return nn.Parameter(torch.stack([torch.empty(shape).uniform_(low, high, generator=g) for g in generators]))


def _xavier(fan_in: int, fan_out: int, generators: Sequence[torch.Generator]) -> nn.Parameter:
    bound = math.sqrt(6 / (fan_in + fan_out))
    return _uniform((fan_in, fan_out), -bound, bound, generators)


class UnitLayer(nn.Module):
    """One arithmetic layer of `kind` for every member."""

    def __init__(self, kind: UnitKind, fan_in: int, fan_out: int, generators: Sequence[torch.Generator]):
        super().__init__()
        self.kind = kind
        if kind in ("nac", "nac_mul", "nalu"):
            self.w_hat = _xavier(fan_in, fan_out, generators)
            self.m_hat = _xavier(fan_in, fan_out, generators)
            if kind == "nalu":
                self.gate = _xavier(fan_in, fan_out, generators)
        elif kind == "nau":
            r = min(0.5, math.sqrt(3) * math.sqrt(2 / (fan_in + fan_out)))
            self.w = _uniform((fan_in, fan_out), -r, r, generators)
        else:
            self.w = _uniform((fan_in, fan_out), 0.25, 0.75, generators)

    @property
    def regularised(self) -> bool:
        return self.kind in ("nau", "nmu")

    def weight(self) -> torch.Tensor:
        """The effective weight (seeds, in, out)."""
        if self.kind in ("nac", "nac_mul", "nalu"):
            return torch.tanh(self.w_hat) * torch.sigmoid(self.m_hat)
        return self.w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight()
        if self.kind in ("nac", "nau"):
            return torch.bmm(x, w)
        if self.kind == "nmu":
            return (x.unsqueeze(-1) * w.unsqueeze(1) + 1 - w.unsqueeze(1)).prod(dim=2)
        multiplied = torch.exp(torch.bmm(torch.log(x.abs() + LOG_EPSILON), w))
        if self.kind == "nac_mul":
            return multiplied
        g = torch.sigmoid(torch.bmm(x, self.gate))
        return g * torch.bmm(x, w) + (1 - g) * multiplied

    @torch.no_grad()
    def constrain_(self) -> None:
        if self.kind == "nau":
            self.w.clamp_(-1.0, 1.0)
        elif self.kind == "nmu":
            self.w.clamp_(0.0, 1.0)

    def sparsity(self) -> torch.Tensor:
        """mean(min(|W|, 1 - |W|)) per member: 0 when every weight is 0 or +-1."""
        w = self.weight().abs()
        return torch.minimum(w, 1 - w).mean(dim=(1, 2))

    def expression(self, w: np.ndarray, terms: tuple[Expression, ...]) -> list[Expression] | None:
        """The formula of each output given one member's weight (in, out); None for NALU's gate."""
        if self.kind == "nalu":
            return None
        make: Callable[..., Expression] = {
            "nac": lambda ws: Affine(ws, terms),
            "nau": lambda ws: Affine(ws, terms),
            "nac_mul": lambda ws: PowerProduct(ws, terms),
            "nmu": lambda ws: GatedProduct(ws, terms),
        }[self.kind]
        return [make(tuple(float(v) for v in w[:, j])) for j in range(w.shape[1])]


class UnitNetwork(nn.Module):
    """Arithmetic layers in sequence, with the sparsity regulariser's schedule."""

    def __init__(self, layers: Sequence[UnitLayer], sparsity: float):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.sparsity = sparsity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def penalty(self, ramp: float) -> torch.Tensor | None:
        """lambda_t * sparsity per member, lambda_t = ramp * `sparsity`; None while it is 0."""
        weight = ramp * self.sparsity
        regularised = [layer for layer in self.layers if layer.regularised]
        if weight == 0 or not regularised:
            return None
        return weight * sum(layer.sparsity() for layer in regularised)

    def constrain_(self) -> None:
        for layer in self.layers:
            layer.constrain_()

    @torch.no_grad()
    def weights(self) -> list[np.ndarray]:
        return [layer.weight().detach().cpu().double().numpy() for layer in self.layers]

    def readable_parameters(self, inputs: Sequence[str]) -> list[dict[str, float]]:
        """Per member: every effective weight, and the sparsity error.

        Sparsity error (Madsen & Johansen): max over weights of
        min(|W|, |1 - |W||), the distance of the worst weight from 0 or +-1.
        """
        weights = self.weights()
        names = [list(inputs)] + [[f"h{j + 1}" for j in range(w.shape[2])] for w in weights[:-1]]
        single = len(weights) == 1
        readable = []
        for s in range(weights[0].shape[0]):
            values: dict[str, float] = {}
            for depth, (w, rows) in enumerate(zip(weights, names), start=1):
                prefix = "" if single else f"layer{depth}."
                for i, row in enumerate(rows):
                    for j in range(w.shape[2]):
                        column = "" if w.shape[2] == 1 else f",h{j + 1}"
                        values[f"{prefix}weight[{row}{column}]"] = float(w[s, i, j])
            magnitudes = np.abs(np.concatenate([w[s].ravel() for w in weights]))
            values["sparsity_error"] = float(np.max(np.minimum(magnitudes, np.abs(1 - magnitudes))))
            readable.append(values)
        return readable

    def formulas(self) -> list[Expression | None]:
        weights = self.weights()
        dim = weights[0].shape[1]
        formulas: list[Expression | None] = []
        for s in range(weights[0].shape[0]):
            terms: tuple[Expression, ...] | None = tuple(Input(i) for i in range(dim))
            for layer, w in zip(self.layers, weights):
                outputs = layer.expression(w[s], terms)
                terms = None if outputs is None else tuple(outputs)
                if terms is None:
                    break
            formulas.append(None if terms is None else terms[0])
        return formulas


def _unit_spec(first: UnitKind, last: UnitKind, hidden: int, sparsity: float = 0.0) -> ModelSpec:
    if not 0 <= hidden <= 4096:
        raise ValueError(f"hidden must be between 0 (one layer) and 4096, got {hidden}")
    if sparsity < 0:
        raise ValueError(f"sparsity must be at least 0, got {sparsity}")

    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str) -> Model:
        generators = seed_generators(seeds)
        widths = [len(inputs), hidden, 1] if hidden else [len(inputs), 1]
        kinds = [first, last] if hidden else [last]
        layers = [UnitLayer(kind, a, b, generators) for kind, a, b in zip(kinds, widths, widths[1:])]
        return TorchEnsemble(UnitNetwork(layers, sparsity), inputs, seeds, device)

    shape = f"{first.upper()} -> {last.upper()}, {hidden} hidden" if hidden else f"one {last.upper()} layer"
    # Up to three weight matrices a layer (NALU: W^, M^ and its gate).
    return ModelSpec(build, shape.replace("_MUL", "*"), learning_rate=UNIT_LEARNING_RATE,
                     size=lambda d: layer_sizes([d, hidden, 1] if hidden else [d, 1], gates=3))


#: Adam's learning rate for the units outside the published protocols (which set 1e-3).
UNIT_LEARNING_RATE = 0.01

_HIDDEN = "hidden = 0: one layer, inputs -> 1; hidden = 2: the published inputs -> 2 -> 1 network"


@model_family(description=f"NAC+: W = tanh(W^) * sigmoid(M^), y = x W. {_HIDDEN}")
def nac(hidden: int = 0) -> ModelSpec:
    return _unit_spec("nac", "nac", hidden)


@model_family(description=f"NAC*: y = exp(log(|x| + eps) W); with hidden units, NAC+ -> NAC*. {_HIDDEN}")
def nac_mul(hidden: int = 0) -> ModelSpec:
    return _unit_spec("nac", "nac_mul", hidden)


@model_family(description=f"NALU: a gate between NAC+ and NAC* sharing one W. {_HIDDEN}")
def nalu(hidden: int = 0) -> ModelSpec:
    return _unit_spec("nalu", "nalu", hidden)


@model_family(description=f"NAU: y = x W, W clamped to [-1, 1], sparsity-regularised. {_HIDDEN}")
def nau(hidden: int = 0, sparsity: float = 10.0) -> ModelSpec:
    return _unit_spec("nau", "nau", hidden, sparsity)


@model_family(description=f"NMU: y = prod(W x + 1 - W), W in [0, 1]; with hidden units, NAU -> NMU. {_HIDDEN}")
def nmu(hidden: int = 0, sparsity: float = 10.0) -> ModelSpec:
    return _unit_spec("nau", "nmu", hidden, sparsity)
