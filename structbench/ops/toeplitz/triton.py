"""Toeplitz matrix-vector and matrix-matrix products in Triton, by the direct method.

T is m x n with first column c and first row r: T[i, j] = c[i - j] for i >= j, r[j - i]
for i < j (c[0] is the diagonal; r[0] is never read). The kernels never materialise T:
a tile of rows [i0, i0 + BLOCK_M) x columns [j0, j0 + BLOCK_N) of T is a block load of
its BLOCK_M + BLOCK_N - 1 parameters c[i - j] / r[j - i], gathered into the 2-D tile by
pointer arithmetic (Triton has no register gather from a 1-D block to a 2-D one). Every
parameter of the window is used up to min(BLOCK_M, BLOCK_N) times within the tile, so
all but the window's first touch hit L1: the kernels read O(m + n) bytes from memory
(plus x, or B once per row-tile of C) and do 2 m n flops (per column of B).

That makes the direct method compute-bound (arithmetic intensity ~ n / 2 flops per
parameter byte), unlike a dense GEMV: its speed is the rate of (load from L1, FMA).

toeplitz_mv: each program owns BLOCK_M rows and walks the columns BLOCK_N at a time,
accumulating a (BLOCK_M, BLOCK_N) tile of products (fp32, or int32 for int8) reduced once
at the end, as structbench/ops/dense/triton.py's GEMV does.

toeplitz_mm: C = T B with B n x k. Each program computes a BLOCK_M x BLOCK_K tile of C
with tl.dot over BLOCK_N-wide slices of the reduction: the slice of T is gathered from
c/r as above and the slice of B is a plain block load. fp32 uses input_precision="ieee"
(true fp32, no TF32); fp16/bf16 accumulate in fp32; int8 accumulates in int32 and writes
int32 (exact; the launchers refuse n > structbench.ops._shared.checks.INT8_MAX_REDUCTION).

The launchers check their arguments (structbench.ops.toeplitz.checks), allocate the output if none is
given, pick block sizes from the shape, and launch.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.toeplitz.checks import check_toeplitz


@triton.jit
def _param_window(c_ptr, r_ptr, c_first, r_first, m, n, c_stride, r_stride, WIN: tl.constexpr):
    """c[c_first + t] and r[r_first + t] for t < WIN (0 outside c[0, m) and r[0, n)),
    interleaved: element 2t from c, 2t + 1 from r. Both loads ascend, so they are wide
    (16-byte) when the stride is 1 and the firsts are multiples of 8 (the callers keep
    them multiples of their tile sizes)."""
    t = tl.arange(0, WIN)
    ci = c_first + t
    ri = r_first + t
    wc = tl.load(c_ptr + ci.to(tl.int64) * c_stride, mask=(ci >= 0) & (ci < m), other=0)
    wr = tl.load(r_ptr + ri.to(tl.int64) * r_stride, mask=(ri >= 0) & (ri < n), other=0)
    return tl.reshape(tl.join(wc, wr), (2 * WIN,))


@triton.jit
def _window_tile(window, d, c_first, r_first, ROWS: tl.constexpr, COLS: tl.constexpr):
    """The (ROWS, COLS) tile v(d) for diagonal indices d, gathered from a _param_window
    (c[d] for d >= 0, r[-d] for d < 0: r[0] is never used) in registers/shared memory,
    without a global load. The caller's window must hold every d of the tile."""
    idx = tl.where(d >= 0, 2 * (d - c_first), 2 * (-d - r_first) + 1)
    return tl.reshape(tl.gather(window, tl.reshape(idx, (ROWS * COLS,)), 0), (ROWS, COLS))


