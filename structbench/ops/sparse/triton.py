"""Sparse (CSR) matrix-vector and matrix-matrix products in Triton, two designs each.

csr_mv: y = A x, csr_mm: C = A B (B dense k x n), A in CSR form (structbench.ops.sparse.checks). An SpMV
reads each stored element once (value + column index) and gathers x at its column: it is
bound by memory traffic and by how evenly that traffic is spread over the GPU.

- "vector" (row-oriented, CSR-vector): csr_mv gives each program BLOCK_M consecutive rows
  and walks them together BLOCK_NNZ elements at a time, so short rows are grouped and a
  row's elements are read with contiguous loads; the program runs as long as its longest
  row. csr_mm gives each program one row and BLOCK_N columns of C and walks the row
  BLOCK_K elements at a time, gathering the matching rows of B.
- "merge" (load-balanced, merge-path as in Merrill & Garland, SC'16): the m row ends and
  the nnz elements are merged into one list of m + nnz items, cut into tiles of equal
  length; a partition kernel finds each tile's first row by binary search. A program
  walks its tile's rows, clipped to its elements, so a row longer than a tile is split
  over several programs. A row cut by tile boundaries leaves a partial sum in each tile
  ("carry" where it continues, "head" where it ends); a fixup kernel adds them up, in
  the accumulator type, and writes the row once.

fp32 accumulates in fp32, fp16/bf16 in fp32 with one rounding to the output, int8 in
int32 (exact) with an int32 output. Block sizes come from small heuristics on the mean
row length (no autotuning: it does not run on the interpreter).

Launchers validate the CSR contents on the device first (``validate=True``, see
structbench.ops.sparse.checks for what it checks and costs); the ``*_prevalidated`` variants are what the
benchmark times, after validating the same arrays once in ``Impl.prepare``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.sparse.checks import CsrPlan, check_csr, vector_route

_PARTITION_BLOCK = 128  # tile starts searched per program
_FIXUP_BLOCK = 64  # carries read per step of the fixup's backward walk
_ROW_TILE = 1024  # elements per step of a csr_mv program: BLOCK_M * BLOCK_NNZ
_MERGE_ITEMS = 1024  # merged items (row ends + elements) per csr_mv merge tile: 8 per thread


@triton.jit
def _csr_mv_vector_kernel(
    indptr_ptr, indices_ptr, data_ptr, x_ptr, y_ptr,
    m, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_NNZ: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < m
    starts = tl.load(indptr_ptr + rows, mask=row_mask, other=0).to(tl.int64)
    lengths = tl.load(indptr_ptr + rows + 1, mask=row_mask, other=0).to(tl.int64) - starts
    lanes = tl.arange(0, BLOCK_NNZ)
    acc = tl.zeros((BLOCK_M, BLOCK_NNZ), dtype=ACC_DTYPE)
    for offset in range(0, tl.max(lengths, axis=0), BLOCK_NNZ):
        in_row = (offset + lanes[None, :]) < lengths[:, None]
        elems = starts[:, None] + offset + lanes[None, :]
        cols = tl.load(indices_ptr + elems, mask=in_row, other=0)
        vals = tl.load(data_ptr + elems, mask=in_row, other=0)
        xs = tl.load(x_ptr + cols.to(tl.int64) * x_stride, mask=in_row, other=0)
        acc += vals.to(ACC_DTYPE) * xs.to(ACC_DTYPE)
    y = tl.sum(acc, axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, y.to(y_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _merge_partition_kernel(indptr_ptr, tile_rows_ptr, m, nnz, num_tiles, items_per_tile, search_steps,
                            BLOCK: tl.constexpr):
    """tile_rows[t] = rows whose end comes among the first t * items_per_tile merge items
    (row end r, at indptr[r + 1], comes before element e when indptr[r + 1] <= e)."""
    tiles = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = tiles <= num_tiles
    diag = tl.minimum(tiles.to(tl.int64) * items_per_tile, m + nnz)
    lo = tl.maximum(diag - nnz, 0)
    hi = tl.minimum(diag, m)
    for _ in range(search_steps):  # enough halvings to close [lo, hi] for every tile
        active = valid & (lo < hi)
        pivot = (lo + hi) // 2
        row_end = tl.load(indptr_ptr + pivot + 1, mask=active, other=0).to(tl.int64)
        before = row_end <= diag - pivot - 1
        lo = tl.where(active & before, pivot + 1, lo)
        hi = tl.where(active & ~before, pivot, hi)
    tl.store(tile_rows_ptr + tiles, lo.to(tl.int32), mask=valid)


@triton.jit
def _tile_bounds(tile_rows_ptr, tile, total_items, items_per_tile):
    """(first row, last row, first element, end element) of a merge tile. Rows r0..r1-1
    end inside the tile; r1 is the row still open at its end (m when none is)."""
    diag0 = tl.minimum(tile.to(tl.int64) * items_per_tile, total_items)
    diag1 = tl.minimum((tile + 1).to(tl.int64) * items_per_tile, total_items)
    r0 = tl.load(tile_rows_ptr + tile).to(tl.int64)
    r1 = tl.load(tile_rows_ptr + tile + 1).to(tl.int64)
    return r0, r1, diag0 - r0, diag1 - r1


@triton.jit
def _segmented_add(value_a, starts_a, value_b, starts_b):
    """The combine of a segmented sum: a running sum restarts at an element that starts
    a segment (starts_b); associative, so tl.associative_scan may use it."""
    return tl.where(starts_b, value_b, value_a + value_b), starts_a | starts_b


@triton.jit
def _csr_mv_merge_kernel(
    indptr_ptr, indices_ptr, data_ptr, x_ptr, y_ptr,
    tile_rows_ptr, head_rows_ptr, head_vals_ptr, carry_rows_ptr, carry_vals_ptr,
    m, total_items, items_per_tile, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr, ITEMS: tl.constexpr,
):
    """One merge tile, flat: its (at most ITEMS) elements are loaded as one dense,
    contiguous block (no per-row padding, however long or short the rows), multiplied,
    and summed per row by one segmented scan; each row's total is read at its last element."""
    tile = tl.program_id(0)
    r0, r1, n0, n1 = _tile_bounds(tile_rows_ptr, tile, total_items, items_per_tile)
    lanes = tl.arange(0, ITEMS)
    elems = n0 + lanes
    in_tile = elems < n1
    cols = tl.load(indices_ptr + elems, mask=in_tile, other=0)
    vals = tl.load(data_ptr + elems, mask=in_tile, other=0)
    xs = tl.load(x_ptr + cols.to(tl.int64) * x_stride, mask=in_tile, other=0)
    prods = tl.where(in_tile, vals.to(ACC_DTYPE) * xs.to(ACC_DTYPE), 0)
    # Rows r0 + j (j < r1 - r0) end in this tile, at local offset ends[j]; the element at
    # a row end (if any) starts the next row's segment.
    ended = r1 - r0
    row_here = lanes < ended
    starts = tl.maximum(tl.load(indptr_ptr + r0 + lanes, mask=row_here, other=0).to(tl.int64) - n0, 0)
    ends = tl.load(indptr_ptr + r0 + 1 + lanes, mask=row_here, other=0).to(tl.int64) - n0
    segment_starts = tl.histogram(ends.to(tl.int32), ITEMS, mask=row_here & (ends < ITEMS)) > 0
    sums, _ = tl.associative_scan((prods, segment_starts), 0, _segmented_add)
    # Row j's total: the scan at its last element, when it has elements in this tile.
    has_elements = row_here & (ends > starts)
    row_sums = tl.where(has_elements, tl.gather(sums, tl.where(has_elements, ends - 1, 0).to(tl.int32), 0), 0)
    # The first row is a "head" when it began in an earlier tile and ends in this one:
    # its sum here is partial, and the fixup kernel writes it.
    head_spans = (ended > 0) & (tl.load(indptr_ptr + r0).to(tl.int64) < n0)
    is_head = (lanes == 0) & head_spans
    tl.store(y_ptr + (r0 + lanes) * y_stride, row_sums.to(y_ptr.dtype.element_ty), mask=row_here & ~is_head)
    tl.store(head_rows_ptr + tile, tl.where(head_spans, r0, -1).to(tl.int32))
    tl.store(head_vals_ptr + tile, tl.sum(tl.where(is_head, row_sums, 0), axis=0))
    # The open row r1 (if any) holds the elements after the last row end.
    last_end = tl.max(tl.where(row_here, ends, 0), axis=0)
    carry = tl.sum(tl.where(in_tile & (lanes >= last_end), prods, 0), axis=0)
    tl.store(carry_rows_ptr + tile, r1.to(tl.int32))
    tl.store(carry_vals_ptr + tile, carry)


