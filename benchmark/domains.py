"""Where a target is trained and where it is tested: boxes, balls, shells and sampling.

A training domain is an axis-aligned box or a Euclidean ball. An
extrapolation region is any region whose points all lie outside it; the
built-ins use shells, the part of a larger box (or ball) that is not inside a
smaller one, so "near" and "far" are rings around the training data at a
stated multiple of its size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import numpy as np

if TYPE_CHECKING:  # torch is imported where batches are drawn: `bench`'s completion and `bench list` need none
    import torch

Anchor = Literal["low", "centre"]


class Region(Protocol):
    dim: int

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def contains(self, x: np.ndarray) -> np.ndarray: ...

    def bounds(self) -> Box:
        """The smallest box holding the region."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Box:
    """The points with low[i] <= x[i] <= high[i] in every coordinate."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", tuple(float(v) for v in self.low))
        object.__setattr__(self, "high", tuple(float(v) for v in self.high))
        if len(self.low) != len(self.high) or not self.low:
            raise ValueError(f"box bounds need the same, non-zero length; got {self.low} and {self.high}")
        if not all(np.isfinite(self.low + self.high)):
            raise ValueError(f"box bounds must be finite; got {self.low} to {self.high}")
        if any(lo >= hi for lo, hi in zip(self.low, self.high)):
            raise ValueError(f"box is empty or inverted: low {self.low} must be below high {self.high}")

    @classmethod
    def cube(cls, dim: int, low: float, high: float) -> Box:
        return cls((low,) * dim, (high,) * dim)

    @property
    def dim(self) -> int:
        return len(self.low)

    @property
    def width(self) -> np.ndarray:
        return np.subtract(self.high, self.low)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=(n, self.dim))

    def fill(self, out: torch.Tensor, generators: Sequence[torch.Generator]) -> None:
        """Uniform samples into the float32 tensor `out` (members, n, d), member i's from `generators[i]`.

        Each coordinate takes 24 random bits (torch's float32 draw) at the
        midpoint of its step, placed in float64 and rounded once: a grid
        with its ends on the box's edges would put draws exactly on them,
        and exactly on zero in a box centred there, where division is not
        defined. The placing runs on scalars, a coordinate at a time unless
        the box is a cube: a broadcast over the last axis, of size d, would
        run its inner loop d elements long.
        """
        import torch

        for member, generator in zip(out, generators):
            torch.rand(member.shape, generator=generator, out=member)
        # x = low + width * (u + 2^-25), with the offset folded into one constant.
        if len(set(self.low)) == 1 and len(set(self.width)) == 1:  # a cube: every coordinate at once
            columns = [(out, self.low[0], float(self.width[0]))]
        else:
            columns = [(out[..., i], low, width) for i, (low, width) in enumerate(zip(self.low, self.width.tolist()))]
        for column, low, width in columns:
            column.copy_(column.double().mul_(width).add_(low + width * 2.0**-25))

    def contains(self, x: np.ndarray) -> np.ndarray:
        return np.all((x >= self.low) & (x <= self.high), axis=1)

    def volume(self) -> float:
        return float(np.prod(self.width))

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """E[x] (d,) and E[x x^T] (d, d) of a uniform point: independent coordinates."""
        low, high = np.asarray(self.low), np.asarray(self.high)
        return _independent((low + high) / 2, (low**2 + low * high + high**2) / 3)

    def bounds(self) -> Box:
        return self

    @property
    def centre(self) -> np.ndarray:
        return (np.asarray(self.low) + np.asarray(self.high)) / 2

    def exit_distance(self, directions: np.ndarray) -> np.ndarray:
        """How far from the centre each unit direction (rows) leaves the box."""
        with np.errstate(divide="ignore"):
            return np.min(np.abs(self.width / 2 / np.atleast_2d(directions)), axis=1)

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Euclidean distance of each row of x from the box (0 inside it)."""
        outside = np.maximum(np.maximum(np.subtract(self.low, x), np.subtract(x, self.high)), 0)
        return np.linalg.norm(outside, axis=1)

    def grown(self, factor: float, anchor: Anchor = "centre") -> Box:
        """This box scaled by `factor`, about its centre or from its low corner.

        Growing from the low corner keeps every coordinate on the same side of
        `low`, which matters for targets defined only there (sqrt, log).
        """
        low, width = np.asarray(self.low), self.width
        if anchor == "low":
            return Box(tuple(low), tuple(low + factor * width))
        return Box(tuple(self.centre - factor * width / 2), tuple(self.centre + factor * width / 2))

    def describe(self) -> str:
        intervals = [f"[{_num(lo)}, {_num(hi)}]" for lo, hi in zip(self.low, self.high)]
        if self.dim > 1 and len(set(intervals)) == 1:
            return f"{intervals[0]}^{self.dim}"
        return " x ".join(intervals)


@dataclass(frozen=True)
class Ball:
    """The points within Euclidean distance `radius` of `centre`.

    With ``orthant=True`` only the part where every coordinate is at least the
    centre's: the positive orthant of a ball about the origin, for targets
    defined on positive inputs only (sqrt). Uniform samples of it are the
    absolute values of uniform samples of the whole ball, by symmetry.
    """

    centre: tuple[float, ...]
    radius: float
    orthant: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", tuple(float(v) for v in self.centre))
        object.__setattr__(self, "radius", float(self.radius))
        if not self.centre or not all(np.isfinite(self.centre)):
            raise ValueError(f"a ball needs a finite centre of at least one coordinate; got {self.centre}")
        if not (np.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"a ball needs a finite, positive radius; got {self.radius}")

    @classmethod
    def around_origin(cls, dim: int, radius: float, orthant: bool = False) -> Ball:
        return cls((0.0,) * dim, radius, orthant)

    @property
    def dim(self) -> int:
        return len(self.centre)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # A Gaussian direction times radius * U^(1/d) is uniform in the ball.
        direction = rng.standard_normal((n, self.dim))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        offset = direction * (self.radius * rng.random((n, 1)) ** (1 / self.dim))
        return np.asarray(self.centre) + (np.abs(offset) if self.orthant else offset)

    def fill(self, out: torch.Tensor, generators: Sequence[torch.Generator]) -> None:
        """Uniform samples into the float32 tensor `out` (members, n, d), member i's from `generators[i]`."""
        import torch

        for member, generator in zip(out, generators):
            torch.randn(member.shape, generator=generator, out=member)
            member.div_(torch.linalg.vector_norm(member, dim=1, keepdim=True))
            member.mul_(torch.rand((len(member), 1), generator=generator).pow_(1 / self.dim).mul_(self.radius))
        if self.orthant:
            out.abs_()
        out.add_(torch.tensor(self.centre, dtype=out.dtype))

    def contains(self, x: np.ndarray) -> np.ndarray:
        offset = x - np.asarray(self.centre)
        inside = np.linalg.norm(offset, axis=1) <= self.radius
        return inside & np.all(offset >= 0, axis=1) if self.orthant else inside

    def volume(self) -> float:
        whole = math.pi ** (self.dim / 2) / math.gamma(self.dim / 2 + 1) * self.radius**self.dim
        return whole / 2**self.dim if self.orthant else whole

    def moments(self) -> tuple[np.ndarray, np.ndarray] | None:
        """E[x] and E[x x^T] of a uniform point: the centre, and r^2 / (d + 2) per coordinate about it."""
        if self.orthant:
            return None
        centre = np.asarray(self.centre)
        return centre, np.outer(centre, centre) + self.radius**2 / (self.dim + 2) * np.eye(self.dim)

    def bounds(self) -> Box:
        low = np.asarray(self.centre) - (0 if self.orthant else self.radius)
        return Box(tuple(low), tuple(np.asarray(self.centre) + self.radius))

    def exit_distance(self, directions: np.ndarray) -> np.ndarray:
        """How far from the centre each unit direction (rows) leaves the ball."""
        directions = np.atleast_2d(directions)
        if not self.orthant:
            return np.full(len(directions), self.radius)
        return np.where(np.all(directions >= 0, axis=1), self.radius, 0.0)

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Euclidean distance of each row of x from the ball (0 inside it)."""
        offset = x - np.asarray(self.centre)
        if self.orthant:  # the nearest point of the orthant's ball: clip into the orthant, then into the ball
            nearest = np.maximum(offset, 0)
            norm = np.linalg.norm(nearest, axis=1, keepdims=True)
            nearest = np.where(norm > self.radius, nearest * self.radius / np.maximum(norm, 1e-300), nearest)
            return np.linalg.norm(offset - nearest, axis=1)
        return np.maximum(np.linalg.norm(offset, axis=1) - self.radius, 0)

    def grown(self, factor: float, anchor: Anchor = "centre") -> Ball:
        """This ball with its radius times `factor`; it grows from its centre whatever the anchor."""
        return Ball(self.centre, self.radius * factor, self.orthant)

    def describe(self) -> str:
        about = "the origin" if not any(self.centre) else f"({', '.join(_num(c) for c in self.centre)})"
        ball = f"ball of radius {_num(self.radius)} about {about}"
        return f"positive orthant of the {ball}" if self.orthant else ball


Domain = Box | Ball


@dataclass(frozen=True)
class Shell:
    """The points of `outer` that are not inside `inner`."""

    outer: Domain
    inner: Domain

    def __post_init__(self) -> None:
        if self.outer.dim != self.inner.dim:
            raise ValueError(f"shell boxes differ in dimension: {self.outer.dim} and {self.inner.dim}")

    @classmethod
    def around(cls, domain: Domain, inner: float, outer: float, anchor: Anchor = "centre") -> Shell:
        """The ring between `domain` grown by `inner` and grown by `outer`."""
        if not 1 <= inner < outer:
            raise ValueError(f"a shell needs 1 <= inner < outer; got inner={inner}, outer={outer}")
        return cls(outer=domain.grown(outer, anchor), inner=domain.grown(inner, anchor))

    @property
    def dim(self) -> int:
        return self.outer.dim

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # Rejection sampling is exact (uniform on the shell) and cheap: the
        # shells used in practice keep at least half of the outer box or ball.
        chunks, have = [], 0
        for _ in range(1000):
            x = self.outer.sample(max(n, 64), rng)
            x = x[~self.inner.contains(x)]
            chunks.append(x)
            have += len(x)
            if have >= n:
                return np.concatenate(chunks)[:n]
        raise ValueError(f"shell {self.describe()} is (almost) empty: the inner box covers the outer one")

    def contains(self, x: np.ndarray) -> np.ndarray:
        return self.outer.contains(x) & ~self.inner.contains(x)

    def moments(self) -> tuple[np.ndarray, np.ndarray] | None:
        """E[x] and E[x x^T] of a uniform point: the outer region's, less the inner one's share by volume."""
        outer, inner = self.outer.moments(), self.inner.moments()
        big, small = self.outer.volume(), self.inner.volume()
        if outer is None or inner is None or not (np.isfinite(big) and big > small):
            return None
        share = small / big  # the inner region lies within the outer one
        return tuple((o - share * i) / (1 - share) for o, i in zip(outer, inner))

    def bounds(self) -> Box:
        return self.outer.bounds()

    @property
    def centre(self) -> np.ndarray:
        return np.asarray(self.outer.centre)

    def exit_distance(self, directions: np.ndarray) -> np.ndarray:
        """How far from the centre each unit direction (rows) leaves the shell's outer edge."""
        return self.outer.exit_distance(directions)

    def describe(self) -> str:
        return f"{self.outer.describe()} outside {self.inner.describe()}"


@dataclass(frozen=True)
class Intervals:
    """Points whose every coordinate lies in a union of intervals, e.g. ([-6, -2] u [2, 6])^d.

    Sampled coordinate by coordinate, uniform on the union (an interval is
    picked with probability proportional to its length): the extrapolation
    range U[-6, -2] u U[2, 6] of the single-layer arithmetic benchmark.
    """

    parts: tuple[tuple[float, float], ...]
    dim: int

    def __post_init__(self) -> None:
        parts = tuple(sorted((float(lo), float(hi)) for lo, hi in self.parts))
        object.__setattr__(self, "parts", parts)
        if not parts or self.dim < 1:
            raise ValueError("intervals need at least one interval and one dimension")
        if any(not (np.isfinite(lo) and np.isfinite(hi) and lo < hi) for lo, hi in parts):
            raise ValueError(f"every interval must be finite with low below high; got {parts}")
        if any(a[1] > b[0] for a, b in zip(parts, parts[1:])):
            raise ValueError(f"intervals must not overlap; got {parts}")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        low = np.array([lo for lo, _ in self.parts])
        width = np.array([hi - lo for lo, hi in self.parts])
        if len(self.parts) == 1:
            return low[0] + width[0] * rng.random((n, self.dim))
        which = rng.choice(len(self.parts), size=(n, self.dim), p=width / width.sum())
        return low[which] + width[which] * rng.random((n, self.dim))

    def contains(self, x: np.ndarray) -> np.ndarray:
        inside = np.zeros(x.shape, dtype=bool)
        for lo, hi in self.parts:
            inside |= (x >= lo) & (x <= hi)
        return np.all(inside, axis=1)

    def bounds(self) -> Box:
        return Box.cube(self.dim, self.parts[0][0], self.parts[-1][1])

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """E[x] and E[x x^T] of a point: independent coordinates, each uniform on the union."""
        low, high = np.array(self.parts).T
        share = (high - low) / (high - low).sum()
        mean = np.sum(share * (low + high) / 2)
        second = np.sum(share * (low**2 + low * high + high**2) / 3)
        return _independent(np.full(self.dim, mean), np.full(self.dim, second))

    def describe(self) -> str:
        union = " u ".join(f"[{_num(lo)}, {_num(hi)}]" for lo, hi in self.parts)
        if len(self.parts) > 1:
            union = f"({union})"
        return union if self.dim == 1 else f"{union}^{self.dim}"


@dataclass(frozen=True, eq=False)
class Restricted:
    """The points of `region` where `keep` holds: an extrapolation region cut back where a target is undefined.

    `keep` maps points (n, d) to a boolean mask; `rule` says in words what
    it keeps, for the region's description. Sampled by rejection, which is
    exact (uniform on what is kept) whatever share of `region` that is, so
    long as it is not vanishingly small (`MIN_SHARE` of the draws).
    """

    region: Region
    keep: Callable[[np.ndarray], np.ndarray]
    rule: str

    #: The smallest share of `region`'s draws a sample may keep before it is refused as empty.
    MIN_SHARE: ClassVar[float] = 1e-4

    @property
    def dim(self) -> int:
        return self.region.dim

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        chunks, have, drawn = [], 0, 0
        chunk = max(n, 1024)
        while have < n:
            x = self.region.sample(chunk, rng)
            drawn += len(x)
            x = x[self.keep(x)]
            chunks.append(x)
            have += len(x)
            if have < n and drawn >= 100 / self.MIN_SHARE and have < drawn * self.MIN_SHARE:
                raise ValueError(f"region {self.describe()} keeps under {self.MIN_SHARE:.0e} of its draws")
            chunk = min(16 * chunk, 1 << 20)
        return np.concatenate(chunks)[:n]

    def contains(self, x: np.ndarray) -> np.ndarray:
        return self.region.contains(x) & self.keep(x)

    def bounds(self) -> Box:
        return self.region.bounds()

    def describe(self) -> str:
        return f"{self.region.describe()} where {self.rule}"


@dataclass(frozen=True, eq=False)
class Line:
    """Points along a straight line through a training domain and out past its regions."""

    origin: np.ndarray  # (d,) the centre of the training domain
    direction: np.ndarray  # (d,) unit vector, (1, ..., 1) / sqrt(d)
    position: np.ndarray  # (n,) signed distance from origin along direction
    points: np.ndarray  # (n, d)
    distance: np.ndarray  # (n,) distance from the training domain, 0 inside


def diagonal_line(domain: Domain, regions: Iterable[Region], n: int = 512) -> Line:
    """The diagonal through the domain's centre, clipped to the box holding every region.

    Along (1, ..., 1) every input grows together, which takes the line through
    the near and far regions of every built-in target; clipping to the
    regions' bounding box keeps it where the target is meant to be evaluated
    (sqrt and log never see a negative input).
    """
    boxes = [domain.bounds(), *(r.bounds() for r in regions)]
    low = np.min([b.low for b in boxes], axis=0)
    high = np.max([b.high for b in boxes], axis=0)
    origin = np.asarray(domain.centre)
    direction = np.full(domain.dim, 1 / np.sqrt(domain.dim))
    start = np.max((low - origin) / direction)
    stop = np.min((high - origin) / direction)
    # Half the points fall within twice the domain, so the fit inside the
    # range is drawn as finely as the way it carries (or not) far outside.
    inside = domain.exit_distance(direction)[0]
    position = np.union1d(
        np.linspace(start, stop, n - n // 2),
        np.linspace(max(start, -2 * inside), min(stop, 2 * inside), n // 2),
    )
    points = origin + position[:, None] * direction
    return Line(origin, direction, position, points, domain.distance(points))


def reach(region: Region, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """How far from `origin` each unit direction (rows) runs before it leaves `region` for good.

    Exact for a box, ball or shell centred on `origin`; otherwise where the ray
    leaves the region's bounding box (0 where it never enters it going out).
    """
    exit_distance = getattr(region, "exit_distance", None)
    if exit_distance is not None and np.allclose(getattr(region, "centre", np.nan), origin):
        return exit_distance(directions)
    box = region.bounds()
    with np.errstate(divide="ignore", invalid="ignore"):
        far_side = np.where(directions > 0, (np.asarray(box.high) - origin) / directions,
                            np.where(directions < 0, (np.asarray(box.low) - origin) / directions, np.inf))
    return np.maximum(np.min(far_side, axis=1), 0.0)


def _independent(mean: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[x] and E[x x^T] of independent coordinates with these means and second moments."""
    product = np.outer(mean, mean)
    np.fill_diagonal(product, second)
    return mean, product


def _num(v: float) -> str:
    return f"{v:.6g}"


def near_and_far(domain: Domain, anchor: Anchor = "centre") -> dict[str, Shell]:
    """The built-ins' two extrapolation regions around a training box.

    near: the box grown to twice its size, minus the box itself;
    far: the box grown to twenty times its size, minus it grown ten times.
    With anchor="low" the box grows away from its low corner only.
    """
    return {"near": Shell.around(domain, 1, 2, anchor), "far": Shell.around(domain, 10, 20, anchor)}