@triton.jit
def _toeplitz_mv_kernel(
    c_ptr, r_ptr, x_ptr, out_ptr,
    m, n, col_blocks, k_per_split,
    c_stride, r_stride, x_stride, out_stride, out_split_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    B: tl.constexpr, NI: tl.constexpr, WIN: tl.constexpr,
):
    """Split s of the block-diagonal sums of NI row blocks (see the module docstring):
    out[s, (I0 + t) B + a] = sum over k of this split of (T_k x_(I0 + t - k))[a]."""
    KW: tl.constexpr = WIN // B - 1  # block diagonals per parameter window
    first_block = tl.program_id(0) * NI
    last_block = tl.minimum(first_block + NI, tl.cdiv(m, B))  # exclusive
    k_lo = first_block - col_blocks + 1 + tl.program_id(1) * k_per_split
    k_hi = tl.minimum(k_lo + k_per_split, last_block)  # exclusive
    t = tl.arange(0, NI)  # row block I0 + t: a row of the dot
    a = tl.arange(0, B)  # row within a block: a column of the dot
    b = tl.arange(0, B)  # column within a block: the dot's reduction
    acc = tl.zeros((NI, B), dtype=ACC_DTYPE)
    for k0 in range(k_lo, k_hi, KW):
        # v(d) for every d = k B + a - b of block diagonals k0 .. k0 + KW - 1: two wide loads.
        c_first = (k0 - 1) * B
        r_first = -(k0 + KW) * B
        window = _param_window(c_ptr, r_ptr, c_first, r_first, m, n, c_stride, r_stride, WIN)
        for k in range(k0, tl.minimum(k0 + KW, k_hi)):
            tile = _window_tile(window, k * B + a[None, :] - b[:, None], c_first, r_first, B, B)  # T_k^T
            col_block = first_block + t - k
            valid = (col_block >= 0) & (col_block < col_blocks)
            cols = col_block[:, None] * B + b[None, :]
            xs = tl.load(x_ptr + cols.to(tl.int64) * x_stride, mask=valid[:, None], other=0)
            part = tl.dot(xs, tile, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
            # A row block whose column block J = I - k lies outside T gets nothing, not
            # 0 * T_k (NaN where T_k holds an inf of another row).
            acc += tl.where(valid[:, None], part, 0)
    rows = (first_block + t)[:, None] * B + a[None, :]
    tl.store(out_ptr + tl.program_id(1).to(tl.int64) * out_split_stride + rows.to(tl.int64) * out_stride,
             acc.to(out_ptr.dtype.element_ty), mask=rows < m)


@triton.jit
def _toeplitz_mv_finish_kernel(
    c_ptr, r_ptr, x_ptr, parts_ptr, y_ptr,
    m, n, splits, tail_first,
    c_stride, r_stride, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_T: tl.constexpr, WIN: tl.constexpr,
    HAS_TAIL: tl.constexpr,
):
    """y = the sum of the splits' partial sums + the tail columns [tail_first, n) (fewer
    than a block: direct method on a gathered tile, each product masked)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    acc = tl.zeros((BLOCK_M,), dtype=ACC_DTYPE)
    parts = parts_ptr + rows
    for _ in range(splits):
        acc += tl.load(parts, mask=rows < m, other=0)
        parts += m  # pointer arithmetic: 64-bit, however many splits
    if HAS_TAIL:
        d0 = tl.program_id(0) * BLOCK_M - tail_first  # d of (row 0, tail column 0)
        c_first = d0 - BLOCK_T
        r_first = -(d0 + BLOCK_M)
        window = _param_window(c_ptr, r_ptr, c_first, r_first, m, n, c_stride, r_stride, WIN)
        j = tl.arange(0, BLOCK_T)
        tile = _window_tile(window, d0 + tl.arange(0, BLOCK_M)[:, None] - j[None, :], c_first, r_first,
                            BLOCK_M, BLOCK_T)
        cols = tail_first + j
        xs = tl.load(x_ptr + cols.to(tl.int64) * x_stride, mask=cols < n, other=0)
        acc += tl.sum(tl.where(cols[None, :] < n, tile.to(ACC_DTYPE) * xs.to(ACC_DTYPE)[None, :], 0), axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, acc.to(y_ptr.dtype.element_ty), mask=rows < m)


@triton.jit
def _toeplitz_mm_kernel(
    c_ptr, r_ptr, b_ptr, out_ptr,
    m, n, k,
    c_stride, r_stride, b_row_stride, out_row_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, WIN: tl.constexpr,
):
    STEPS: tl.constexpr = (WIN - BLOCK_M) // BLOCK_N  # reduction steps per parameter window
    # Programs along k vary fastest: neighbours share the same rows, hence the same
    # window of c/r, in L2.
    tiles_k = tl.cdiv(k, BLOCK_K)
    row0 = (tl.program_id(0) // tiles_k) * BLOCK_M
    a = tl.arange(0, BLOCK_M)
    out_cols = (tl.program_id(0) % tiles_k) * BLOCK_K + tl.arange(0, BLOCK_K)
    ns = tl.arange(0, BLOCK_N)
    b_ptrs = b_ptr + ns[:, None].to(tl.int64) * b_row_stride + out_cols[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=ACC_DTYPE)
    for window_start in range(0, n, STEPS * BLOCK_N):
        # v(d) for every d = i - j of rows row0.. and the next STEPS * BLOCK_N columns.
        c_first = row0 - window_start - STEPS * BLOCK_N
        r_first = window_start - row0 - BLOCK_M
        window = _param_window(c_ptr, r_ptr, c_first, r_first, m, n, c_stride, r_stride, WIN)
        for n_start in range(window_start, tl.minimum(window_start + STEPS * BLOCK_N, n), BLOCK_N):
            cols = n_start + ns
            t = _window_tile(window, row0 - n_start + a[:, None] - ns[None, :], c_first, r_first, BLOCK_M, BLOCK_N)
            t = tl.where(cols[None, :] < n, t, 0)  # columns past T pair with B's zero rows: no inf * 0
            b = tl.load(b_ptrs, mask=(cols[:, None] < n) & (out_cols[None, :] < k), other=0)
            acc = tl.dot(t, b, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
            b_ptrs += BLOCK_N * b_row_stride
    rows = row0 + a
    out_ptrs = out_ptr + rows[:, None].to(tl.int64) * out_row_stride + out_cols[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=(rows[:, None] < m) & (out_cols[None, :] < k))


@functools.lru_cache(maxsize=256)  # host time per call: computed once per shape
def _mv_config(m: int, n: int, num_sms: int) -> dict:
    """Blocks of T (B x B), row blocks per program (NI, the dot's M) and the split of each
    program's block diagonals over programs, so that about two programs run per SM."""
    block = 64  # the dot's N and K; fewer than 64 columns are all tail
    col_blocks = n // block
    row_blocks = _triton.cdiv(m, block)
    ni = 32 if row_blocks >= 32 else 16
    row_programs = _triton.cdiv(row_blocks, ni)
    diagonals = min(ni, row_blocks) + col_blocks - 1  # block diagonals of a program's row blocks
    splits = max(1, min(_triton.cdiv(2 * num_sms, row_programs), diagonals))
    k_per_split = max(1, _triton.cdiv(diagonals, splits))
    splits = _triton.cdiv(diagonals, k_per_split) if col_blocks else 0
    # The window spans KW + 1 blocks (a power of two); at least 512 elements, so that
    # 128 threads load it 4 or more elements at a time.
    win = max(512, block * _triton.next_power_of_2(min(k_per_split, 15) + 1))
    return dict(block=block, col_blocks=col_blocks, ni=ni, row_programs=row_programs, splits=splits,
                k_per_split=k_per_split, win=win, tail_first=col_blocks * block)


# Rows per program of the finishing kernel: 4 per thread (16-byte loads of the fp32 partial
# sums), fewer when it also gathers a (rows x tail) tile of T.
_FINISH_ROWS, _FINISH_ROWS_WITH_TAIL = 512, 128


@functools.lru_cache(maxsize=256)
def _mm_config(m: int, n: int, k: int, dtype: str, num_sms: int) -> dict:
    # The T slice is gathered from the parameter window (shared memory), so smaller tiles
    # than a dense GEMM's; fp32 "ieee" runs on FMA units: fewer warps. tl.dot needs every
    # dim >= 16. Fewer rows per program when B is too narrow to give every SM a program.
    block_m, block_n, block_k = (64, 32, 64) if dtype == "fp32" else (64, 64, 64)
    while block_m > 16 and _triton.cdiv(m, block_m) * _triton.cdiv(k, block_k) < num_sms:
        block_m //= 2

    dot_block = _triton.dot_block  # BLOCK_N is this kernel's reduction (the columns of T)
    config = dict(BLOCK_M=dot_block(block_m, m), BLOCK_N=dot_block(block_n, n, dtype=dtype, reduction=True),
                  BLOCK_K=dot_block(block_k, k), num_warps=4, num_stages=3)
    # The parameter window covers BLOCK_M + STEPS * BLOCK_N diagonals: a power of two from
    # 512 (128 threads load it 4+ elements at a time) to 1024 (15 steps of 64 columns).
    span = config["BLOCK_M"] + _triton.cdiv(n, config["BLOCK_N"]) * config["BLOCK_N"]
    config["WIN"] = max(512, min(1024, _triton.next_power_of_2(span)))
    return config


def _launch_mv(c, r, x, out, m: int, n: int, dtype: str) -> torch.Tensor:
    """The toeplitz_mv launches on checked operands: the split block-diagonal kernel, then
    (unless one split covers everything) the kernel that sums the splits and adds the tail."""
    cfg = _mv_config(m, n, _triton.num_sms(str(c.device)))
    acc_dtype, has_tail = _triton.acc_dtype(dtype), cfg["tail_first"] < n
    direct = cfg["splits"] == 1 and not has_tail  # one split, no tail: write y itself
    if cfg["splits"]:
        parts = out if direct else _triton.empty((cfg["splits"], m), "int32" if dtype == "int8" else "fp32",
                                                 c.device)
        _triton.launch(_toeplitz_mv_kernel, (cfg["row_programs"], cfg["splits"]),
            c, r, x, parts, m, n, cfg["col_blocks"], cfg["k_per_split"],
            c.stride(0), r.stride(0), x.stride(0), out.stride(0) if direct else 1, 0 if direct else m,
            ACC_DTYPE=acc_dtype, INPUT_PRECISION=_triton.input_precision(dtype),
            B=cfg["block"], NI=cfg["ni"], WIN=cfg["win"], num_warps=4,
        )
    if not direct:
        block_t = _triton.next_power_of_2(max(1, n - cfg["tail_first"]))
        rows = _FINISH_ROWS_WITH_TAIL if has_tail else _FINISH_ROWS
        _triton.launch(_toeplitz_mv_finish_kernel, (_triton.cdiv(m, rows),),
            c, r, x, parts if cfg["splits"] else out, out, m, n, cfg["splits"], cfg["tail_first"],
            c.stride(0), r.stride(0), x.stride(0), out.stride(0),
            ACC_DTYPE=acc_dtype, BLOCK_M=rows, BLOCK_T=block_t, WIN=2 * rows, HAS_TAIL=has_tail,
            num_warps=4,
        )
    return out


def toeplitz_mv(c: torch.Tensor, r: torch.Tensor, x: torch.Tensor, *, out: torch.Tensor | None = None,
                validate: bool = True) -> torch.Tensor:
    """y = T x, T m x n with first column c (m,) and first row r (n,), x (n,); any
    non-negative strides. fp32/fp16/bf16 return the input dtype (fp32 accumulation), int8
    returns int32 (exact). ``validate`` checks r[0] == c[0] (one synchronising read; see
    structbench.ops.toeplitz.checks); without it c[0] is the diagonal."""
    ops = check_toeplitz("toeplitz_mv", c, r, x, out, vector=True, device_type=_triton.device_type(),
                         validate=validate)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), c.device)
    if ops.m == 0 or ops.n == 0:  # an empty T: y = 0, and a zero-sized grid is an error
        return out.zero_()
    return _launch_mv(c, r, x, out, ops.m, ops.n, ops.dtype)


