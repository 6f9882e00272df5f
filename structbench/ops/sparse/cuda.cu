// Sparse (CSR) matrix-vector and matrix-matrix products, compiled by CuPy's RawModule
// (NVRTC) and, for the CPU-only compile check, by nvcc. A is m x k in CSR form: indptr
// (m + 1 offsets, int32 or int64: template parameter I), indices (int32 columns), data.
// Types, conversions and per-dtype traits come from structbench.cuh: accumulation is fp32
// for float types (one rounding to the output) and int32 for int8 (exact, int32 output).
//
// Two designs per product (see structbench/ops/sparse/cuda.py for the host side):
// - vector: CSR-vector. SpMV gives each row a group of lanes_per_row threads of one warp
//   (lanes_per_row a power of two <= 32, about a quarter of the mean row length: each
//   lane takes four elements a step); SpMM gives each row one warp, lanes across columns
//   of B. A matrix with rows far longer than the mean is routed to merge-path by the
//   launcher (structbench.ops.sparse.checks.vector_route).
// - merge: merge-path (Merrill & Garland, SC'16). The m row ends and the nnz elements
//   form one merged list of m + nnz items (row end r, at indptr[r + 1], comes before
//   element e when indptr[r + 1] <= e), cut into tiles of equal length; the partition
//   kernel finds each tile's first row. Each tile is walked item by item (SpMV: by a
//   block, each thread a run of MERGE_ITEMS_PER_THREAD items; SpMM: by a warp), so a long
//   row is split over tiles and no row serialises the GPU. A row cut by a tile boundary
//   leaves partial sums: "carry" in the tiles it continues past, "head" in the tile where
//   it ends; the fixup kernel adds them (in the accumulator type) and writes the row.
#include "structbench.cuh"

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ long long min_ll(long long a, long long b) { return a < b ? a : b; }
__device__ __forceinline__ long long max_ll(long long a, long long b) { return a > b ? a : b; }
__device__ __forceinline__ int min_i(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int max_i(int a, int b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------
// SpMV, CSR-vector: a group of lanes_per_row lanes per row strides along it, each lane
// MV_VECTOR_UNROLL elements per step (e, e + lanes, ...): their indices and values are
// loaded first, then their x gathers issued together, so a lane has MV_VECTOR_UNROLL
// independent index -> x chains in flight instead of one. Then a shuffle reduction
// inside the group. Groups never straddle warps (lanes_per_row divides 32 and blocks are
// whole warps), and every lane takes part in the shuffles.
#define MV_VECTOR_UNROLL 4  // = _MV_VECTOR_UNROLL in cuda.py

template <typename T, typename I>
__device__ __forceinline__ void csr_mv_vector_impl(
    const I* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ x, typename Traits<T>::out_t* __restrict__ y,
    int m, long long x_stride, long long y_stride, int lanes_per_row)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long thread = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long row = thread / lanes_per_row;
    const int lane = (int)(thread % lanes_per_row);
    acc_t acc = 0;
    if (row < m) {
        const long long end = (long long)indptr[row + 1];
        const long long step = (long long)lanes_per_row * MV_VECTOR_UNROLL;
        for (long long e0 = (long long)indptr[row] + lane; e0 < end; e0 += step) {
            int col[MV_VECTOR_UNROLL];
            acc_t val[MV_VECTOR_UNROLL], xs[MV_VECTOR_UNROLL];
#pragma unroll
            for (int u = 0; u < MV_VECTOR_UNROLL; ++u) {
                const long long e = e0 + (long long)u * lanes_per_row;
                col[u] = e < end ? indices[e] : -1;
                val[u] = e < end ? Traits<T>::load(data[e]) : (acc_t)0;
            }
#pragma unroll
            for (int u = 0; u < MV_VECTOR_UNROLL; ++u) {
                xs[u] = col[u] >= 0 ? Traits<T>::load(x[(long long)col[u] * x_stride]) : (acc_t)0;
            }
#pragma unroll
            for (int u = 0; u < MV_VECTOR_UNROLL; ++u) acc += val[u] * xs[u];
        }
    }
    for (int offset = lanes_per_row >> 1; offset > 0; offset >>= 1) {
        acc += __shfl_down_sync(FULL_MASK, acc, offset, lanes_per_row);
    }
    if (row < m && lane == 0) y[row * y_stride] = Traits<T>::store(acc);
}

// ---------------------------------------------------------------------------------
// Merge-path partition: tile_rows[t] = how many row ends come among the first
// t * items_per_tile merged items, for t = 0..num_tiles; one thread per tile boundary.
template <typename I>
__device__ __forceinline__ void csr_merge_partition_impl(
    const I* __restrict__ indptr, int* __restrict__ tile_rows, int m, long long nnz, int num_tiles,
    long long items_per_tile)
{
    const long long tile = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tile > num_tiles) return;
    const long long diag = min_ll(tile * items_per_tile, (long long)m + nnz);
    long long lo = max_ll(diag - nnz, 0), hi = min_ll(diag, (long long)m);
    while (lo < hi) {
        const long long pivot = (lo + hi) >> 1;
        if ((long long)indptr[pivot + 1] <= diag - pivot - 1) lo = pivot + 1; else hi = pivot;
    }
    tile_rows[tile] = (int)lo;
}

