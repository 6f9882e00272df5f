"""Our CUDA C compiles (nvcc, when on the PATH) and defines every kernel the CuPy
launchers can ask for: the check that runs even where no GPU can run the kernels."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parent.parent / "kernels"
SOURCES = sorted(KERNELS.glob("*.cu"))
# sm_80 is the oldest architecture we support (cvt.rn.bf16.f32); sm_90 is the H100.
ARCHS = ("sm_80", "sm_90")
NVCC = shutil.which("nvcc")
# Kernels each launcher may ask its RawModule for: "<op>_<dtype>".
LAUNCHED = {"cupy_dense.cu": [f"{op}_{dtype}" for op in ("dense_mv", "dense_mm")
                              for dtype in ("fp32", "fp16", "bf16", "int8")]}


@pytest.fixture(scope="module", params=SOURCES, ids=lambda p: p.name)
def compiled(request, tmp_path_factory) -> tuple[str, str]:
    """(file name, PTX) of a CUDA source that compiled cleanly for every architecture."""
    if NVCC is None:
        pytest.skip("nvcc is not on the PATH: CUDA sources not compile-checked")
    out = tmp_path_factory.mktemp("ptx") / "kernels.ptx"
    for arch in ARCHS:  # a full compile per architecture, warnings as errors
        subprocess.run([NVCC, f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings", "-c",
                        str(request.param), "-o", str(out.with_suffix(f".{arch}.o"))],
                       check=True, capture_output=True, text=True)
    subprocess.run([NVCC, "-arch=sm_90", "-std=c++17", "--ptx", str(request.param), "-o", str(out)], check=True)
    return request.param.name, out.read_text()


def test_compiles_and_defines_every_launched_kernel(compiled):
    name, ptx = compiled
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    missing = set(LAUNCHED.get(name, [])) - entries
    assert not missing, f"{name} lacks kernels its launcher uses: {sorted(missing)}"