@triton.jit
def _csr_mv_fixup_kernel(head_rows_ptr, head_vals_ptr, carry_rows_ptr, carry_vals_ptr, y_ptr, y_stride,
                         BLOCK: tl.constexpr):
    """A tile whose head row began earlier adds the carries of the tiles before it that
    end inside that row (a contiguous run just before it), then writes the row."""
    tile = tl.program_id(0)
    row = tl.load(head_rows_ptr + tile)
    if row >= 0:
        total = tl.load(head_vals_ptr + tile)
        end = tile
        more = end > 0
        while more:
            offs = end - BLOCK + tl.arange(0, BLOCK)
            match = (offs >= 0) & (tl.load(carry_rows_ptr + offs, mask=offs >= 0, other=-1) == row)
            total += tl.sum(tl.load(carry_vals_ptr + offs, mask=match, other=0), axis=0)
            more = tl.sum(match.to(tl.int32), axis=0) == BLOCK  # the run may go on before offs
            end -= BLOCK
        tl.store(y_ptr + row.to(tl.int64) * y_stride, total.to(y_ptr.dtype.element_ty))


@triton.jit
def _csr_mm_vector_kernel(
    indptr_ptr, indices_ptr, data_ptr, b_ptr, c_ptr,
    n, b_row_stride, c_row_stride,
    ACC_DTYPE: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n
    start = tl.load(indptr_ptr + row).to(tl.int64)
    end = tl.load(indptr_ptr + row + 1).to(tl.int64)
    ks = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=ACC_DTYPE)
    for first in range(start, end, BLOCK_K):
        elems = first + ks
        in_row = elems < end
        a_cols = tl.load(indices_ptr + elems, mask=in_row, other=0)
        a_vals = tl.load(data_ptr + elems, mask=in_row, other=0)
        b = tl.load(b_ptr + a_cols[:, None].to(tl.int64) * b_row_stride + cols[None, :],
                    mask=in_row[:, None] & col_mask[None, :], other=0)
        acc += a_vals.to(ACC_DTYPE)[:, None] * b.to(ACC_DTYPE)
    c = tl.sum(acc, axis=0)
    tl.store(c_ptr + row.to(tl.int64) * c_row_stride + cols, c.to(c_ptr.dtype.element_ty), mask=col_mask)


