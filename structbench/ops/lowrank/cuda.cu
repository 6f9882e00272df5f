// Low-rank (y = U (V x)) and LoRA (y = W x + s B (A x)) products, compiled by CuPy's
// RawModule (NVRTC) and, for the CPU-only compile check, by nvcc. Semantics as in
// structbench/ops/lowrank/triton.py: the r-length intermediate t is kept in the accumulator type
// (fp32, int32 for int8) and the output is rounded once. Types, conversions and per-dtype
// traits come from structbench.cuh.
//
// Kernels (each entry point exists per dtype: <name>_fp32 / _fp16 / _bf16 / _int8):
//   lora_mv          y = W x + scale * B t, one warp per row; either term may be empty (n = 0 or
//                    r = 0). The fused LoRA pass, and U t of the two-step low-rank product.
//   lowrank_gemv_acc the same, written in the accumulator type: z = W x, u = B t.
//   lowrank_shrink   t = V x (A x) split-K, the "shrink" of Punica / vLLM: block (rank, s), one
//                    warp, reduces columns [s * cols_per_split, ...) of one row into
//                    t[s * r + rank]; lora_mv / lowrank_gemv_acc sum the t_splits rows once per
//                    block into shared memory. r blocks alone (16-64) would idle most SMs.
//   lowrank_mv_fused y = U (V x) in one launch: each block computes t = V x into shared memory,
//                    then its rows of U t.
//   lora_mm          C = W X + scale * B T on 64x64 tiles (as dense_mm); either term may be empty.
//   lowrank_gemm_acc the same, written in the accumulator type: T = V B, T = A X, Z = W X, U = B T.
//   lowrank_mm_fused C = U (V B) in one launch: per 64x64 tile, T = V B[:, tile] 16 ranks at a
//                    time into shared memory, then U[tile rows, ranks] T.
//   lowrank_combine  y = z + scale * u elementwise (the unfused LoRA's last step).
#include "structbench.cuh"

// Any operand as the accumulator type: the input dtypes, and fp32 / int32 intermediates.
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ float to_acc(fp16_t v) { return fp16_to_float(v.bits); }
__device__ __forceinline__ float to_acc(bf16_t v) { return bf16_to_float(v.bits); }
__device__ __forceinline__ int to_acc(signed char v) { return (int)v; }
__device__ __forceinline__ int to_acc(int v) { return v; }

