"""Many small torch networks trained as one: stacked parameters, batched matmuls.

Each layer holds a weight of shape (seeds, in, out) and a bias of shape
(seeds, 1, out), so one `torch.baddbmm` runs every member's layer at once.
The loss is the sum of the members' own mean losses: its gradient with
respect to a member's parameters is exactly that member's own gradient, and
Adam is elementwise, so each member trains as it would alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .base import TrainSettings

ACTIVATIONS = {
    "relu": nn.functional.relu,
    "tanh": torch.tanh,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
    "sigmoid": torch.sigmoid,
}


class StackedLinear(nn.Module):
    """One affine layer per seed, initialised as `nn.Linear` would be.

    Member s draws its weight and bias from `generators[s]` in nn.Linear's
    order and distribution (U(-1/sqrt(in), 1/sqrt(in)) for both), so a seed's
    initial layer equals `nn.Linear(in, out)` made after `torch.manual_seed(seed)`.
    """

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator]):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        weights, biases = [], []
        for g in generators:
            weights.append(torch.empty(out_features, in_features).uniform_(-bound, bound, generator=g).T)
            biases.append(torch.empty(1, out_features).uniform_(-bound, bound, generator=g))
        self.weight = nn.Parameter(torch.stack(weights).contiguous())
        self.bias = nn.Parameter(torch.stack(biases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class StackedMLP(nn.Module):
    """Stacked layers with an activation between them (none after the last)."""

    def __init__(self, widths: Sequence[int], activation: str, generators: Sequence[torch.Generator]):
        super().__init__()
        self.layers = nn.ModuleList(StackedLinear(a, b, generators) for a, b in zip(widths, widths[1:]))
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)


class TorchEnsemble:
    """The `Model` protocol for a stacked torch module."""

    def __init__(self, module: nn.Module, inputs: tuple[str, ...], seeds: Sequence[int], device: str):
        _warm_up_optimizer()
        self.module = module.to(device)
        self.inputs = inputs
        self.seeds = tuple(seeds)
        self.device = torch.device(device)

    def fit(self, x: np.ndarray, y: np.ndarray, settings: TrainSettings) -> np.ndarray:
        xt = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        yt = torch.as_tensor(y, dtype=torch.float32, device=self.device)
        # Each member shuffles with its own stream, so its batches do not
        # depend on which other seeds share the ensemble.
        shuffles = [np.random.default_rng([seed, 0x5EED]) for seed in self.seeds]
        return fit_ensemble(self.module, xt, yt, settings, shuffles).cpu().numpy()

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        xt = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        return self.module(xt).double().cpu().numpy()

    def readable_parameters(self) -> list[dict[str, float]]:
        return [{} for _ in self.seeds]


class LinearEnsemble(TorchEnsemble):
    """Single linear units: the weights and bias are the readable parameters."""

    def readable_parameters(self) -> list[dict[str, float]]:
        layer = self.module
        weights = layer.weight.detach().cpu().double().numpy()[:, :, 0]
        biases = layer.bias.detach().cpu().double().numpy()[:, 0, 0]
        return [
            {**{f"weight[{name}]": float(w) for name, w in zip(self.inputs, ws)}, "bias": float(b)}
            for ws, b in zip(weights, biases)
        ]


@functools.cache
def _warm_up_optimizer() -> None:
    """Take one throw-away Adam step.

    A process's first optimizer step lazily imports torch's compiler stack
    (about 2 s on a small CPU); doing it here, when a model is built, keeps
    that one-off cost out of the first cell's training time.
    """
    weight = nn.Parameter(torch.zeros(1))
    weight.grad = torch.zeros(1)
    torch.optim.Adam([weight], fused=True).step()


def seed_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds]


def fit_ensemble(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainSettings,
    shuffles: Sequence[np.random.Generator],
) -> torch.Tensor:
    """Minibatch Adam on MSE, all members at once; returns loss per (seed, epoch).

    Mirrors the article's loop: reshuffle every epoch, batches of
    `batch_size` (the last one smaller), an epoch's loss is the mean of its
    batch losses measured before each step.
    """
    seeds, n, d = x.shape
    params = [p for p in module.parameters() if p.requires_grad]
    # The fused kernel updates every parameter in one call; the members stay
    # independent since Adam is elementwise.
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate, fused=True)
    flat_x, flat_y = x.reshape(seeds * n, d), y.reshape(seeds * n, 1)
    row_offsets = torch.arange(seeds, device=x.device)[:, None] * n
    starts = range(0, n, settings.batch_size)
    losses = torch.zeros(seeds, settings.epochs, device=x.device)
    for epoch in range(settings.epochs):
        # Shuffle once per epoch with one gather; the batches are then views.
        order = torch.from_numpy(np.stack([rng.permutation(n) for rng in shuffles])).to(x.device)
        flat_order = (order + row_offsets).reshape(-1)
        x_epoch = flat_x.index_select(0, flat_order).view(seeds, n, d)
        y_epoch = flat_y.index_select(0, flat_order).view(seeds, n, 1)
        total = torch.zeros(seeds, device=x.device)
        for start in starts:
            stop = start + settings.batch_size
            error = module(x_epoch[:, start:stop]) - y_epoch[:, start:stop]
            per_member = error.square().mean(dim=(1, 2))
            optimizer.zero_grad(set_to_none=True)
            per_member.sum().backward()
            optimizer.step()
            total += per_member.detach()
        losses[:, epoch] = total / len(starts)
    return losses
