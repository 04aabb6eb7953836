"""Many small torch networks trained as one: stacked parameters, batched matmuls.

Each layer holds a weight of shape (seeds, in, out) and a bias of shape
(seeds, 1, out), so one `torch.baddbmm` runs every member's layer at once.
The loss is the sum of the members' own mean losses: its gradient with
respect to a member's parameters is exactly that member's own gradient, and
Adam is elementwise, so each member trains as it would alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..formula import Expression, linear_form
from .base import TrainingData, TrainingLog, TrainSettings

ACTIVATIONS = {
    "relu": nn.functional.relu,
    "tanh": torch.tanh,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
    "sigmoid": torch.sigmoid,
    "relu6": nn.functional.relu6,  # a baseline of the neural arithmetic units paper
}


class StackedLinear(nn.Module):
    """One affine layer per seed, initialised as `nn.Linear` would be.

    Member s draws its weight and bias from `generators[s]` in nn.Linear's
    order and distribution (U(-1/sqrt(in), 1/sqrt(in)) for both), so a seed's
    initial layer equals `nn.Linear(in, out)` made after `torch.manual_seed(seed)`.
    """

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator]):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        weights, biases = [], []
        for g in generators:
            weights.append(torch.empty(out_features, in_features).uniform_(-bound, bound, generator=g).T)
            biases.append(torch.empty(1, out_features).uniform_(-bound, bound, generator=g))
        self.weight = nn.Parameter(torch.stack(weights).contiguous())
        self.bias = nn.Parameter(torch.stack(biases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def _unit(self) -> tuple[np.ndarray, np.ndarray]:
        """Per member, the weights (seeds, in) and bias (seeds,) of a single-output layer."""
        return self.weight.detach().cpu().double().numpy()[:, :, 0], self.bias.detach().cpu().double().numpy()[:, 0, 0]

    def readable_parameters(self, inputs: Sequence[str]) -> list[dict[str, float]]:
        """Per member: `weight[<input>]` and `bias`."""
        weights, biases = self._unit()
        return [
            {**{f"weight[{name}]": float(w) for name, w in zip(inputs, ws)}, "bias": float(b)}
            for ws, b in zip(weights, biases)
        ]

    def formulas(self) -> list[Expression]:
        return [linear_form(ws, b) for ws, b in zip(*self._unit())]


class StackedMLP(nn.Module):
    """Stacked layers with an activation between them (none after the last)."""

    def __init__(self, widths: Sequence[int], activation: str, generators: Sequence[torch.Generator]):
        super().__init__()
        self.layers = nn.ModuleList(StackedLinear(a, b, generators) for a, b in zip(widths, widths[1:]))
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation_name in _StackedMLPFunction.ACTIVATIONS:
            params = [p for layer in self.layers for p in (layer.weight, layer.bias)]
            return _StackedMLPFunction.apply(self.activation_name, x, *params)
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, batched; as (b^T a^T)^T where b has one column.

    The same products, but a single row times a matrix runs as a matrix
    kernel, where a matrix times a single column falls to the library's
    batched matrix-vector path: measured 5 to 9 times slower for 100
    members' readouts of 64 units over a batch of 200 on 2 CPU cores.
    """
    if b.shape[2] == 1:
        return torch.bmm(b.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)
    return torch.bmm(a, b)


