"""What each training step sees: the article's shuffled epochs or fresh batches, and chunked evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..model import TrainSettings

#: Fresh samples drawn per seed at a time while training by steps (float32 elements).
FRESH_CHUNK = 500_000

#: Points per member in one forward pass when evaluating (not training).
EVALUATION_CHUNK = 256


def evaluate_in_chunks(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` a slice of the point axis at a time.

    A stacked module treats every point on its own, so slicing changes no
    number (the chunk is a fixed number of points, not one that depends on
    the members, so matmuls keep their shapes whatever the ensemble). It
    keeps the activations small: 100 members scoring 1000 points through a
    layer of 64 make a 25 MB tensor, written to memory outside the cache
    at every layer, and that was measured four times slower than the same
    points in chunks of 256.
    """
    if x.shape[1] <= EVALUATION_CHUNK:
        return module(x)
    return torch.cat([module(part) for part in x.split(EVALUATION_CHUNK, dim=1)], dim=1)


def epoch_batches(
    x: torch.Tensor, y: torch.Tensor, settings: TrainSettings, shuffles: Sequence[np.random.Generator]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The article's batches: reshuffle every epoch, then consecutive slices (the last one smaller)."""
    seeds, n, d = x.shape
    flat_x, flat_y = x.reshape(seeds * n, d), y.reshape(seeds * n, 1)
    row_offsets = torch.arange(seeds, device=x.device)[:, None] * n
    for _ in range(settings.epochs):
        # Shuffle once per epoch with one gather; the batches are then views.
        order = torch.from_numpy(np.stack([rng.permutation(n) for rng in shuffles])).to(x.device)
        flat_order = (order + row_offsets).reshape(-1)
        x_epoch = flat_x.index_select(0, flat_order).view(seeds, n, d)
        y_epoch = flat_y.index_select(0, flat_order).view(seeds, n, 1)
        for start in range(0, n, settings.batch_size):
            stop = start + settings.batch_size
            yield x_epoch[:, start:stop], y_epoch[:, start:stop]


def step_batches(
    fresh: Callable[[int], tuple[np.ndarray, np.ndarray]], settings: TrainSettings, dim: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A new batch for every step, drawn a chunk of steps at a time to keep numpy's overhead off each step."""
    chunk = max(1, FRESH_CHUNK // (settings.batch_size * max(dim, 1)))
    remaining = settings.steps
    while remaining > 0:
        k = min(chunk, remaining)
        x, y = fresh(k)
        xt = torch.as_tensor(x, dtype=torch.float32, device=device)
        yt = torch.as_tensor(y, dtype=torch.float32, device=device)
        for i in range(k):
            yield xt[i], yt[i]
        remaining -= k