// ---------------------------------------------------------------------------------
// SpMV, merge-path: one block per tile of MERGE_TILE items. The tile's row ends go to
// shared memory; each thread finds its own diagonal there and consumes its items in
// order (row end: the row's sum so far goes to row_sums; element: multiply-add). A
// thread's unfinished row is its carry; a segmented scan of the carries by row (keys
// are non-decreasing, so it is a Hillis-Steele scan with "add if same row") gives each
// run of equal rows its total, added once to the row it continues. The carry of the
// tile's open row r1 and the partial sum of a head row that began in an earlier tile
// go to the fixup kernel; every other row of the tile is written here.
#define MERGE_THREADS 128
#define MERGE_ITEMS_PER_THREAD 8
#define MERGE_TILE (MERGE_THREADS * MERGE_ITEMS_PER_THREAD)  // = _MV_MERGE_TILE in cuda.py

template <typename T, typename I>
__device__ __forceinline__ void csr_mv_merge_impl(
    const I* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ x, typename Traits<T>::out_t* __restrict__ y, const int* __restrict__ tile_rows,
    int* __restrict__ head_rows, typename Traits<T>::acc_t* __restrict__ head_vals,
    int* __restrict__ carry_rows, typename Traits<T>::acc_t* __restrict__ carry_vals,
    long long total_items, long long x_stride, long long y_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ long long row_ends[MERGE_TILE];
    __shared__ acc_t row_sums[MERGE_TILE];
    __shared__ int carry_row[MERGE_THREADS];
    __shared__ acc_t carry_sum[MERGE_THREADS];
    const int tile = blockIdx.x, t = threadIdx.x;
    const long long diag0 = min_ll((long long)tile * MERGE_TILE, total_items);
    const long long diag1 = min_ll((long long)(tile + 1) * MERGE_TILE, total_items);
    const int r0 = tile_rows[tile], r1 = tile_rows[tile + 1];
    const long long n0 = diag0 - r0, n1 = diag1 - r1;
    const int rows = r1 - r0;  // rows ending in this tile, at most MERGE_TILE
    const int elems = (int)(n1 - n0);  // at most MERGE_TILE
    for (int i = t; i < rows; i += MERGE_THREADS) row_ends[i] = (long long)indptr[(long long)r0 + 1 + i];
    __syncthreads();

    const int items = rows + elems;
    const int d0 = min_i(t * MERGE_ITEMS_PER_THREAD, items);
    const int d1 = min_i(d0 + MERGE_ITEMS_PER_THREAD, items);
    int lo = max_i(d0 - elems, 0), hi = min_i(d0, rows);
    while (lo < hi) {
        const int pivot = (lo + hi) >> 1;
        if (row_ends[pivot] <= n0 + d0 - pivot - 1) lo = pivot + 1; else hi = pivot;
    }
    int row = lo;  // local row in progress
    long long e = n0 + d0 - lo;  // next element
    acc_t acc = 0;
    for (int d = d0; d < d1; ++d) {
        if (row < rows && row_ends[row] <= e) {  // the row ends before element e
            row_sums[row] = acc;
            acc = 0;
            ++row;
        } else {
            acc += Traits<T>::load(data[e]) * Traits<T>::load(x[(long long)indices[e] * x_stride]);
            ++e;
        }
    }
    carry_row[t] = row;
    carry_sum[t] = acc;
    __syncthreads();
    for (int offset = 1; offset < MERGE_THREADS; offset <<= 1) {
        const acc_t add = (t >= offset && carry_row[t - offset] == row) ? carry_sum[t - offset] : (acc_t)0;
        __syncthreads();
        carry_sum[t] += add;
        __syncthreads();
    }
    // The last thread of each run adds the run's total to the row, which a later thread
    // of this tile ended (rows == row means the tile's open row r1: that is the carry).
    if ((t == MERGE_THREADS - 1 || carry_row[t + 1] != row) && row < rows) row_sums[row] += carry_sum[t];
    __syncthreads();

    const bool head_spans = rows > 0 && (long long)indptr[r0] < n0;
    if (t == 0) {
        head_rows[tile] = head_spans ? r0 : -1;
        head_vals[tile] = head_spans ? row_sums[0] : (acc_t)0;
        carry_rows[tile] = r1;
        carry_vals[tile] = carry_sum[MERGE_THREADS - 1];  // its run is row r1's: the last thread ends on r1
    }
    for (int i = t; i < rows; i += MERGE_THREADS) {
        if (i > 0 || !head_spans) y[((long long)r0 + i) * y_stride] = Traits<T>::store(row_sums[i]);
    }
}

