"""Argument checks shared by every launcher, Triton and CuPy alike.

A launcher describes its operands once with ``describe`` and then asks for what it
needs; every failure is a TypeError/ValueError that names the op, the argument and the
problem, before anything is allocated or launched. torch and cupy are imported lazily:
this module is imported by the registry, which must not need either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# int8 x int8 products are at most 2**14 in magnitude, so an int32 accumulator cannot
# overflow while a reduction has at most this many terms.
INT8_MAX_REDUCTION = (2**31 - 1) // (128 * 128)

# torch/cupy dtype names -> our names; int32 appears only as the output of int8 products.
_OUR_DTYPE = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "int8", "int32": "int32"}


class ArrayInfo(NamedTuple):
    """(A NamedTuple, not a frozen dataclass: built for every argument of every call, it
    costs ~0.5 us instead of ~6 us.)"""

    name: str  # the argument's name, for messages
    library: str  # "torch" or "cupy"
    dtype: str  # our name ("fp32"...) or the library's name when we have none
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    device: str  # "cpu", "cuda:0", ...
    data_ptr: int
    itemsize: int


# torch dtype / device -> our name / "cuda:0": str() of them costs ~1 us per call.
_TORCH_DTYPE_NAMES: dict = {}
_DEVICE_NAMES: dict = {}


def describe(op: str, name: str, array) -> ArrayInfo:
    """What a launcher needs to know of a torch tensor or cupy array, or a TypeError."""
    module = type(array).__module__.split(".")[0]
    if module == "torch":
        dtype, device = array.dtype, array.device
        our_dtype = _TORCH_DTYPE_NAMES.get(dtype)
        if our_dtype is None:
            raw = str(dtype).removeprefix("torch.")
            our_dtype = _TORCH_DTYPE_NAMES[dtype] = _OUR_DTYPE.get(raw, raw)
        device_name = _DEVICE_NAMES.get(device)
        if device_name is None:
            device_name = _DEVICE_NAMES[device] = str(device)
        return ArrayInfo(name, "torch", our_dtype, tuple(array.shape), array.stride(), device_name,
                         array.data_ptr(), array.element_size())
    if module == "cupy":
        raw = str(array.dtype)
        return ArrayInfo(name, "cupy", _OUR_DTYPE.get(raw, raw), tuple(array.shape),
                         tuple(s // array.itemsize for s in array.strides), f"cuda:{array.device.id}",
                         array.data.ptr, array.itemsize)
    raise TypeError(f"{op}: {name} must be a torch.Tensor or cupy.ndarray, got {type(array).__name__}")


def require_ndim(op: str, info: ArrayInfo, ndim: int) -> None:
    if len(info.shape) != ndim:
        raise ValueError(f"{op}: {info.name} must be {ndim}-D, got shape {info.shape}")


def require_same_dtype(op: str, infos: Sequence[ArrayInfo], allowed: Sequence[str]) -> str:
    dtype = infos[0].dtype
    if dtype not in allowed:
        raise TypeError(f"{op}: unsupported dtype {dtype} for {infos[0].name}; supported: {', '.join(allowed)}")
    for info in infos[1:]:
        if info.dtype != dtype:
            raise TypeError(f"{op}: {info.name} is {info.dtype} but {infos[0].name} is {dtype}; they must match")
    return dtype


def require_device(op: str, infos: Sequence[ArrayInfo], device_type: str) -> None:
    device = infos[0].device
    if device.split(":")[0] != device_type and not _emulated(device_type, device):
        raise ValueError(f"{op}: {infos[0].name} is on {device}, but this kernel runs on {device_type} arrays")
    for info in infos[1:]:
        if info.device != device:
            raise ValueError(f"{op}: {info.name} is on {info.device} but {infos[0].name} is on {device}")
    library = infos[0].library
    if any(info.library != library for info in infos):
        raise TypeError(f"{op}: mix of torch and cupy arguments; pass arrays of one library")


def _emulated(device_type: str, device: str) -> bool:
    """CPU tensors for a CUDA kernel: only while the tests' CPU path of our CUDA C is
    installed (tests/cudacpu); never in the benchmark."""
    if device_type != "cuda" or device != "cpu":
        return False
    from structbench.ops._shared import cupy as _cupy  # lazy: _cupy imports this module

    return _cupy.cuda_on_cpu()


def require_unit_inner_stride(op: str, info: ArrayInfo) -> None:
    """Rows may be padded (any row stride >= row length), elements within a row may not."""
    rows, cols = info.shape
    if rows == 0 or cols == 0:  # nothing is read; empty tensors carry arbitrary strides
        return
    if cols > 1 and info.strides[1] != 1 or rows > 1 and info.strides[0] < cols:
        raise ValueError(
            f"{op}: {info.name} must be row-major with unit stride along its last dimension "
            f"(shape {info.shape}, strides {info.strides}); pass .contiguous()")


def require_shape(op: str, info: ArrayInfo, shape: tuple[int, ...], why) -> None:
    """``why``: a string, or a function returning one (formatted only on error: the checks
    run on every call)."""
    if info.shape != shape:
        raise ValueError(f"{op}: {info.name} has shape {info.shape}, expected {shape} "
                         f"({why() if callable(why) else why})")


def require_int8_reduction(op: str, dtype: str, length: int) -> None:
    if dtype == "int8" and length > INT8_MAX_REDUCTION:
        raise ValueError(f"{op}: int8 reduction length {length} > {INT8_MAX_REDUCTION} could overflow the "
                         "int32 accumulator")


def _extent(info: ArrayInfo) -> tuple[int, int]:
    """[first byte, one past last byte] that the array can touch."""
    _, _, _, shape, strides, _, data_ptr, itemsize = info
    if not all(shape):
        return data_ptr, data_ptr
    span = 1
    for size, stride in zip(shape, strides):
        span += (size - 1) * stride
    return data_ptr, data_ptr + span * itemsize


def require_no_overlap(op: str, out: ArrayInfo, inputs: Sequence[ArrayInfo]) -> None:
    lo, hi = _extent(out)
    for info in inputs:
        in_lo, in_hi = _extent(info)
        if lo < in_hi and in_lo < hi:
            raise ValueError(f"{op}: out overlaps {info.name} in memory; the kernel would read what it writes")


def out_dtype_name(dtype: str) -> str:
    return "int32" if dtype == "int8" else dtype


class DenseOperands(NamedTuple):
    """Checked operands of a dense product: y = A x (x 1-D) or C = A B."""

    dtype: str
    a: ArrayInfo
    b: ArrayInfo
    out: ArrayInfo | None
    out_shape: tuple[int, ...]


def check_dense(op: str, a, b, out, *, vector: bool, device_type: str,
                dtypes: Sequence[str] = ("fp32", "fp16", "bf16", "int8")) -> DenseOperands:
    """The checks every dense_mv/dense_mm launcher makes, in one place."""
    b_name = "x" if vector else "b"
    a_info, b_info = describe(op, "a", a), describe(op, b_name, b)
    require_ndim(op, a_info, 2)
    require_ndim(op, b_info, 1 if vector else 2)
    dtype = require_same_dtype(op, [a_info, b_info], dtypes)
    require_device(op, [a_info, b_info], device_type)
    m, k = a_info.shape
    if b_info.shape[0] != k:
        raise ValueError(f"{op}: shape mismatch: a is {m}x{k} but {b_name} has {b_info.shape[0]} rows "
                         f"(shape {b_info.shape}); they must agree on {k}")
    require_unit_inner_stride(op, a_info)
    if not vector:
        require_unit_inner_stride(op, b_info)
    require_int8_reduction(op, dtype, k)
    out_shape = (m,) if vector else (m, b_info.shape[1])
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, lambda: f"the product of a {a_info.shape} and {b_name} {b_info.shape}")
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [a_info, out_info], device_type)
        if not vector:
            require_unit_inner_stride(op, out_info)
        require_no_overlap(op, out_info, [a_info, b_info])
    return DenseOperands(dtype, a_info, b_info, out_info, out_shape)
