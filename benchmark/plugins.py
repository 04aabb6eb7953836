"""Finding targets and model families: entry points, plugin files, modules.

Load order, which decides who keeps a name both define:
1. the built-in model families of `benchmark.models`;
2. installed packages' entry points in the group ``funcbench.targets``,
   then in ``funcbench.models``, each sorted by entry-point name
   (funcbench's own targets are the one named ``builtin``);
3. each ``--plugin`` in the order given: a path to a ``.py`` file, or an
   importable module name.

A plugin's module is imported and every `Entry` it defines at top level is
registered, whatever it is (target, model family or suite) and whichever
group names it: the two groups only let a package say what it offers. A plugin that cannot be imported becomes one line in
`Registry.problems`; the others still load.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import linecache
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from .errors import FuncbenchError, describe_exception
from .fingerprint import SOURCE_ATTRIBUTE
from .registry import Entry, Registry

ENTRY_POINT_GROUPS = ("funcbench.targets", "funcbench.models")


def load_registry(plugins: Iterable[str] = (), files: Mapping[str, tuple[str, str]] | None = None) -> Registry:
    """Build the registry of every target and model this run can select.

    `files` maps a plugin file as given to (its absolute path, its text),
    as `plugin_sources` read them on another machine: such a plugin is run
    from that text rather than from the disk (see `import_plugin`).
    """
    files = files or {}
    from . import models

    registry = Registry()
    _collect(registry, models, "funcbench")
    installed = [ep for group in ENTRY_POINT_GROUPS for ep in sorted(entry_points(group=group), key=lambda e: e.name)]
    for ep in installed:
        origin = f"entry point '{ep.name}' ({ep.value})"
        try:
            loaded = ep.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is the plugin's, not ours
            registry.problems.append(f"{origin}: failed to import: {describe_exception(exc)}")
            continue
        _collect(registry, loaded, origin)
    shipped = dict(files.values())  # absolute path: text
    for spec in dict.fromkeys(canonical_plugin(p, files.get(p)) for p in plugins):  # each plugin once, in order
        origin = f"plugin {spec}"
        try:
            module = import_plugin(spec, shipped.get(spec))
        except FuncbenchError:
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin calling sys.exit() is a failed import too
            registry.problems.append(f"{origin}: failed to import: {describe_exception(exc)}")
            registry.failed_plugins.append(registry.problems[-1])
            continue
        _collect(registry, module, origin)
    return registry


def add_objects(registry: Registry, objects: Iterable[object]) -> None:
    """Register entries, or modules of them, defined in the caller's session (a notebook's cells, a script)."""
    for loaded in objects:
        _collect(registry, loaded, f"module {loaded.__name__}" if isinstance(loaded, ModuleType) else "this session")


def plugin_sources(plugins: Iterable[str]) -> tuple[tuple[str, str, str], ...]:
    """(as given, absolute path, text) of every plugin that is a file, to build the same registry elsewhere."""
    return tuple((given, str(Path(given).resolve()), Path(given).read_text())
                 for given in plugins if _is_file(given))


def _is_file(spec: str) -> bool:
    """Whether a --plugin names a file (else it is a module name)."""
    return Path(spec).is_file()


def import_plugin(spec: str, text: str | None = None) -> ModuleType:
    """Import a plugin given as a file path or a module name.

    With `text`, a file's source read on another machine, the plugin runs
    from that text under the path `spec`: its functions' source, and so
    the ids of its cells, are those the other machine computed, whether or
    not the file exists here.
    """
    if text is not None:
        return _module_from_text(spec, text)
    path = Path(spec)
    if spec.endswith(".py") or _is_file(spec):
        if not _is_file(spec):
            raise FuncbenchError(f"plugin file '{spec}' does not exist; give a path to a .py file or a module name")
        name = _module_name(path)
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        setattr(module, SOURCE_ATTRIBUTE, path.read_text(encoding="utf-8"))
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and spec.startswith(exc.name):
            raise FuncbenchError(f"plugin '{spec}' is neither a .py file nor an importable module") from None
        raise


def _module_from_text(path: str, text: str) -> ModuleType:
    name = _module_name(Path(path))
    # inspect.getsource, which cell ids use, reads a function's file through linecache;
    # an entry without a modification time is never checked against the disk.
    linecache.cache[path] = (len(text), None, text.splitlines(keepends=True), path)
    module = ModuleType(name)
    module.__file__ = path
    setattr(module, SOURCE_ATTRIBUTE, text)
    sys.modules[name] = module
    try:
        exec(compile(text, path, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _module_name(path: Path) -> str:
    # A name derived from the absolute path keeps two plugin files that
    # share a basename apart in sys.modules.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return f"funcbench_plugin_{path.stem}_{digest}"


def canonical_plugin(spec: str, shipped: tuple[str, str] | None = None) -> str:
    """A plugin file by its resolved path (so x.py and ./x.py are one plugin); a module by its name."""
    if shipped is not None:
        return shipped[0]
    return str(Path(spec).resolve()) if _is_file(spec) else spec


def _collect(registry: Registry, loaded: object, origin: str, seen: set[int] | None = None) -> None:
    """Register every entry a plugin module (or package) defines at top level."""
    seen = set() if seen is None else seen
    if id(loaded) in seen:
        return
    seen.add(id(loaded))
    if not isinstance(loaded, ModuleType):
        if isinstance(loaded, Entry):
            registry.add(replace(loaded, origin=origin))
        return
    for value in list(vars(loaded).values()):
        if isinstance(value, ModuleType):
            # A package registers the entries of its submodules too, so that
            # `targets/__init__.py` need only import its files.
            if value.__name__.startswith(loaded.__name__ + "."):
                _collect(registry, value, origin, seen)
        elif isinstance(value, Entry):
            _collect(registry, value, origin, seen)
