"""Plain torch modules as model families: `@torch_model`, the hooks a module may define, and how its seeds train as one.

A researcher writes an ordinary `torch.nn.Module` for one seed: `forward`
maps (batch, inputs) to (batch, 1), with no seed axis anywhere::

    @torch_model(description="y = v . (W x + c)^2 + d", learning_rate=0.01)
    def quadnet(inputs: int, hidden: int = 8) -> torch.nn.Module:
        return Quad(inputs, hidden)

funcbench builds one copy per seed and trains them all at once:

- **Per-seed rule.** Seed s's member is the module the factory returns
  right after ``torch.manual_seed(s)``, built on the CPU; torch's global
  generator is restored afterwards. So seed s starts from the same
  parameters however many other seeds are built beside it.
- **Stacking.** The copies' parameters and buffers are stacked along a
  new leading member axis (`torch.func.stack_module_state`) and the
  module runs on them through `torch.func.functional_call` under
  `torch.func.vmap`: one call runs every member. A module whose every
  operation already broadcasts over leading axes of its parameters and
  inputs (``x @ W`` rather than ``F.linear(x, W)``) may say so with the
  class attribute ``broadcasts_over_members = True``; it then runs on the
  stacked tensors directly, which is faster, and `benchmark.testing`
  checks that both ways give the same numbers.
- **Training** is the loop every torch family trains with
  (`benchmark.train.loop`), with the same guarantees: a member trains as
  it would alone, a diverging seed is marked on its own, and cells of one
  family on targets of one shape batch together.

The optional hooks are declared by `ModelHooks` and checked when the
plugin loads (where the factory's return annotation names the module's
class) and again on the first module built. `regularizer` and `after_step`
run every step on all members at once, under `vmap` (or on the stacked
tensors): like `forward`, they must be tensor operations, with no
``.item()`` and no Python ``if`` on a tensor's value, and a plain Python
attribute they change is one attribute for all members. `formula` and
`readable_parameters` run after training on each member alone, on its own
tensors, and may read them as numbers.
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..errors import FuncbenchError, ModelError, describe_exception
from ..fingerprint import code_fingerprint, origin_fingerprint, stable_hash
from ..formula import Expression, Input
from ..model import Model, ModelSpec
from ..registry import Entry, parameters_of
from .ensemble import TorchEnsemble


class ModelHooks(Protocol):
    """The hooks a module may define, each optional, each written for one member (see the module's docstring)."""

    def regularizer(self, progress: float) -> Mapping[str, torch.Tensor]:
        """Named penalty terms, each a scalar tensor.

        Their sum, times the run's regulariser strength (``--reg-strength``,
        by default the family's), is added to the loss. `progress` runs
        from 0 to 1 between the run's ``--reg-start`` and ``--reg-end``
        (stable-nalu's ``regualizer()`` schedule); each term is logged per
        seed in curves.parquet as ``reg_<name>``.
        """
        ...

    def after_step(self) -> None:
        """Called under ``no_grad`` after every optimiser step: e.g. the NAU's clamp of W to [-1, 1].

        It may instead take one argument, ``loss``: the member's training loss at this step.
        """
        ...

    #: Optional: names of the hooks above that this instance defines but does not use (a container
    #: whose layers have none), so funcbench need not call them at every step.
    unused_hooks: tuple[str, ...]

    def formula(self, inputs: Sequence[Expression]) -> Expression | Sequence[Expression] | None:
        """The learned function as a formula of `inputs` (one `benchmark.formula.Input` each), or None."""
        ...

    def readable_parameters(self) -> Mapping[str, float]:
        """A few named numbers for params.parquet. It may instead take the inputs' names as one argument."""
        ...


#: Each hook and how many arguments it takes: one count, or the choice of two.
HOOKS: dict[str, tuple[int, ...]] = {"regularizer": (1,), "after_step": (0, 1), "formula": (1,),
                                     "readable_parameters": (0, 1)}
#: How alike a method name must be to a hook's (difflib's ratio) to be taken for a misspelt hook.
NEAR_MISS = 0.85

_VMAP_FALLBACK = "There is a performance drop because we have not yet implemented the batching rule"


def hook_problems(cls: type) -> list[str]:
    """What is wrong with the hooks a module class defines: a wrong signature, or a name that is almost a hook's."""
    problems = []
    base = set(dir(nn.Module))
    for name in dir(cls):
        if name.startswith("_") or name in base:
            continue
        if name in HOOKS:
            counts = HOOKS[name]
            method = getattr(cls, name)
            if not callable(method):
                problems.append(f"its hook '{name}' is not a method")
                continue
            try:
                parameters = list(inspect.signature(method).parameters.values())[1:]  # without self
            except (TypeError, ValueError):
                continue
            positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            required = [p for p in positional if p.default is inspect.Parameter.empty]
            varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
            if not any(len(required) <= count and (count <= len(positional) or varargs) for count in counts):
                wanted = " or ".join(str(c) for c in counts)
                problems.append(f"its hook '{name}' takes {len(required)} argument(s); it must take {wanted}")
            continue
        close = difflib.get_close_matches(name, HOOKS, n=1, cutoff=NEAR_MISS)
        if close and callable(getattr(cls, name, None)):
            problems.append(f"its method '{name}' is not a hook funcbench calls; did you mean '{close[0]}'?")
    return problems


def _takes_argument(method: Callable) -> bool:
    return len(inspect.signature(method).parameters) >= 1


class _Method(nn.Module):
    """A module's named method as `forward`, so `functional_call` can run any hook on given tensors."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Any) -> Any:
        return getattr(self.module, self.method)(*args)


class MemberStack(nn.Module):
    """Copies of one module, one per member, as a stacked module for `TorchEnsemble`.

    `stacked` is the first copy holding every member's tensors, each
    stacked along a leading axis: its `parameters()` are what the optimiser
    updates. It runs through `torch.func` on a parameterless template, or,
    where the class says ``broadcasts_over_members``, directly.
    """

    def __init__(self, copies: Sequence[nn.Module]):
        super().__init__()
        first = copies[0]
        self.broadcasts = bool(getattr(first, "broadcasts_over_members", False))
        params, buffers = stack_module_state(list(copies))
        stacked = copy.deepcopy(first)
        for name, tensor in params.items():
            owner, _, leaf = name.rpartition(".")
            setattr(stacked.get_submodule(owner), leaf,
                    nn.Parameter(tensor.detach().clone(), requires_grad=first.get_parameter(name).requires_grad))
        for name, tensor in buffers.items():
            owner, _, leaf = name.rpartition(".")
            stacked.get_submodule(owner)._buffers[leaf] = tensor.detach().clone()
        self.stacked = stacked
        # Not registered as submodules: their tensors are replaced on every call.
        object.__setattr__(self, "_template", copy.deepcopy(first).to("meta"))
        object.__setattr__(self, "_methods", {})
        # A container may define a hook that does nothing for this instance, and say so (`unused_hooks`).
        self.hooks = {name for name in HOOKS if callable(getattr(first, name, None))} - set(
            getattr(first, "unused_hooks", ()))
        self.after_step_takes_loss = "after_step" in self.hooks and _takes_argument(first.after_step)
        self.readable_takes_inputs = ("readable_parameters" in self.hooks
                                      and _takes_argument(first.readable_parameters))

    @property
    def n_members(self) -> int:
        return next(iter(self._state().values())).shape[0]

    def _state(self) -> dict[str, torch.Tensor]:
        return {**dict(self.stacked.named_parameters()), **dict(self.stacked.named_buffers())}

    def _call(self, method: str, state: Mapping[str, torch.Tensor], *args: Any) -> Any:
        """`method` of one member (or, broadcasting, of all) with its tensors in `state`."""
        if method == "forward":
            return functional_call(self._template, dict(state), args)
        if method not in self._methods:
            self._methods[method] = _Method(self._template, method)
        return functional_call(self._methods[method], {f"module.{k}": v for k, v in state.items()}, args)

    def _vmapped(self, method: str, *args: Any) -> Any:
        return vmap(lambda state: self._call(method, state, *args))(self._state())

    def _hook(self, name: str, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except (FuncbenchError, ModelError):
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's hook may raise anything
            raise ModelError(f"its {name}() raised {describe_exception(exc)}") from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.broadcasts:
            return self.stacked(x)
        return vmap(lambda state, xs: self._call("forward", state, xs))(self._state(), x)

    def regularizer(self, progress: float) -> dict[str, torch.Tensor]:
        if "regularizer" not in self.hooks:
            return {}
        if self.broadcasts:
            return self._hook("regularizer", lambda: dict(self.stacked.regularizer(progress)))
        # A term left out for some members and not others cannot be stacked: the hook leaves it out for all or none.
        return self._hook("regularizer", lambda: dict(self._vmapped("regularizer", progress)))

    def after_step(self, loss: torch.Tensor) -> None:
        """Every member's `after_step`; the loop calls it under ``no_grad``."""
        if "after_step" not in self.hooks:
            return
        args = (loss.detach(),) if self.after_step_takes_loss else ()
        if self.broadcasts:
            self._hook("after_step", lambda: self.stacked.after_step(*args))
            return

        def one(state: dict[str, torch.Tensor], *member_args: torch.Tensor) -> torch.Tensor:
            self._call("after_step", state, *member_args)
            return torch.zeros(())  # vmap needs a tensor out; the hook works in place

        with warnings.catch_warnings():
            # In-place updates such as clamp_ have no batching rule: torch loops over the members, which is right here.
            warnings.filterwarnings("ignore", message=_VMAP_FALLBACK)
            self._hook("after_step", lambda: vmap(one)(self._state(), *args))

    def member_state(self, index: int) -> dict[str, torch.Tensor]:
        return {name: tensor[index] for name, tensor in self._state().items()}

    @torch.no_grad()
    def formulas(self, inputs: Sequence[str]) -> list[Expression | None]:
        if "formula" not in self.hooks:
            return [None] * self.n_members
        terms = tuple(Input(i) for i in range(len(inputs)))
        return [self._hook("formula", lambda s=s: _one_expression(self._call("formula", self.member_state(s), terms)))
                for s in range(self.n_members)]

    @torch.no_grad()
    def readable_parameters(self, inputs: Sequence[str]) -> list[dict[str, float]]:
        if "readable_parameters" not in self.hooks:
            return [{} for _ in range(self.n_members)]
        args = (tuple(inputs),) if self.readable_takes_inputs else ()
        read = []
        for s in range(self.n_members):
            read.append(self._hook("readable_parameters", lambda s=s: {
                str(k): float(v) for k, v in dict(self._call("readable_parameters", self.member_state(s), *args)).items()}))
        return read


def _one_expression(made: Any) -> Expression | None:
    if isinstance(made, Sequence) and not isinstance(made, str) and len(made) == 1:
        made = made[0]
    if made is None or isinstance(made, Expression):
        return made
    raise ModelError(f"its formula() returned {type(made).__name__}, not a benchmark.formula.Expression or None")


def build_member(factory: Callable[..., nn.Module], inputs: int, params: Mapping[str, Any], seed: int) -> nn.Module:
    """Seed `seed`'s module: the factory's, called right after ``torch.manual_seed(seed)``, on the CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return factory(inputs, **params)


def torch_model(
    *,
    description: str,
    learning_rate: float = 0.01,
    name: str | None = None,
    optimizer: str | None = None,
    loss: str | None = None,
    clip_value: float | None = None,
    clip_norm: float | None = None,
    regularizer_strength: float | None = None,
    regularizer_schedule: tuple[float, float] | None = None,
) -> Callable[[Callable[..., nn.Module]], Entry]:
    """Register a factory of plain torch modules as a model family.

    The factory's first parameter receives the number of inputs; the
    others must have defaults and int, float, bool, str or Literal
    annotations, and are selectable as ``name[key=value]``. The keyword
    arguments here are the family's training defaults, each overridden by
    a run's option of the same meaning (``--lr``, ``--optimizer``,
    ``--loss``, ``--clip-value``, ``--clip-norm``, ``--reg-strength``);
    `regularizer_schedule` is where `progress` ramps from 0 to 1, as
    fractions of the training (by default 0.4 and 0.7; ``--reg-start`` and
    ``--reg-end`` set steps instead).
    """
    training = {key: value for key, value in {
        "optimizer": optimizer, "loss": loss, "clip_value": clip_value, "clip_norm": clip_norm,
        "regularizer_strength": regularizer_strength, "regularizer_schedule": regularizer_schedule}.items()
        if value is not None}

    def register(factory: Callable[..., nn.Module]) -> Entry:
        family = name or factory.__name__
        declared = _return_class(factory)
        problems = tuple(hook_problems(declared)) if declared is not None else ()

        def make(**params: Any) -> ModelSpec:
            return _spec(factory, family, description, learning_rate, training, params)

        return Entry("model", family, description, make, parameters_of(factory, skip=1), problems=problems)

    return register


def _return_class(factory: Callable[..., Any]) -> type | None:
    """The module class the factory's return annotation names, where it names a subclass of nn.Module."""
    try:
        hint = inspect.get_annotations(factory, eval_str=True).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve is simply not used
        return None
    return hint if isinstance(hint, type) and issubclass(hint, nn.Module) and hint is not nn.Module else None