@triton.jit
def _csr_mm_merge_kernel(
    indptr_ptr, indices_ptr, data_ptr, b_ptr, c_ptr,
    tile_rows_ptr, head_rows_ptr, head_vals_ptr, carry_rows_ptr, carry_vals_ptr,
    m, n, total_items, items_per_tile, b_row_stride, c_row_stride,
    ACC_DTYPE: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr,
):
    tile = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n
    r0, r1, n0, n1 = _tile_bounds(tile_rows_ptr, tile, total_items, items_per_tile)
    head_spans = (r0 < r1) & (tl.load(indptr_ptr + r0).to(tl.int64) < n0)
    if tl.program_id(1) == 0:
        tl.store(head_rows_ptr + tile, tl.where(head_spans, r0, -1).to(tl.int32))
        tl.store(carry_rows_ptr + tile, r1.to(tl.int32))
    slot = tile.to(tl.int64) * n + cols  # this tile's row of the (tiles x n) head/carry buffers
    ks = tl.arange(0, BLOCK_K)
    for row in range(r0, tl.minimum(r1 + 1, m)):  # r1 only when it exists (r1 < m)
        seg_start = tl.maximum(tl.load(indptr_ptr + row).to(tl.int64), n0)
        seg_end = tl.minimum(tl.load(indptr_ptr + row + 1).to(tl.int64), n1)
        acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=ACC_DTYPE)
        for first in range(seg_start, seg_end, BLOCK_K):
            elems = first + ks
            in_row = elems < seg_end
            a_cols = tl.load(indices_ptr + elems, mask=in_row, other=0)
            a_vals = tl.load(data_ptr + elems, mask=in_row, other=0)
            b = tl.load(b_ptr + a_cols[:, None].to(tl.int64) * b_row_stride + cols[None, :],
                        mask=in_row[:, None] & col_mask[None, :], other=0)
            acc += a_vals.to(ACC_DTYPE)[:, None] * b.to(ACC_DTYPE)
        sums = tl.sum(acc, axis=0)
        if row == r1:
            tl.store(carry_vals_ptr + slot, sums, mask=col_mask)
        elif (row == r0) & head_spans:
            tl.store(head_vals_ptr + slot, sums, mask=col_mask)
        else:
            tl.store(c_ptr + row * c_row_stride + cols, sums.to(c_ptr.dtype.element_ty), mask=col_mask)


