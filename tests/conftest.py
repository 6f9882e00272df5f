"""Test setup: without a CUDA GPU, run the Triton kernels on the Triton CPU interpreter
and our CUDA C kernels on the CPU path of tests/cudacpu.

TRITON_INTERPRET must be set before any @triton.jit function is defined, i.e. before
kernels.triton_* is imported, which is why it happens here, at collection start.
"""

from __future__ import annotations

import os


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
