"""The targets of Xu et al.'s study of how ReLU networks extrapolate, and its suite.

Each target is trained on the cube [-radius, radius]^d (``shape=cube``, the
default) or the ball of that radius about the origin (``shape=sphere``), and
tested on the shell between it and the cube or ball of `test_radius`. For
`sqrt_sum`, whose inputs must stay positive, the cubes grow from the origin
instead ([0, 2 radius]^d inside [0, 2 test_radius]^d) and the balls are cut
to their positive orthant. Random coefficients are drawn by
`numpy.random.default_rng([d, 0xA11CE])`, so `quadratic[d=8]` is the same
function in every run and on either shape.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from benchmark import Ball, Box, Shell, Target, suite, target_family

Shape = Literal["cube", "sphere"]


def _coefficients(d: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng([d, 0xA11CE]).uniform(-1, 1, size=shape).round(3)


def _check(d: int, radius: float, test_radius: float) -> None:
    if not 1 <= d <= 1000:
        raise ValueError(f"d must be between 1 and 1000, got {d}")
    if not 0 < radius < test_radius:
        raise ValueError(f"need 0 < radius < test_radius, got radius={radius}, test_radius={test_radius}")


def _centred(d: int, radius: float, test_radius: float, shape: Shape, fn, description: str, **extra) -> Target:
    _check(d, radius, test_radius)
    domain = Box.cube(d, -radius, radius) if shape == "cube" else Ball.around_origin(d, radius)
    return Target(fn=fn, domain=domain, extrapolation={"test": Shell.around(domain, 1, test_radius / radius)},
                  description=description, **extra)


@target_family(description="x^T A x, A from U[-1, 1] (Xu et al.)", in_all=False)
def quadratic(d: int = 2, radius: float = 1.0, test_radius: float = 5.0, shape: Shape = "cube") -> Target:
    a = _coefficients(d, (d, d))
    return _centred(d, radius, test_radius, shape, lambda x: np.einsum("ni,ij,nj->n", x, a, x)[:, None],
                    f"x^T A x in {d} dimensions, A = {np.array2string(a, separator=', ')}")


@target_family(description="sum_i cos(pi x_i) (Xu et al.)", in_all=False)
def cos_sum(d: int = 2, radius: float = 1.0, test_radius: float = 2.0, shape: Shape = "cube") -> Target:
    return _centred(d, radius, test_radius, shape, lambda x: np.cos(np.pi * x).sum(axis=1, keepdims=True),
                    f"sum of cos(pi x_i) over {d} inputs")


@target_family(description="sum_i |x_i|, the L1 norm (Xu et al.)", in_all=False)
def l1_norm(d: int = 2, radius: float = 1.0, test_radius: float = 5.0, shape: Shape = "cube") -> Target:
    return _centred(d, radius, test_radius, shape, lambda x: np.abs(x).sum(axis=1, keepdims=True), f"|x|_1 in {d} dimensions")


@target_family(description="w . x, w from U[-1, 1] (Xu et al.'s linear target)", in_all=False)
def linear_map(d: int = 2, radius: float = 1.0, test_radius: float = 5.0, shape: Shape = "cube") -> Target:
    w = _coefficients(d, (d,))
    return _centred(d, radius, test_radius, shape, lambda x: x @ w[:, None],
                    f"w . x in {d} dimensions, w = {np.array2string(w, separator=', ')}", linear_solution=(tuple(w), 0.0))


@target_family(description="sum_i sqrt(x_i) on positive inputs (Xu et al.)", in_all=False)
def sqrt_sum(d: int = 2, radius: float = 1.0, test_radius: float = 5.0, shape: Shape = "cube") -> Target:
    _check(d, radius, test_radius)
    domain = Box.cube(d, 0.0, 2 * radius) if shape == "cube" else Ball.around_origin(d, radius, orthant=True)
    return Target(fn=lambda x: np.sqrt(x).sum(axis=1, keepdims=True), domain=domain,
                  extrapolation={"test": Shell.around(domain, 1, test_radius / radius, anchor="low")},
                  description=f"sum of sqrt(x_i) over {d} inputs, on the {domain.describe()}")


#: Cubes in 1, 2 and 8 dimensions, and balls in 2 and 8 (in one dimension a ball is the cube).
STUDY_TARGETS = [f"{name}[d={d}]" for name in ("quadratic", "cos_sum", "sqrt_sum", "l1_norm", "linear_map") for d in (1, 2, 8)]
STUDY_TARGETS += [f"{name}[d={d},shape=sphere]" for name in ("quadratic", "cos_sum", "sqrt_sum", "l1_norm", "linear_map")
                  for d in (2, 8)]

relu_extrapolation = suite(
    "relu-extrapolation",
    description="Xu et al.: a ReLU MLP (two weight layers, 128 hidden units) on five functions, on cubes and balls",
    targets=",".join(STUDY_TARGETS),
    models="mlp[width=128,depth=1]",
    # The study measures how straight the network runs outside its data; it has no linear unit to read against.
    headline="linearity", reference_model=None,
    seeds=5, epochs=100, samples=5000, batch_size=64, learning_rate=1e-4, eval_samples=2000,
)
