"""Errors a user can cause, and the one-line messages that explain them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FuncbenchError(Exception):
    """A problem with the user's input: shown as one line, never a traceback."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> FuncbenchError:
    """The error for a misspelt name, suggesting the closest valid ones."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
    return FuncbenchError(f"unknown {kind} '{name}'; {hint}")