def toeplitz_mm(c: torch.Tensor, r: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None,
                validate: bool = True) -> torch.Tensor:
    """C = T B, T m x n from c (m,) and r (n,), B (n, k) row-major (rows may be padded);
    fp32 in true fp32, fp16/bf16 with fp32 accumulation, int8 -> int32 exact."""
    ops = check_toeplitz("toeplitz_mm", c, r, b, out, vector=False, device_type=_triton.device_type(),
                         validate=validate)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), c.device)
    if 0 in (ops.m, ops.n, ops.k):  # an empty T or B: C = 0, and a zero-sized grid is an error
        return out.zero_()
    if ops.k == 1:  # one column of B: a matvec, which needs no tl.dot tile 16 columns wide
        _launch_mv(c, r, b[:, 0], out[:, 0], ops.m, ops.n, ops.dtype)
        return out
    config = _mm_config(ops.m, ops.n, ops.k, ops.dtype, _triton.num_sms(str(c.device)))
    grid = (_triton.cdiv(ops.m, config["BLOCK_M"]) * _triton.cdiv(ops.k, config["BLOCK_K"]),)
    _triton.launch(_toeplitz_mm_kernel, grid,
        c, r, b, out, ops.m, ops.n, ops.k, c.stride(0), r.stride(0), b.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), INPUT_PRECISION=_triton.input_precision(ops.dtype), **config,
    )
    return out


# --- what the benchmark times: the corner was checked once in Impl.prepare ----------------
def toeplitz_mv_prevalidated(c, r, x, *, out=None):
    return toeplitz_mv(c, r, x, out=out, validate=False)


def toeplitz_mm_prevalidated(c, r, b, *, out=None):
    return toeplitz_mm(c, r, b, out=out, validate=False)