// A warp per tile whose head row began in an earlier tile: the tiles that carry that row
// form the run just before it (carry rows are non-decreasing in the tile index), read 32
// at a time until a window holds a tile of another row.
template <typename T>
__device__ __forceinline__ void csr_mv_fixup_impl(
    const int* __restrict__ head_rows, const typename Traits<T>::acc_t* __restrict__ head_vals,
    const int* __restrict__ carry_rows, const typename Traits<T>::acc_t* __restrict__ carry_vals,
    typename Traits<T>::out_t* __restrict__ y, long long y_stride, int num_tiles)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long tile = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (tile >= num_tiles) return;  // whole warps leave together
    const int row = head_rows[tile];
    if (row < 0) return;  // the same for every lane
    acc_t acc = 0;
    for (long long end = tile; end > 0; end -= 32) {
        const long long p = end - 32 + lane;
        const bool match = p >= 0 && carry_rows[p] == row;
        if (match) acc += carry_vals[p];
        if (__ballot_sync(FULL_MASK, match) != FULL_MASK) break;
    }
    for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(FULL_MASK, acc, offset);
    if (lane == 0) y[(long long)row * y_stride] = Traits<T>::store(head_vals[tile] + acc);
}

// ---------------------------------------------------------------------------------
// SpMM: a warp owns MM_COL_TILE columns of C (lane + 32 j, j < MM_COLS_PER_LANE) and walks
// a run of elements of A: each element's column picks a row of B, read coalesced by the
// warp. The elements' values and columns are fetched 32 at a time (one coalesced load)
// and broadcast by shuffles.
#define MM_COLS_PER_LANE 4
#define MM_COL_TILE (32 * MM_COLS_PER_LANE)  // = _MM_COL_TILE in cuda.py
#define MM_WARPS 4  // warps per block

template <typename T>
__device__ __forceinline__ void mm_warp_segment(
    const int* __restrict__ indices, const T* __restrict__ data, const T* __restrict__ b, long long b_row_stride,
    long long begin, long long end, long long col0, int n, int lane,
    typename Traits<T>::acc_t (&acc)[MM_COLS_PER_LANE])
{
    typedef typename Traits<T>::acc_t acc_t;
    for (long long base = begin; base < end; base += 32) {
        const long long e = base + lane;
        acc_t a_mine = 0;
        int col_mine = 0;
        if (e < end) {
            a_mine = Traits<T>::load(data[e]);
            col_mine = indices[e];
        }
        const int count = (int)min_ll(32, end - base);  // the same for every lane
        for (int q = 0; q < count; ++q) {
            const acc_t a = __shfl_sync(FULL_MASK, a_mine, q);
            const T* b_row = b + (long long)__shfl_sync(FULL_MASK, col_mine, q) * b_row_stride;
#pragma unroll
            for (int j = 0; j < MM_COLS_PER_LANE; ++j) {
                const long long col = col0 + lane + 32 * j;
                if (col < n) acc[j] += a * Traits<T>::load(b_row[col]);
            }
        }
    }
}

template <typename T, typename I>
__device__ __forceinline__ void csr_mm_vector_impl(
    const I* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ b, typename Traits<T>::out_t* __restrict__ c,
    int m, int n, long long b_row_stride, long long c_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long row = (long long)blockIdx.x * MM_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= m) return;  // whole warps leave together
    const long long col0 = (long long)blockIdx.y * MM_COL_TILE;
    acc_t acc[MM_COLS_PER_LANE];
#pragma unroll
    for (int j = 0; j < MM_COLS_PER_LANE; ++j) acc[j] = 0;
    mm_warp_segment<T>(indices, data, b, b_row_stride, (long long)indptr[row], (long long)indptr[row + 1],
                       col0, n, lane, acc);
#pragma unroll
    for (int j = 0; j < MM_COLS_PER_LANE; ++j) {
        const long long col = col0 + lane + 32 * j;
        if (col < n) c[row * c_row_stride + col] = Traits<T>::store(acc[j]);
    }
}