def _spec(factory: Callable[..., nn.Module], family: str, description: str, learning_rate: float,
          training: Mapping[str, Any], params: Mapping[str, Any]) -> ModelSpec:
    def build(inputs: tuple[str, ...], seeds: Sequence[int], device: str) -> Model:
        copies = [build_member(factory, len(inputs), params, seed) for seed in seeds]
        return TorchEnsemble(MemberStack(copies), inputs, seeds, device)

    @functools.cache
    def one(dim: int) -> nn.Module:
        return build_member(factory, dim, params, 0)

    @functools.cache
    def identity(dim: int) -> str:
        # The module's class may live apart from the factory (an installed package's, say). A class of
        # torch's own (nn.Sequential) is covered by torch's version, which every cell id holds.
        defined = [factory] + [cls for cls in (type(one(dim)),) if cls.__module__.partition(".")[0] != "torch"]
        return stable_hash([code_fingerprint(f) for f in defined] + [origin_fingerprint(f) for f in defined])

    def size(dim: int) -> tuple[int, int]:
        parameters = sum(t.numel() for t in one(dim).parameters())
        return parameters, parameters + dim  # activations unknown: about one per weight

    def check(x: np.ndarray) -> str | None:
        return check_module(lambda seed: build_member(factory, x.shape[1], params, seed), x)

    return ModelSpec(build, description, learning_rate=learning_rate, size=size, training=dict(training),
                     identity=identity, check=check)


