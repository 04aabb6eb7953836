"""A model family written as a plain torch module: what a researcher brings to funcbench.

funcbench builds one `Quad` per seed (each right after ``torch.manual_seed(seed)``)
and trains them all at once; nothing here knows about seeds.
"""

import torch
from torch import nn

from benchmark import torch_model


class Quad(nn.Module):
    """y = v . (W x + c)^2 + d: any quadratic form of rank up to `hidden`, so it can carry x1 * x2 anywhere."""

    def __init__(self, inputs: int, hidden: int, decay: float):
        super().__init__()
        self.inner = nn.Linear(inputs, hidden)
        self.outer = nn.Linear(hidden, 1)
        self.decay = decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x).square())

    # Optional hooks (see `benchmark.models.torch_model.ModelHooks`); each is called on one seed's module.
    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        """A weight decay on the inner layer, growing with the run's regulariser schedule."""
        return {"decay": progress * self.decay * self.inner.weight.square().sum()}

    def readable_parameters(self) -> dict[str, float]:
        return {"outer_bias": float(self.outer.bias)}


@torch_model(description="example: y = v . (W x + c)^2 + d, a plain nn.Module", learning_rate=0.01)
def example_quadnet(inputs: int, hidden: int = 8, decay: float = 1e-4) -> Quad:  # selectable: example_quadnet[hidden=16]
    if not 1 <= hidden <= 1024:
        raise ValueError(f"hidden must be between 1 and 1024, got {hidden}")
    return Quad(inputs, hidden, decay)
