"""Two targets that show where a linear model carries a function and where it cannot.

Every name carries the prefix ``example_``: a name defined twice keeps its
first definition, so a plugin's names must not collide with funcbench's own.
"""

import numpy as np

from benchmark import Box, near_and_far, target

# Sides of a right triangle, so positive; kept away from 0, where sqrt(a^2 + b^2)
# has a kink (the tip of its cone) that would dominate the fit.
SIDES = Box.cube(2, 1.0, 2.0)

# An affine function is defined everywhere, so its training square may be
# centred on the origin and its regions may grow in every direction.
SQUARE = Box.cube(2, -1.0, 1.0)


@target(
    domain=SIDES,
    # anchor="low" grows the regions away from the low corner only, so the
    # sides stay positive lengths however far out the model is asked.
    extrapolation=near_and_far(SIDES, anchor="low"),
    description="sqrt(a^2 + b^2): close to a plane on [1, 2]^2, far from one beyond it",
    inputs=("a", "b"),
    probes=[(3, 4), (5, 12), (20, 1)],
)
def example_hypotenuse(x):
    return np.hypot(x[:, [0]], x[:, [1]])


@target(
    domain=SQUARE,
    extrapolation=near_and_far(SQUARE),
    description="3a - 2b + 1: affine, so one linear unit learns it exactly and carries it anywhere",
    inputs=("a", "b"),
    probes=[(10, -10), (100, 50)],
    # Stating the exact solution gives the target a success threshold in the report.
    linear_solution=((3, -2), 1),
)
def example_weighted_difference(x):
    return 3 * x[:, [0]] - 2 * x[:, [1]] + 1