@triton.jit
def _csr_mm_fixup_kernel(head_rows_ptr, head_vals_ptr, carry_rows_ptr, carry_vals_ptr, c_ptr,
                         n, c_row_stride, BLOCK_P: tl.constexpr, BLOCK_N: tl.constexpr):
    """_csr_mv_fixup_kernel for BLOCK_N columns of C at a time."""
    tile = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n
    row = tl.load(head_rows_ptr + tile)
    if row >= 0:
        total = tl.load(head_vals_ptr + tile.to(tl.int64) * n + cols, mask=col_mask, other=0)
        end = tile
        more = end > 0
        while more:
            offs = end - BLOCK_P + tl.arange(0, BLOCK_P)
            match = (offs >= 0) & (tl.load(carry_rows_ptr + offs, mask=offs >= 0, other=-1) == row)
            vals = tl.load(carry_vals_ptr + offs[:, None].to(tl.int64) * n + cols[None, :],
                           mask=match[:, None] & col_mask[None, :], other=0)
            total += tl.sum(vals, axis=0)
            more = tl.sum(match.to(tl.int32), axis=0) == BLOCK_P
            end -= BLOCK_P
        tl.store(c_ptr + row.to(tl.int64) * c_row_stride + cols, total.to(c_ptr.dtype.element_ty), mask=col_mask)


