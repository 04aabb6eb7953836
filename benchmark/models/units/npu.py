"""The Neural Power Unit and its real form (Heim, Pevny and Smidl, "Neural Power Units", NeurIPS 2020).

With a relevance gate g_hat = clamp(g, 0, 1) per input,

    r = g_hat * (|x| + eps) + (1 - g_hat)      (a closed input counts as 1)
    k = g_hat * pi * [x < 0]                   (the phase of a negative input)
    NPU:      z = exp(log(r) W_re - k W_im) * cos(k W_re + log(r) W_im)
    RealNPU:  z = exp(log(r) W) * cos(k W)

so z = prod |x_i|^W_i with the sign of a product of negative inputs kept
(cos(pi W) is -1 for W = 1). W_re (or W) is Xavier-uniform, W_im is 0 and
g is 1/2 at the start, as in the reference code (NeuralArithmetic.jl and
nalm-benchmark's port). eps is float32's machine epsilon, as there.

The regulariser is the L1 norm of every parameter (the sum of |p| over
W_re, W_im and g), weighted by beta, which grows tenfold twice while
`progress` runs from 0 to 1: beta_start, then 10 * beta_start from
progress 1/2, then beta_end = 100 * beta_start at 1. The published
single-layer runs start beta at 1e-7 (x) or 1e-9 (/) and multiply it by 10
every 10,000 of 50,000 steps: the family's schedule, 0 to 40% of the
training, gives those steps at the published length.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .network import Unit, product, xavier_uniform

NPU_EPSILON = float(torch.finfo(torch.float32).eps)


def beta_at(progress: float, beta_start: float, beta_end: float) -> float:
    """The L1 weight: beta_start times (beta_end / beta_start) ** (0, 1/2 or 1) as progress passes 1/2 and 1."""
    return beta_start * (beta_end / beta_start) ** (math.floor(2 * progress) / 2)


class RealNPU(Unit):
    """z = exp(log(r) W) * cos(k W)."""

    def __init__(self, in_features: int, out_features: int, beta_start: float = 1e-7, beta_end: float = 1e-5):
        super().__init__()
        self.W = xavier_uniform(in_features, out_features)
        self.g = nn.Parameter(torch.full((in_features,), 0.5))
        self.beta_start, self.beta_end = beta_start, beta_end

    def gated(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log(r) and k, each (..., n, in)."""
        g = self.g.clamp(0.0, 1.0).unsqueeze(-2)
        r = g * (x.abs() + NPU_EPSILON) + (1 - g)
        k = g * math.pi * (x < 0).to(x.dtype)
        return torch.log(r), k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_r, k = self.gated(x)
        return torch.exp(product(log_r, self.W)) * torch.cos(product(k, self.W))

    def l1(self) -> torch.Tensor:
        return self.W.abs().sum(dim=(-2, -1)) + self.g.abs().sum(dim=-1)

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        return {"l1": beta_at(progress, self.beta_start, self.beta_end) * self.l1()}

    def weight(self) -> torch.Tensor:
        return self.W


class NPU(RealNPU):
    """z = exp(log(r) W_re - k W_im) * cos(k W_re + log(r) W_im)."""

    def __init__(self, in_features: int, out_features: int, beta_start: float = 1e-7, beta_end: float = 1e-5):
        super().__init__(in_features, out_features, beta_start, beta_end)
        self.W_im = nn.Parameter(torch.zeros(in_features, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_r, k = self.gated(x)
        return (torch.exp(product(log_r, self.W) - product(k, self.W_im))
                * torch.cos(product(k, self.W) + product(log_r, self.W_im)))

    def l1(self) -> torch.Tensor:
        return super().l1() + self.W_im.abs().sum(dim=(-2, -1))
