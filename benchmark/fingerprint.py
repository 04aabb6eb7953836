"""What a result depends on, hashed: the code of a target or model, the files it comes from, the libraries.

A cell's id (`plan.Cell.id`) is built from these, so that a result is
reused only where everything that decided it is unchanged:

- the function itself (its source, or its bytecode where there is none);
- the whole module it comes from: a plugin file's full text, so an edited
  constant or helper anywhere in the file is a new cell; for a package, its
  distribution's name and version and the contents of every ``.py`` file
  of its top-level package (funcbench's own engine included, its report
  aside, which draws results and decides none);
- the libraries that compute the numbers: torch, numpy and scikit-learn.

Modules a plugin file imports from beside it, rather than from an installed
package, are not followed: their changes are not seen.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

#: Set by `plugins` on a module made from a plugin file: the file's text, as the module ran it.
SOURCE_ATTRIBUTE = "__funcbench_source__"
#: Libraries whose version can change a computed number.
COMPUTING_LIBRARIES = ("torch", "numpy", "scikit-learn")
#: Subpackages of a package that decide no result (funcbench's report draws them afterwards).
NOT_RESULTS = {"benchmark": ("report",)}


def stable_hash(payload: object) -> str:
    """sha256 of a JSON rendering with sorted keys: equal payloads, equal hashes, across runs."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def code_fingerprint(fn: Callable) -> str:
    """The source of a function where Python can find it, else its bytecode and constants.

    Kept per function object, since every cell id asks again for the same few
    functions (reading a source block was measured at 1.6 ms, 3.6 of the 4.9 s
    that the single-layer suite's 468 cell ids took). An edited plugin, imported
    again, is new function objects, so it is read afresh.
    """
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return repr((code.co_code, code.co_consts)) if code is not None else repr(fn)


def origin_fingerprint(fn: Callable) -> str:
    """A hash of everything `fn` is defined among: its plugin file's text, or its package's version and files."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    if module is None:
        return ""
    text = getattr(module, SOURCE_ATTRIBUTE, None)
    if text is not None:
        return stable_hash(["plugin file", text])
    return package_fingerprint(module.__name__.partition(".")[0])


@functools.cache
def package_fingerprint(top_level: str) -> str:
    """The distribution(s) that ship `top_level`, their versions, and a hash of its Python files ("" if none)."""
    module = sys.modules.get(top_level)
    if module is None:
        return ""
    roots = [Path(p) for p in getattr(module, "__path__", [])] or (
        [Path(module.__file__)] if getattr(module, "__file__", None) else [])
    skip = NOT_RESULTS.get(top_level, ())
    digest = hashlib.sha256()
    for root in roots:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            relative = path.relative_to(root) if root.is_dir() else Path(path.name)
            if relative.parts[0] in skip:
                continue
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    if not roots:  # a built-in or frozen module: its interpreter decides it
        digest.update(sys.version.encode())
    # A source checkout's egg-info can name the same distribution a second time: count each once.
    distributions = sorted(set(metadata.packages_distributions().get(top_level, [])))
    return stable_hash([top_level, [(d, _version(d)) for d in distributions], digest.hexdigest()])


@functools.cache
def library_versions() -> dict[str, str]:
    """The versions of the libraries that compute the numbers."""
    return {name: _version(name) for name in COMPUTING_LIBRARIES}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
