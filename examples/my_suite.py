"""A user suite: two dense_mv kernels of "mine", benchmarked through structbench.

    structbench check --suite examples/my_suite.py --op dense_mv --impl mine-numpy --dtype fp32
    structbench check --suite examples/my_suite.py --op dense_mv --impl mine-triton-16x128   # CPU: interpreter
    structbench run --suite examples/my_suite.py --op dense_mv --impl mine-numpy,numpy --shape m=256,n=256 \
        --dtype fp32 --out results/mine.csv
    structbench report results/mine.csv
    structbench inspect --suite examples/my_suite.py --op dense_mv --impl mine-triton-16x128   # registers, loads

Kernels are called as ours are: fn(*inputs, out=out) on the backend's arrays (numpy arrays
for backend "numpy", torch tensors for "triton"), writing into ``out``.
"""

import numpy as np

from structbench import launch_triton, register_kernel


@register_kernel(op="dense_mv", name="mine-numpy", backend="numpy", dtypes=("fp32", "fp16"))
def mine_numpy(a, x, *, out):
    """y = A x by rows of 64 with numpy.dot (fp32 accumulation)."""
    for start in range(0, a.shape[0], 64):
        out[start:start + 64] = np.dot(a[start:start + 64].astype(np.float32), x.astype(np.float32))
    return out


# The Triton kernel: one program per BLOCK_M rows, BLOCK_N columns a step (ours picks up to 8
# rows and 2 KiB of a row a step; this one takes 16 x 128). Imported lazily: the suite loads
# (for `list`, `check` of the numpy kernel) on a machine without triton.
_kernel = None


def _dense_mv_16x128():
    global _kernel
    if _kernel is None:
        import triton
        import triton.language as tl

        @triton.jit
        def dense_mv_kernel(a_ptr, x_ptr, y_ptr, m, n, a_row_stride,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
            rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
            acc = tl.zeros((BLOCK_M,), dtype=tl.float32)
            for start in range(0, n, BLOCK_N):
                cols = start + tl.arange(0, BLOCK_N)
                mask = (rows[:, None] < m) & (cols[None, :] < n)
                a = tl.load(a_ptr + rows[:, None].to(tl.int64) * a_row_stride + cols[None, :], mask=mask, other=0)
                x = tl.load(x_ptr + cols, mask=cols < n, other=0)
                acc += tl.sum(a.to(tl.float32) * x.to(tl.float32)[None, :], axis=1)
            tl.store(y_ptr + rows, acc.to(y_ptr.dtype.element_ty), mask=rows < m)

        _kernel = dense_mv_kernel
    return _kernel


@register_kernel(op="dense_mv", name="mine-triton-16x128", backend="triton", dtypes=("fp32", "fp16", "bf16"))
def mine_triton(a, x, *, out):
    """Triton GEMV, 16 rows x 128 columns per step, fp32 accumulation."""
    m, n = a.shape
    a, x = a.contiguous(), x.contiguous()
    # kernel[grid](...) through structbench's seam: `structbench inspect --suite` then sees it.
    launch_triton(_dense_mv_16x128(), ((m + 15) // 16,), a, x, out, m, n, a.stride(0), BLOCK_M=16, BLOCK_N=128)
    return out
