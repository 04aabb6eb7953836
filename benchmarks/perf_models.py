"""Model families for `make perf`'s comparisons, loaded as a plugin file.

- ``plain_mlp`` and ``plain_nau``: ordinary one-seed torch modules through
  `torch_model`, run by `torch.func.vmap` (the generic path a plugin's
  module takes), against the built-in `mlp` and `nau`, which run stacked.
- ``legacy_nac``, ``legacy_nac_mul``, ``legacy_nalu``, ``legacy_nau``,
  ``legacy_nmu``: funcbench 0.4's arithmetic units, one stacked layer class
  dispatching on a `kind` string (as they were, with the training loop's
  hooks under their present names), against today's one class per unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from benchmark import model_family, torch_model
from benchmark.formula import Affine, Expression, GatedProduct, Input, PowerProduct
from benchmark.model import ModelSpec
from benchmark.models.ensemble import TorchEnsemble
from benchmark.models.stacked import seed_generators


class PlainMLP(nn.Module):
    def __init__(self, inputs: int, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PlainNAU(nn.Module):
    """The NAU as a plugin would write it, without claiming to broadcast over members."""

    def __init__(self, inputs: int):
        super().__init__()
        r = min(0.5, math.sqrt(3) * math.sqrt(2 / (inputs + 1)))
        self.W = nn.Parameter(torch.empty(inputs, 1).uniform_(-r, r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        w = self.W.abs()
        return {"sparsity": progress * torch.minimum(w, 1 - w).mean()}

    def after_step(self) -> None:
        self.W.clamp_(-1.0, 1.0)


@torch_model(description="a ReLU MLP with one hidden layer, as a plain module")
def plain_mlp(inputs: int, width: int = 64) -> PlainMLP:
    return PlainMLP(inputs, width)


@torch_model(description="the NAU as a plain module, run through vmap", regularizer_strength=10.0)
def plain_nau(inputs: int) -> PlainNAU:
    return PlainNAU(inputs)


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

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        """lambda_t * sparsity per member, lambda_t = progress * `sparsity` (0.4's `penalty`)."""
        weight = progress * self.sparsity
        regularised = [layer for layer in self.layers if layer.regularised]
        if weight == 0 or not regularised:
            return {}
        return {"sparsity": weight * sum(layer.sparsity() for layer in regularised)}

    def after_step(self, loss: torch.Tensor) -> None:
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

    def formulas(self, inputs: Sequence[str]) -> list[Expression | None]:
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


def _legacy(kind: UnitKind, sparsity: float) -> ModelSpec:
    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str):
        layer = UnitLayer(kind, len(inputs), 1, seed_generators(seeds))
        return TorchEnsemble(UnitNetwork([layer], sparsity), inputs, seeds, device)

    return ModelSpec(build, f"0.4's one {kind} layer", learning_rate=0.01)


@model_family(description="0.4's NAC+")
def legacy_nac() -> ModelSpec:
    return _legacy("nac", 0.0)


@model_family(description="0.4's NAC*")
def legacy_nac_mul() -> ModelSpec:
    return _legacy("nac_mul", 0.0)


@model_family(description="0.4's NALU")
def legacy_nalu() -> ModelSpec:
    return _legacy("nalu", 0.0)


@model_family(description="0.4's NAU")
def legacy_nau() -> ModelSpec:
    return _legacy("nau", 10.0)


@model_family(description="0.4's NMU")
def legacy_nmu() -> ModelSpec:
    return _legacy("nmu", 10.0)
