"""The samples every model of a cell sees, drawn per seed and per split.

Seed s of a target always gets the same points, whichever models or other
seeds share the run: each (seed, target, split) has its own random stream.
Inputs are drawn in float64, rounded to float32 (what the models compute in)
and the target is evaluated on the rounded inputs, so the labels are exact
for what the model is actually shown.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .checks import INTERPOLATION, TRAIN, VALIDATION, evaluate_target
from .registry import Target

#: Extra words in a stream's seed, so that no region name can collide with these streams.
FRESH_STREAM = 0xF4E5
THRESHOLD_STREAM = 0x7E5


@dataclass(frozen=True, eq=False)
class Split:
    name: str
    kind: str  # "train", "validation", "interpolation" or "extrapolation"
    x: np.ndarray  # (seeds, n, d) float32
    y: np.ndarray  # (seeds, n, 1) float64


def sample_splits(
    target: Target, seeds: Sequence[int], n_train: int, n_eval: int, validation: bool = False
) -> list[Split]:
    """The training set and every evaluation split, stacked over seeds.

    With `validation`, also a split from the training domain that only picks
    the kept checkpoint, so the interpolation split stays a held-out test.
    """
    regions = [(TRAIN, TRAIN, target.domain, n_train)]
    if validation:
        regions.append((VALIDATION, VALIDATION, target.domain, n_eval))
    regions.append((INTERPOLATION, INTERPOLATION, target.domain, n_eval))
    regions += [(name, "extrapolation", region, n_eval) for name, region in target.extrapolation.items()]
    splits = []
    for name, kind, region, n in regions:
        xs = [region.sample(n, stream(seed, target.label, name)) for seed in seeds]
        x = np.stack(xs).astype(np.float32)
        y = np.stack([evaluate_target(target.at_seed(seed), xi.astype(np.float64)) for seed, xi in zip(seeds, x)])
        splits.append(Split(name, kind, x, y))
    return splits


def fresh_batches(target: Target, seeds: Sequence[int], batch_size: int) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    """A source of new training batches: `draw(k)` gives the next k steps, (k, seeds, batch, d) and labels.

    Each seed draws from its own stream, in the same order whatever k, so
    its training data does not depend on how the steps are chunked or on
    the other seeds.
    """
    streams = [stream(seed, target.label, "fresh", FRESH_STREAM) for seed in seeds]
    seeded = [target.at_seed(seed) for seed in seeds]

    def draw(k: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for t, rng in zip(seeded, streams):
            x = target.domain.sample(k * batch_size, rng).astype(np.float32)
            xs.append(x.reshape(k, batch_size, -1))
            ys.append(evaluate_target(t, x.astype(np.float64)).reshape(k, batch_size, 1))
        return np.stack(xs, axis=1), np.stack(ys, axis=1)

    return draw


def stream(seed: int, target_label: str, name: str, *tags: int) -> np.random.Generator:
    """The random stream of one seed, target and purpose (a split's name, plus tags for other uses)."""
    return np.random.default_rng([seed, zlib.crc32(target_label.encode()), zlib.crc32(name.encode()), *tags])
