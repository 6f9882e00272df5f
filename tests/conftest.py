"""Test setup: without a CUDA GPU, run the Triton kernels on the Triton CPU interpreter
and our CUDA C kernels on the CPU path of tests/cudacpu.

TRITON_INTERPRET must be set before any @triton.jit function is defined, i.e. before
structbench.ops.*.triton is imported, which is why it happens here, at collection start.
"""

from __future__ import annotations

import os
import re

import pytest


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_configure(config) -> None:
    if not _has_cuda():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    if os.environ.get("TRITON_INTERPRET") == "1":
        from tests import interpreter_fixes

        interpreter_fixes.apply()
    from tests import cudacpu

    config._structbench_cuda_line = cudacpu.enable_for_tests()


def pytest_report_header(config) -> str:
    mode = "CPU interpreter (TRITON_INTERPRET=1)" if os.environ.get("TRITON_INTERPRET") == "1" else "GPU"
    return [f"structbench: Triton kernels run on the {mode}", getattr(config, "_structbench_cuda_line", "")]


_BACKEND_SKIP = re.compile(r"^(\S+) backend unavailable: (.*)$")


def _skip_groups(reports) -> dict[str, list[str]]:
    """skip reason group -> the reasons in it: one group per unavailable backend, the
    rest by where the skip was raised (one test function's declined cases together)."""
    groups: dict[str, list[str]] = {}
    for report in reports:
        if not (isinstance(report.longrepr, tuple) and len(report.longrepr) == 3):
            continue
        path, lineno, reason = report.longrepr
        reason = reason.removeprefix("Skipped: ")
        match = _BACKEND_SKIP.match(reason)
        key = f"{match.group(1)} backend unavailable ({match.group(2)})" if match else \
            f"{os.path.basename(str(path))}:{lineno}"
        groups.setdefault(key, []).append(reason)
    return groups


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Skips grouped into one line per backend (or per place they are raised), not one
    line per reason; `make test PYTEST_ARGS=-rs` still lists every one."""
    groups = _skip_groups(terminalreporter.stats.get("skipped", []))
    if not groups:
        return
    total = sum(len(reasons) for reasons in groups.values())
    terminalreporter.section(f"{total} skipped, grouped (PYTEST_ARGS=-rs lists each)", sep="-")
    for key, reasons in sorted(groups.items(), key=lambda item: -len(item[1])):
        example = "" if _BACKEND_SKIP.match(reasons[0]) else f": e.g. {reasons[0]}"
        if len(set(reasons)) == 1 and example:
            example = f": {reasons[0]}"
        terminalreporter.write_line(f"{len(reasons):5d}  {key}{example}"[:160])


_fatal_in = {"nodeid": None}


@pytest.hookimpl(trylast=True)  # after xdist's worker has sent the report on
def pytest_runtest_logreport(report) -> None:
    """A fatal CUDA error (illegal address, launch failure) poisons this process's CUDA
    context: every later test in it would fail the same way. So an xdist worker (the GPU
    run's, scripts/gpu_check.sh) exits once that test's reports are sent; xdist reports the
    crash against that test and starts a fresh worker for the tests left."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from structbench.run.runner import FATAL_CUDA_ERROR

    if report.failed and report.when in ("setup", "call") and FATAL_CUDA_ERROR.search(str(report.longrepr)):
        _fatal_in["nodeid"] = report.nodeid
    if report.when == "teardown" and _fatal_in["nodeid"] == report.nodeid:
        os._exit(3)
