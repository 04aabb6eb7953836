"""Errors a user can cause, and the one-line messages that explain them."""

from __future__ import annotations

import difflib
import traceback
from collections.abc import Iterable
from pathlib import Path


class FuncbenchError(Exception):
    """A problem with the user's input: shown as one line, never a traceback."""

    def __init__(self, message: str) -> None:
        # Messages quote what the user typed, which may hold a newline or a
        # control character: escape those, and the message stays one line.
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message)))


def unknown_name(kind: str, name: str, known: Iterable[str]) -> FuncbenchError:
    """The error for a misspelt name, suggesting the closest valid ones."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
    return FuncbenchError(f"unknown {kind} '{name}'; {hint}")


def describe_exception(exc: BaseException) -> str:
    """A plugin's exception on one line: its type, first message line and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({Path(exc.filename).name}:{exc.lineno})"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}{where}"
