"""The neural arithmetic units: one small class per unit, registered as model families in `.families`.

Each is written for one seed from its paper's equations, on the public
`torch_model` API a plugin uses.
"""

from . import families
from .inalu import INALU
from .nac import NAC, MultiplicativeNAC, SigmoidNAC
from .nalu import NALU, GoldenNALU
from .nau import NAU, NMU
from .network import Unit, UnitNetwork
from .npu import NPU, RealNPU

__all__ = ["INALU", "NAC", "NALU", "NAU", "NMU", "NPU", "GoldenNALU", "MultiplicativeNAC", "RealNPU", "SigmoidNAC",
           "Unit", "UnitNetwork", "families"]
