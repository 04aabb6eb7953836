"""Errors a user can cause, the one-line messages that explain them, and the exit codes they end with.

Exit codes of ``bench`` (documented in the README):

- 0: everything asked for ran;
- 1: the run completed, but some targets or cells were skipped or failed (each one said on stderr);
- 2: a usage error: bad input, nothing was run (`FuncbenchError`);
- 3: out of resources: memory or disk (`ResourceError`); finished cells are kept;
- 130 and 143: interrupted by SIGINT (Ctrl-C) or SIGTERM; finished cells are kept.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import traceback
from collections.abc import Iterable
from pathlib import Path

PROBLEMS_EXIT = 1


class FuncbenchError(ValueError):
    """A problem with the user's input: ``bench`` shows it as one line, never a traceback.

    From Python (`benchmark.run`, `benchmark.load`), it is the exception raised, with the same line;
    a ValueError, as a bad argument is.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Messages quote what the user typed, which may hold a newline or a
        # control character: escape those, and the message stays one line.
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message)))


class ModelError(Exception):
    """A model family that fails as it is written (a plugin's hook raised, say): its cells fail, the run goes on.

    Its message is one line naming the model; not a `FuncbenchError`, which would stop the run.
    """

    @classmethod
    def of(cls, model, exc: Exception) -> ModelError:
        """`exc`, met in model spec `model`'s code, as one line naming the plugin and the model."""
        return cls(f"{model.origin}: model '{model.label}': {exc}")


class ResourceError(FuncbenchError):
    """The machine lacks what the run needs (memory, disk): not the user's typo, but theirs to fix."""

    exit_code = 3


#: errno values that mean the disk is full, and that the place cannot be written at all.
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (itself, its cause or context), where it is one a user can act on.

    matplotlib, for one, hides a full disk behind an AttributeError raised
    while it cleans up; the OSError is still in the chain.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL | _READ_ONLY:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def write_failure(exc: OSError, path: Path | str, saved: str) -> FuncbenchError:
    """The one-line error for a write that failed: a full disk, or a place that cannot be written.

    `saved` says what is kept nonetheless, e.g. "finished cells are saved in reports/run-x".
    """
    filename = getattr(exc, "filename", None) or path
    if exc.errno in _FULL:
        return ResourceError(f"no space left on device writing {filename}; {saved}")
    reason = exc.strerror or "permission denied"
    return FuncbenchError(f"cannot write {filename}: {reason.lower()}; {saved}")


@contextlib.contextmanager
def one_line_write_failures(where: Path | str, saved: str):
    """Turn a full disk, or a place that cannot be written, met anywhere inside into `write_failure`'s one line."""
    try:
        yield
    except Exception as exc:
        cause = os_error_in(exc)
        if cause is None:
            raise
        raise write_failure(cause, where, saved) from None


def unknown_name(kind: str, name: str, known: Iterable[str]) -> FuncbenchError:
    """The error for a misspelt name, suggesting the closest valid ones."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"
    return FuncbenchError(f"unknown {kind} '{name}'; {hint}")


def describe_exception(exc: BaseException) -> str:
    """A plugin's exception on one line: its type, first message line and where it was raised.

    An exception that crossed from a worker process carries where it was
    raised in `where` (see `executors`), its traceback being gone.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = getattr(exc, "where", None)
    where = f" ({where})" if where else f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({Path(exc.filename).name}:{exc.lineno})"
    return f"{type(exc).__name__}: {first_line(exc)}{where}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" where it has none)."""
    return str(exc).splitlines()[0] if str(exc) else ""