// SpMM, merge-path: a warp per tile of items_per_tile merged items (and MM_COL_TILE
// columns). It walks rows r0..r1 clipped to the tile's elements [n0, n1): rows ending in
// the tile are written (or, for a head row that began earlier, kept in head_vals), the
// open row r1 (when r1 < m) is kept in carry_vals; both buffers are tiles x n.
template <typename T, typename I>
__device__ __forceinline__ void csr_mm_merge_impl(
    const I* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ b, typename Traits<T>::out_t* __restrict__ c, const int* __restrict__ tile_rows,
    int* __restrict__ head_rows, typename Traits<T>::acc_t* __restrict__ head_vals,
    int* __restrict__ carry_rows, typename Traits<T>::acc_t* __restrict__ carry_vals,
    int m, int n, int num_tiles, long long total_items, long long items_per_tile,
    long long b_row_stride, long long c_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long tile = (long long)blockIdx.x * MM_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (tile >= num_tiles) return;  // whole warps leave together
    const long long col0 = (long long)blockIdx.y * MM_COL_TILE;
    const long long r0 = tile_rows[tile], r1 = tile_rows[tile + 1];
    const long long n0 = min_ll(tile * items_per_tile, total_items) - r0;
    const long long n1 = min_ll((tile + 1) * items_per_tile, total_items) - r1;
    const bool head_spans = r0 < r1 && (long long)indptr[r0] < n0;
    if (blockIdx.y == 0 && lane == 0) {
        head_rows[tile] = head_spans ? (int)r0 : -1;
        carry_rows[tile] = (int)r1;
    }
    const long long last_row = r1 < m ? r1 : r1 - 1;  // the open row r1 only when it exists
    for (long long row = r0; row <= last_row; ++row) {
        acc_t acc[MM_COLS_PER_LANE];
#pragma unroll
        for (int j = 0; j < MM_COLS_PER_LANE; ++j) acc[j] = 0;
        mm_warp_segment<T>(indices, data, b, b_row_stride, max_ll((long long)indptr[row], n0),
                           min_ll((long long)indptr[row + 1], n1), col0, n, lane, acc);
#pragma unroll
        for (int j = 0; j < MM_COLS_PER_LANE; ++j) {
            const long long col = col0 + lane + 32 * j;
            if (col >= n) continue;
            if (row == r1) {
                carry_vals[tile * n + col] = acc[j];
            } else if (row == r0 && head_spans) {
                head_vals[tile * n + col] = acc[j];
            } else {
                c[row * c_row_stride + col] = Traits<T>::store(acc[j]);
            }
        }
    }
}

// A warp per tile with a spanning head row: adds the carries of the run of tiles before
// it that hold that row, one tile (MM_COL_TILE columns) at a time.
template <typename T>
__device__ __forceinline__ void csr_mm_fixup_impl(
    const int* __restrict__ head_rows, const typename Traits<T>::acc_t* __restrict__ head_vals,
    const int* __restrict__ carry_rows, const typename Traits<T>::acc_t* __restrict__ carry_vals,
    typename Traits<T>::out_t* __restrict__ c, int n, int num_tiles, long long c_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long tile = (long long)blockIdx.x * MM_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (tile >= num_tiles) return;
    const int row = head_rows[tile];
    if (row < 0) return;  // the same for every lane of the warp
    const long long col0 = (long long)blockIdx.y * MM_COL_TILE;
    acc_t acc[MM_COLS_PER_LANE];
#pragma unroll
    for (int j = 0; j < MM_COLS_PER_LANE; ++j) {
        const long long col = col0 + lane + 32 * j;
        acc[j] = col < n ? head_vals[tile * n + col] : (acc_t)0;
    }
    for (long long p = tile - 1; p >= 0 && carry_rows[p] == row; --p) {
#pragma unroll
        for (int j = 0; j < MM_COLS_PER_LANE; ++j) {
            const long long col = col0 + lane + 32 * j;
            if (col < n) acc[j] += carry_vals[p * n + col];
        }
    }
#pragma unroll
    for (int j = 0; j < MM_COLS_PER_LANE; ++j) {
        const long long col = col0 + lane + 32 * j;
        if (col < n) c[(long long)row * c_row_stride + col] = Traits<T>::store(acc[j]);
    }
}

