"""The neural arithmetic units as model families, registered through the public `torch_model` API.

Each family is a `UnitNetwork` of one unit (inputs -> 1) or, with
``hidden`` > 0, of two (inputs -> hidden -> 1: the published networks of
the static task). Learning rates: 0.01 outside the published protocols
(which set 1e-3), 5e-3 for the NPUs, as published.
"""

from __future__ import annotations

from typing import Literal

from ..torch_model import torch_model
from .inalu import INALU
from .nac import NAC, MultiplicativeNAC, SigmoidNAC
from .nalu import NALU, GoldenNALU
from .nau import NAU, NMU
from .network import Unit, UnitNetwork, widths
from .npu import NPU, RealNPU

#: The optimiser's learning rate for the units outside the published protocols (which set 1e-3).
UNIT_LEARNING_RATE = 0.01

_HIDDEN = "hidden = 0: one layer, inputs -> 1; hidden = 2: the published inputs -> 2 -> 1 network"


def network(first: type[Unit], last: type[Unit], inputs: int, hidden: int, **options) -> UnitNetwork:
    """`last` alone, or `first` into `hidden` units and then `last`."""
    sizes = widths(inputs, hidden)
    kinds = [first, last] if hidden else [last]
    return UnitNetwork([kind(a, b, **options) for kind, a, b in zip(kinds, sizes, sizes[1:])])


@torch_model(description=f"NAC+: W = tanh(W^) * sigmoid(M^), y = x W. {_HIDDEN}", learning_rate=UNIT_LEARNING_RATE)
def nac(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(NAC, NAC, inputs, hidden)


@torch_model(description=f"NAC*: y = exp(log(|x| + eps) W); with hidden units, NAC+ -> NAC*. {_HIDDEN}",
             learning_rate=UNIT_LEARNING_RATE)
def nac_mul(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(NAC, MultiplicativeNAC, inputs, hidden)


@torch_model(description=f"NAC*sigma: NAC* with W = sigmoid(W^) in (0, 1); with hidden units, NAC+ -> NAC*sigma. {_HIDDEN}",
             learning_rate=UNIT_LEARNING_RATE)
def nac_sigma(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(NAC, SigmoidNAC, inputs, hidden)


@torch_model(description=f"NALU: a gate between NAC+ and NAC* sharing one W. {_HIDDEN}", learning_rate=UNIT_LEARNING_RATE)
def nalu(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(NALU, NALU, inputs, hidden)


@torch_model(description=f"G-NALU: the NALU with the golden ratio as the base of its exp, tanh and sigmoid. {_HIDDEN}",
             learning_rate=UNIT_LEARNING_RATE)
def gnalu(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(GoldenNALU, GoldenNALU, inputs, hidden)


@torch_model(description="iNALU: separate add and multiply weights, sign recovery, gradients clipped at 0.1, "
                         f"reinitialised when stuck. {_HIDDEN}",
             learning_rate=UNIT_LEARNING_RATE, clip_value=0.1, regularizer_schedule=(0.2, 0.2))
def inalu(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(INALU, INALU, inputs, hidden)


@torch_model(description=f"NAU: y = x W, W clamped to [-1, 1], sparsity-regularised (lambda 10). {_HIDDEN}",
             learning_rate=UNIT_LEARNING_RATE, regularizer_strength=10.0)
def nau(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(NAU, NAU, inputs, hidden)


@torch_model(description=f"NMU: y = prod(W x + 1 - W), W in [0, 1]; with hidden units, NAU -> NMU. {_HIDDEN}",
             learning_rate=UNIT_LEARNING_RATE, regularizer_strength=10.0)
def nmu(inputs: int, hidden: int = 0) -> UnitNetwork:
    return network(NAU, NMU, inputs, hidden)


Beta = Literal["mul", "div"]
#: The published L1 schedules' (start, end): for multiplication and for division.
BETAS = {"mul": (1e-7, 1e-5), "div": (1e-9, 1e-7)}


@torch_model(description=f"NPU: z = exp(log r W_re - k W_im) cos(k W_re + log r W_im), gated inputs, L1 from beta 1e-7 "
                         f"(beta=mul) or 1e-9 (beta=div). {_HIDDEN}",
             learning_rate=5e-3, regularizer_schedule=(0.0, 0.4))
def npu(inputs: int, hidden: int = 0, beta: Beta = "mul") -> UnitNetwork:
    start, end = BETAS[beta]
    return network(NPU, NPU, inputs, hidden, beta_start=start, beta_end=end)


@torch_model(description=f"RealNPU: z = exp(log r W) cos(k W), the NPU without its imaginary weights. {_HIDDEN}",
             learning_rate=5e-3, regularizer_schedule=(0.0, 0.4))
def realnpu(inputs: int, hidden: int = 0, beta: Beta = "mul") -> UnitNetwork:
    start, end = BETAS[beta]
    return network(RealNPU, RealNPU, inputs, hidden, beta_start=start, beta_end=end)
