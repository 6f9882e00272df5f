"""Our CUDA C kernels executed on the CPU, for the tests only (never the benchmark, never timed).

The CuPy launchers run unchanged: ``install()`` puts a ``CpuLauncher`` into the one seam
they share (``structbench.ops._shared.cupy._LAUNCHER``), so that ``_cupy.launch`` compiles the same code
string with the same options (g++, ``cuda_cpu.h`` prepended, ASan + UBSan; cached by a hash
under $TMPDIR/structbench-cudacpu-<uid>) and runs the named ``extern "C"`` kernel with the
same grid, block, dynamic shared memory and arguments, on torch CPU tensors. The launch
happens in a helper process (``_child.py``, LD_PRELOAD=libasan.so), on a private copy of
every array the arguments point to, allocated at its exact size (an out-of-bounds access
is an ASan error), run twice with threads and blocks in opposite orders and different
garbage in shared memory; the two results must be identical. Then the arrays are copied
back. Every failure raises ``CudaCpuError`` with a one-paragraph message.

Usage:
    from tests import cudacpu
    cudacpu.install()            # conftest does this when no GPU is present
    y = structbench.ops.dense.cuda.dense_mv(a_cpu, x_cpu)   # runs on the CPU
    cudacpu.launch_code(code, "my_kernel", grid, block, (tensor, np.int32(n)))  # ad hoc kernels

``STRUCTBENCH_CUDA_CPU=1`` forces the path even with a GPU, ``=0`` disables it;
``STRUCTBENCH_CUDACPU_TIMEOUT`` (seconds, default 120) bounds one launch.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pickle
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.cudacpu import _build
from tests.cudacpu._build import BuildError

__all__ = ["CudaCpuError", "BuildError", "CpuLauncher", "install", "uninstall", "installed", "unavailable_reason",
           "launch_code"]

RUNS = ((0, 0xFF), (1, 0x7F))  # (reverse order, shared-memory garbage byte) per run
# A source may declare kernels whose results legitimately depend on the order of blocks and
# threads (float atomicAdd: rounding in another order), one regular expression per line:
#     // cudacpu: order-dependent: csr_scatter_m[mv]_t_(fp32|fp16|bf16)_i(32|64)
# Their two runs are not compared byte for byte (both still run under ASan/UBSan); the
# tests compare their results with the reference within the dtype's tolerance.
_ORDER_DEPENDENT = re.compile(r"^//\s*cudacpu: order-dependent:\s*(\S+)\s*$", re.MULTILINE)


def order_dependent(code: str, name: str) -> bool:
    return any(re.fullmatch(pattern, name) for pattern in _ORDER_DEPENDENT.findall(code))


class CudaCpuError(RuntimeError):
    """A kernel misbehaved on the CPU path: sanitizer finding, deadlock, race, bad launch."""


def unavailable_reason() -> str | None:
    """Why the CPU path cannot run here (no g++, no ASan runtime, not x86-64/Linux), or None."""
    if sys.platform != "linux":
        return f"the CUDA CPU path needs Linux (this is {sys.platform})"
    if shutil.which(_build.cxx()) is None:
        return f"the CUDA CPU path needs {_build.cxx()} on PATH"
    try:
        _build.asan_runtime()
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        return f"the CUDA CPU path needs AddressSanitizer: {exc}"
    return None


def _extent(info) -> tuple[int, int]:
    """[first byte, one past the last byte] an array can touch (its data_ptr for empty arrays)."""
    if not all(info.shape):
        return info.data_ptr, info.data_ptr
    span = sum((n - 1) * s for n, s in zip(info.shape, info.strides)) + 1
    return info.data_ptr, info.data_ptr + span * info.itemsize


class _Child:
    """The helper process, started on first use and again after a sanitizer ends it."""

    def __init__(self):
        self.proc = None
        self.stderr_path = None

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        fd, self.stderr_path = tempfile.mkstemp(prefix="cudacpu-child-", suffix=".log")
        env = dict(os.environ)
        env["LD_PRELOAD"] = _build.asan_runtime()
        # Leaks: Python's own at exit are not ours. abort_on_error: a core-free, nonzero exit.
        env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1:abort_on_error=0:symbolize=1:print_summary=1"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        self.proc = subprocess.Popen(
            [sys.executable, "-S", str(Path(__file__).with_name("_child.py")), str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env)
        os.close(fd)
        os.close(to_child_r)
        os.close(from_child_w)
        self.to_child = os.fdopen(to_child_w, "wb", buffering=0)
        self.from_child = from_child_r

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.to_child.close()
            except OSError:
                pass
            os.close(self.from_child)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def _read(self, n: int, deadline: float) -> bytes | None:
        import time

        chunks, left = [], n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self.from_child], [], [], wait)[0]:
                return None
            chunk = os.read(self.from_child, left)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def request(self, req: dict, timeout_s: float, describe) -> dict:
        import time

        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self._start()
        payload = pickle.dumps(req)
        try:
            self.to_child.write(struct.pack("<Q", len(payload)) + payload)
            deadline = time.monotonic() + timeout_s
            head = self._read(8, deadline)
            body = None if head is None else self._read(struct.unpack("<Q", head)[0], deadline)
        except (EOFError, BrokenPipeError):
            rc = self.proc.wait()
            log = Path(self.stderr_path).read_text(errors="replace")
            self.stop()
            return {"crash": f"the kernel crashed the CPU path (exit {rc}):\n{_sanitizer_summary(log)}"}
        if body is None:
            self.stop()
            raise CudaCpuError(f"{describe()}: did not finish within {timeout_s:.0f} s: an endless loop, or a "
                               "thread spinning on a value another thread of its block never writes (threads "
                               "run as fibers that are never preempted)")
        return pickle.loads(body)


def _sanitizer_summary(log: str, limit: int = 40) -> str:
    """The sanitizer's report, from its first line, with frames outside our code dropped."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if "ERROR: AddressSanitizer" in line or "runtime error:" in line or "ERROR: " in line), 0)
    keep = []
    for line in lines[start:]:
        if line.startswith(("Shadow bytes around", "SUMMARY:")):
            break  # the shadow map says nothing the first lines did not
        frame = re.match(r"\s+#\d+ ", line)
        if frame and ("/tests/cudacpu/" in line or "code:" not in line and "cudacpu-appendix" not in line):
            continue  # the runtime's and Python's frames say nothing about the kernel
        keep.append(line)
        if len(keep) >= limit:
            keep.append("...")
            break
    return "\n".join(keep) or log[-3000:]


