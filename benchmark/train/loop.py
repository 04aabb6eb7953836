"""The training loop: every member of a stacked module at once, with periodic evaluation.

The loss is the sum of the members' own mean losses, so its gradient with
respect to a member's parameters is exactly that member's own gradient;
clipping is per member and the optimisers are elementwise, so each member
trains as it would alone.

A stacked module maps (members, n, d) to (members, n, 1). It may define:

- ``regularizer(progress)``: named terms, each a (members,) tensor, whose
  sum times `TrainSettings.regularizer_strength` is added to the loss;
  `progress` is `TrainSettings.ramp` of the step, from 0 to 1;
- ``after_step(loss)``: called under ``no_grad`` after every optimiser
  step, with each member's training loss at that step, (members,).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from ..model import TrainingLog, TrainSettings
from .checkpoints import Checkpoints
from .optimizers import OPTIMIZERS, clip_gradients

#: Training losses per member, (members, n, 1) predictions and targets -> (members,). Every
#: evaluation scores MSE whatever the training loss.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda prediction, y: (prediction - y).square().mean(dim=(1, 2)),
    "mae": lambda prediction, y: (prediction - y).abs().mean(dim=(1, 2)),
}


def fit_ensemble(
    module: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    monitor: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    settings: TrainSettings,
    samples: int,
) -> TrainingLog:
    """Train all members on their batches; score the monitored splits every `evaluation_interval` steps.

    Each monitored split is scored per member before the first step and
    at every evaluation. Training by steps keeps, per member, the
    parameters that scored best on the first monitored split (the
    validation split); training by epochs keeps the final ones.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[settings.optimizer](params, settings.learning_rate)
    loss_of = LOSSES[settings.loss]
    clipping = settings.clip_value is not None or settings.clip_norm is not None
    regularizer = getattr(module, "regularizer", None)
    after_step = getattr(module, "after_step", None)
    total = settings.total_steps(samples)
    interval = settings.evaluation_interval(samples)
    # The article logs its loss once per epoch; training by steps logs it at each evaluation.
    loss_interval = interval if settings.by_steps else -(-samples // settings.batch_size)
    log = Checkpoints(module, monitor, keep_best=settings.by_steps)
    log.evaluate(0)
    running: torch.Tensor | None = None
    running_terms: dict[str, torch.Tensor] = {}
    count = 0
    for step, (xb, yb) in enumerate(batches, start=1):
        per_member = loss_of(module(xb), yb)
        loss = per_member.sum()
        terms = regularizer(settings.ramp(step)) if regularizer is not None else {}
        if terms:
            loss = loss + settings.regularizer_strength * sum(terms.values()).sum()
        optimizer.zero_grad()
        loss.backward()
        if clipping:
            clip_gradients(params, settings.clip_value, settings.clip_norm)
        optimizer.step()
        if after_step is not None:
            with torch.no_grad():
                after_step(per_member.detach())
        running = per_member.detach() if running is None else running + per_member.detach()
        for name, term in terms.items():
            running_terms[name] = term.detach() + running_terms.get(name, 0)
        count += 1
        if step % loss_interval == 0 or step == total:
            log.log_loss(step, running / count, {name: value / count for name, value in running_terms.items()})
            running, running_terms, count = None, {}, 0
        if step % interval == 0 or step == total:
            log.evaluate(step)
    return log.finish()
