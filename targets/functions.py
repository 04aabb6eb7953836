"""Functions of one number: powers, roots, periodic and transcendental functions.

Symmetric targets are trained on an interval around zero and tested on rings
around it; sqrt, exp and log grow away from their low end, which keeps sqrt
and log on their domain.
"""

import numpy as np

from benchmark import Box, near_and_far, target

SYMMETRIC = Box((-1.0,), (1.0,))
ONE_PERIOD = Box((-np.pi,), (np.pi,))
UNIT = Box((0.0,), (1.0,))
LOG_DOMAIN = Box((1.0,), (2.0,))


@target(domain=SYMMETRIC, extrapolation=near_and_far(SYMMETRIC), description="x^2", probes=[(3,), (10,)])
def square(x):
    return x**2


@target(domain=SYMMETRIC, extrapolation=near_and_far(SYMMETRIC), description="x^3 - x, a cubic polynomial", probes=[(3,)])
def cubic(x):
    return x**3 - x


@target(
    domain=SYMMETRIC,
    extrapolation=near_and_far(SYMMETRIC),
    description="|x|: piecewise linear, so a ReLU network can carry it exactly",
    probes=[(-10,), (10,)],
)
def abs(x):  # noqa: A001 - the target's name on the command line
    return np.abs(x)


@target(domain=UNIT, extrapolation=near_and_far(UNIT, anchor="low"), description="sqrt(x) on x >= 0", probes=[(4,), (100,)])
def sqrt(x):
    return np.sqrt(x)


@target(domain=ONE_PERIOD, extrapolation=near_and_far(ONE_PERIOD), description="sin(x), trained on one period", probes=[(10,)])
def sine(x):
    return np.sin(x)


@target(domain=ONE_PERIOD, extrapolation=near_and_far(ONE_PERIOD), description="cos(x), trained on one period", probes=[(10,)])
def cosine(x):
    return np.cos(x)


@target(domain=UNIT, extrapolation=near_and_far(UNIT, anchor="low"), description="exp(x)", probes=[(5,)])
def exp(x):
    return np.exp(x)


@target(domain=LOG_DOMAIN, extrapolation=near_and_far(LOG_DOMAIN, anchor="low"), description="ln(x) on x >= 1", probes=[(100,)])
def log(x):
    return np.log(x)
