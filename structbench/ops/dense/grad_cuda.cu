// Parameter gradients, dense: the outer product (dense_grad_mv, and with W the fused SGD
// step dense_sgd_mv), a strided SIMT GEMM (dense_grad_mm: Delta X^T, reducing over the
// batch), and an fp32 matvec; the low-rank gradients reuse all three. The GEMM and the
// matvec split a long reduction over few outputs (the r-sized products) into an fp32
// workspace that grad_split_sum adds up (the launcher decides: grad_cuda.py). fp32 accumulation;
// the result is rounded once to the output type. Types and traits: structbench.cuh.
#include "structbench.cuh"

// ---------------------------------------------------------------------------------
// out[i, j] = (w[i, j] +) alpha * u[i] * v[j]. A 32x8 block covers 8 rows x 128 columns,
// each thread 4 columns 32 apart: every store instruction of a warp is 32 consecutive
// elements. Bound by the m n writes (and, with w, reads).
#define OUTER_ROWS 8
#define OUTER_COLS 128
template <typename TU, typename TV, typename T>
__device__ __forceinline__ void outer_impl(
    const TU* __restrict__ u, const TV* __restrict__ v, const T* w, T* out, int m, int n,
    long long u_stride, long long v_stride, long long w_row_stride, long long out_row_stride, float alpha, int has_w)
{
    const long long row = (long long)blockIdx.y * OUTER_ROWS + threadIdx.y;
    if (row >= m) return;
    const float scaled_u = alpha * Traits<TU>::load(u[row * u_stride]);
#pragma unroll
    for (int j = 0; j < OUTER_COLS / 32; ++j) {
        const long long col = (long long)blockIdx.x * OUTER_COLS + threadIdx.x + 32 * j;
        if (col < n) {
            float g = scaled_u * Traits<TV>::load(v[col * v_stride]);
            if (has_w) g = Traits<T>::load(w[row * w_row_stride + col]) + g;
            out[row * out_row_stride + col] = Traits<T>::store(g);
        }
    }
}

// ---------------------------------------------------------------------------------
// C (M x N, unit column stride) = alpha * A (M x K) B (K x N), A and B by (row, column)
// strides, so a transposed operand is a view: 64x64 tiles of C, a 16x16 thread block,
// 4x4 outputs per thread (structbench.cuh's tile_fma_4x4), operands converted to fp32 on
// their way into shared memory (a 16-bit input and an fp32 intermediate mix freely).
#define GG_TILE 64
#define GG_K 16
#define GG_THREADS 256
template <typename TA, typename TB, typename TC>
__device__ __forceinline__ void gemm_impl(
    const TA* __restrict__ a, const TB* __restrict__ b, TC* __restrict__ c, int M, int N, int K,
    long long a_row_stride, long long a_col_stride, long long b_row_stride, long long b_col_stride,
    long long c_row_stride, float alpha, int k_per_split, long long c_split_stride)
{
    // blockIdx.z: the slice [z k_per_split, (z + 1) k_per_split) of K (split-K into an fp32
    // workspace, slice z at c + z c_split_stride; one slice without split-K).
    const int k_lo = blockIdx.z * k_per_split;
    const int k_hi = K - k_lo < k_per_split ? K : k_lo + k_per_split;
    c += blockIdx.z * c_split_stride;
    __shared__ float a_tile[GG_K][GG_TILE + 1];  // transposed; +1 avoids bank conflicts on store
    __shared__ float b_tile[GG_K][GG_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long row0 = (long long)blockIdx.y * GG_TILE, col0 = (long long)blockIdx.x * GG_TILE;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (int k0 = k_lo; k0 < k_hi; k0 += GG_K) {
#pragma unroll
        for (int s = 0; s < (GG_TILE * GG_K) / GG_THREADS; ++s) {
            const int e = tid + s * GG_THREADS;
            const int ar = e / GG_K, ak = e % GG_K;
            const long long grow = row0 + ar;
            a_tile[ak][ar] = (grow < M && k0 + ak < k_hi)
                ? Traits<TA>::load(a[grow * a_row_stride + (long long)(k0 + ak) * a_col_stride]) : 0.0f;
            const int bk = e / GG_TILE, bc = e % GG_TILE;
            const long long gcol = col0 + bc;
            b_tile[bk][bc] = (k0 + bk < k_hi && gcol < N)
                ? Traits<TB>::load(b[(long long)(k0 + bk) * b_row_stride + gcol * b_col_stride]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GG_K; ++kk) tile_fma_4x4(acc, a_tile[kk], b_tile[kk], tx, ty);
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const long long row = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long col = col0 + tx + 16 * j;
            if (row < M && col < N) c[row * c_row_stride + col] = Traits<TC>::store(alpha * acc[i][j]);
        }
    }
}

// ---------------------------------------------------------------------------------
// out[i, j] = sum_s workspace[s, i, j] (splits x M x N, contiguous), rounded once: the second
// launch of a split reduction, in a fixed order (deterministic).
template <typename T>
__device__ __forceinline__ void split_sum_impl(const float* __restrict__ workspace, T* __restrict__ out, int M, int N,
                                               int splits, long long out_row_stride)
{
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long long)M * N) return;
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s) acc += workspace[(long long)s * M * N + e];
    out[(e / N) * out_row_stride + e % N] = Traits<T>::store(acc);
}

