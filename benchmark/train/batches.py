"""What each training step sees: the article's shuffled epochs or fresh batches, and chunked evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..data import FreshBatches
from ..model import TrainSettings

#: Points per member in one forward pass when evaluating (not training).
EVALUATION_CHUNK = 256
#: A multiple of which the points per member are padded to when evaluating: two AVX-512
#: vectors of float32. torch's elementwise kernels run whole pairs of vectors over a
#: tensor's elements and finish the rest with scalar code, whose exp and log can differ
#: in the last bit; a member whose points fill no whole pairs would get numbers that
#: depend on where in the ensemble it sits, and on how many members there are.
EVALUATION_ALIGN = 32


def evaluate_in_chunks(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` a slice of the point axis at a time, each padded to a multiple of EVALUATION_ALIGN points.

    A stacked module treats every point on its own, so slicing and padding
    (with copies of the slice's last point, dropped afterwards) change no
    number (the chunk is a fixed number of points, not one that depends on
    the members, so matmuls keep their shapes whatever the ensemble). It
    keeps the activations small: 100 members scoring 1000 points through a
    layer of 64 make a 25 MB tensor, written to memory outside the cache
    at every layer, and that was measured four times slower than the same
    points in chunks of 256.
    """
    outputs = []
    for part in x.split(EVALUATION_CHUNK, dim=1):
        n = part.shape[1]
        short = -n % EVALUATION_ALIGN
        if short:
            part = torch.cat([part, part[:, -1:].expand(-1, short, -1)], dim=1)
        outputs.append(module(part)[:, :n])
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)


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
        x_epoch = _rows(flat_x, flat_order).view(seeds, n, d)
        y_epoch = _rows(flat_y, flat_order).view(seeds, n, 1)
        for start in range(0, n, settings.batch_size):
            stop = start + settings.batch_size
            yield x_epoch[:, start:stop], y_epoch[:, start:stop]


def _rows(table: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """table[order], the same copy either way: on the CPU by numpy, whose take was measured three times
    faster than index_select on rows of a few floats."""
    if table.device.type == "cpu":
        return torch.from_numpy(np.take(table.numpy(), order.numpy(), axis=0))
    return table.index_select(0, order)


def step_batches(fresh: FreshBatches, steps: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A new batch for every step, drawn many steps at a time and moved to the device once per draw.

    Each step's batch is copied out whole, so every step sees a contiguous
    (members, batch, d) tensor whatever the size of the draw.
    """
    chunk = fresh.steps_per_draw()
    remaining = steps
    while remaining > 0:
        k = min(chunk, remaining)
        x, y = fresh.draw(k)
        x, y = x.to(device), y.to(device)
        for i in range(k):
            yield x[:, i].contiguous(), y[:, i].contiguous()
        remaining -= k
