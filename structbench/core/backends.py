"""Where an implementation runs: its arrays, its device, its clock.

A backend turns the host inputs of an op into the arrays its implementations take,
allocates a poisoned output (NaN, or INT32_MIN for integer outputs, so an element a
kernel forgot to write fails verification), brings results home, and says, without
importing anything heavy at module load, whether it is available here and why not.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from structbench.core.dtypes import DType

INT_POISON = -(2**31)  # beyond any int8-product sum we allow (see INT8_MAX_REDUCTION)


@dataclass(frozen=True)
class Backend:
    name: str
    device: str  # "cpu" or "cuda": where the work runs, and which clock times it
    library: str  # "numpy", "torch" or "cupy": the array type implementations receive
    summary: str
    probe: Callable[[], str | None]  # reason it is unavailable here, or None
    colour: str = ""  # its implementations' colour in every report's figures (C1, C4, C5)

    def unavailable_reason(self) -> str | None:
        return self.probe()

    def untimeable_reason(self) -> str | None:
        """Why timings on this backend would be meaningless even though it runs."""
        if self.name == "triton" and torch_device() == "cpu":
            return "Triton runs on the CPU interpreter here (TRITON_INTERPRET=1): correct, not timeable"
        return None

    # --- arrays ---------------------------------------------------------------------
    def to_device(self, values: np.ndarray, dtype: DType | None):
        """``values`` converted to ``dtype`` (None: kept as they are, e.g. int32 indices)
        in this backend's array type, on its device."""
        if self.library in ("numpy", "cupy"):
            if dtype is not None and dtype.numpy_name is None:
                raise TypeError(f"backend {self.name} has no {dtype.name} arrays")
            host = values if dtype is None else values.astype(dtype.numpy_name)
            if self.library == "numpy":
                return np.ascontiguousarray(host)
            import cupy

            return cupy.asarray(host)
        import torch

        # Narrow on the host first: the copy to the device then moves the small array.
        narrow = torch.from_numpy(np.ascontiguousarray(values))
        if dtype is not None:
            narrow = narrow.to(getattr(torch, dtype.torch_name))
        return narrow.to(self.runs_on())

    def empty_poisoned(self, shape: tuple[int, ...], dtype: DType):
        poison = INT_POISON if dtype.is_integer else np.nan
        if self.library == "numpy":
            return np.full(shape, poison, dtype=dtype.numpy_name)
        if self.library == "cupy":
            import cupy

            return cupy.full(shape, poison, dtype=dtype.numpy_name)
        import torch

        return torch.full(shape, poison, dtype=getattr(torch, dtype.torch_name), device=self.runs_on())

    def copy_into(self, dst, src) -> None:
        """Copy ``src`` (an array of this backend, same shape) into ``dst`` in place: the
        re-check after timing writes new values into the very buffers that were timed."""
        if self.library == "numpy":
            np.copyto(dst, src)
        elif self.library == "cupy":
            dst[...] = src
        else:
            dst.copy_(src)

    def to_host(self, array) -> np.ndarray:
        """float64 (int64 for integer arrays) numpy copy of a result."""
        if self.library == "cupy":
            import cupy

            array = cupy.asnumpy(array)
        elif self.library == "torch":
            array = array.detach().cpu()
            array = (array.long() if not array.is_floating_point() else array.double()).numpy()
        return array.astype(np.int64 if np.issubdtype(array.dtype, np.integer) else np.float64)

    def runs_on(self) -> str:
        """"cpu" or "cuda": where this backend's work actually runs in this process."""
        return "cpu" if self.device == "cpu" else torch_device()

    def free_memory_bytes(self) -> int | None:
        """Free memory on this backend's device now (the CPU's available memory for a CPU
        backend; None where it cannot be read)."""
        if self.runs_on() != "cuda":
            from structbench.measure.env import available_memory_bytes

            return available_memory_bytes()
        if self.library == "cupy":
            import cupy

            return cupy.cuda.runtime.memGetInfo()[0]
        import torch

        return torch.cuda.mem_get_info()[0]

    def free_host_bytes(self) -> int | None:
        """Memory the host can still give a case now (MemAvailable); None where unknown."""
        return host_available_bytes()

    def synchronize(self) -> None:
        if self.device != "cuda":
            return
        if self.library == "cupy":
            import cupy

            cupy.cuda.get_current_stream().synchronize()
        elif torch_device() == "cuda":
            import torch

            torch.cuda.synchronize()