# --- block-size heuristics ---------------------------------------------------------------
def _pow2_between(value: float, low: int, high: int) -> int:
    return max(low, min(high, _triton.next_power_of_2(max(1, int(-(-value // 1))))))


_MAX_ROW_STEPS = 4  # steps over a mean-length row that _row_lanes accepts to save padding


def _row_lanes(mean_row: float) -> int:
    """Lanes per row (a power of two, 2..256): the fewest lane slots per mean-length row
    (lanes x steps), in at most _MAX_ROW_STEPS steps, ties to more lanes (fewer steps).
    A 10.5 mean (rows of 10-11) gets 4 lanes x 3 steps = 12 slots (8% masked), not 16
    lanes (31% masked); a 5-point stencil's 5 gets 2 x 3 = 6, not 8."""
    length = max(1, int(-(-mean_row // 1)))
    best = None
    for lanes in (256, 128, 64, 32, 16, 8, 4, 2):
        steps = -(-length // lanes)
        if steps <= _MAX_ROW_STEPS and (best is None or lanes * steps < best[0]):
            best = (lanes * steps, lanes)
    return best[1] if best else 256


def _mv_blocks(mean_row: float) -> tuple[int, int]:
    """BLOCK_NNZ lanes per row (_row_lanes), BLOCK_M rows: _ROW_TILE elements a step."""
    block_nnz = _row_lanes(mean_row)
    return _ROW_TILE // block_nnz, block_nnz


def _vector_mv_blocks(m: int, mean_row: float, num_sms: int) -> tuple[int, int]:
    block_m, block_nnz = _mv_blocks(mean_row)
    while block_m > 1 and _triton.cdiv(m, block_m) < 4 * num_sms:  # keep every SM busy
        block_m //= 2
    return block_m, block_nnz


def _merge_items(total_items: int, num_sms: int, per_tile: int) -> int:
    """Items per merge tile: about one step of the row block, fewer when that would leave
    SMs short of tiles."""
    items = per_tile
    while items > 32 and _triton.cdiv(total_items, items) < 4 * num_sms:
        items //= 2
    return items


def _mm_blocks(n: int, mean_row: float) -> tuple[int, int]:
    """BLOCK_N columns of C per program, BLOCK_K elements of a row per step."""
    return _pow2_between(mean_row, 2, 32), _pow2_between(n, 16, 64)


def _merge_workspace(num_tiles: int, width: int, dtype: str, device) -> tuple[torch.Tensor, ...]:
    """tile_rows (num_tiles + 1), head_rows, head_vals, carry_rows, carry_vals."""
    acc = "int32" if dtype == "int8" else "fp32"
    vals_shape = (num_tiles,) if width == 0 else (num_tiles, width)
    return (_triton.empty((num_tiles + 1,), "int32", device), _triton.empty((num_tiles,), "int32", device),
            _triton.empty(vals_shape, acc, device), _triton.empty((num_tiles,), "int32", device),
            _triton.empty(vals_shape, acc, device))


def _partition(indptr, tile_rows, m: int, nnz: int, num_tiles: int, items: int) -> None:
    _triton.launch(_merge_partition_kernel, (_triton.cdiv(num_tiles + 1, _PARTITION_BLOCK),),
        indptr, tile_rows, m, nnz, num_tiles, items, m.bit_length() + 1, BLOCK=_PARTITION_BLOCK)


# --- launchers -----------------------------------------------------------------------------
def _mv_operands(indptr, indices, data, x, out, validate):
    ops = check_csr("csr_mv", indptr, indices, data, x, out, vector=True, device_type=_triton.device_type(),
                    validate=validate)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), data.device)
    return ops, out


def csr_mv_vector(indptr, indices, data, x, *, out=None, validate: bool = True, plan: CsrPlan | None = None):
    """y = A x, CSR-vector design. indptr int32/int64, indices int32, data and x of one
    dtype (x any stride); fp32/fp16/bf16 -> same dtype (fp32 accumulation), int8 -> int32.
    A matrix with rows far longer than its mean (``plan``, or the one validation makes)
    takes the merge-path route instead (structbench.ops.sparse.checks.vector_route)."""
    ops, out = _mv_operands(indptr, indices, data, x, out, validate)
    if ops.m == 0:  # nothing to compute; a zero-sized grid is an error
        return out
    if vector_route(plan or ops.plan) == "merge":
        return _launch_mv_merge(ops, indptr, indices, data, x, out, None)
    block_m, block_nnz = _vector_mv_blocks(ops.m, ops.nnz / ops.m, _triton.num_sms(str(data.device)))
    _triton.launch(_csr_mv_vector_kernel, (_triton.cdiv(ops.m, block_m),),
        indptr, indices, data, x, out, ops.m, x.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_M=block_m, BLOCK_NNZ=block_nnz, num_warps=4)
    return out


def csr_mv_merge(indptr, indices, data, x, *, out=None, validate: bool = True, items_per_tile: int | None = None):
    """y = A x, merge-path design (same semantics as csr_mv_vector). ``items_per_tile``
    overrides the heuristic (tests use it to cut rows over many tiles)."""
    ops, out = _mv_operands(indptr, indices, data, x, out, validate)
    if ops.m == 0:
        return out
    return _launch_mv_merge(ops, indptr, indices, data, x, out, items_per_tile)


def _launch_mv_merge(ops, indptr, indices, data, x, out, items_per_tile):
    total = ops.m + ops.nnz
    items = items_per_tile or _merge_items(total, _triton.num_sms(str(data.device)), _MERGE_ITEMS)
    num_tiles = _triton.cdiv(total, items)
    tile_rows, head_rows, head_vals, carry_rows, carry_vals = _merge_workspace(num_tiles, 0, ops.dtype, data.device)
    _partition(indptr, tile_rows, ops.m, ops.nnz, num_tiles, items)
    _triton.launch(_csr_mv_merge_kernel, (num_tiles,),
        indptr, indices, data, x, out, tile_rows, head_rows, head_vals, carry_rows, carry_vals,
        ops.m, total, items, x.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), ITEMS=_triton.next_power_of_2(items), num_warps=4)
    _triton.launch(_csr_mv_fixup_kernel, (num_tiles,), head_rows, head_vals, carry_rows, carry_vals, out,
                   out.stride(0), BLOCK=_FIXUP_BLOCK, num_warps=1)
    return out


def _mm_operands(indptr, indices, data, b, out, validate):
    ops = check_csr("csr_mm", indptr, indices, data, b, out, vector=False, device_type=_triton.device_type(),
                    validate=validate)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), data.device)
    return ops, out


def csr_mm_vector(indptr, indices, data, b, *, out=None, validate: bool = True, plan: CsrPlan | None = None):
    """C = A B, one program per row and BLOCK_N columns. B (k, n) and C row-major (rows
    may be padded); fp32/fp16/bf16 -> same dtype (fp32 accumulation), int8 -> int32.
    Rows far longer than the mean route to merge-path (see csr_mv_vector)."""
    ops, out = _mm_operands(indptr, indices, data, b, out, validate)
    n = ops.out_shape[1]
    if 0 in ops.out_shape:
        return out
    if vector_route(plan or ops.plan) == "merge":
        return _launch_mm_merge(ops, indptr, indices, data, b, out, None)
    block_k, block_n = _mm_blocks(n, ops.nnz / ops.m)
    _triton.launch(_csr_mm_vector_kernel, (ops.m, _triton.cdiv(n, block_n)),
        indptr, indices, data, b, out, n, b.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_K=block_k, BLOCK_N=block_n, num_warps=4)
    return out


def csr_mm_merge(indptr, indices, data, b, *, out=None, validate: bool = True, items_per_tile: int | None = None):
    """C = A B, merge-path design (same semantics as csr_mm_vector). Needs two
    (tiles x n) accumulator buffers for the partial rows at tile boundaries."""
    ops, out = _mm_operands(indptr, indices, data, b, out, validate)
    if 0 in ops.out_shape:
        return out
    return _launch_mm_merge(ops, indptr, indices, data, b, out, items_per_tile)


def _launch_mm_merge(ops, indptr, indices, data, b, out, items_per_tile):
    n = ops.out_shape[1]
    block_k, block_n = _mm_blocks(n, ops.nnz / ops.m)
    total = ops.m + ops.nnz
    items = items_per_tile or _merge_items(total, _triton.num_sms(str(data.device)), 256)
    num_tiles = _triton.cdiv(total, items)
    tile_rows, head_rows, head_vals, carry_rows, carry_vals = _merge_workspace(num_tiles, n, ops.dtype, data.device)
    _partition(indptr, tile_rows, ops.m, ops.nnz, num_tiles, items)
    grid = (num_tiles, _triton.cdiv(n, block_n))
    _triton.launch(_csr_mm_merge_kernel, grid,
        indptr, indices, data, b, out, tile_rows, head_rows, head_vals, carry_rows, carry_vals,
        ops.m, n, total, items, b.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_K=block_k, BLOCK_N=block_n, num_warps=4)
    _triton.launch(_csr_mm_fixup_kernel, grid, head_rows, head_vals, carry_rows, carry_vals, out, n,
                   out.stride(0), BLOCK_P=16, BLOCK_N=block_n, num_warps=4)
    return out


# --- what the benchmark times: the same arrays were validated once in Impl.prepare ----------
def csr_mv_vector_prevalidated(indptr, indices, data, x, plan=None, *, out=None):
    return csr_mv_vector(indptr, indices, data, x, out=out, validate=False, plan=plan)


def csr_mv_merge_prevalidated(indptr, indices, data, x, plan=None, *, out=None):
    return csr_mv_merge(indptr, indices, data, x, out=out, validate=False)


def csr_mm_vector_prevalidated(indptr, indices, data, b, plan=None, *, out=None):
    return csr_mm_vector(indptr, indices, data, b, out=out, validate=False, plan=plan)


def csr_mm_merge_prevalidated(indptr, indices, data, b, plan=None, *, out=None):
    return csr_mm_merge(indptr, indices, data, b, out=out, validate=False)
