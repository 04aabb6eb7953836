"""The published arithmetic-extrapolation protocols, as targets and suites.

- `subset_op[op=...]`: the "static simple function" task of Madsen &
  Johansen (2020): 100 inputs, a and b are sums of two overlapping
  contiguous subsets (25 inputs each, 12 shared), placed at an offset drawn
  per seed; y = a op b; trained on U[1, 2], tested on U[2, 6].
- `binary_op[op=...,range=...]`: the single-layer benchmark of Mistry et
  al.: y = x1 op x2 on one of nine interpolation ranges, tested on its paired
  extrapolation range.

Each target states its *near-exact* solution: the exact network with every
weight of 1 moved to 1 - eps and every weight of 0 to eps (the first layer
selects the subsets; the second is an NAU for + and -, an NMU for *, a^2
and an NAC* for / and sqrt, whose weights -1 and 1/2 become -(1 - eps) and
1/2 - eps). Its MSE on the extrapolation range is the success threshold.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from benchmark import Box, Intervals, Reference, Target, suite, target_family

Op = Literal["add", "sub", "mul", "div", "square", "sqrt"]
SYMBOLS = {"add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b", "square": "a^2", "sqrt": "sqrt(a)"}


def exact(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
            "square": lambda: a * a, "sqrt": lambda: np.sqrt(a),
        }[op]()


def near_exact(op: str, a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """The output layer of the near-perfect network on (perturbed) hidden values a and b."""
    w = 1 - eps
    sign = np.sign(a) * np.sign(b)  # NAC* works on magnitudes; the exact quotient keeps its sign
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "add": lambda: w * a + w * b,
            "sub": lambda: w * a - w * b,
            "mul": lambda: (w * a + eps) * (w * b + eps),
            "div": lambda: sign * np.abs(a) ** w * np.abs(b) ** -w,
            "square": lambda: (w * a + eps) ** 2,
            "sqrt": lambda: np.abs(a) ** (0.5 - eps) * np.abs(b) ** eps,
        }[op]()


@target_family(
    description="a op b, a and b sums of two overlapping input subsets; U[1, 2] -> U[2, 6] (Madsen & Johansen)",
    in_all=False,
)
def subset_op(op: Op = "add", size: int = 100, subset: float = 0.25, overlap: float = 0.5) -> Target:
    if not 4 <= size <= 10_000:
        raise ValueError(f"size must be between 4 and 10000, got {size}")
    if not 0 < subset <= 0.5 or not 0 <= overlap < 1:
        raise ValueError(f"need 0 < subset <= 0.5 and 0 <= overlap < 1, got subset={subset}, overlap={overlap}")
    subset_size = max(1, math.floor(subset * size))
    overlap_size = math.floor(overlap * subset_size)
    span = 2 * subset_size - overlap_size
    domain = Box.cube(size, 1.0, 2.0)
    extrapolation = {"extrapolation": Intervals(((2.0, 6.0),), size)}

    def at_offset(offset: int) -> Target:
        first = slice(offset, offset + subset_size)
        second = slice(offset + subset_size - overlap_size, offset + span)
        if op == "square":  # both hidden units select the first subset
            second = first

        def fn(x):
            return exact(op, x[:, first].sum(axis=1), x[:, second].sum(axis=1))[:, None]

        def near(x, eps):
            total = x.sum(axis=1)
            a, b = x[:, first].sum(axis=1), x[:, second].sum(axis=1)
            return near_exact(op, (1 - eps) * a + eps * (total - a), (1 - eps) * b + eps * (total - b), eps)[:, None]

        solution = None
        if op in ("add", "sub"):
            weights = np.zeros(size)
            weights[first] += 1
            weights[second] += 1 if op == "add" else -1
            solution = (tuple(weights), 0.0)
        return Target(
            fn=fn, domain=domain, extrapolation=extrapolation, near_exact=near, linear_solution=solution,
            description=(f"{SYMBOLS[op]} over {size} inputs: a, b sums of {subset_size} inputs sharing {overlap_size}, "
                         f"placed at an offset drawn per seed (offset {offset} shown)"),
        )

    def seeded(seed: int) -> Target:
        offset = int(np.random.default_rng([seed, 0x5B5E7]).integers(0, size - span + 1))
        return at_offset(offset)

    return replace(at_offset(0), seeded=seeded)


#: The single-layer benchmark's interpolation ranges and their extrapolation ranges.
RANGES = {
    "-20:-10": ((-40.0, -20.0),),
    "-2:-1": ((-6.0, -2.0),),
    "-1.2:-1.1": ((-6.1, -1.2),),
    "-0.2:-0.1": ((-2.0, -0.2),),
    "-2:2": ((-6.0, -2.0), (2.0, 6.0)),
    "0.1:0.2": ((0.2, 2.0),),
    "1:2": ((2.0, 6.0),),
    "1.1:1.2": ((1.2, 6.0),),
    "10:20": ((20.0, 40.0),),
}
Range = Literal["-20:-10", "-2:-1", "-1.2:-1.1", "-0.2:-0.1", "-2:2", "0.1:0.2", "1:2", "1.1:1.2", "10:20"]
BinaryOp = Literal["add", "sub", "mul", "div"]


@target_family(
    description="x1 op x2 on one of the nine ranges of the single-layer arithmetic benchmark (Mistry et al.)",
    in_all=False,
)
def binary_op(op: BinaryOp = "add", range: Range = "1:2") -> Target:  # noqa: A002 - the benchmark's own word
    low, high = (float(v) for v in range.split(":"))
    solution = {"add": ((1.0, 1.0), 0.0), "sub": ((1.0, -1.0), 0.0)}.get(op)
    return Target(
        fn=lambda x: exact(op, x[:, 0], x[:, 1])[:, None],
        domain=Box.cube(2, low, high),
        extrapolation={"extrapolation": Intervals(RANGES[range], 2)},
        near_exact=lambda x, eps: near_exact(op, x[:, 0], x[:, 1], eps)[:, None],
        linear_solution=solution,
        inputs=("a", "b"),
        description=f"{SYMBOLS[op]} on U[{low:g}, {high:g}], tested on "
                    + " u ".join(f"U[{lo:g}, {hi:g}]" for lo, hi in RANGES[range]),
    )


def _selection(family: str, values: dict[str, list[str]]) -> str:
    """Every combination of the given parameter values, as one selection string."""
    keys = list(values)
    return ",".join(
        f"{family}[{','.join(f'{k}={v}' for k, v in zip(keys, combo))}]" for combo in itertools.product(*values.values())
    )


STATIC_OPS = ["add", "sub", "mul", "div", "square", "sqrt"]
BINARY_OPS = ["add", "sub", "mul", "div"]


STATIC_MODELS = ",".join([
    "linear", "mlp[width=2,depth=1]", "mlp[width=2,depth=1,act=relu6]",
    "nac[hidden=2]", "nac_mul[hidden=2]", "nalu[hidden=2]", "nau[hidden=2]", "nmu[hidden=2]",
])
SINGLE_LAYER_MODELS = ",".join([
    "linear", "nac", "nac_mul", "nalu", "nau", "nmu",
    # The units of nalm-benchmark's comparison; the NPUs with the L1 schedule published for x and for /.
    "nac_sigma", "gnalu", "inalu", "npu", "npu[beta=div]", "realnpu", "realnpu[beta=div]",
])
#: nalm-benchmark trains the NPUs at a learning rate of 5e-3, every other unit at 1e-3.
SINGLE_LAYER_MODEL_SETTINGS = {"npu": {"learning_rate": 5e-3}, "realnpu": {"learning_rate": 5e-3}}
#: The published single-layer runs' own per-unit settings, at 50,000 steps (nalm-benchmark's
#: single_layer_benchmark.sh): the NAU's sparsity regulariser at 0.01 and the NMU's at 10, both ramped
#: from step 20,000 to 35,000; the NPUs' L1 from beta_start, tenfold at 10,000 and again at 20,000;
#: iNALU's regulariser from step 10,000.
SINGLE_LAYER_PUBLISHED_SETTINGS = {
    "nau": {"reg_strength": 0.01, "reg_start": 20_000, "reg_end": 35_000},
    "nmu": {"reg_strength": 10.0, "reg_start": 20_000, "reg_end": 35_000},
    "npu": {"learning_rate": 5e-3, "reg_start": 0, "reg_end": 20_000},
    "realnpu": {"learning_rate": 5e-3, "reg_start": 0, "reg_end": 20_000},
    "inalu": {"reg_start": 10_000, "reg_end": 10_000},
}
#: Madsen & Johansen 2020, appendix "Model definitions": the NAU's sparsity regulariser at 0.01,
#: ramped from step 5,000 to 50,000; the NMU's at 10, from 1,000,000 to 2,000,000 (of 5,000,000).
STATIC_PUBLISHED_SETTINGS = {
    "nau": {"reg_strength": 0.01, "reg_start": 5_000, "reg_end": 50_000},
    "nmu": {"reg_strength": 10.0, "reg_start": 1_000_000, "reg_end": 2_000_000},
}


# The published protocol's settings: Adam 1e-3, batch 128, fresh samples every
# step, 10,000 validation (interpolation) and test (extrapolation) samples. Each
# arithmetic suite's report leads with what the papers measure: the success rates.
_PROTOCOL = dict(learning_rate=1e-3, batch_size=128, eval_samples=10_000, samples=1_000)

#: Madsen & Johansen's published results on the static task, per operation and model: carried by the
#: suite that trains as they did (a suite's reference is judged against the suite's own settings).
MADSEN_2020 = Reference.from_csv(
    Path(__file__).parent / "data" / "madsen2020_static.csv",
    source='Madsen & Johansen 2020, "Neural Arithmetic Units" (ICLR), Table 2 and the appendix table '
           "(AndreasMadsen/stable-nalu, paper/results/sft-short.csv)",
)

arithmetic_static = suite(
    "arithmetic-static",
    description="Madsen & Johansen's static arithmetic task, shortened to run on a laptop",
    targets=_selection("subset_op", {"op": STATIC_OPS}),
    models=STATIC_MODELS,
    headline="success", seeds=5, steps=20_000, eval_every=1_000, **_PROTOCOL,
)
arithmetic_static_published = suite(
    "arithmetic-static-published",
    description="the static arithmetic task as published: 5,000,000 steps, 100 seeds (days on a CPU)",
    targets=_selection("subset_op", {"op": STATIC_OPS}),
    models=STATIC_MODELS, model_settings=STATIC_PUBLISHED_SETTINGS, reference=MADSEN_2020,
    headline="success", seeds=100, steps=5_000_000, eval_every=1_000, **_PROTOCOL,
)
arithmetic_single_layer = suite(
    "arithmetic-single-layer",
    description="the single-layer arithmetic benchmark over its nine ranges, shortened",
    targets=_selection("binary_op", {"op": BINARY_OPS, "range": list(RANGES)}),
    models=SINGLE_LAYER_MODELS, model_settings=SINGLE_LAYER_MODEL_SETTINGS,
    headline="success", seeds=5, steps=5_000, eval_every=500, **_PROTOCOL,
)
arithmetic_single_layer_published = suite(
    "arithmetic-single-layer-published",
    description="the single-layer arithmetic benchmark as published: 50,000 steps, 25 seeds",
    targets=_selection("binary_op", {"op": BINARY_OPS, "range": list(RANGES)}),
    models=SINGLE_LAYER_MODELS, model_settings=SINGLE_LAYER_PUBLISHED_SETTINGS,
    headline="success", seeds=25, steps=50_000, eval_every=1_000, **_PROTOCOL,
)