// Store an accumulator to the output type: rounded once for fp16/bf16, as is otherwise.
__device__ __forceinline__ void store_as(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_as(int* p, int v) { *p = v; }
__device__ __forceinline__ void store_as(fp16_t* p, float v) { *p = Traits<fp16_t>::store(v); }
__device__ __forceinline__ void store_as(bf16_t* p, float v) { *p = Traits<bf16_t>::store(v); }

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// This lane's share of row . x over n columns: 16-byte words while vec_ok (row and x
// 16-byte aligned, x contiguous: decided on the host), then element by element.
template <typename T>
__device__ __forceinline__ typename Traits<T>::acc_t lane_row_dot(
    const T* __restrict__ row, const T* __restrict__ x, int n, long long x_stride, int vec_ok, int lane)
{
    typedef typename Traits<T>::acc_t acc_t;
    acc_t acc = 0;
    int tail_start = 0;
    if (vec_ok) {
        const int per_vec = 16 / sizeof(T);
        const int n_vec = n / per_vec;
        const uint4* row_vec = reinterpret_cast<const uint4*>(row);
        const uint4* x_vec = reinterpret_cast<const uint4*>(x);
#pragma unroll 4
        for (int v = lane; v < n_vec; v += 32) acc = Dot16<T>::run(row_vec[v], __ldg(x_vec + v), acc);
        tail_start = n_vec * per_vec;
    }
    for (int col = tail_start + lane; col < n; col += 32) {
        acc += to_acc(row[col]) * to_acc(x[col * x_stride]);
    }
    return acc;
}

extern __shared__ __align__(16) unsigned char lowrank_shared[];

// ---------------------------------------------------------------------------------
// Split-K shrink, one warp per block: t[split * r + rank] = A[rank, lo:hi] . x[lo:hi].
// cols_per_split is a multiple of 32 16-byte words, so every chunk stays 16-byte aligned.
template <typename T>
__device__ __forceinline__ void lowrank_shrink_impl(
    const T* __restrict__ a, const T* __restrict__ x, typename Traits<T>::acc_t* __restrict__ t, int r, int n,
    int cols_per_split, long long a_row_stride, long long x_stride, int vec_ok)
{
    typedef typename Traits<T>::acc_t acc_t;
    const int rank = blockIdx.x, split = blockIdx.y, lane = threadIdx.x & 31;
    const long long lo = (long long)split * cols_per_split;
    const int cols = (int)(n - lo < cols_per_split ? n - lo : cols_per_split);
    const acc_t sum = warp_sum<acc_t>(
        lane_row_dot<T>(a + rank * a_row_stride + lo, x + lo * x_stride, cols, x_stride, vec_ok, lane));
    if (lane == 0) t[(long long)split * r + rank] = sum;
}

// ---------------------------------------------------------------------------------
// GEMV plus adapter, one warp per row: y[row] = W[row] . x + scale * B[row] . t.
// t (accumulator type, contiguous): r values, read through the read-only cache, or the
// shrink's t_splits x r partial sums, summed by the block into shared memory first.
template <typename T, typename OutT>
__device__ __forceinline__ void lora_mv_impl(
    const T* __restrict__ w, const T* __restrict__ x, const T* __restrict__ b,
    const typename Traits<T>::acc_t* __restrict__ t, OutT* __restrict__ y,
    int m, int n, int r, long long w_row_stride, long long x_stride, long long b_row_stride,
    long long y_stride, typename Traits<T>::acc_t scale, int vec_ok, int t_splits)
{
    typedef typename Traits<T>::acc_t acc_t;
    const int lane = threadIdx.x & 31;
    acc_t* t_shared = reinterpret_cast<acc_t*>(lowrank_shared);
    if (r > 0 && t_splits > 1) {  // every thread of the block, before any warp leaves
        for (int i = threadIdx.x; i < r; i += blockDim.x) {
            acc_t sum = 0;
            for (int s = 0; s < t_splits; ++s) sum += __ldg(t + (long long)s * r + i);
            t_shared[i] = sum;
        }
        __syncthreads();
    }
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= m) return;  // whole warps leave together: row is per warp
    acc_t dense = 0, adapter = 0;
    if (n > 0) dense = lane_row_dot<T>(w + row * w_row_stride, x, n, x_stride, vec_ok, lane);
    if (r > 0) {
        const T* b_row = b + row * b_row_stride;
        if (t_splits > 1) {
            for (int i = lane; i < r; i += 32) adapter += to_acc(b_row[i]) * t_shared[i];
        } else {
            for (int i = lane; i < r; i += 32) adapter += to_acc(b_row[i]) * __ldg(t + i);
        }
    }
    const acc_t total = warp_sum<acc_t>(dense + scale * adapter);
    if (lane == 0) store_as(y + row * y_stride, total);
}

// ---------------------------------------------------------------------------------
// Fused low-rank GEMV: block b owns rows [b * rows_per_block, ...). Its warps first
// compute all of t = V x (one warp per rank) into dynamic shared memory, then one warp
// per row of U computes U[row] . t. t never leaves the chip; every block recomputes it.

template <typename T>
__device__ __forceinline__ void lowrank_mv_fused_impl(
    const T* __restrict__ u, const T* __restrict__ v, const T* __restrict__ x, typename Traits<T>::out_t* __restrict__ y,
    int m, int n, int r, long long u_row_stride, long long v_row_stride, long long x_stride, long long y_stride,
    int vec_ok, int rows_per_block)
{
    typedef typename Traits<T>::acc_t acc_t;
    acc_t* t_shared = reinterpret_cast<acc_t*>(lowrank_shared);  // r values
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int rank = warp; rank < r; rank += warps) {
        const acc_t t = warp_sum<acc_t>(lane_row_dot<T>(v + (long long)rank * v_row_stride, x, n, x_stride, vec_ok, lane));
        if (lane == 0) t_shared[rank] = t;
    }
    __syncthreads();
    const long long first_row = (long long)blockIdx.x * rows_per_block;
    const long long end_row = first_row + rows_per_block < m ? first_row + rows_per_block : (long long)m;
    for (long long row = first_row + warp; row < end_row; row += warps) {
        const T* u_row = u + row * u_row_stride;
        acc_t acc = 0;
        for (int i = lane; i < r; i += 32) acc += to_acc(u_row[i]) * t_shared[i];
        acc = warp_sum<acc_t>(acc);
        if (lane == 0) store_as(y + row * y_stride, acc);
    }
}