def host_available_bytes() -> int | None:
    """The kernel's estimate of memory available without swapping (/proc/meminfo
    MemAvailable), else the free pages; None where neither is known."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def use_true_fp32() -> None:
    """fp32 means fp32: no TF32 in cuBLAS matmuls or cuDNN convolutions (cuDNN's conv1d
    uses TF32 by default, ~1e-3 error against our 2e-5 fp32 tolerance), and none in cupy.
    Set before any fp32 case runs, in every process that runs cases; a TF32 variant may
    exist only under a `-tf32` name and set its own flags.

    Also fp16/bf16 baselines reduce in fp32 throughout: torch's default lets a cuBLAS
    split-K reduction round its partial sums to fp16/bf16, which can push torch fp16 rows
    past the fp16 tolerance (a wrong-answer row that is the library's choice, not an
    error) and would compare the vendor against our kernels (fp32 accumulation, one
    rounding at the end) on unequal terms. What is set is recorded: ``numerics()``."""
    os.environ["CUPY_TF32"] = "0"  # read by cupy when it is imported (its default is 0 too)
    try:
        import torch
    except ImportError:
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False


def numerics() -> dict:
    """The library settings that change baseline results, as this process has them (the
    run record's ``numerics``)."""
    record = {"cupy_tf32": os.environ.get("CUPY_TF32", "")}
    try:
        import torch
    except ImportError:
        return record
    matmul = torch.backends.cuda.matmul
    return {**record, "torch_matmul_allow_tf32": matmul.allow_tf32,
            "torch_cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch_fp16_reduced_precision_reduction": matmul.allow_fp16_reduced_precision_reduction,
            "torch_bf16_reduced_precision_reduction": matmul.allow_bf16_reduced_precision_reduction}


# --- probes: each returns the reason a backend is unavailable, or None --------------
def _import_reason(module: str) -> str | None:
    try:
        __import__(module)
    except Exception as exc:  # ImportError, or a broken install raising anything
        return f"{module} cannot be imported ({type(exc).__name__}: {exc})"
    return None


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.cache
def cuda_reason() -> str | None:
    """Why torch sees no CUDA GPU here, or None if it does."""
    reason = _import_reason("torch")
    if reason:
        return reason
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no GPU or no driver)"
    return None


def torch_device() -> str:
    return "cuda" if cuda_reason() is None else "cpu"


def _probe_numpy() -> str | None:
    return None


@functools.cache
def _probe_torch_cpu() -> str | None:
    return _import_reason("torch")


@functools.cache
def _probe_triton() -> str | None:
    reason = _import_reason("triton") or _import_reason("torch")
    if reason:
        return reason
    if cuda_reason() is None or interpreting():
        return None
    return f"no CUDA GPU ({cuda_reason()}); TRITON_INTERPRET=1 runs the kernels on the CPU interpreter"


@functools.cache
def _probe_cupy() -> str | None:
    reason = _import_reason("cupy")
    if reason:
        return reason
    import cupy

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError when there is no driver
        return f"cupy sees no CUDA device ({type(exc).__name__}: {exc})"
    return None if count else "cupy sees no CUDA device"


@functools.cache
def _probe_cupy_kernels() -> str | None:
    # Our CuPy kernels take torch CUDA tensors too (bf16 has no cupy dtype).
    return _probe_cupy() or cuda_reason()


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("numpy", "cpu", "numpy", "NumPy on the CPU (BLAS for float32)", _probe_numpy, "#56B4E9"),
        Backend("torch-cpu", "cpu", "torch", "torch CPU tensors", _probe_torch_cpu, "#D55E00"),
        Backend("torch-cuda", "cuda", "torch", "torch CUDA tensors (cuBLAS, cuSPARSE, cuFFT)", cuda_reason, "#E69F00"),
        Backend("triton", "cuda", "torch", "our @triton.jit kernels on torch tensors", _probe_triton, "#0072B2"),
        Backend("cupy", "cuda", "torch", "our CUDA C kernels through cupy.RawModule", _probe_cupy_kernels, "#009E73"),
        Backend("cupy-lib", "cuda", "cupy", "cupy library calls on cupy arrays", _probe_cupy, "#CC79A7"),
    )
}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}") from None
