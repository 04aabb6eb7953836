"""Layers stacked over members by hand: one weight (members, in, out) per layer, batched matmuls.

The linear unit and the MLPs are written this way, rather than as a plain
module run through `torch.func` (`benchmark.models.torch_model`), because
it is faster: `make perf` measures both side by side. Each layer holds a
weight of shape (members, in, out) and a bias of shape (members, 1, out),
so one `torch.baddbmm` runs every member's layer at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..formula import Expression, linear_form

ACTIVATIONS = {
    "relu": nn.functional.relu,
    "tanh": torch.tanh,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
    "sigmoid": torch.sigmoid,
    "relu6": nn.functional.relu6,  # a baseline of the neural arithmetic units paper
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

    def _unit(self) -> tuple[np.ndarray, np.ndarray]:
        """Per member, the weights (seeds, in) and bias (seeds,) of a single-output layer."""
        return self.weight.detach().cpu().double().numpy()[:, :, 0], self.bias.detach().cpu().double().numpy()[:, 0, 0]

    def readable_parameters(self, inputs: Sequence[str]) -> list[dict[str, float]]:
        """Per member: `weight[<input>]` and `bias`."""
        weights, biases = self._unit()
        return [
            {**{f"weight[{name}]": float(w) for name, w in zip(inputs, ws)}, "bias": float(b)}
            for ws, b in zip(weights, biases)
        ]

    def formulas(self, inputs: Sequence[str]) -> list[Expression]:
        return [linear_form(ws, b) for ws, b in zip(*self._unit())]


class StackedMLP(nn.Module):
    """Stacked layers with an activation between them (none after the last)."""

    def __init__(self, widths: Sequence[int], activation: str, generators: Sequence[torch.Generator]):
        super().__init__()
        self.layers = nn.ModuleList(StackedLinear(a, b, generators) for a, b in zip(widths, widths[1:]))
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation_name in _StackedMLPFunction.ACTIVATIONS:
            params = [p for layer in self.layers for p in (layer.weight, layer.bias)]
            return _StackedMLPFunction.apply(self.activation_name, x, *params)
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, batched; as (b^T a^T)^T where b has one column.

    The same products, but a single row times a matrix runs as a matrix
    kernel, where a matrix times a single column falls to the library's
    batched matrix-vector path: measured 5 to 9 times slower for 100
    members' readouts of 64 units over a batch of 200 on 2 CPU cores.
    """
    if b.shape[2] == 1:
        return torch.bmm(b.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)
    return torch.bmm(a, b)


class _StackedMLPFunction(torch.autograd.Function):
    """A stacked MLP with ReLU or tanh, its backward pass written out.

    It runs the operations autograd would, but keeps fewer tensors alive
    and avoids the slow shapes: the activation is applied in place to the
    pre-activation, since ReLU's and tanh's derivatives need only the
    output; each activation's gradient is written over the incoming
    gradient; the readout's gradient with respect to its input is a
    broadcast product rather than a batched matmul with an inner dimension
    of 1; and products with a single column run transposed (`_product`).
    The gradients are autograd's for the same forward pass, to rounding
    (a test checks), and like every step here they do not depend on the
    other members (the cell-batching test checks that to the last bit).
    An ensemble of small MLPs spends its step writing activations of shape
    (members, batch, width) to memory, so this was measured to cut the step
    of 64 to 100 members of one or two hidden layers of 64 by a quarter to
    two fifths on 2 CPU cores.
    """

    ACTIVATIONS = ("relu", "tanh")

    @staticmethod
    def forward(ctx, activation: str, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        weights, biases = params[0::2], params[1::2]
        outputs = []
        h = x
        for w, b in zip(weights[:-1], biases[:-1]):
            h = torch.baddbmm(b, h, w)
            h = h.clamp_min_(0) if activation == "relu" else h.tanh_()
            outputs.append(h)
        ctx.activation = activation
        ctx.save_for_backward(x, *weights, *outputs)
        return _product(h, weights[-1]) + biases[-1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, *saved = ctx.saved_tensors
        layers = (len(saved) + 1) // 2
        weights, layer_inputs = saved[:layers], [x, *saved[layers:]]
        grads: list[torch.Tensor] = []
        grad_x = None
        for index in reversed(range(layers)):
            a, w = layer_inputs[index], weights[index]
            grads += [grad.sum(1, keepdim=True), _product(a.transpose(1, 2), grad)]  # bias, weight
            if index == 0 and not ctx.needs_input_grad[1]:
                break
            # With one output, g @ w^T is an outer product: a broadcast multiply does it without a matmul.
            grad_a = grad * w.transpose(1, 2) if w.shape[2] == 1 else torch.bmm(grad, w.transpose(1, 2))
            if index == 0:
                grad_x = grad_a
            elif ctx.activation == "relu":
                grad = torch.ops.aten.threshold_backward.grad_input(grad_a, a, 0, grad_input=grad_a)
            else:
                grad = torch.ops.aten.tanh_backward.grad_input(grad_a, a, grad_input=grad_a)
        return None, grad_x, *reversed(grads)


def seed_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One generator per member, seeded with its seed: what the stacked layers initialise from."""
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds]
