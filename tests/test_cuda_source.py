"""Our CUDA C compiles (nvcc, when on the PATH) and defines every kernel its CuPy launcher
can ask for: the check that runs even where no GPU can run the kernels.

Each launcher module ``structbench/ops/<family>/cuda.py`` (or ``<part>_cuda.py``: a family's
backward ops) names its source (``SOURCE``) and the kernels it launches (``KERNEL_NAMES``);
this test finds them all."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

OPS = Path(__file__).resolve().parent.parent / "structbench" / "ops"
INCLUDE = OPS / "_shared"  # structbench.cuh
# "family.module" of every CUDA C launcher
LAUNCHERS = sorted(f"{p.parent.name}.{p.stem}" for pattern in ("*/cuda.py", "*/*_cuda.py") for p in OPS.glob(pattern))
# those with a source of their own beside them (the others launch another family's kernels)
OWNERS = [name for name in LAUNCHERS if (OPS / name.replace(".", "/")).with_suffix(".cu").is_file()]
# sm_80 is the oldest architecture we support (cvt.rn.bf16.f32); sm_90 is the H100.
ARCHS = ("sm_80", "sm_90")
NVCC = shutil.which("nvcc")


def test_every_cuda_source_has_a_launcher():
    sources = {importlib.import_module(f"structbench.ops.{name}").SOURCE for name in LAUNCHERS}
    assert sources == set(OPS.glob("*/*.cu"))


@pytest.mark.parametrize("launcher", OWNERS)
def test_compiles_and_defines_every_launched_kernel(launcher, tmp_path):
    if NVCC is None:
        pytest.skip("nvcc is not on the PATH: CUDA sources not compile-checked")
    module = importlib.import_module(f"structbench.ops.{launcher}")
    for arch in ARCHS:  # a full compile per architecture, warnings as errors
        result = subprocess.run([NVCC, f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings", f"-I{INCLUDE}", "-c",
                                 str(module.SOURCE), "-o", str(tmp_path / f"{arch}.o")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    ptx = tmp_path / "kernels.ptx"
    subprocess.run([NVCC, "-arch=sm_90", "-std=c++17", f"-I{INCLUDE}", "--ptx", str(module.SOURCE), "-o", str(ptx)], check=True)
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx.read_text()))
    missing = set(module.KERNEL_NAMES) - entries
    assert not missing, f"{launcher}/{module.SOURCE.name} lacks kernels its launcher uses: {sorted(missing)}"
