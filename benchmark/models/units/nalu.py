"""The NALU (Trask et al. 2018) and the golden-ratio G-NALU.

- NALU: y = g * x W + (1 - g) * exp(log(|x| + eps) W), g = sigmoid(x G),
  W = tanh(W^) * sigmoid(M^) shared by both paths.
- G-NALU: the NALU with the golden ratio phi = (1 + sqrt 5) / 2 in place of
  e in its tanh and sigmoid, tanh_phi(v) = (phi^2v - 1) / (phi^2v + 1) and
  sigmoid_phi(v) = 1 / (1 + phi^-v), and in its multiplicative path,
  phi^(log_phi(|x| + eps) W), which equals exp(log(|x| + eps) W)
  (nalm-benchmark's ``--nalu-gate golden-ratio --nalu-mul golden-ratio
  --nac-weight golden-ratio``; Mistry et al., "A Primer for Neural
  Arithmetic Logic Modules", 2022). Its W^ and M^ are U[-r, r] with r
  chosen so that W has variance 2 / max(in + out, 5), as that code does.
"""

from __future__ import annotations

import math

import torch

from .network import LOG_EPSILON, Unit, product, uniform_, xavier_uniform

PHI = (1 + math.sqrt(5)) / 2
LOG_PHI = math.log(PHI)


class NALU(Unit):
    """A gate between NAC+ and NAC* sharing one W."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.W_hat = xavier_uniform(in_features, out_features)
        self.M_hat = xavier_uniform(in_features, out_features)
        self.G = xavier_uniform(in_features, out_features)

    def weight(self) -> torch.Tensor:
        return torch.tanh(self.W_hat) * torch.sigmoid(self.M_hat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight()
        multiplied = torch.exp(product(torch.log(x.abs() + LOG_EPSILON), w))
        g = torch.sigmoid(product(x, self.G))
        return g * product(x, w) + (1 - g) * multiplied


def tanh_phi(v: torch.Tensor) -> torch.Tensor:
    """(phi^2v - 1) / (phi^2v + 1), i.e. tanh(v log phi)."""
    return torch.tanh(v * LOG_PHI)


def sigmoid_phi(v: torch.Tensor) -> torch.Tensor:
    """1 / (1 + phi^-v), i.e. sigmoid(v log phi)."""
    return torch.sigmoid(v * LOG_PHI)


def nac_init_range(fan: int) -> float:
    """r such that tanh(W^) * sigmoid(M^), W^ and M^ ~ U[-r, r], has variance 2 / max(fan, 5)."""

    from scipy.optimize import (
        brentq,  # only when a G-NALU is built: scipy.optimize takes half a second to import
    )

    def variance(r: float) -> float:
        return (1 - math.tanh(r) / r) * (r - math.tanh(r / 2)) / (2 * r)

    return brentq(lambda r: max(fan, 5) * variance(r) - 2, 1e-3, 1e3)


class GoldenNALU(Unit):
    """G-NALU: the NALU in base phi."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        r = nac_init_range(in_features + out_features)
        self.W_hat = uniform_(torch.empty(in_features, out_features), -r, r)
        self.M_hat = uniform_(torch.empty(in_features, out_features), -r, r)
        self.G = xavier_uniform(in_features, out_features)

    def weight(self) -> torch.Tensor:
        return tanh_phi(self.W_hat) * sigmoid_phi(self.M_hat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight()
        g = sigmoid_phi(product(x, self.G))
        multiplied = torch.pow(PHI, product(torch.log(x.abs() + LOG_EPSILON) / LOG_PHI, w))
        return g * product(x, w) + (1 - g) * multiplied
