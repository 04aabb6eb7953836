"""Built-in model families, all behind the `Model` protocol of `benchmark.model`.

- the article's linear unit and the MLPs, stacked by hand (`.stacked`);
- the neural arithmetic units, plain modules on the public `torch_model` API (`.units`);
- scikit-learn's regressors (`.sklearn_families`).

Default learning rates (Adam): the linear unit uses the article's 0.1; the
MLPs use 0.01. Measured on sine, square, product and abs (5 seeds, the
article's 100 epochs of batch 200): at 0.1 the tanh MLP stays near nmse 1 in
range on three of the four, and at 0.001 both MLPs end 1 to 26 times worse
than at 0.01. `--lr` overrides every family's default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ..model import Model, ModelSpec, layer_sizes
from ..registry import model_family, preset
from .ensemble import TorchEnsemble
from .stacked import StackedLinear, StackedMLP, seed_generators
from .torch_model import torch_model

__all__ = ["torch_model"]


@model_family(description="the article's single linear unit: y = w . x + b, PyTorch's default init")
def linear() -> ModelSpec:
    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str) -> Model:
        return TorchEnsemble(StackedLinear(len(inputs), 1, seed_generators(seeds)), inputs, seeds, device)

    return ModelSpec(build, "single linear unit", learning_rate=0.1, size=lambda d: layer_sizes([d, 1]))


@model_family(description="multilayer perceptron; depth = hidden layers (default: 2 x 64, ReLU)")
def mlp(width: int = 64, depth: int = 2, act: Literal["relu", "tanh", "gelu", "silu", "sigmoid", "relu6"] = "relu") -> ModelSpec:
    # The upper bounds keep a typo from asking for terabytes of weights.
    if not 1 <= width <= 65536:
        raise ValueError(f"width must be between 1 and 65536, got {width}")
    if not 1 <= depth <= 64:
        raise ValueError(f"depth must be between 1 and 64, got {depth}")

    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str) -> Model:
        widths = [len(inputs), *([width] * depth), 1]
        return TorchEnsemble(StackedMLP(widths, act, seed_generators(seeds)), inputs, seeds, device)

    return ModelSpec(build, f"MLP {depth} x {width}, {act}", learning_rate=0.01,
                     size=lambda d: layer_sizes([d, *([width] * depth), 1]))


mlp_tanh = preset(mlp, "mlp_tanh", "smooth MLP: 2 hidden layers of 64, tanh", act="tanh")
mlp_small = preset(mlp, "mlp_small", "small MLP: 1 hidden layer of 8, tanh", width=8, depth=1, act="tanh")
mlp_wide = preset(mlp, "mlp_wide", "wide ReLU MLP: 1 hidden layer of 512", width=512, depth=1)

# Listed after the families above, so `bench list models` starts with the article's unit.
from . import sklearn_families, symbolic, units  # noqa: E402, F401 - the neural arithmetic units, scikit-learn, pyoperon
