"""The one protocol every model family follows.

A family's spec builds a `Model`: an ensemble holding one independent member
per seed. The runner only ever calls `fit`, `predict` and
`readable_parameters`, so a torch module, an arithmetic unit and a
scikit-learn regressor look the same to it. Arrays cross this boundary as
numpy, stacked along a leading seed axis: x is (seeds, n, d), y is (seeds, n, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class TrainSettings:
    """How long and how hard to train; the article's protocol by default."""

    epochs: int = 100
    batch_size: int = 200
    learning_rate: float = 0.1


class Model(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray, settings: TrainSettings) -> np.ndarray:
        """Train every member on its own slice; return the loss per (seed, epoch)."""
        ...

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions (seeds, m, 1) for inputs (seeds, m, d)."""
        ...

    def readable_parameters(self) -> list[dict[str, float]]:
        """Per seed, the learned parameters small enough to read (may be empty)."""
        ...


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A configured model family: how to build its ensemble and train it.

    `build(inputs, seeds, device)` returns a `Model` for inputs named
    `inputs` with one member per seed; the same seed must give the same
    member whatever other seeds are built beside it.
    """

    build: Callable[[tuple[str, ...], Sequence[int], str], Model]
    description: str
    learning_rate: float
    # Filled in by the registry, as for targets.
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
