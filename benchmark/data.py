"""The samples every model of a cell sees, drawn per seed and per split.

Seed s of a target always gets the same points, whichever models or other
seeds share the run: each (seed, target, split) has its own random stream.
Inputs are drawn in float64, rounded to float32 (what the models compute in)
and the target is evaluated on the rounded inputs, so the labels are exact
for what the model is actually shown.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .checks import INTERPOLATION, TRAIN, evaluate_target
from .registry import Target


@dataclass(frozen=True, eq=False)
class Split:
    name: str
    kind: str  # "train", "interpolation" or "extrapolation"
    x: np.ndarray  # (seeds, n, d) float32
    y: np.ndarray  # (seeds, n, 1) float64


def sample_splits(target: Target, seeds: Sequence[int], n_train: int, n_eval: int) -> list[Split]:
    """The training set and every evaluation split, stacked over seeds."""
    regions = [(TRAIN, TRAIN, target.domain, n_train), (INTERPOLATION, INTERPOLATION, target.domain, n_eval)]
    regions += [(name, "extrapolation", region, n_eval) for name, region in target.extrapolation.items()]
    splits = []
    for name, kind, region, n in regions:
        xs = [region.sample(n, _stream(seed, target.label, name)) for seed in seeds]
        x = np.stack(xs).astype(np.float32)
        y = np.stack([evaluate_target(target, xi.astype(np.float64)) for xi in x])
        splits.append(Split(name, kind, x, y))
    return splits


def _stream(seed: int, target_label: str, split: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(target_label.encode()), zlib.crc32(split.encode())])
