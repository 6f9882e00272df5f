"""User suites: kernels (and ops) registered outside structbench, loaded into the registry.

A suite is a Python file (``--suite path/to/mine.py``), an importable module (``--suite
pkg.module``), a list of either in ``STRUCTBENCH_SUITES`` (os.pathsep-separated), or an
installed package's entry point in the group ``structbench.suites``. Importing it runs
its ``structbench.register_kernel`` / ``register_op`` calls; they only *declare*
(declare() below), and load_into() adds the declarations to a registry, each impl marked
with the suite's name (its ``source``). Declarations are kept per suite, so a registry
rebuilt in the same process (another set of suites) gets them again without a re-import,
and a worker process (isolated, ``--devices``, a shard) rebuilds the same registry by
loading the same suites: ``--suite`` is exported to STRUCTBENCH_SUITES, which a spawned
worker inherits.

A broken suite (missing file, syntax or import error, an impl for an unknown op, a name
that clashes, an unknown backend or dtype) raises SuiteError: one line naming the suite
and the problem (the CLI prints it and exits 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ENV = "STRUCTBENCH_SUITES"
ENTRY_POINT_GROUP = "structbench.suites"
SCRIPT_SOURCE = "user"  # the source of kernels registered by a script or notebook, outside any suite


class SuiteError(ValueError):
    """A suite that cannot be used: one line naming it and what is wrong."""


class RegistrationError(ValueError):
    """A register_kernel / register_op call with a bad argument (unknown backend or dtype)."""


@dataclass
class _Suite:
    name: str  # the source column of its impls
    declarations: list = field(default_factory=list)  # Op and Impl objects, in declaration order


_loaded: dict[str, _Suite] = {}  # spec (or entry point) -> its declarations, once imported
_collecting: list[_Suite] = []  # the suite being imported (declare() adds to it)
_script = _Suite(SCRIPT_SOURCE)  # declared outside any suite: a script, a notebook


def declare(item) -> None:
    """Record an Op or Impl of a user suite. Outside a suite import (a script, a notebook)
    it belongs to the script's suite, and the next default_registry() includes it."""
    if _collecting:
        _collecting[-1].declarations.append(item)
        return
    _script.declarations.append(item)


def active() -> tuple[str, ...]:
    """The suites in use here (the key of default_registry's cache): STRUCTBENCH_SUITES'
    entries, then the script's declarations (counted, so a new one rebuilds the registry)."""
    specs = tuple(s for s in os.environ.get(ENV, "").split(os.pathsep) if s.strip())
    return specs + ((f"<script:{len(_script.declarations)}>",) if _script.declarations else ())


def normalise(spec: str) -> str:
    """A file spec as an absolute path (a worker may start elsewhere); a module name as is."""
    return str(Path(spec).expanduser().resolve()) if _is_file_spec(spec) else spec.strip()


@contextlib.contextmanager
def using(specs) -> Iterator[None]:
    """STRUCTBENCH_SUITES extended with ``specs`` while the block runs (spawned workers
    inherit it), restored after. Each is checked (loaded) first: a bad one raises SuiteError."""
    specs = [normalise(s) for s in specs or ()]
    if not specs:
        yield
        return
    saved = os.environ.get(ENV)
    current = [s for s in (saved or "").split(os.pathsep) if s.strip()]
    os.environ[ENV] = os.pathsep.join(dict.fromkeys(current + specs))
    try:
        for spec in specs:
            _load(spec)
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved


def load_into(registry, specs: tuple[str, ...]) -> None:
    """Add every suite's declarations to ``registry``: the entry points' first, then specs'."""
    from structbench.core.registry import Impl, Op

    suites = [*_entry_point_suites()]
    for spec in specs:
        suites.append(_script if spec.startswith("<script:") else _load(spec))
    for suite in suites:
        for item in suite.declarations:
            if isinstance(item, Op):
                _add_op(registry, suite, item)
            elif isinstance(item, Impl):
                _add_impl(registry, suite, item)


def _add_op(registry, suite: _Suite, op) -> None:
    if op.name in {o.name for o in registry.ops()}:
        raise SuiteError(f"suite {suite.name}: op {op.name!r} already exists; choose another name")
    registry.add_op(op)


def _add_impl(registry, suite: _Suite, impl) -> None:
    import dataclasses

    known_ops = [o.name for o in registry.ops()]
    if impl.op not in known_ops:
        raise SuiteError(f"suite {suite.name}: kernel {impl.name!r} is for unknown op {impl.op!r}; "
                         f"known ops: {', '.join(known_ops)}")
    clash = next((i for i in registry.impls(impl.op) if i.name == impl.name), None)
    if clash is not None:
        raise SuiteError(f"suite {suite.name}: kernel name {impl.name!r} is taken for op {impl.op} (by "
                         f"{clash.source}); choose another name")
    registry.add_impl(dataclasses.replace(impl, suite=suite.name))


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def _load(spec: str) -> _Suite:
    """The suite of a spec, imported once per process."""
    if spec not in _loaded:
        if _is_file_spec(spec):
            path = Path(spec)
            if not path.is_file():
                raise SuiteError(f"suite {spec}: no such file")
            suite = _Suite(_suite_name(path.stem))
            _collect(suite, spec, lambda: _import_file(path))
        else:
            suite = _Suite(_suite_name(spec))
            _collect(suite, spec, lambda: importlib.import_module(spec))
        _loaded[spec] = suite
    return _loaded[spec]


def _suite_name(name: str) -> str:
    from structbench.core.registry import BUILTIN_SOURCES

    return f"suite-{name}" if name in BUILTIN_SOURCES else name


def _import_file(path: Path):
    """Import a file as a module of its own name (hashed by path: two mine.py never collide)."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"structbench_suite_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _collect(suite: _Suite, spec: str, do_import) -> None:
    """Run the import with declare() adding to ``suite``; any failure is one SuiteError line."""
    _collecting.append(suite)
    try:
        do_import()
    except SuiteError:
        raise
    except SyntaxError as exc:
        raise SuiteError(f"suite {spec}: syntax error at {Path(exc.filename or spec).name}:{exc.lineno}: "
                         f"{exc.msg}") from None
    except RegistrationError as exc:
        raise SuiteError(f"suite {spec}: {exc}{_where(exc, spec)}") from None
    except ModuleNotFoundError as exc:
        raise SuiteError(f"suite {spec}: cannot import it: {exc}{_where(exc, spec)}") from None
    except Exception as exc:  # the suite's own code failed while importing
        raise SuiteError(f"suite {spec}: import failed: {type(exc).__name__}: {exc}{_where(exc, spec)}"
                         .replace("\n", " ")[:500]) from None
    finally:
        _collecting.pop()


def _where(exc: BaseException, spec: str) -> str:
    """' (at mine.py:12)': the innermost frame in the suite's own code (not structbench's)."""
    import structbench

    ours = str(Path(structbench.__file__).parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(ours) and "importlib" not in f.filename]
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""


def _entry_point_suites() -> list[_Suite]:
    """The installed packages' suites (group structbench.suites): each entry point names a
    module, imported like --suite's (or a function, called with no arguments)."""
    from importlib.metadata import entry_points

    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        key = f"<entry-point:{point.name}={point.value}>"
        if key not in _loaded:
            suite = _Suite(_suite_name(point.name))

            def do_import(point=point):
                loaded = point.load()
                if callable(loaded):
                    loaded()

            _collect(suite, f"{point.name} (entry point {point.value})", do_import)
            _loaded[key] = suite
        found.append(_loaded[key])
    return found