class CpuLauncher:
    """What structbench.ops._shared.cupy asks of a launcher: ``ptr``, ``fill_empty`` and ``launch``."""

    def __init__(self, timeout_s: float | None = None):
        self.timeout_s = timeout_s or float(os.environ.get("STRUCTBENCH_CUDACPU_TIMEOUT", "120"))
        self._extents: dict[int, tuple[int, int]] = {}  # address -> extent, as last told
        self._recent: dict[int, tuple[int, int]] = {}  # told since the last launch
        self._child = _Child()
        self.launches = 0

    # --- the seam -------------------------------------------------------------------
    def ptr(self, info) -> np.uint64:
        """The array's address, remembered with its extent so the launch can copy it."""
        lo, hi = _extent(info)
        # Two arrays at one address since the last launch (a view and its base): the wider.
        old = self._recent.get(info.data_ptr)
        self._recent[info.data_ptr] = (lo, max(hi, old[1])) if old else (lo, hi)
        return np.uint64(info.data_ptr)

    @staticmethod
    def fill_empty(array) -> None:
        """Uninitialised outputs and workspaces hold garbage on the GPU: here all-ones bytes
        (NaN, -1), so that reading one before it is written shows."""
        if array.numel():
            array.view(-1).view(__import__("torch").uint8).fill_(0xFF)

    def launch(self, source, code: str, options, name: str, grid, block, args, shared_mem: int = 0) -> None:
        lib = _build.build(code, tuple(options))
        where = f", {Path(source).name}" if source else ""
        describe = lambda: f"{name} (grid {_dim3(grid)}, block {_dim3(block)}{where})"  # noqa: E731
        regions, arg_specs, owners = self._marshal(name, args)
        req = {"so": str(lib.path), "statics": lib.statics, "kernel": name, "grid": _dim3(grid),
               "block": _dim3(block), "shared": int(shared_mem), "args": arg_specs,
               "regions": [(lo % 256, ctypes.string_at(lo, hi - lo)) for lo, hi in regions], "runs": RUNS,
               "compare": not order_dependent(code, name)}
        self.launches += 1
        resp = self._child.request(req, self.timeout_s, describe)
        mapper = _LineMap(source, code)
        if "crash" in resp:
            arrays = "; ".join(f"argument(s) {who}: {hi - lo} bytes" for who, (lo, hi) in zip(owners, regions))
            raise CudaCpuError(mapper(f"{describe()}: {resp['crash']}\n(the launch's arrays: {arrays})"))
        if "error" in resp:
            raise CudaCpuError(mapper(resp["error"]))
        if "mismatch" in resp:
            region, at = resp["mismatch"]
            raise CudaCpuError(
                f"{describe()}: two runs (threads and blocks in opposite orders, different garbage in shared "
                f"memory) wrote different bytes into the array of argument(s) {owners[region]} (first at byte "
                f"{at}): a shared-memory race (a missing __syncthreads()?), a read of shared memory no thread "
                "wrote, or blocks that depend on each other's order")
        for (lo, hi), data in zip(regions, resp["regions"]):
            ctypes.memmove(lo, data, hi - lo)

    def close(self) -> None:
        self._child.stop()

    # --- arguments ------------------------------------------------------------------
    def _marshal(self, name: str, args):
        if len(self._extents) > 100_000:
            self._extents.clear()
        self._extents.update(self._recent)
        self._recent.clear()
        pointers = []
        for i, arg in enumerate(args):
            if isinstance(arg, np.uint64) and int(arg) != 0:
                address = int(arg)
                if address not in self._extents:
                    raise CudaCpuError(f"{name}: argument {i} is a pointer the CPU path was not told about; pass "
                                       "arrays through structbench.ops._shared.cupy.ptr")
                pointers.append((i, self._extents[address]))
        # Overlapping arrays (views of one buffer) share one copy, as they share memory.
        spans = sorted({extent for _, extent in pointers})
        regions: list[list[int]] = []
        for lo, hi in spans:
            if regions and lo < regions[-1][1]:
                regions[-1][1] = max(regions[-1][1], hi)
            else:
                regions.append([lo, hi])
        specs, owners = [], [[] for _ in regions]
        for i, arg in enumerate(args):
            if isinstance(arg, np.uint64):
                address = int(arg)
                if address == 0:
                    specs.append(("null",))
                    continue
                index = next(k for k, (lo, hi) in enumerate(regions) if lo <= address <= hi)
                owners[index].append(i)
                specs.append(("p", index, address - regions[index][0]))
            elif isinstance(arg, np.generic):
                specs.append((arg.dtype.name, arg.item()))
            else:
                raise CudaCpuError(f"{name}: argument {i} is a {type(arg).__name__}; kernel arguments must be "
                                   "explicitly sized numpy scalars (numpy.uint64 for pointers)")
        return [tuple(r) for r in regions], specs, [", ".join(map(str, o)) for o in owners]