// ---------------------------------------------------------------------------------
// Tiled products on 64x64 output tiles (the layout of dense/cuda.cu's GEMM): a 16x16
// thread block, 4x4 outputs per thread at rows ty + 16 i and columns tx + 16 j; operands
// staged through shared memory 16 at a time along the reduction, converted to acc_t.
#define MM_TILE 64
#define MM_K 16
#define MM_THREADS 256

// acc += A[row0:row0+64, :k] B[:k, col0:col0+64], A and B of any operand types.
template <typename TA, typename TB, typename acc_t>
__device__ __forceinline__ void mm_accumulate(
    const TA* __restrict__ a, const TB* __restrict__ b, int m, int n, int k,
    long long a_row_stride, long long b_row_stride, long long row0, long long col0,
    acc_t (&acc)[4][4], acc_t (&a_tile)[MM_K][MM_TILE + 1], acc_t (&b_tile)[MM_K][MM_TILE])
{
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    for (int k0 = 0; k0 < k; k0 += MM_K) {
#pragma unroll
        for (int s = 0; s < (MM_TILE * MM_K) / MM_THREADS; ++s) {
            const int e = tid + s * MM_THREADS;
            const int ar = e / MM_K, ak = e % MM_K;  // A tile: 64 rows x 16 k
            const long long grow = row0 + ar;
            a_tile[ak][ar] = (grow < m && k0 + ak < k) ? (acc_t)to_acc(a[grow * a_row_stride + k0 + ak]) : (acc_t)0;
            const int bk = e / MM_TILE, bc = e % MM_TILE;  // B tile: 16 k x 64 columns
            const long long gcol = col0 + bc;
            b_tile[bk][bc] = (k0 + bk < k && gcol < n)
                ? (acc_t)to_acc(b[(long long)(k0 + bk) * b_row_stride + gcol]) : (acc_t)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MM_K; ++kk) {
            tile_fma_4x4(acc, a_tile[kk], b_tile[kk], tx, ty);
        }
        __syncthreads();  // the tiles are refilled (or reused by the next product)
    }
}

template <typename acc_t, typename OutT>
__device__ __forceinline__ void store_tile(OutT* __restrict__ c, const acc_t (&acc)[4][4], int m, int n,
                                           long long c_row_stride, long long row0, long long col0)
{
    const int tx = threadIdx.x, ty = threadIdx.y;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const long long row = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long col = col0 + tx + 16 * j;
            if (row < m && col < n) store_as(c + row * c_row_stride + col, acc[i][j]);
        }
    }
}

// C = W X (k-long) + scale * B T (r-long), T in the accumulator type.
template <typename T, typename OutT>
__device__ __forceinline__ void lora_mm_impl(
    const T* __restrict__ w, const T* __restrict__ x, const T* __restrict__ b,
    const typename Traits<T>::acc_t* __restrict__ t, OutT* __restrict__ c,
    int m, int n, int k, int r, long long w_row_stride, long long x_row_stride, long long b_row_stride,
    long long t_row_stride, long long c_row_stride, typename Traits<T>::acc_t scale)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t a_tile[MM_K][MM_TILE + 1];  // transposed; +1 avoids bank conflicts on store
    __shared__ acc_t b_tile[MM_K][MM_TILE];
    const long long row0 = (long long)blockIdx.y * MM_TILE, col0 = (long long)blockIdx.x * MM_TILE;
    acc_t dense[4][4], adapter[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) dense[i][j] = adapter[i][j] = 0;
    mm_accumulate<T, T, acc_t>(w, x, m, n, k, w_row_stride, x_row_stride, row0, col0, dense, a_tile, b_tile);
    mm_accumulate<T, acc_t, acc_t>(b, t, m, n, r, b_row_stride, t_row_stride, row0, col0, adapter, a_tile, b_tile);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) dense[i][j] += scale * adapter[i][j];
    store_tile<acc_t, OutT>(c, dense, m, n, c_row_stride, row0, col0);
}

// ---------------------------------------------------------------------------------
// Fused low-rank GEMM, per 64x64 tile of C and 16 ranks at a time:
//   T_chunk (16 x 64) = V[ranks, :] B[:, tile cols]  -- thread (ty, tx) owns T_chunk[ty][tx + 16 j]
//   acc += U[tile rows, ranks] T_chunk               -- 4x4 outputs per thread, as above
// T_chunk lives in shared memory only; every tile row recomputes it.
#define MM_R 16

