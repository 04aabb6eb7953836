"""The improved NALU (Schlor, Ring and Hotho, "iNALU: Improved Neural Arithmetic Logic Unit", 2020).

Separate weights for the two paths, the sign of a product recovered from
the inputs, and a gate that does not depend on the input:

    W_a = tanh(W_a^) * sigmoid(M_a^),  W_m = tanh(W_m^) * sigmoid(M_m^)
    a = x W_a
    m = exp(min(log(max(|x|, eps)) W_m, omega))         eps = 1e-7, omega = 20
    sign_j = prod_i (sign(x_i) |W_m,ij| + 1 - |W_m,ij|)
    y = sigmoid(g) a + (1 - sigmoid(g)) m sign

W_a^ and W_m^ ~ N(0.88, 0.2), M_a^ and M_m^ ~ N(0.5, 0.2), g ~ N(0, 0.2).
As in nalm-benchmark's port, training clips every gradient element to
[-0.1, 0.1] (the family's ``clip_value``), and:

- the regulariser 0.05 * sum over the five raw tensors of
  mean(max(20 - |p|, 0)) pushes them away from 0; it applies once
  `progress` reaches 1 (the family's schedule puts that at 20% of the
  training, the published 10,000 of 50,000 steps) and while the member's
  training loss is below 1 (the reference checks a validation error;
  funcbench's hooks see the training loss);
- a member is reinitialised, from the same distributions, when it stops
  learning: every 10 steps, once it has 5,000 losses since its last reset,
  if the mean of the older half of its last 5,000 losses is at most the
  mean plus the standard deviation of the newer half, and that newer mean
  is above 1. (The reference compares the halves of every loss since the
  reset; funcbench keeps the last 5,000, so the state has a fixed size.)
  Its optimiser state is kept, as in the reference. Each member draws its
  new parameters from its own stream (its seed and how often it was
  reset), so a reset does not depend on the other members.
"""

from __future__ import annotations

import torch
from torch import nn

from .network import Unit, product

LOG_FLOOR = 1e-7
EXP_CAP = 20.0
#: Losses kept per member for the reinitialisation test, and how often it runs.
WINDOW, CHECK_EVERY = 5_000, 10
#: (mean, std) of each raw parameter's normal initialisation.
INITIAL = {"W_a_hat": (0.88, 0.2), "M_a_hat": (0.5, 0.2), "W_m_hat": (0.88, 0.2), "M_m_hat": (0.5, 0.2), "g": (0.0, 0.2)}


class INALU(Unit):
    """y = sigmoid(g) x W_a + (1 - sigmoid(g)) exp(log|x| W_m) sign."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        for name, (mean, std) in INITIAL.items():
            shape = (out_features,) if name == "g" else (in_features, out_features)
            setattr(self, name, nn.Parameter(torch.empty(shape).normal_(mean, std)))
        # The reinitialisation's state: a stream of its own, the recent losses, how many since the reset.
        self.register_buffer("stream", torch.randint(0, 2**62, ()))
        self.register_buffer("resets", torch.zeros((), dtype=torch.long))
        self.register_buffer("losses", torch.zeros(WINDOW))
        self.register_buffer("since_reset", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tanh(self.W_a_hat) * torch.sigmoid(self.M_a_hat),
                torch.tanh(self.W_m_hat) * torch.sigmoid(self.M_m_hat))

    def weight(self) -> torch.Tensor:
        return self.weights()[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_a, w_m = self.weights()
        added = product(x, w_a)
        multiplied = torch.exp(torch.clamp(product(torch.log(x.abs().clamp_min(LOG_FLOOR)), w_m), max=EXP_CAP))
        magnitude = w_m.abs().unsqueeze(-3)  # (..., 1, in, out) against x's (..., n, in, 1)
        sign = (torch.sign(x).unsqueeze(-1) * magnitude + 1 - magnitude).prod(dim=-2)
        gate = torch.sigmoid(self.g).unsqueeze(-2)
        return gate * added + (1 - gate) * multiplied * sign

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        if progress < 1:
            return {}
        term = sum(torch.relu(EXP_CAP - getattr(self, name).abs()).mean(dim=(-1,) if name == "g" else (-2, -1))
                   for name in INITIAL)
        below = (self._latest() < 1).to(term.dtype)
        return {"saturation": 0.05 * below * term}

    def _latest(self) -> torch.Tensor:
        index = (self.steps - 1).clamp_min(0) % WINDOW
        return self.losses.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    def after_step(self, loss: torch.Tensor) -> None:
        index = self.steps % WINDOW
        self.losses.scatter_(-1, index.unsqueeze(-1), loss.to(self.losses.dtype).unsqueeze(-1))
        self.steps += 1
        self.since_reset += 1
        steps = int(self.steps.reshape(-1)[0])  # every member has taken every step
        if steps % CHECK_EVERY or not bool((self.since_reset >= WINDOW).any()):
            return
        # The last WINDOW losses, oldest first, per member: the ring of losses from the next slot to write.
        start = steps % WINDOW
        recent = torch.cat([self.losses[..., start:], self.losses[..., :start]], dim=-1)
        older, newer = recent[..., : WINDOW // 2], recent[..., WINDOW // 2:]
        stalled = older.mean(-1) <= newer.mean(-1) + newer.std(-1)
        fire = (self.since_reset >= WINDOW) & stalled & (newer.mean(-1) > 1)
        for member in fire.reshape(-1).nonzero().flatten().tolist():
            self._reinitialise(member)

    def _reinitialise(self, member: int) -> None:
        """Draw member `member`'s parameters afresh, from its own stream."""
        resets, stream = self.resets.view(-1), self.stream.view(-1)
        generator = torch.Generator().manual_seed(int(stream[member]) + 1_000_003 * int(resets[member]))
        for name, (mean, std) in INITIAL.items():
            p = getattr(self, name)
            shape = p.shape[-1:] if name == "g" else p.shape[-2:]
            p.view(-1, *shape)[member] = torch.empty(shape).normal_(mean, std, generator=generator)
        resets[member] += 1
        self.since_reset.view(-1)[member] = 0