def _dim3(dims) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    return (dims + (1, 1, 1))[:3]


class _LineMap:
    """'code:123' in messages -> the file and line of the .cu (or structbench.cuh) it is."""

    def __init__(self, source, code: str):
        self.parts = []
        source = Path(source) if source else None
        if source is not None and source.exists():
            text = source.read_text()
            if code.endswith(text):
                prefix_lines = code[: len(code) - len(text)].count("\n")
                from structbench.ops._shared.cupy import HEADER

                name = "structbench.cuh" if code.startswith(HEADER.read_text()) else "prefix"
                # every family's source is cuda.cu: name it with its folder (toeplitz/cuda.cu)
                shown = f"{source.parent.name}/{source.name}"
                self.parts = [(prefix_lines, name, 0), (10**9, shown, prefix_lines)]

    def __call__(self, message: str) -> str:
        if not self.parts:
            return re.sub(r"\S*/(code:\d+)", r"\1", message)

        def one(match):
            line = int(match.group(1))
            for end, name, offset in self.parts:
                if line <= end:
                    return f"{name}:{line - offset}"
            return match.group(0)

        return re.sub(r"(?:\S*/)?\bcode:(\d+)", one, message)


_INSTALLED: CpuLauncher | None = None


def install() -> CpuLauncher:
    """Route structbench.ops._shared.cupy through the CPU path (tests only)."""
    global _INSTALLED
    from structbench.ops._shared import cupy as _cupy

    if _INSTALLED is None:
        _INSTALLED = CpuLauncher()
        atexit.register(_INSTALLED.close)
    _cupy._LAUNCHER = _INSTALLED
    return _INSTALLED


