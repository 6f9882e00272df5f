"""The precisions structbench measures, their widths, and the one table of tolerances.

Every correctness check (pytest and the benchmark's verify-before-time step) reads its
tolerance from ``TOLERANCES`` below; nothing else in the project picks a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DType:
    name: str  # our short name, used in CSV rows and test ids: "fp32"
    width_bytes: int  # bytes per element, what the cost models multiply by
    is_integer: bool
    torch_name: str  # attribute of the torch module: torch.float32
    numpy_name: str | None  # numpy dtype name; None when numpy has no such type (bf16)
    accumulate: str  # name of the dtype the kernels accumulate in


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp32", 4, False, "float32", "float32", "fp32"),
        DType("fp16", 2, False, "float16", "float16", "fp32"),
        DType("bf16", 2, False, "bfloat16", None, "fp32"),
        DType("int8", 1, True, "int8", "int8", "int32"),
        # Not a benchmark precision: the output of the int8 products.
        DType("int32", 4, True, "int32", "int32", "int32"),
    )
}

# The precisions every op is measured in, in report order.
BENCH_DTYPES: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")

# Allowed normwise relative error  max_i |y_i - ref_i| / max_i |ref_i|  against the
# float64 reference computed on the very same (already rounded) input values.
# Why these numbers:
# - fp32: accumulation error only, about u*sqrt(n)/3 ~ 4e-6 at n = 32768. 2e-5 keeps a
#   5x margin, and still fails TF32 (inputs rounded to 10 mantissa bits give ~3e-4),
#   so a kernel that silently uses TF32 for "fp32" is caught.
# - fp16 / bf16: inputs are exact, accumulation is fp32, the output is rounded once to
#   nearest: at most 2**-11 = 4.9e-4 (fp16) and 2**-8 = 3.9e-3 (bf16) of the largest
#   element. A little above that, and below what truncating instead of rounding gives.
# - int8: int32 accumulation of exact products must be exact.
# - Parameter gradients (structbench/ops/*/grad*.py) use the same rule: they reduce in fp32
#   (over the batch for the _mm forms: at most as long as the forward reductions) and round
#   once to the parameter's dtype, so no batch-dependent tolerance is needed.
TOLERANCES: dict[str, float] = {
    "fp32": 2e-5,
    "fp16": 7e-4,
    "bf16": 5e-3,
    "int8": 0.0,
}


def get_dtype(name: str) -> DType:
    """The DType called ``name``, or a ValueError listing the valid names."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(BENCH_DTYPES)}") from None


def output_dtype(dtype: DType) -> DType:
    """Products keep float dtypes and widen int8 to int32 (exact accumulation)."""
    return DTYPES["int32"] if dtype.name == "int8" else dtype


def tolerance(dtype: DType) -> float:
    return TOLERANCES[dtype.name]
