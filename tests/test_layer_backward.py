"""The backward pass of the convolution and locally-connected layers (issue 22): the
float64 references (structbench/ops/conv/transposed_reference.py, grad_reference.py and
their local forms) against torch.autograd in float64 through the forward as torch
computes it (F.pad + F.conv1d; the unfold + einsum locally-connected layer), on every test
shape of each op, so a wrong formula cannot hide behind a kernel that matches it; and the
conv_transpose1d baseline's padding arithmetic on the CPU. Kernels against the references:
tests/test_correctness.py (``-k "conv_mv_t or conv_grad or local_mv_t or local_grad"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from structbench.core.dtypes import get_dtype
from structbench.core.registry import default_registry
from structbench.ops.conv.reference import geometry
from structbench.ops.local.transposed_baselines import unfold_einsum

REGISTRY = default_registry()
TRANSPOSED = [name for name in ("conv_mv_t", "conv_mm_t", "local_mv_t", "local_mm_t") if name in {op.name for op in REGISTRY.ops()}]
GRADS = [name for name in ("conv_grad_mv", "conv_grad_mm", "local_grad_mv", "local_grad_mm")
         if name in {op.name for op in REGISTRY.ops()}]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _forward(x: torch.Tensor, w: torch.Tensor, g, local: bool) -> torch.Tensor:
    padded = F.pad(x, (g.pad_left, g.pad_right))
    if g.n_out == 0 or g.c_out == 0 or g.c_in == 0 or x.shape[0] == 0:
        return torch.zeros((x.shape[0], g.c_out, g.n_out), dtype=x.dtype) + 0 * (x.sum() + w.sum())
    if local:
        return unfold_einsum(padded, w, g)
    return F.conv1d(padded, w, stride=g.stride, dilation=g.dilation, groups=g.groups)


def _cases(names):
    for name in names:
        for shape in REGISTRY.op(name).test_shapes:
            yield pytest.param(name, shape, id=f"{name}-{'-'.join(f'{k}{v}' for k, v in shape.items())}")


def _inputs(name: str, shape: dict):
    op = REGISTRY.op(name)
    host = op.make_inputs(shape, get_dtype("fp32"), np.random.default_rng(7))
    return op, host, op.call_kwargs(shape)


def _geometry(shape: dict):
    return geometry(shape["c_in"], shape["n"], shape["c_out"], shape["kernel"],
                    **{k: shape[k] for k in ("stride", "padding", "dilation", "groups") if k in shape})


@pytest.mark.parametrize("name, shape", list(_cases(TRANSPOSED)))
def test_transposed_reference_is_autograd_input_gradient(name, shape):
    op, host, kwargs = _inputs(name, shape)
    g, local, batched = _geometry(shape), name.startswith("local"), "_mm" in name
    x_shape = ((shape["batch"],) if batched else ()) + (g.c_in, g.n)
    x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
    y = _forward(x if batched else x[None], _t(host["w"]), g, local)
    delta = _t(host["y"]) if batched else _t(host["y"])[None]
    (x_grad,) = torch.autograd.grad(y, x, delta, allow_unused=True)
    expected = np.zeros(x_shape) if x_grad is None else x_grad.numpy()
    got = op.reference(host["y"], host["w"], **kwargs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, shape", list(_cases(GRADS)))
def test_grad_reference_is_autograd_weight_gradient(name, shape):
    op, host, kwargs = _inputs(name, shape)
    g, local, batched = _geometry(shape), name.startswith("local"), "_mm" in name
    w_shape = ((g.c_out, g.n_out) if local else (g.c_out,)) + (g.in_per_group, g.kernel)
    w = torch.zeros(w_shape, dtype=torch.float64, requires_grad=True)
    x = _t(host["x"])
    y = _forward(x if batched else x[None], w, g, local)
    delta = _t(host["delta"]) if batched else _t(host["delta"])[None]
    (w_grad,) = torch.autograd.grad(y, w, delta, allow_unused=True)
    expected = np.zeros(w_shape) if w_grad is None else w_grad.numpy()
    got = op.reference(host["x"], host["delta"], **kwargs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, shape", list(_cases([n for n in TRANSPOSED if n.startswith("conv")])))
def test_conv_transpose1d_baseline_on_the_cpu(name, shape):
    from structbench.ops.conv.transposed_baselines import torch_conv_transpose1d

    op, host, kwargs = _inputs(name, shape)
    expected = op.reference(host["y"], host["w"], **kwargs)
    out = torch.full(expected.shape, float("nan"), dtype=torch.float64)
    torch_conv_transpose1d(_t(host["y"]), _t(host["w"]), out=out, **kwargs)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_cost_models_by_hand():
    # c_in 2, n 10, c_out 3, K 3, stride 2, padding 1: n_out = (10 + 2 - 3) // 2 + 1 = 5;
    # conv weights 3 * 2 * 3 = 18, local 18 * 5 = 90; x 20 numbers, y 15.
    shape = {"c_in": 2, "n": 10, "c_out": 3, "kernel": 3, "stride": 2, "padding": 1}
    fp32, int8 = get_dtype("fp32"), get_dtype("int8")
    assert REGISTRY.op("conv_mv_t").flops(shape) == 2 * 3 * 5 * 2 * 3
    assert REGISTRY.op("conv_mv_t").min_bytes(shape, fp32) == (18 + 15) * 4 + 20 * 4
    assert REGISTRY.op("conv_mv_t").min_bytes(shape, int8) == (18 + 15) + 20 * 4  # int32 out
    assert REGISTRY.op("local_mv_t").min_bytes(shape, fp32) == (90 + 15) * 4 + 20 * 4
    assert REGISTRY.op("conv_grad_mv").min_bytes(shape, fp32) == (20 + 15 + 18) * 4
    assert REGISTRY.op("local_grad_mv").min_bytes(shape, fp32) == (20 + 15 + 90) * 4
    assert REGISTRY.op("conv_grad_mm").min_bytes({**shape, "batch": 4}, fp32) == (4 * (20 + 15) + 18) * 4
    assert REGISTRY.op("conv_grad_mv").out_shape(shape) == (3, 2, 3)
    assert REGISTRY.op("local_grad_mv").out_shape(shape) == (3, 5, 2, 3)
    assert REGISTRY.op("conv_mv_t").out_shape(shape) == (2, 10)
