"""The samples every model of a cell sees, drawn per seed and per split.

Seed s of a target always gets the same points, whichever models or other
seeds share the run: each (seed, target, split) has its own random stream.
Inputs are drawn in float64 and rounded to float32 (what the models
compute in); the fresh batches of training by steps come from torch, each
coordinate 24 random bits placed in float64 and rounded once (`Box.fill`).
The target is evaluated in float64 on the float32 inputs, so the labels are
exact for what the model is actually shown.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

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


#: Fresh samples drawn at a time while training by steps, in float32 elements over every member, input and label.
FRESH_CHUNK = 32_000_000
#: Elements (in float64) of the members whose labels are evaluated at once: enough to keep
#: numpy's overhead per call small, few enough to stay in the CPU's caches.
LABEL_BLOCK = 250_000


class FreshBatches:
    """New training batches for every member of an ensemble: `draw(k)` gives the next k steps.

    The result is two float32 tensors on the CPU, (members, k, batch, d)
    inputs and (members, k, batch, 1) labels. `parts` lists the ensemble's
    (target, seeds) in member order. Each seed of a target draws from its
    own torch generator, seeded from (seed, target, "fresh") alone, and
    torch's CPU generator hands out its numbers in order whatever the sizes
    of the calls, so a member's batches depend neither on the other members
    nor on k (a test checks both). The labels are the target evaluated in
    float64 on the float32 inputs, a block of members at a time.
    """

    def __init__(self, parts: Sequence[tuple[Target, Sequence[int]]], batch_size: int):
        self.parts = [(target, [target.at_seed(seed) for seed in seeds],
                       [_generator(stream_seed(seed, target.label, "fresh", FRESH_STREAM)) for seed in seeds])
                      for target, seeds in parts]
        self.members = sum(len(seeds) for _, seeds in parts)
        self.dim = parts[0][0].dim
        self.batch_size = batch_size

    def steps_per_draw(self) -> int:
        """How many steps one draw holds within FRESH_CHUNK elements (the numbers do not depend on it)."""
        return max(1, FRESH_CHUNK // (self.members * self.batch_size * (self.dim + 1)))

    def draw(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, d = k * self.batch_size, self.dim
        x = torch.empty(self.members, n, d)
        y = torch.empty(self.members, n, 1)
        block = max(1, LABEL_BLOCK // (n * d))
        offset = 0
        for target, seeded, generators in self.parts:
            for start in range(0, len(generators), block):
                members = slice(offset + start, offset + min(start + block, len(generators)))
                target.domain.fill(x[members], generators[start:members.stop - offset])
                inputs = x[members].numpy().astype(np.float64)
                if target.seeded is None:
                    labels = evaluate_target(target, inputs.reshape(-1, d))
                else:
                    labels = np.stack([evaluate_target(one, xs) for one, xs in zip(seeded[start:], inputs)])
                y[members] = torch.from_numpy(labels.reshape(-1, n, 1))
            offset += len(generators)
        return x.view(self.members, k, self.batch_size, d), y.view(self.members, k, self.batch_size, 1)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def stream_seed(seed: int, target_label: str, name: str, *tags: int) -> int:
    """A 64-bit seed for a torch generator, from the same words as `stream`."""
    words = [seed, zlib.crc32(target_label.encode()), zlib.crc32(name.encode()), *tags]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0])


def stream(seed: int | None, target_label: str, name: str, *tags: int) -> np.random.Generator:
    """The random stream of one seed, target and purpose (a split's name, plus tags for other uses).

    Seed None is the target's own stream, for what every seed shares.
    """
    words = [zlib.crc32(target_label.encode()), zlib.crc32(name.encode()), *tags]
    return np.random.default_rng(words if seed is None else [seed, *words])
