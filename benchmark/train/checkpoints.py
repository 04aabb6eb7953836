"""Scoring the monitored splits while training, and keeping each member's best parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..heap import release_free_memory
from ..model import TrainingLog
from .batches import evaluate_in_chunks


class Checkpoints:
    """Every evaluation's scores, the logged losses, and (training by steps) each member's best state.

    A member's state is every parameter and buffer of the stacked module,
    each stacked along its leading member axis, so keeping one member's
    best copies slices along that axis.
    """

    def __init__(self, module: nn.Module, monitor: Sequence[tuple[str, torch.Tensor, torch.Tensor]], keep_best: bool):
        self.state = [*module.parameters(), *module.buffers()]
        if len({t.shape[0] if t.dim() else None for t in self.state}) != 1:
            raise ValueError("a stacked module needs every parameter and buffer stacked along a leading member axis")
        self.module = module
        self.monitor = monitor
        self.keep_best = keep_best
        self.steps: list[int] = []
        self.loss_steps: list[int] = []
        self.losses: list[torch.Tensor] = []
        self.terms: dict[str, list[torch.Tensor]] = {}
        self.scores: dict[str, list[torch.Tensor]] = {name: [] for name, _, _ in monitor}
        self.best: list[torch.Tensor] | None = None
        self.best_score: torch.Tensor | None = None
        self.kept_step: torch.Tensor | None = None

    def log_loss(self, step: int, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """The mean loss per member since the last log, and its regulariser terms (each (members,))."""
        self.loss_steps.append(step)
        self.losses.append(loss)
        for name, value in terms.items():
            # A term a hook leaves out (before its ramp starts, say) adds nothing to the loss: 0.
            logged = self.terms.setdefault(name, [torch.zeros_like(loss)] * (len(self.losses) - 1))
            logged.append(value)
        for logged in self.terms.values():
            if len(logged) < len(self.losses):
                logged.append(torch.zeros_like(loss))

    @torch.no_grad()
    def evaluate(self, step: int) -> None:
        scores = {}
        for name, x, y in self.monitor:
            scores[name] = (evaluate_in_chunks(self.module, x).double() - y).square().mean(dim=(1, 2))
            self.scores[name].append(scores[name])
        release_free_memory()  # the evaluation's temporaries, or the worker's memory grows with every one
        self.steps.append(step)
        if not self.keep_best or not self.monitor:
            return
        validation = scores[self.monitor[0][0]]
        if self.best is None:
            self.best = [t.detach().clone() for t in self.state]
            self.best_score = torch.where(torch.isnan(validation), torch.inf, validation)
            self.kept_step = torch.zeros_like(validation, dtype=torch.long)
            return
        improved = validation < self.best_score  # NaN never improves
        if improved.any():
            for kept, t in zip(self.best, self.state):
                kept[improved] = t.detach()[improved]
            self.best_score = torch.where(improved, validation, self.best_score)
            self.kept_step = torch.where(improved, step, self.kept_step)

    @torch.no_grad()
    def finish(self) -> TrainingLog:
        if self.best is not None:
            for kept, t in zip(self.best, self.state):
                t.copy_(kept)
            kept_step = self.kept_step.cpu().numpy()
        else:
            kept_step = np.full(self.state[0].shape[0], self.steps[-1])
        return TrainingLog(
            loss_steps=np.asarray(self.loss_steps),
            loss=torch.stack(self.losses, dim=1).double().cpu().numpy(),
            steps=np.asarray(self.steps),
            monitored={name: torch.stack(s, dim=1).cpu().numpy() for name, s in self.scores.items()},
            kept_step=kept_step,
            regularizer={name: torch.stack(v, dim=1).double().cpu().numpy() for name, v in self.terms.items()},
        )
