"""The layout's promises: one import root, family facts on Op/Impl (never names in the
harness), every "module:function" string resolvable on a CPU machine, and the plan's
launch counts captured through the launch seam."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from structbench.core.backends import BACKENDS
from structbench.core.registry import OURS, ROLES, default_registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "structbench"
# Profiles are data: which ops and impls a sweep runs is what they declare.
DATA_MODULES = {PACKAGE / "run" / "profiles.py"}


def _harness_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if (PACKAGE / "ops") not in p.parents and p not in DATA_MODULES)


def _forbidden_names() -> set[str]:
    """Op names, and impl names that are not also a backend or library (torch, numpy, ...),
    plus the name prefixes that used to carry meaning ("dense-", "fft-", ...)."""
    registry = default_registry()
    generic = set(BACKENDS) | {"torch", "cupy", "numpy", "scipy", "triton"}
    names = {op.name for op in registry.ops()}
    impls = {impl.name for impl in registry.impls()}
    names |= impls - generic
    names |= {name.split("-")[0] + "-" for name in impls if "-" in name and name.split("-")[0] not in generic}
    return names


def _string_constants(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_harness_module_names_an_op_or_impl():
    forbidden = _forbidden_names()
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}"
             for path in _harness_modules() for line, value in _string_constants(path) if value in forbidden]
    assert not found, ("the harness names ops/impls (put the fact on Op/Impl in structbench/ops/<family>):\n"
                       + "\n".join(found))


def test_only_structbench_at_top_level():
    assert not any((ROOT / name).exists() for name in ("bench", "kernels", "reference"))
    text = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["structbench*"]' in text and 'structbench = "structbench.__main__:main"' in text
    old = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in [*PACKAGE.rglob("*.py"), *ROOT.glob("tests/**/*.py")]
           for node in ast.walk(ast.parse(path.read_text()))
           if isinstance(node, (ast.Import, ast.ImportFrom))
           and any(name.split(".")[0] in ("bench", "kernels", "reference")
                   for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                                else [node.module or ""]) if not getattr(node, "level", 0))]
    assert not old, f"imports of the old top-level packages: {old}"


def test_families_are_folders():
    """Every op family is a folder of structbench/ops with its registration; nothing else registers."""
    registry = default_registry()
    families = {p.parent.name for p in (PACKAGE / "ops").glob("*/__init__.py") if not p.parent.name.startswith("_")}
    registered = {importlib.import_module(op.reference.__module__).__name__.split(".")[2] for op in registry.ops()}
    assert registered == families


def _targets():
    for impl in default_registry().impls():
        for kind in ("target", "prepare", "reference"):
            value = getattr(impl, kind)
            if value:
                yield pytest.param(impl, kind, value, id=f"{impl.op}-{impl.name}-{kind}")


@pytest.mark.parametrize("impl, kind, target", list(_targets()))
def test_every_target_resolves_without_a_gpu(impl, kind, target):
    """GPU baselines included: a typo in a "module:function" string fails here, not on the GPU."""
    module_name, sep, attr = target.partition(":")
    assert sep and attr, f"{impl.op}/{impl.name} {kind} {target!r} is not 'module:function'"
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attr, None)), f"{impl.op}/{impl.name} {kind}: {module_name} has no {attr}"


def test_roles_and_facts():
    registry = default_registry()
    for impl in registry.impls():
        assert impl.role in ROLES
        assert impl.is_baseline == (impl.role != OURS)
        if impl.role == OURS:
            assert impl.backend in ("triton", "cupy"), f"{impl.op}/{impl.name}: ours runs our Triton or CUDA C"
    for op in registry.ops():
        if op.compared_to is not None:
            dense = registry.op(op.compared_to)
            shape = op.dense_params({d: 3 for d in op.dims}, dense)
            assert set(shape) == set(dense.dims)
    assert registry.ops_in_claim("C1") and registry.ops_in_claim("C3") and registry.ops_in_claim("C5")


def test_keyword_registration():
    from structbench.core.registry import Impl, baseline, ours

    with pytest.raises(TypeError):
        Impl("dense_mv", "x", "numpy", "m:f", ("fp32",), "ours")  # positional: refused
    with pytest.raises(ValueError, match="role"):
        baseline("dense_mv", "x", backend="numpy", target="m:f", dtypes=("fp32",), role="ours")
    assert ours("dense_mv", "x", backend="triton", target="m:f", dtypes=("fp32",)).role == OURS


@pytest.mark.parametrize("op, impl, launches", [("lora_mv", "triton-fused", 2), ("toeplitz_mv", "triton", 2),
                                                ("lora_mv", "triton-unfused", 4), ("dense_mv", "triton", 1)])
def test_plan_counts_captured_launches(op, impl, launches):
    """Launches per call come from the launch seam's capture, not impl names."""
    from structbench.run.plan import captured_launches, kernels_per_call

    assert len(captured_launches(op, impl, "fp16")) == launches
    assert kernels_per_call(op, impl, "fp16") == launches
