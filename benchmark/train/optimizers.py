"""The optimisers and gradient clipping of the training loop, written for stacked members.

Every update here is elementwise, or (clipping by norm) taken per member,
so a member's trajectory does not depend on which others share its
tensors. Each optimiser runs torch's foreach kernels in the order
`torch.optim` runs them for ``foreach=True``, with the same scalars, so its
numbers are torch's to the last bit (tests check). They exist because
building any `torch.optim` optimiser imports torch's compiler stack
(`torch._dynamo`), measured at 1.5 to 2 s, which every worker process
would pay before its first step. None is ``fused=True``: the fused CPU
kernel rounds an element differently in its vectorised body and its scalar
tail, so a member's trajectory would depend on how many members share the
tensor (and cell batching would change results).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class ForeachAdam:
    """`torch.optim.Adam(params, lr, foreach=True)`, operation for operation."""

    def __init__(self, params: Sequence[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.weight_decay = weight_decay  # decoupled, as AdamW's; 0 is Adam
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [0] * len(self.params)  # per parameter, as torch counts them (one without a gradient waits)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        exp_avgs = [self.exp_avgs[i] for i in live]
        exp_avg_sqs = [self.exp_avg_sqs[i] for i in live]
        for i in live:
            self.steps[i] += 1
        if self.weight_decay:
            torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - self.beta1)
        torch._foreach_mul_(exp_avg_sqs, self.beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - self.beta2)
        # Bias corrections in Python floats, from float steps, as torch computes them.
        step_size = [(self.lr / (1 - self.beta1 ** float(self.steps[i]))) * -1 for i in live]
        correction2_sqrt = [(1 - self.beta2 ** float(self.steps[i])) ** 0.5 for i in live]
        denominator = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominator, correction2_sqrt)
        torch._foreach_add_(denominator, self.eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominator, step_size)


class ForeachAdamW(ForeachAdam):
    """`torch.optim.AdamW(params, lr, foreach=True)`: Adam with decoupled weight decay (torch's default 0.01)."""

    def __init__(self, params: Sequence[nn.Parameter], lr: float, weight_decay: float = 0.01):
        super().__init__(params, lr, weight_decay=weight_decay)


class ForeachSGD:
    """`torch.optim.SGD(params, lr, foreach=True)`: plain gradient descent, without momentum."""

    def __init__(self, params: Sequence[nn.Parameter], lr: float):
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        if params:
            torch._foreach_add_(params, [p.grad for p in params], alpha=-self.lr)


#: The optimisers a run, a suite or a family may name (``--optimizer``).
OPTIMIZERS: dict[str, Callable[[Sequence[nn.Parameter], float], ForeachAdam | ForeachSGD]] = {
    "adam": ForeachAdam,
    "adamw": ForeachAdamW,
    "sgd": ForeachSGD,
}


@torch.no_grad()
def clip_gradients(params: Sequence[nn.Parameter], clip_value: float | None, clip_norm: float | None) -> None:
    """Clip each member's gradient as `torch.nn.utils.clip_grad_value_` and `clip_grad_norm_` would alone.

    Every parameter is stacked along a leading member axis, so the norm is
    taken per member (over all of that member's parameters) and each member
    is scaled by its own factor, min(1, clip_norm / (norm + 1e-6)).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if clip_value is not None:
        torch._foreach_clamp_min_(grads, -clip_value)
        torch._foreach_clamp_max_(grads, clip_value)
    if clip_norm is not None:
        per_parameter = torch.stack([torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1) for g in grads])
        norms = torch.linalg.vector_norm(per_parameter, dim=0)  # (members,)
        scale = (clip_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