template <typename T>
__device__ __forceinline__ void lowrank_mm_fused_impl(
    const T* __restrict__ u, const T* __restrict__ v, const T* __restrict__ b, typename Traits<T>::out_t* __restrict__ c,
    int m, int n, int k, int r, long long u_row_stride, long long v_row_stride, long long b_row_stride,
    long long c_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t v_tile[MM_R][MM_K + 1];       // 16 ranks x 16 k
    __shared__ acc_t b_tile[MM_K][MM_TILE];        // 16 k x 64 columns
    __shared__ acc_t t_tile[MM_R][MM_TILE];        // 16 ranks x 64 columns of T
    __shared__ acc_t u_tile[MM_R][MM_TILE + 1];    // 16 ranks x 64 rows of U, transposed
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long row0 = (long long)blockIdx.y * MM_TILE, col0 = (long long)blockIdx.x * MM_TILE;
    acc_t acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;

    for (int r0 = 0; r0 < r; r0 += MM_R) {
        acc_t t_acc[4] = {0, 0, 0, 0};
        for (int k0 = 0; k0 < k; k0 += MM_K) {
            {  // V tile: 16 x 16, one element per thread
                const int vr = tid / MM_K, vk = tid % MM_K;
                v_tile[vr][vk] = (r0 + vr < r && k0 + vk < k)
                    ? (acc_t)to_acc(v[(long long)(r0 + vr) * v_row_stride + k0 + vk]) : (acc_t)0;
            }
#pragma unroll
            for (int s = 0; s < (MM_K * MM_TILE) / MM_THREADS; ++s) {  // B tile: 16 x 64
                const int e = tid + s * MM_THREADS;
                const int bk = e / MM_TILE, bc = e % MM_TILE;
                const long long gcol = col0 + bc;
                b_tile[bk][bc] = (k0 + bk < k && gcol < n)
                    ? (acc_t)to_acc(b[(long long)(k0 + bk) * b_row_stride + gcol]) : (acc_t)0;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < MM_K; ++kk) {
                const acc_t v_value = v_tile[ty][kk];
#pragma unroll
                for (int j = 0; j < 4; ++j) t_acc[j] += v_value * b_tile[kk][tx + 16 * j];
            }
            __syncthreads();
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) t_tile[ty][tx + 16 * j] = t_acc[j];
#pragma unroll
        for (int s = 0; s < (MM_R * MM_TILE) / MM_THREADS; ++s) {  // U tile: 64 rows x 16 ranks
            const int e = tid + s * MM_THREADS;
            const int ur = e / MM_R, uk = e % MM_R;
            const long long grow = row0 + ur;
            u_tile[uk][ur] = (grow < m && r0 + uk < r) ? (acc_t)to_acc(u[grow * u_row_stride + r0 + uk]) : (acc_t)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MM_R; ++kk) {
            tile_fma_4x4(acc, u_tile[kk], t_tile[kk], tx, ty);
        }
        __syncthreads();  // t_tile and u_tile are rewritten by the next chunk
    }
    store_tile<acc_t, typename Traits<T>::out_t>(c, acc, m, n, c_row_stride, row0, col0);
}

// ---------------------------------------------------------------------------------
// y = z + scale * u over an m x n grid (n = 1 for vectors); z, u contiguous rows.
template <typename T>
__device__ __forceinline__ void lowrank_combine_impl(
    const typename Traits<T>::acc_t* __restrict__ z, const typename Traits<T>::acc_t* __restrict__ u,
    typename Traits<T>::out_t* __restrict__ y, int m, int n, long long z_row_stride, long long u_row_stride,
    long long y_row_stride, long long y_col_stride, typename Traits<T>::acc_t scale)
{
    const long long total = (long long)m * n;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const long long row = e / n, col = e % n;
        store_as(y + row * y_row_stride + col * y_col_stride,
                 z[row * z_row_stride + col] + scale * u[row * u_row_stride + col]);
    }
}

