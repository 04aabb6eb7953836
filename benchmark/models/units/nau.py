"""The NAU and the NMU (Madsen & Johansen 2020, "Neural Arithmetic Units").

- NAU: y = x W, W clamped to [-1, 1] after every step; W ~ U[-r, r] with
  r = min(0.5, sqrt(3) * sqrt(2 / (in + out))) (Xavier's variance, kept
  inside the clamp).
- NMU: y_j = prod_i (W_ij x_i + 1 - W_ij), W clamped to [0, 1]; W ~
  U[0.25, 0.75] (mean 1/2: every factor starts halfway between 1 and its
  input).

Both carry the sparsity regulariser progress * mean(min(|W|, 1 - |W|)),
weighted by the run's regulariser strength (10 by default, the paper's
lambda) and ramping with the run's schedule (by default from 40% to 70% of
the training: the single-layer benchmark's 20,000 and 35,000 of 50,000 steps).
"""

from __future__ import annotations

import math

import torch

from ...formula import Affine, GatedProduct
from .network import Unit, product, sparsity, uniform_


class NAU(Unit):
    """y = x W, W in [-1, 1]."""

    expression = Affine

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        r = min(0.5, math.sqrt(3) * math.sqrt(2 / (in_features + out_features)))
        self.W = uniform_(torch.empty(in_features, out_features), -r, r)

    def weight(self) -> torch.Tensor:
        return self.W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return product(x, self.W)

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        # No term at all before the ramp starts: nothing to add, differentiate or pay for.
        return {"sparsity": progress * sparsity(self.W)} if progress else {}

    def after_step(self, loss: torch.Tensor) -> None:
        self.W.clamp_(-1.0, 1.0)


class NMU(Unit):
    """y_j = prod_i (W_ij x_i + 1 - W_ij), W in [0, 1]."""

    expression = GatedProduct

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.W = uniform_(torch.empty(in_features, out_features), 0.25, 0.75)

    def weight(self) -> torch.Tensor:
        return self.W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.W.unsqueeze(-3)  # (..., 1, in, out) against x's (..., n, in, 1)
        return (x.unsqueeze(-1) * w + 1 - w).prod(dim=-2)

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        return {"sparsity": progress * sparsity(self.W)} if progress else {}

    def after_step(self, loss: torch.Tensor) -> None:
        self.W.clamp_(0.0, 1.0)