// ---------------------------------------------------------------------------------
// extern "C" entry points, found by plain name: <kernel>_<dtype> for int32 indptr and
// <kernel>_<dtype>_i64 for int64 indptr; the fixups do not read indptr.
#define STRUCTBENCH_CSR_INDEXED_KERNELS(SUFFIX, T, I, ISUFFIX)                                     \
    extern "C" __global__ void csr_mv_vector_##SUFFIX##ISUFFIX(                                    \
        const I* indptr, const int* indices, const T* data, const T* x, Traits<T>::out_t* y,       \
        int m, long long x_stride, long long y_stride, int lanes_per_row) {                        \
        csr_mv_vector_impl<T, I>(indptr, indices, data, x, y, m, x_stride, y_stride, lanes_per_row); \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(MERGE_THREADS) csr_mv_merge_##SUFFIX##ISUFFIX(    \
        const I* indptr, const int* indices, const T* data, const T* x, Traits<T>::out_t* y,       \
        const int* tile_rows, int* head_rows, Traits<T>::acc_t* head_vals, int* carry_rows,        \
        Traits<T>::acc_t* carry_vals, long long total_items, long long x_stride, long long y_stride) { \
        csr_mv_merge_impl<T, I>(indptr, indices, data, x, y, tile_rows, head_rows, head_vals,      \
                                carry_rows, carry_vals, total_items, x_stride, y_stride);          \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(32 * MM_WARPS) csr_mm_vector_##SUFFIX##ISUFFIX(   \
        const I* indptr, const int* indices, const T* data, const T* b, Traits<T>::out_t* c,       \
        int m, int n, long long b_row_stride, long long c_row_stride) {                            \
        csr_mm_vector_impl<T, I>(indptr, indices, data, b, c, m, n, b_row_stride, c_row_stride);   \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(32 * MM_WARPS) csr_mm_merge_##SUFFIX##ISUFFIX(    \
        const I* indptr, const int* indices, const T* data, const T* b, Traits<T>::out_t* c,       \
        const int* tile_rows, int* head_rows, Traits<T>::acc_t* head_vals, int* carry_rows,        \
        Traits<T>::acc_t* carry_vals, int m, int n, int num_tiles, long long total_items,          \
        long long items_per_tile, long long b_row_stride, long long c_row_stride) {                \
        csr_mm_merge_impl<T, I>(indptr, indices, data, b, c, tile_rows, head_rows, head_vals,      \
                                carry_rows, carry_vals, m, n, num_tiles, total_items,              \
                                items_per_tile, b_row_stride, c_row_stride);                       \
    }

#define STRUCTBENCH_CSR_KERNELS(SUFFIX, T)                                                         \
    STRUCTBENCH_CSR_INDEXED_KERNELS(SUFFIX, T, int, )                                              \
    STRUCTBENCH_CSR_INDEXED_KERNELS(SUFFIX, T, long long, _i64)                                    \
    extern "C" __global__ void csr_mv_fixup_##SUFFIX(                                              \
        const int* head_rows, const Traits<T>::acc_t* head_vals, const int* carry_rows,            \
        const Traits<T>::acc_t* carry_vals, Traits<T>::out_t* y, long long y_stride, int num_tiles) { \
        csr_mv_fixup_impl<T>(head_rows, head_vals, carry_rows, carry_vals, y, y_stride, num_tiles); \
    }                                                                                              \
    extern "C" __global__ void __launch_bounds__(32 * MM_WARPS) csr_mm_fixup_##SUFFIX(             \
        const int* head_rows, const Traits<T>::acc_t* head_vals, const int* carry_rows,            \
        const Traits<T>::acc_t* carry_vals, Traits<T>::out_t* c, int n, int num_tiles,             \
        long long c_row_stride) {                                                                  \
        csr_mm_fixup_impl<T>(head_rows, head_vals, carry_rows, carry_vals, c, n, num_tiles,        \
                             c_row_stride);                                                        \
    }

extern "C" __global__ void csr_merge_partition(const int* indptr, int* tile_rows, int m, long long nnz,
                                               int num_tiles, long long items_per_tile) {
    csr_merge_partition_impl<int>(indptr, tile_rows, m, nnz, num_tiles, items_per_tile);
}
extern "C" __global__ void csr_merge_partition_i64(const long long* indptr, int* tile_rows, int m, long long nnz,
                                                   int num_tiles, long long items_per_tile) {
    csr_merge_partition_impl<long long>(indptr, tile_rows, m, nnz, num_tiles, items_per_tile);
}

STRUCTBENCH_CSR_KERNELS(fp32, float)
STRUCTBENCH_CSR_KERNELS(fp16, fp16_t)
STRUCTBENCH_CSR_KERNELS(bf16, bf16_t)
STRUCTBENCH_CSR_KERNELS(int8, signed char)
