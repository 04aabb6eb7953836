"""Parsing selections such as ``addition,weighted_sum[n=10],mlp[width=8,act=tanh]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FuncbenchError
from .registry import SELECTABLE_NAME

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Selector:
    name: str
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}[{inner}]" if self.params else self.name


def parse_selection(text: str, what: str = "selection") -> list[Selector]:
    """Split a comma-separated list of ``name`` or ``name[key=value,...]``."""
    selectors, rest = [], text.strip()
    if not rest:
        raise FuncbenchError(f"empty {what}; give one or more names separated by commas, or 'all'")
    while rest:
        selector, rest = _one(rest, what)
        selectors.append(selector)
        rest = rest.lstrip()
        if rest.startswith(","):
            rest = rest[1:].lstrip()
            if not rest:
                raise FuncbenchError(f"{what} '{text}' ends with a comma; remove it or add a name after it")
        elif rest:
            raise FuncbenchError(f"{what} '{text}': expected ',' before '{rest}'")
    return selectors


def _one(text: str, what: str) -> tuple[Selector, str]:
    match = SELECTABLE_NAME.match(text)
    if not match:
        raise FuncbenchError(f"{what}: '{text}' does not start with a name (letters, digits, _ . -)")
    name, rest = match.group(), text[match.end() :]
    if not rest.startswith("["):
        return Selector(name), rest
    close = rest.find("]")
    if close < 0:
        raise FuncbenchError(f"{what}: '{name}{rest}' has '[' without a closing ']'")
    params: dict[str, str] = {}
    body = rest[1:close]
    for item in body.split(",") if body.strip() else []:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not _KEY.fullmatch(key) or not value or "[" in value:
            raise FuncbenchError(f"{what}: '{item.strip()}' in '{name}[{body}]' is not of the form key=value")
        if key in params:
            raise FuncbenchError(f"{what}: '{key}' is given twice in '{name}[{body}]'")
        params[key] = value
    return Selector(name, tuple(params.items())), rest[close + 1 :]