// extern "C" entry points, one per dtype, so the launcher finds them by plain name.
#define STRUCTBENCH_LOWRANK_KERNELS(SUFFIX, T)                                                                  \
    extern "C" __global__ void lora_mv_##SUFFIX(                                                                \
        const T* w, const T* x, const T* b, const Traits<T>::acc_t* t, Traits<T>::out_t* y, int m, int n, int r, \
        long long w_row_stride, long long x_stride, long long b_row_stride, long long y_stride,                 \
        Traits<T>::acc_t scale, int vec_ok, int t_splits) {                                                     \
        lora_mv_impl<T, Traits<T>::out_t>(w, x, b, t, y, m, n, r, w_row_stride, x_stride, b_row_stride,         \
                                          y_stride, scale, vec_ok, t_splits);                                   \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(32) lowrank_shrink_##SUFFIX(                                   \
        const T* a, const T* x, Traits<T>::acc_t* t, int r, int n, int cols_per_split, long long a_row_stride,  \
        long long x_stride, int vec_ok) {                                                                       \
        lowrank_shrink_impl<T>(a, x, t, r, n, cols_per_split, a_row_stride, x_stride, vec_ok);                  \
    }                                                                                                           \
    extern "C" __global__ void lowrank_gemv_acc_##SUFFIX(                                                       \
        const T* w, const T* x, const T* b, const Traits<T>::acc_t* t, Traits<T>::acc_t* y, int m, int n, int r, \
        long long w_row_stride, long long x_stride, long long b_row_stride, long long y_stride,                 \
        Traits<T>::acc_t scale, int vec_ok, int t_splits) {                                                     \
        lora_mv_impl<T, Traits<T>::acc_t>(w, x, b, t, y, m, n, r, w_row_stride, x_stride, b_row_stride,         \
                                          y_stride, scale, vec_ok, t_splits);                                   \
    }                                                                                                           \
    extern "C" __global__ void lowrank_mv_fused_##SUFFIX(                                                       \
        const T* u, const T* v, const T* x, Traits<T>::out_t* y, int m, int n, int r, long long u_row_stride,   \
        long long v_row_stride, long long x_stride, long long y_stride, int vec_ok, int rows_per_block) {       \
        lowrank_mv_fused_impl<T>(u, v, x, y, m, n, r, u_row_stride, v_row_stride, x_stride, y_stride, vec_ok,  \
                                 rows_per_block);                                                               \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(MM_THREADS) lora_mm_##SUFFIX(                                  \
        const T* w, const T* x, const T* b, const Traits<T>::acc_t* t, Traits<T>::out_t* c, int m, int n, int k, \
        int r, long long w_row_stride, long long x_row_stride, long long b_row_stride, long long t_row_stride,   \
        long long c_row_stride, Traits<T>::acc_t scale) {                                                       \
        lora_mm_impl<T, Traits<T>::out_t>(w, x, b, t, c, m, n, k, r, w_row_stride, x_row_stride, b_row_stride,  \
                                          t_row_stride, c_row_stride, scale);                                   \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(MM_THREADS) lowrank_gemm_acc_##SUFFIX(                         \
        const T* w, const T* x, const T* b, const Traits<T>::acc_t* t, Traits<T>::acc_t* c, int m, int n, int k, \
        int r, long long w_row_stride, long long x_row_stride, long long b_row_stride, long long t_row_stride,   \
        long long c_row_stride, Traits<T>::acc_t scale) {                                                       \
        lora_mm_impl<T, Traits<T>::acc_t>(w, x, b, t, c, m, n, k, r, w_row_stride, x_row_stride, b_row_stride,  \
                                          t_row_stride, c_row_stride, scale);                                   \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(MM_THREADS) lowrank_mm_fused_##SUFFIX(                         \
        const T* u, const T* v, const T* b, Traits<T>::out_t* c, int m, int n, int k, int r,                    \
        long long u_row_stride, long long v_row_stride, long long b_row_stride, long long c_row_stride) {       \
        lowrank_mm_fused_impl<T>(u, v, b, c, m, n, k, r, u_row_stride, v_row_stride, b_row_stride,             \
                                 c_row_stride);                                                                 \
    }                                                                                                           \
    extern "C" __global__ void lowrank_combine_##SUFFIX(                                                        \
        const Traits<T>::acc_t* z, const Traits<T>::acc_t* u, Traits<T>::out_t* y, int m, int n,                \
        long long z_row_stride, long long u_row_stride, long long y_row_stride, long long y_col_stride,         \
        Traits<T>::acc_t scale) {                                                                               \
        lowrank_combine_impl<T>(z, u, y, m, n, z_row_stride, u_row_stride, y_row_stride, y_col_stride, scale); \
    }

STRUCTBENCH_LOWRANK_KERNELS(fp32, float)
STRUCTBENCH_LOWRANK_KERNELS(fp16, fp16_t)
STRUCTBENCH_LOWRANK_KERNELS(bf16, bf16_t)
STRUCTBENCH_LOWRANK_KERNELS(int8, signed char)
