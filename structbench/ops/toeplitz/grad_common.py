"""Argument checks the Toeplitz gradient launchers (Triton and CUDA C) share."""

from __future__ import annotations

from typing import NamedTuple

from structbench.ops.dense.grad_checks import agree, operands, output


class DiagonalOperands(NamedTuple):
    dtype: str
    m: int
    n: int
    k: int  # the batch (1 for the mv form)
    parameters: int  # m + n - 1, or 0 for an empty T
    x_row_stride: int
    delta_row_stride: int

    @property
    def out_shape(self) -> tuple[int]:
        return (self.parameters,)


def check(op: str, x, delta, *, batched: bool, device_type: str):
    x_name = "b" if batched else "x"
    dtype, infos = operands(op, [(x_name, x, 2 if batched else 1), ("delta", delta, 2 if batched else 1)],
                            device_type)
    xi, di = infos
    m, n = di.shape[0], xi.shape[0]
    k = agree(op, "the batch k", [(x_name, xi.shape[1]), ("delta", di.shape[1])]) if batched else 1
    parameters = m + n - 1 if m and n else 0
    x_row_stride = xi.strides[0] if n else 0
    delta_row_stride = di.strides[0] if m else 0
    return DiagonalOperands(dtype, m, n, k, parameters, x_row_stride, delta_row_stride), infos


def check_out(op: str, ops: DiagonalOperands, out, infos, device_type: str):
    return output(op, out, ops.out_shape, ops.dtype, infos, device_type)