// ---------------------------------------------------------------------------------
// y[split, i] (fp32) = sum over the split's slice of j of M[i, j] v[j] (blockIdx.y: the slice), M by (row, column) strides: one warp per row, lanes
// along j, a shuffle reduction at the end. R is a rank (small), L long.
template <typename T>
__device__ __forceinline__ void matvec_f32_impl(
    const T* __restrict__ mat, const T* __restrict__ v, float* __restrict__ y, int rows, int length,
    long long row_stride, long long col_stride, long long v_stride, int per_split)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const long long lo = (long long)blockIdx.y * per_split;
    const long long hi = length - lo < per_split ? length : lo + per_split;
    y += (long long)blockIdx.y * rows;
    float acc = 0.0f;
    for (long long j = lo + lane; j < hi; j += 32) {
        acc += Traits<T>::load(mat[row * row_stride + j * col_stride]) * Traits<T>::load(v[j * v_stride]);
    }
    for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (lane == 0) y[row] = acc;
}

#define STRUCTBENCH_GRAD_GEMM(NAME, TA, TB, TC)                                                  \
    extern "C" __global__ void __launch_bounds__(GG_THREADS) NAME(                               \
        const TA* a, const TB* b, TC* c, int M, int N, int K, long long a_row_stride,            \
        long long a_col_stride, long long b_row_stride, long long b_col_stride,                  \
        long long c_row_stride, float alpha, int k_per_split, long long c_split_stride) {        \
        gemm_impl<TA, TB, TC>(a, b, c, M, N, K, a_row_stride, a_col_stride, b_row_stride,        \
                              b_col_stride, c_row_stride, alpha, k_per_split, c_split_stride);   \
    }

// Per dtype: outer products (inputs x inputs, and fp32 r-vector x inputs), GEMMs with every
// mix the gradients need (inputs -> out, inputs -> fp32 intermediate, fp32 x inputs), matvec.
#define STRUCTBENCH_GRAD_KERNELS(SUFFIX, T)                                                      \
    extern "C" __global__ void grad_outer_##SUFFIX(                                              \
        const T* u, const T* v, const T* w, T* out, int m, int n, long long u_stride,            \
        long long v_stride, long long w_row_stride, long long out_row_stride, float alpha,       \
        int has_w) {                                                                             \
        outer_impl<T, T, T>(u, v, w, out, m, n, u_stride, v_stride, w_row_stride,                \
                            out_row_stride, alpha, has_w);                                       \
    }                                                                                            \
    extern "C" __global__ void grad_outer_f32u_##SUFFIX(                                         \
        const float* u, const T* v, const T* w, T* out, int m, int n, long long u_stride,        \
        long long v_stride, long long w_row_stride, long long out_row_stride, float alpha,       \
        int has_w) {                                                                             \
        outer_impl<float, T, T>(u, v, w, out, m, n, u_stride, v_stride, w_row_stride,            \
                                out_row_stride, alpha, has_w);                                   \
    }                                                                                            \
    extern "C" __global__ void grad_outer_f32v_##SUFFIX(                                         \
        const T* u, const float* v, const T* w, T* out, int m, int n, long long u_stride,        \
        long long v_stride, long long w_row_stride, long long out_row_stride, float alpha,       \
        int has_w) {                                                                             \
        outer_impl<T, float, T>(u, v, w, out, m, n, u_stride, v_stride, w_row_stride,            \
                                out_row_stride, alpha, has_w);                                   \
    }                                                                                            \
    STRUCTBENCH_GRAD_GEMM(grad_gemm_##SUFFIX, T, T, T)                                           \
    STRUCTBENCH_GRAD_GEMM(grad_gemm_to_f32_##SUFFIX, T, T, float)                                \
    STRUCTBENCH_GRAD_GEMM(grad_gemm_f32a_##SUFFIX, float, T, T)                                  \
    STRUCTBENCH_GRAD_GEMM(grad_gemm_f32b_##SUFFIX, T, float, T)                                  \
    STRUCTBENCH_GRAD_GEMM(grad_gemm_f32a_to_f32_##SUFFIX, float, T, float)                       \
    STRUCTBENCH_GRAD_GEMM(grad_gemm_f32b_to_f32_##SUFFIX, T, float, float)                       \
    extern "C" __global__ void grad_split_sum_##SUFFIX(                                          \
        const float* workspace, T* out, int M, int N, int splits, long long out_row_stride) {    \
        split_sum_impl<T>(workspace, out, M, N, splits, out_row_stride);                         \
    }                                                                                            \
    extern "C" __global__ void grad_matvec_f32_##SUFFIX(                                         \
        const T* mat, const T* v, float* y, int rows, int length, long long row_stride,          \
        long long col_stride, long long v_stride, int per_split) {                               \
        matvec_f32_impl<T>(mat, v, y, rows, length, row_stride, col_stride, v_stride, per_split); \
    }

STRUCTBENCH_GRAD_KERNELS(fp32, float)
STRUCTBENCH_GRAD_KERNELS(fp16, fp16_t)
STRUCTBENCH_GRAD_KERNELS(bf16, bf16_t)
