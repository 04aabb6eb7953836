"""Arithmetic on two numbers (and a weighted sum of n), trained on the article's unit square.

The linear ones (addition, subtraction, weighted_sum) have an exact linear
solution: a single linear unit can learn them and carry them anywhere.
Product and division have none.
"""

import numpy as np

from benchmark import Box, Target, near_and_far, target, target_family

UNIT_SQUARE = Box.cube(2, 0.0, 1.0)


@target(
    domain=UNIT_SQUARE,
    extrapolation=near_and_far(UNIT_SQUARE, anchor="low"),
    description="a + b, the article's target: trained on [0, 1), asked for 9 + 90",
    inputs=("a", "b"),
    probes=[(9, 90), (0.25, 0.5)],
    linear_solution=((1, 1), 0),
)
def addition(x):
    return x[:, [0]] + x[:, [1]]


@target(
    domain=UNIT_SQUARE,
    extrapolation=near_and_far(UNIT_SQUARE, anchor="low"),
    description="a - b",
    inputs=("a", "b"),
    probes=[(9, 90), (90, 9)],
    linear_solution=((1, -1), 0),
)
def subtraction(x):
    return x[:, [0]] - x[:, [1]]


@target_family(description="w . x with fixed weights in [-2, 2] (numpy default_rng(n), 2 decimals)")
def weighted_sum(n: int = 5) -> Target:
    if not 1 <= n <= 1000:
        raise ValueError(f"n must be between 1 and 1000, got {n}")
    # Seeding by n makes weighted_sum[n=10] the same function in every run.
    weights = np.random.default_rng(n).uniform(-2, 2, size=n).round(2)
    domain = Box.cube(n, 0.0, 1.0)
    return Target(
        fn=lambda x: x @ weights[:, None],
        domain=domain,
        extrapolation=near_and_far(domain, anchor="low"),
        description=f"weighted sum of {n} inputs, weights {np.array2string(weights, separator=', ')}",
        linear_solution=(tuple(weights), 0.0),
    )


@target(
    domain=UNIT_SQUARE,
    extrapolation=near_and_far(UNIT_SQUARE, anchor="low"),
    description="a * b: no linear unit can represent it",
    inputs=("a", "b"),
    probes=[(9, 90)],
)
def product(x):
    return x[:, [0]] * x[:, [1]]


# Denominators in [1, 2], grown from the low corner, never come near zero.
DIVISION_DOMAIN = Box((0.0, 1.0), (1.0, 2.0))


@target(
    domain=DIVISION_DOMAIN,
    extrapolation=near_and_far(DIVISION_DOMAIN, anchor="low"),
    description="a / b with b >= 1, away from the pole at zero",
    inputs=("a", "b"),
    probes=[(9, 3), (90, 9)],
)
def division(x):
    return x[:, [0]] / x[:, [1]]



