"""`structbench inspect` (structbench/inspect/facts.py): its pure parts here, the command once in a
subprocess without the interpreter (it compiles for sm_90)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from structbench.inspect.facts import _load_width, _sass_functions, occupancy, parse_shape

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mnemonic, bits", [("LDG.E.128", 128), ("LDG.E.128.CONSTANT", 128), ("LDG.E.64", 64),
                                            ("LDG.E.U16", 16), ("LDG.E.S8", 8), ("LDG.E", 32),
                                            ("LDGSTS.E.BYPASS.128", 128)])
def test_load_width_from_the_sass_mnemonic(mnemonic, bits):
    assert _load_width(mnemonic) == bits


def test_sass_is_split_per_function():
    sass = "\tFunction : a_kernel\n /*0000*/ LDG.E.128 R0, [R2] ;\n\tFunction : b_kernel\n /*0000*/ EXIT ;\n"
    functions = _sass_functions(sass)
    assert set(functions) == {"a_kernel", "b_kernel"} and "LDG.E.128" in functions["a_kernel"]


@pytest.mark.parametrize("registers, shared, warps, arch, blocks", [
    (32, 0, 4, 90, 16),  # 64 warps / 4: warp-limited
    (174, 1024, 4, 90, 2),  # the old int8 GEMV: 176 x 32 x 4 = 22528 registers a block
    (200, 147456, 8, 90, 1),  # the large GEMM tile: one block of shared memory per SM
    (255, 0, 8, 80, 1),
])
def test_occupancy(registers, shared, warps, arch, blocks):
    assert occupancy(registers, shared, warps, arch)[0] == blocks


def test_parse_shape():
    assert parse_shape("m=4096,n=11008,r=16", ("m", "n")) == {"m": 4096, "n": 11008, "r": 16}
    assert parse_shape("4096x16x4096", ("m", "n", "k")) == {"m": 4096, "n": 16, "k": 4096}
    with pytest.raises(ValueError, match="dims are m x n"):
        parse_shape("4096", ("m", "n"))


def test_inspect_command_prints_facts_of_a_compiled_kernel():
    from tests.test_triton_compile import _unsupported_reason

    reason = _unsupported_reason()
    if reason:
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "structbench", "inspect", "--op", "dense_mv", "--impl", "triton",
                           "--dtype", "fp16", "--shape", "4352x2048", "--no-spills"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = next(line for line in proc.stdout.splitlines() if "_dense_mv_kernel" in line)
    assert "sm_90" in row and "128b" in row and " 544 " in row  # 4352 rows / 8 per program


def test_inspect_refuses_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-m", "structbench", "inspect", "--op", "dense_mv"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "TRITON_INTERPRET" in proc.stderr
