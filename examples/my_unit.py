"""A researcher's own unit, as one plugin file: an NMU whose gates are sigmoids instead of clamped weights.

    bench run --plugin examples/my_unit.py --suite arithmetic-single-layer --models my_unit,nau,nmu

y = prod_i (g_i x_i + 1 - g_i), g = sigmoid(W): each factor moves between 1
(input unused) and x_i (input multiplied), with no clamp to keep g in
[0, 1]. The module is written for one seed; funcbench builds one per seed
and trains them all at once.
"""

import torch
from torch import nn

from benchmark import torch_model
from benchmark.formula import GatedProduct


class SigmoidNMU(nn.Module):
    def __init__(self, inputs: int):
        super().__init__()
        self.W = nn.Parameter(torch.empty(inputs).uniform_(-1.0, 1.0))

    def gates(self) -> torch.Tensor:
        return torch.sigmoid(self.W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, inputs) -> (batch, 1)
        g = self.gates()
        return (g * x + 1 - g).prod(dim=1, keepdim=True)

    # The hooks are optional; funcbench calls each on one seed's module.
    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        """Push each gate towards 0 or 1 as training goes on (the run's --reg-start/--reg-end ramp)."""
        g = self.gates()
        return {"sparsity": progress * torch.minimum(g, 1 - g).mean()}

    def formula(self, inputs):
        return GatedProduct(tuple(float(g) for g in self.gates()), tuple(inputs))

    def readable_parameters(self, inputs) -> dict[str, float]:
        return {f"gate[{name}]": float(g) for name, g in zip(inputs, self.gates())}


@torch_model(description="NMU with sigmoid gates: y = prod(g x + 1 - g), g = sigmoid(W)",
             learning_rate=0.01, regularizer_strength=1.0)
def my_unit(inputs: int) -> SigmoidNMU:
    return SigmoidNMU(inputs)