def uninstall() -> None:
    from structbench.ops._shared import cupy as _cupy

    _cupy._LAUNCHER = None


def installed() -> bool:
    from structbench.ops._shared import cupy as _cupy

    return _INSTALLED is not None and _cupy._LAUNCHER is _INSTALLED


def launch_code(code: str, name: str, grid, block, args, shared_mem: int = 0, *, launcher: CpuLauncher | None = None,
                options=("--std=c++17",)) -> None:
    """Run kernel ``name`` of an ad hoc code string; torch CPU tensors in ``args`` become pointers."""
    from structbench.ops._shared.checks import describe

    launcher = launcher or _INSTALLED or install()
    raw = []
    for i, arg in enumerate(args):
        if type(arg).__module__.split(".")[0] == "torch":
            raw.append(launcher.ptr(describe("launch_code", f"arg{i}", arg)))
        else:
            raw.append(arg)
    launcher.launch(None, code, tuple(options), name, grid, block, tuple(raw), shared_mem)


def backend_on_cpu_path(backend):
    """The registry's "cupy" backend, runnable in tests through this path and never timeable."""
    from dataclasses import dataclass, fields

    from structbench.core.backends import Backend

    @dataclass(frozen=True)
    class CpuPathBackend(Backend):
        def untimeable_reason(self) -> str | None:
            return "CUDA C runs on the tests' CPU path (tests/cudacpu): correct, not timeable"

    values = {f.name: getattr(backend, f.name) for f in fields(backend)}
    values.update(summary=backend.summary + " (here: on the CPU, tests/cudacpu)", probe=lambda: None)
    return CpuPathBackend(**values)


def enable_for_tests() -> str:
    """conftest's switch: install the path where CuPy cannot run our kernels (or when
    STRUCTBENCH_CUDA_CPU=1); returns a line for the pytest header."""
    from structbench.core import backends

    wanted = os.environ.get("STRUCTBENCH_CUDA_CPU", "auto")
    gpu_reason = backends.BACKENDS["cupy"].unavailable_reason()
    if wanted != "1" and gpu_reason is None:
        return "structbench: CUDA C kernels run through CuPy on the GPU"
    if wanted == "0":
        return f"structbench: CUDA C kernels skipped (STRUCTBENCH_CUDA_CPU=0; CuPy: {gpu_reason})"
    reason = unavailable_reason()
    if reason:
        from dataclasses import replace

        both = f"{gpu_reason}; and {reason}"
        backends.BACKENDS["cupy"] = replace(backends.BACKENDS["cupy"], probe=lambda: both)
        return f"structbench: CUDA C kernels skipped: {both}"
    install()
    backends.BACKENDS["cupy"] = backend_on_cpu_path(backends.BACKENDS["cupy"])
    from structbench.ops._shared import cupy as _cupy

    ops_dir = Path(_cupy.__file__).parents[1]
    _build.prebuild([_cupy.code_and_options(cu) for cu in sorted(ops_dir.glob("*/cuda.cu"))])
    return "structbench: CUDA C kernels run on the CPU path (tests/cudacpu: g++ -fsanitize=address,undefined, fibers)"
