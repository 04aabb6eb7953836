"""The `Model` protocol for a module stacked over members: the adapter between the runner and the training loop."""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import FuncbenchError
from ..formula import Expression
from ..model import TrainingData, TrainingLog, TrainSettings
from ..train.batches import epoch_batches, evaluate_in_chunks, step_batches
from ..train.loop import fit_ensemble


class TorchEnsemble:
    """A stacked module as a `Model`: (members, n, d) in, (members, n, 1) out.

    Besides the hooks the training loop uses (`benchmark.train.loop`), the
    module may define ``readable_parameters(inputs)`` and ``formulas(inputs)``,
    each a list with one entry per member; a module without them has none.
    Every parameter and buffer is stacked along its first axis.
    """

    def __init__(self, module: nn.Module, inputs: tuple[str, ...], seeds: Sequence[int], device: str):
        self.module = module.to(device)
        self.inputs = inputs
        self.seeds = tuple(seeds)
        self.device = torch.device(device)

    def fit(self, data: TrainingData, settings: TrainSettings) -> TrainingLog:
        if settings.by_steps:
            if data.fresh is None:
                raise ValueError("training by steps needs a source of fresh batches")
            batches = step_batches(data.fresh, settings.steps, self.device)
        else:
            # Each member shuffles with its own stream, so its batches do not
            # depend on which other seeds share the ensemble.
            shuffles = [np.random.default_rng([seed, 0x5EED]) for seed in self.seeds]
            batches = epoch_batches(self._tensor(data.x), self._tensor(data.y), settings, shuffles)
        monitor = [(m.name, self._tensor(m.x), torch.as_tensor(m.y, dtype=torch.float64, device=self.device))
                   for m in data.monitor]
        return fit_ensemble(self.module, batches, monitor, settings, data.x.shape[1])

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        return evaluate_in_chunks(self.module, self._tensor(x)).double().cpu().numpy()

    def readable_parameters(self) -> list[dict[str, float]]:
        read = getattr(self.module, "readable_parameters", None)
        return read(self.inputs) if read else [{} for _ in self.seeds]

    def formulas(self) -> list[Expression | None]:
        read = getattr(self.module, "formulas", None)
        return read(self.inputs) if read else [None for _ in self.seeds]

    def state(self) -> bytes:
        """Every stacked parameter and buffer (`state_dict`), in torch's format, from the CPU."""
        buffer = io.BytesIO()
        torch.save({name: tensor.detach().cpu() for name, tensor in self.module.state_dict().items()}, buffer)
        return buffer.getvalue()

    def load_state(self, data: bytes) -> None:
        # weights_only: tensors and plain containers only, so a run folder from elsewhere runs no code here.
        try:
            state = torch.load(io.BytesIO(data), map_location=self.device, weights_only=True)
        except pickle.UnpicklingError:  # torch's own message suggests loading it unsafely: not advice to pass on
            raise FuncbenchError("it is not tensors alone (damaged, or holding other objects), and loading it "
                                 "otherwise could run code") from None
        self.module.load_state_dict(state)

    def members(self, index: slice, inputs: tuple[str, ...]) -> TorchEnsemble:
        # Every parameter and buffer is stacked along its first axis (checked
        # when fitting), so a copy with each sliced is those members alone.
        for p in self.module.parameters():
            p.grad = None  # the last step's gradients: not worth copying whole into every part
        module = copy.deepcopy(self.module)
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                t.data = t.data[index].clone()
        return TorchEnsemble(module, inputs, self.seeds[index], str(self.device))