class _StackedMLPFunction(torch.autograd.Function):
    """A stacked MLP with ReLU or tanh, its backward pass written out.

    It runs the operations autograd would, but keeps fewer tensors alive
    and avoids the slow shapes: the activation is applied in place to the
    pre-activation, since ReLU's and tanh's derivatives need only the
    output; each activation's gradient is written over the incoming
    gradient; the readout's gradient with respect to its input is a
    broadcast product rather than a batched matmul with an inner dimension
    of 1; and products with a single column run transposed (`_product`).
    The gradients are autograd's for the same forward pass, to rounding
    (a test checks), and like every step here they do not depend on the
    other members (the cell-batching test checks that to the last bit).
    An ensemble of small MLPs spends its step writing activations of shape
    (members, batch, width) to memory, so this was measured to cut the step
    of 64 to 100 members of one or two hidden layers of 64 by a quarter to
    two fifths on 2 CPU cores.
    """

    ACTIVATIONS = ("relu", "tanh")

    @staticmethod
    def forward(ctx, activation: str, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        weights, biases = params[0::2], params[1::2]
        outputs = []
        h = x
        for w, b in zip(weights[:-1], biases[:-1]):
            h = torch.baddbmm(b, h, w)
            h = h.clamp_min_(0) if activation == "relu" else h.tanh_()
            outputs.append(h)
        ctx.activation = activation
        ctx.save_for_backward(x, *weights, *outputs)
        return _product(h, weights[-1]) + biases[-1]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, *saved = ctx.saved_tensors
        layers = (len(saved) + 1) // 2
        weights, layer_inputs = saved[:layers], [x, *saved[layers:]]
        grads: list[torch.Tensor] = []
        grad_x = None
        for index in reversed(range(layers)):
            a, w = layer_inputs[index], weights[index]
            grads += [grad.sum(1, keepdim=True), _product(a.transpose(1, 2), grad)]  # bias, weight
            if index == 0 and not ctx.needs_input_grad[1]:
                break
            # With one output, g @ w^T is an outer product: a broadcast multiply does it without a matmul.
            grad_a = grad * w.transpose(1, 2) if w.shape[2] == 1 else torch.bmm(grad, w.transpose(1, 2))
            if index == 0:
                grad_x = grad_a
            elif ctx.activation == "relu":
                grad = torch.ops.aten.threshold_backward.grad_input(grad_a, a, 0, grad_input=grad_a)
            else:
                grad = torch.ops.aten.tanh_backward.grad_input(grad_a, a, grad_input=grad_a)
        return None, grad_x, *reversed(grads)


class TorchEnsemble:
    """The `Model` protocol for a stacked torch module.

    The module may define `penalty(ramp)` (a regulariser per member, added
    to the loss, given how far `TrainSettings.ramp` has brought it), `constrain_()` (applied after every optimiser step),
    `readable_parameters(inputs)` and `formulas()`; a plain module has none.
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
            batches = _fresh_batches(data.fresh, settings, data.x.shape[2], self.device)
        else:
            # Each member shuffles with its own stream, so its batches do not
            # depend on which other seeds share the ensemble.
            shuffles = [np.random.default_rng([seed, 0x5EED]) for seed in self.seeds]
            batches = _epoch_batches(self._tensor(data.x), self._tensor(data.y), settings, shuffles)
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
        return read() if read else [None for _ in self.seeds]

    def members(self, index: slice, inputs: tuple[str, ...]) -> TorchEnsemble:
        # Every parameter is stacked along its first axis (checked when
        # fitting), so a copy with each parameter sliced is those members alone.
        module = copy.deepcopy(self.module)
        with torch.no_grad():
            for p in module.parameters():
                p.data = p.data[index].clone()
        return TorchEnsemble(module, inputs, self.seeds[index], str(self.device))


class ForeachAdam:
    """Adam with torch's foreach kernels: `torch.optim.Adam(params, lr, foreach=True)`, operation for operation.

    The same kernels in the same order with the same scalars, so the numbers
    are torch's to the last bit (a test checks). It exists because building
    any `torch.optim` optimizer imports torch's compiler stack
    (`torch._dynamo`), measured at 1.5 to 2 s, which every worker process
    paid before its first step. Not fused=True: the fused CPU kernel rounds
    an element differently in its vectorised body and its scalar tail, so a
    member's trajectory would depend on how many members share the tensor
    (and cell batching would change results).
    """

    def __init__(self, params: Sequence[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
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


def seed_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds]


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


def _epoch_batches(
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


def _fresh_batches(
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


def fit_ensemble(
    module: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    monitor: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
    settings: TrainSettings,
    samples: int,
) -> TrainingLog:
    """Adam on MSE, all members at once, with periodic evaluation.

    Every `evaluation_interval` steps (and before the first) each monitored
    split is scored per member. Training by steps keeps, per member, the
    parameters that scored best on the first monitored split (the
    validation split); training by epochs keeps the final ones.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    # The foreach kernels update every parameter in a few calls; the members
    # stay independent since Adam is elementwise.
    optimizer = ForeachAdam(params, lr=settings.learning_rate)
    penalty = getattr(module, "penalty", None)
    constrain = getattr(module, "constrain_", None)
    total = settings.total_steps(samples)
    interval = settings.evaluation_interval(samples)
    # The article logs its loss once per epoch; training by steps logs it at each evaluation.
    loss_interval = interval if settings.by_steps else -(-samples // settings.batch_size)
    log = _Log(module, monitor, keep_best=settings.by_steps)
    log.evaluate(0)
    running = None
    count = 0
    for step, (xb, yb) in enumerate(batches, start=1):
        per_member = (module(xb) - yb).square().mean(dim=(1, 2))
        loss = per_member.sum()
        regulariser = penalty(settings.ramp(step)) if penalty is not None else None
        if regulariser is not None:
            loss = loss + regulariser.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if constrain is not None:
            constrain()
        running = per_member.detach() if running is None else running + per_member.detach()
        count += 1
        if step % loss_interval == 0 or step == total:
            log.log_loss(step, running / count)
            running, count = None, 0
        if step % interval == 0 or step == total:
            log.evaluate(step)
    return log.finish()


class _Log:
    """Scores the monitored splits and keeps each member's best parameters."""

    def __init__(self, module: nn.Module, monitor: Sequence[tuple[str, torch.Tensor, torch.Tensor]], keep_best: bool):
        members = {p.shape[0] for p in module.parameters()}
        if len(members) != 1 or list(module.buffers()):
            # Keeping a member's best parameters copies slices along the seed axis.
            raise ValueError("a stacked module needs every parameter stacked along a leading seed axis, and no buffers")
        self.module = module
        self.monitor = monitor
        self.keep_best = keep_best
        self.steps: list[int] = []
        self.loss_steps: list[int] = []
        self.losses: list[torch.Tensor] = []
        self.scores: dict[str, list[torch.Tensor]] = {name: [] for name, _, _ in monitor}
        self.best: list[torch.Tensor] | None = None
        self.best_score: torch.Tensor | None = None
        self.kept_step: torch.Tensor | None = None

    def log_loss(self, step: int, loss: torch.Tensor) -> None:
        self.loss_steps.append(step)
        self.losses.append(loss)

    @torch.no_grad()
    def evaluate(self, step: int) -> None:
        scores = {}
        for name, x, y in self.monitor:
            scores[name] = (evaluate_in_chunks(self.module, x).double() - y).square().mean(dim=(1, 2))
            self.scores[name].append(scores[name])
        self.steps.append(step)
        if not self.keep_best or not self.monitor:
            return
        validation = scores[self.monitor[0][0]]
        params = list(self.module.parameters())
        if self.best is None:
            self.best = [p.detach().clone() for p in params]
            self.best_score = torch.where(torch.isnan(validation), torch.inf, validation)
            self.kept_step = torch.zeros_like(validation, dtype=torch.long)
            return
        improved = validation < self.best_score  # NaN never improves
        if improved.any():
            for kept, p in zip(self.best, params):
                kept[improved] = p.detach()[improved]
            self.best_score = torch.where(improved, validation, self.best_score)
            self.kept_step = torch.where(improved, step, self.kept_step)

    @torch.no_grad()
    def finish(self) -> TrainingLog:
        if self.best is not None:
            for kept, p in zip(self.best, self.module.parameters()):
                p.copy_(kept)
            kept_step = self.kept_step.cpu().numpy()
        else:
            kept_step = np.full(len(self.losses[0]), self.steps[-1])
        return TrainingLog(
            loss_steps=np.asarray(self.loss_steps),
            loss=torch.stack(self.losses, dim=1).double().cpu().numpy(),
            steps=np.asarray(self.steps),
            monitored={name: torch.stack(s, dim=1).cpu().numpy() for name, s in self.scores.items()},
            kept_step=kept_step,
        )