def check_module(make: Callable[[int], Any], x: np.ndarray) -> str | None:
    """Why modules `make(seed)` cannot train on inputs like x (n, d), in one line; None if they can.

    Builds seeds 0 and 1, runs each alone and both as one, and calls every
    hook once, on these copies: what training would meet first, met here.
    A ValueError from the factory (a parameter's value it refuses) is
    raised, as a target family's factory's would be.
    """
    n, d = x.shape
    try:
        copies = [make(0), make(1)]
    except ValueError:
        raise  # the factory refused a parameter's value: the caller says whose mistake that is
    except Exception as exc:  # noqa: BLE001 - a plugin's factory may raise anything
        return f"cannot be built for {d} input(s): {describe_exception(exc)}"
    if not isinstance(copies[0], nn.Module):
        return f"its factory returned {type(copies[0]).__name__}, not a torch.nn.Module"
    try:
        return _module_problem(copies, x)
    except ModelError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever a plugin's module does wrong is said in one line
        return f"fails its checks: {describe_exception(exc)}"


def _module_problem(copies: list[nn.Module], x: np.ndarray) -> str | None:
    n, d = x.shape
    if problems := hook_problems(type(copies[0])):
        return problems[0]
    if not list(copies[0].parameters()):
        return "has no parameters to train"
    if len(list(copies[0].named_parameters(remove_duplicate=False))) != len(list(copies[0].named_parameters())):
        return "shares one parameter between two of its submodules (tied weights), which cannot be stacked per seed"
    xt = torch.as_tensor(x, dtype=torch.float32)
    alone = []
    for module in copies:
        try:
            with torch.no_grad():
                out = module(xt)
        except Exception as exc:  # noqa: BLE001
            return f"its forward raised {describe_exception(exc)} on inputs of shape ({n}, {d})"
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, 1):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            return f"its forward returned {shape} for inputs of shape ({n}, {d}); it must return ({n}, 1)"
        if not torch.isfinite(out).all():
            return "its forward returns non-finite values at initialisation, on inputs from the training domain"
        alone.append(out)
    stack = MemberStack(copies)
    how = "broadcasting over stacked members" if stack.broadcasts else "torch.func.vmap"
    try:
        with torch.no_grad():
            both = stack(xt.expand(2, n, d))
    except Exception as exc:  # noqa: BLE001
        return f"cannot run its members as one under {how}: {describe_exception(exc)}"
    if not all(torch.allclose(both[s], alone[s], rtol=1e-4, atol=1e-5) for s in range(2)):
        return f"gives other outputs when its members run as one ({how}) than alone"
    terms = stack.regularizer(0.5)
    if not all(isinstance(t, torch.Tensor) and t.shape == (2,) for t in terms.values()):
        return "its regularizer() must return a dict of scalar tensors"
    if stack.broadcasts and "regularizer" in stack.hooks:
        for s, module in enumerate(copies):
            own = module.regularizer(0.5)
            if own.keys() != terms.keys() or not all(torch.allclose(terms[k][s], own[k]) for k in own):
                return "gives other regularizer terms when its members run as one than alone"
    with torch.no_grad():
        stack.after_step(torch.zeros(2))
    stack.formulas(tuple(f"x{i + 1}" for i in range(d)))
    stack.readable_parameters(tuple(f"x{i + 1}" for i in range(d)))
    return None
