"""The neural accumulators: NAC+ and NAC* (Trask et al. 2018), and NAC*sigma (Madsen & Johansen 2020).

- NAC+: y = x W, W = tanh(W^) * sigmoid(M^).
- NAC*: y = exp(log(|x| + eps) W), the same W, in log space.
- NAC*sigma: y = exp(log(|x| + eps) W), W = sigmoid(W^) in (0, 1): the
  appendix's multiplicative NAC whose weights cannot go negative.

W^ and M^ are Xavier-uniform, as in the reference code; NAC*sigma's W^ is
Xavier-normal, N(0, sqrt(2 / (in + out))), as stable-nalu's PosNAC.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...formula import Affine, PowerProduct
from .network import LOG_EPSILON, Unit, product, xavier_uniform


class NAC(Unit):
    """NAC+: y = x W, W = tanh(W^) * sigmoid(M^)."""

    expression = Affine

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.W_hat = xavier_uniform(in_features, out_features)
        self.M_hat = xavier_uniform(in_features, out_features)

    def weight(self) -> torch.Tensor:
        return torch.tanh(self.W_hat) * torch.sigmoid(self.M_hat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return product(x, self.weight())


class MultiplicativeNAC(NAC):
    """NAC*: y = exp(log(|x| + eps) W), NAC+'s weight in log space."""

    expression = PowerProduct

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(product(torch.log(x.abs() + LOG_EPSILON), self.weight()))


class SigmoidNAC(Unit):
    """NAC*sigma: y = exp(log(|x| + eps) W), W = sigmoid(W^)."""

    expression = PowerProduct

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        std = math.sqrt(2 / (in_features + out_features))
        self.W_hat = nn.Parameter(torch.empty(in_features, out_features).normal_(0.0, std))

    def weight(self) -> torch.Tensor:
        return torch.sigmoid(self.W_hat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(product(torch.log(x.abs() + LOG_EPSILON), self.weight()))
