"""The GPU-sized code paths of our launchers, run for real without a GPU.

On the interpreter the launchers see one SM (structbench.ops._shared.triton.num_sms), so the paths
they take to fill a 132-SM GPU (dense_mm's split-K for a skinny batch, the LoRA /
low-rank shrink split over columns) would never run in tests/test_correctness.py.
Here the SM count is patched to an H100's and the same cases are checked against the
reference; the policies themselves are checked as functions of the shape."""

from __future__ import annotations

import pytest

from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from tests.helpers import run_impl, skip_unless_runnable

H100_SMS = 132
DTYPES = ["fp32", "fp16", "bf16", "int8"]


@pytest.fixture
def h100(monkeypatch):
    from structbench.ops._shared import triton as _triton

    monkeypatch.setattr(_triton, "_device_sms", lambda device: H100_SMS)


def _check(impl_name: str, op: str, dtype: str, shape: dict, request) -> None:
    impl = default_registry().impl(op, impl_name)
    skip_unless_runnable(impl)
    reason = impl.unsupported_reason(shape, get_dtype(dtype))
    if reason:
        pytest.skip(reason)
    result, reference = run_impl(impl, dtype, shape, seed_key=request.node.name)
    if dtype == "int8":
        assert (result == reference).all()
    else:
        assert max_rel_err(result, reference) <= tolerance(get_dtype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_mm_split_k_matches_reference(h100, dtype, request):
    from structbench.ops.dense.triton import _mm_config

    shape = {"m": 100, "n": 7, "k": 2100}  # 2 output tiles for 132 SMs: the reduction is split
    _, split_k, _ = _mm_config(shape["m"], shape["n"], shape["k"], dtype, H100_SMS)
    assert split_k > 1
    _check("triton", "dense_mm", dtype, shape, request)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_mm_split_k_workspace_is_fp32_or_int32(dtype):
    """The split-K partial sums are kept in the accumulator's type, rounded once by the sum
    kernel: an fp16 workspace is within fp16's tolerance at this shape (6.6e-4 vs 7e-4), so
    the correctness test cannot tell; the captured launches can."""
    import torch

    from structbench.core.dtypes import get_dtype as dtype_of
    from structbench.ops._shared import triton as _triton
    from structbench.ops.dense.triton import _dense_mm_kernel, _split_k_sum_kernel, dense_mm

    launches = []
    torch_dtype = getattr(torch, dtype_of(dtype).torch_name)
    a, b = torch.ones((100, 2100), dtype=torch_dtype), torch.ones((2100, 7), dtype=torch_dtype)
    with _triton.capture(lambda kernel, grid, args, meta: launches.append((kernel, grid, args)), sms=H100_SMS):
        out = dense_mm(a, b)
    (mm, mm_grid, mm_args), (total, _, total_args) = launches
    assert mm is _dense_mm_kernel and total is _split_k_sum_kernel and mm_grid[1] > 1  # split-K taken
    workspace = mm_args[2]
    assert workspace.dtype == (torch.int32 if dtype == "int8" else torch.float32), workspace.dtype
    assert workspace.shape == (mm_grid[1], 100, 7)
    assert total_args[0] is workspace and total_args[1] is out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, impl", [("lora_mv", "triton-fused"), ("lora_mv", "triton-unfused"),
                                      ("lowrank_mv", "triton-twostep")])
def test_split_shrink_matches_reference(h100, op, impl, dtype, request):
    from structbench.ops.lowrank.triton import _shrink_blocks

    n = 600 if dtype != "int8" else 150  # int8 stays inside its int32 bound
    shape = {"m": 70, "n": n, "r": 6, "scale": -2.0} if op == "lora_mv" else {"m": 70, "n": n, "r": 6}
    _, splits, _ = _shrink_blocks(6, n, get_dtype(dtype).width_bytes, H100_SMS)
    assert splits > 1 or dtype == "int8"  # int8: 150 columns are one 16-byte step per lane
    _check(impl, op, dtype, shape, request)


@pytest.mark.parametrize("r, n", [(16, 4096), (64, 4096), (16, 11008), (64, 16384)])
def test_shrink_fills_the_gpu_at_n_4096(r, n):
    """The shrink's grid has >= one program per SM for LoRA ranks at n >= 4096 (16-bit)."""
    from structbench.ops.lowrank.cuda import shrink_splits
    from structbench.ops.lowrank.triton import _shrink_blocks

    blocks, splits, _ = _shrink_blocks(r, n, 2, H100_SMS)
    assert -(-r // blocks["BLOCK_R"]) * splits >= H100_SMS
    cuda_splits, _ = shrink_splits(r, n, 2, H100_SMS)
    assert r * cuda_splits >= H100_SMS


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n, k", [(4096, 16, 4096), (4096, 64, 4096), (8192, 1, 8192)])
def test_skinny_gemm_fills_the_gpu(dtype, m, n, k):
    from structbench.ops.dense.triton import _mm_config

    config, split_k, k_per_split = _mm_config(m, n, k, dtype, H100_SMS)
    tiles = -(-m // config["BLOCK_M"]) * -(-n // config["BLOCK_N"])
    assert tiles * split_k >= H100_SMS
    assert split_k * k_per_split >= k and (split_k - 1) * k_per_split < k
