// Dense matrix-vector (GEMV) and matrix-matrix (GEMM) products, compiled by CuPy's
// RawModule (NVRTC) and, for the CPU-only compile check, by nvcc.
// Types, conversions and per-dtype traits come from structbench.cuh. Accumulation is fp32
// for float types and int32 for int8 (exact; __dp4a does four int8 products at once).
#include "structbench.cuh"

// ---------------------------------------------------------------------------------
// GEMV: one warp per row. Lanes stride along the row 16 bytes at a time when the row
// and x are 16-byte aligned (vec_ok, decided on the host), then finish the tail (and
// the unaligned case) element by element; a shuffle reduction ends the row.
template <typename T>
__device__ __forceinline__ void dense_mv_impl(
    const T* __restrict__ a, const T* __restrict__ x, typename Traits<T>::out_t* __restrict__ y,
    int m, int n, long long a_row_stride, long long x_stride, long long y_stride, int vec_ok)
{
    typedef typename Traits<T>::acc_t acc_t;
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= m) return;  // whole warps leave together: row is per warp
    const T* a_row = a + row * a_row_stride;
    acc_t acc = 0;
    int tail_start = 0;
    if (vec_ok) {
        const int per_vec = 16 / sizeof(T);
        const int n_vec = n / per_vec;
        const uint4* a_vec = reinterpret_cast<const uint4*>(a_row);
        const uint4* x_vec = reinterpret_cast<const uint4*>(x);
#pragma unroll 4
        for (int v = lane; v < n_vec; v += 32) {
            acc = Dot16<T>::run(a_vec[v], __ldg(x_vec + v), acc);
        }
        tail_start = n_vec * per_vec;
    }
    for (int col = tail_start + lane; col < n; col += 32) {
        acc += Traits<T>::load(a_row[col]) * Traits<T>::load(x[col * x_stride]);
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        acc += __shfl_down_sync(0xffffffffu, acc, offset);
    }
    if (lane == 0) y[row * y_stride] = Traits<T>::store(acc);
}

// ---------------------------------------------------------------------------------
// GEMM: a 16x16 thread block computes a 64x64 tile of C, 4x4 outputs per thread at
// rows ty + 16 i and columns tx + 16 j (coalesced stores, conflict-free shared reads).
// A and B go through shared memory 16 columns/rows of k at a time, converted to the
// accumulator type on the way in. Plain FMA: no tensor cores.
#define MM_TILE 64
#define MM_K 16
#define MM_THREADS 256

template <typename T>
__device__ __forceinline__ void dense_mm_impl(
    const T* __restrict__ a, const T* __restrict__ b, typename Traits<T>::out_t* __restrict__ c,
    int m, int n, int k, long long a_row_stride, long long b_row_stride, long long c_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t a_tile[MM_K][MM_TILE + 1];  // transposed; +1 avoids bank conflicts on store
    __shared__ acc_t b_tile[MM_K][MM_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long row0 = (long long)blockIdx.y * MM_TILE, col0 = (long long)blockIdx.x * MM_TILE;
    acc_t acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;

    for (int k0 = 0; k0 < k; k0 += MM_K) {
#pragma unroll
        for (int s = 0; s < (MM_TILE * MM_K) / MM_THREADS; ++s) {
            const int e = tid + s * MM_THREADS;
            const int ar = e / MM_K, ak = e % MM_K;  // A tile: 64 rows x 16 k
            const long long grow = row0 + ar;
            a_tile[ak][ar] = (grow < m && k0 + ak < k)
                ? Traits<T>::load(a[grow * a_row_stride + k0 + ak]) : (acc_t)0;
            const int bk = e / MM_TILE, bc = e % MM_TILE;  // B tile: 16 k x 64 columns
            const long long gcol = col0 + bc;
            b_tile[bk][bc] = (k0 + bk < k && gcol < n)
                ? Traits<T>::load(b[(long long)(k0 + bk) * b_row_stride + gcol]) : (acc_t)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MM_K; ++kk) {
            tile_fma_4x4(acc, a_tile[kk], b_tile[kk], tx, ty);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const long long row = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long col = col0 + tx + 16 * j;
            if (row < m && col < n) c[row * c_row_stride + col] = Traits<T>::store(acc[i][j]);
        }
    }
}

// extern "C" entry points, one per dtype, so the launcher finds them by plain name.
#define STRUCTBENCH_DENSE_KERNELS(SUFFIX, T)                                                   \
    extern "C" __global__ void dense_mv_##SUFFIX(                                              \
        const T* a, const T* x, Traits<T>::out_t* y, int m, int n,                             \
        long long a_row_stride, long long x_stride, long long y_stride, int vec_ok) {          \
        dense_mv_impl<T>(a, x, y, m, n, a_row_stride, x_stride, y_stride, vec_ok);             \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(MM_THREADS) dense_mm_##SUFFIX(                \
        const T* a, const T* b, Traits<T>::out_t* c, int m, int n, int k,                      \
        long long a_row_stride, long long b_row_stride, long long c_row_stride) {              \
        dense_mm_impl<T>(a, b, c, m, n, k, a_row_stride, b_row_stride, c_row_stride);          \
    }

STRUCTBENCH_DENSE_KERNELS(fp32, float)
STRUCTBENCH_DENSE_KERNELS(fp16, fp16_t)
STRUCTBENCH_DENSE_KERNELS(bf16, bf16_t)
STRUCTBENCH_DENSE_KERNELS(int8, signed char)
