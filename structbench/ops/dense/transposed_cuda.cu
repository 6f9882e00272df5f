// Transposed dense products x_grad = A^T y and X_grad = A^T B in CUDA C (CuPy RawModule /
// NVRTC; nvcc for the compile check), A m x k stored row-major as for the forward product.
// Types, conversions and tile_fma_4x4 come from structbench.cuh (found through kernels/).
// Accumulation is fp32 for float types and int32 for int8 (exact). The low-rank and LoRA
// transposed products (structbench/ops/lowrank/transposed_cuda.py) are built from these
// kernels: the column reduction with an fp32/int32 vector or a second segment, and the
// tile kernel with an adapter term.
#include "structbench.cuh"

// Any input element, or an fp32/int32 intermediate, as the accumulator type.
__device__ __forceinline__ float as_acc(float v) { return v; }
__device__ __forceinline__ float as_acc(fp16_t v) { return fp16_to_float(v.bits); }
__device__ __forceinline__ float as_acc(bf16_t v) { return bf16_to_float(v.bits); }
__device__ __forceinline__ int as_acc(signed char v) { return (int)v; }
__device__ __forceinline__ int as_acc(int v) { return v; }

// ---------------------------------------------------------------------------------
// Column reduction: a 32 x 8 block owns 32 * VEC adjacent columns (VEC = 16 / sizeof(T):
// 4 fp32, 8 fp16/bf16, 16 int8); lane tx reads its VEC columns of a row with one 16-byte
// load (vec_ok, decided on the host: A (and A2) 16-byte aligned with rows a multiple of
// 16 bytes; else, and at the right edge, element by element), so each warp reads one
// contiguous 512-byte row segment per step, the 8 warps walking down the rows 8 apart,
// each lane accumulating VEC columns in registers. The 8 partial sums of a column meet
// once, in shared memory, at the end. blockIdx.y splits the rows (split-M) when the
// columns alone give too few blocks: each split then writes fp32/int32 partials to
// work[split, k] and sum_splits adds them and rounds once (deterministic, exact for int8).
// Split 0 also adds scale * A2^T y2 when a2 is given (LoRA's adapter term, y2 = t in
// fp32/int32).
#define CT_LANES 32
#define CT_ROWS 8

// The VEC elements of a 16-byte word, as the accumulator type.
template <typename T> struct Unpack16;
template <> struct Unpack16<float> {
    static __device__ __forceinline__ void run(uint4 w, float (&v)[4]) {
        v[0] = __uint_as_float(w.x); v[1] = __uint_as_float(w.y);
        v[2] = __uint_as_float(w.z); v[3] = __uint_as_float(w.w);
    }
};
template <> struct Unpack16<fp16_t> {
    static __device__ __forceinline__ void run(uint4 w, float (&v)[8]) {
        const unsigned int words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = fp16_to_float((unsigned short)(words[i] & 0xffffu));
            v[2 * i + 1] = fp16_to_float((unsigned short)(words[i] >> 16));
        }
    }
};
template <> struct Unpack16<bf16_t> {
    static __device__ __forceinline__ void run(uint4 w, float (&v)[8]) {
        const unsigned int words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = __uint_as_float(words[i] << 16);
            v[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
        }
    }
};
template <> struct Unpack16<signed char> {
    static __device__ __forceinline__ void run(uint4 w, int (&v)[16]) {
        const unsigned int words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int b = 0; b < 4; ++b) v[4 * i + b] = (int)(signed char)((words[i] >> (8 * b)) & 0xffu);
        }
    }
};

// acc[i] += A[row, col0 + i] * weight for the lane's VEC columns (one 16-byte load when full).
template <typename T, int VEC>
__device__ __forceinline__ void accumulate_row(const T* __restrict__ a_row, long long col0, long long k, bool full,
                                               typename Traits<T>::acc_t weight, typename Traits<T>::acc_t (&acc)[VEC])
{
    typedef typename Traits<T>::acc_t acc_t;
    if (full) {
        acc_t v[VEC];
        Unpack16<T>::run(*reinterpret_cast<const uint4*>(a_row + col0), v);
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] += v[i] * weight;
    } else {
#pragma unroll
        for (int i = 0; i < VEC; ++i) {
            if (col0 + i < k) acc[i] += as_acc(a_row[col0 + i]) * weight;
        }
    }
}

template <typename T, typename VT>
__device__ __forceinline__ void col_reduce_impl(
    const T* __restrict__ a, const VT* __restrict__ y, const T* __restrict__ a2,
    const typename Traits<T>::acc_t* __restrict__ y2, typename Traits<T>::out_t* __restrict__ out,
    typename Traits<T>::acc_t* __restrict__ work, int m, int k, int m2, int rows_per_split,
    typename Traits<T>::acc_t scale, long long a_row_stride, long long y_stride, long long a2_row_stride,
    long long out_stride, int vec_ok)
{
    typedef typename Traits<T>::acc_t acc_t;
    constexpr int VEC = 16 / sizeof(T);
    constexpr int COLS = CT_LANES * VEC;
    __shared__ acc_t partial[CT_ROWS][COLS + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long long block_col0 = (long long)blockIdx.x * COLS;
    const long long col0 = block_col0 + (long long)tx * VEC;
    const bool full = vec_ok && col0 + VEC <= k;
    const long long row_lo = (long long)blockIdx.y * rows_per_split;
    const long long row_hi = min((long long)m, row_lo + rows_per_split);
    acc_t acc[VEC];
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[i] = 0;
    if (col0 < k) {
#pragma unroll 2
        for (long long row = row_lo + ty; row < row_hi; row += CT_ROWS) {
            accumulate_row<T, VEC>(a + row * a_row_stride, col0, k, full, as_acc(y[row * y_stride]), acc);
        }
        if (a2 != nullptr && blockIdx.y == 0) {
            acc_t second[VEC];
#pragma unroll
            for (int i = 0; i < VEC; ++i) second[i] = 0;
            for (long long row = ty; row < m2; row += CT_ROWS) {
                accumulate_row<T, VEC>(a2 + row * a2_row_stride, col0, k, full, y2[row], second);
            }
#pragma unroll
            for (int i = 0; i < VEC; ++i) acc[i] += scale * second[i];
        }
    }
#pragma unroll
    for (int i = 0; i < VEC; ++i) partial[ty][tx * VEC + i] = acc[i];
    __syncthreads();
    for (int c = ty * CT_LANES + tx; c < COLS; c += CT_LANES * CT_ROWS) {
        const long long col = block_col0 + c;
        if (col >= k) break;
        acc_t sum = 0;
#pragma unroll
        for (int r = 0; r < CT_ROWS; ++r) sum += partial[r][c];
        if (work != nullptr) work[(long long)blockIdx.y * k + col] = sum;
        else out[col * out_stride] = Traits<T>::store(sum);
    }
}

// out[col] = the sum of the splits' partials, rounded once to the output dtype, or kept in
// fp32/int32 (ACC_OUT: a low-rank intermediate).
template <typename T, bool ACC_OUT>
__device__ __forceinline__ void sum_splits_impl(
    const typename Traits<T>::acc_t* __restrict__ work, void* __restrict__ out, int k, int splits,
    long long out_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= k) return;
    acc_t sum = 0;
    for (int s = 0; s < splits; ++s) sum += work[(long long)s * k + col];
    if (ACC_OUT) static_cast<acc_t*>(out)[col * out_stride] = sum;
    else static_cast<typename Traits<T>::out_t*>(out)[col * out_stride] = Traits<T>::store(sum);
}

// ---------------------------------------------------------------------------------
// C (k x n) = A^T B (+ scale * V^T T): the forward GEMM's 64x64 tiles (16x16 threads,
// 4x4 outputs each, tile_fma_4x4), with the A tile read from 16 rows of A: element
// (row i of C, reduction j) is A[j, i], so consecutive threads read consecutive i
// (coalesced) and store it as the forward kernel stores its transposed tile. The
// adapter term (V r x k in the input dtype, T r x n fp32/int32) is r rank-1 updates.
// The result goes to c (output dtype) or, when c_acc is given, to fp32/int32.
#define MT_TILE 64
#define MT_K 16
#define MT_THREADS 256

template <typename T>
__device__ __forceinline__ void mm_t_impl(
    const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ v,
    const typename Traits<T>::acc_t* __restrict__ t, typename Traits<T>::out_t* __restrict__ c,
    typename Traits<T>::acc_t* __restrict__ c_acc, int m, int k, int n, int r, typename Traits<T>::acc_t scale,
    long long a_row_stride, long long b_row_stride, long long v_row_stride, long long t_row_stride,
    long long c_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t a_tile[MT_K][MT_TILE + 1];  // [reduction][row of C]
    __shared__ acc_t b_tile[MT_K][MT_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long row0 = (long long)blockIdx.y * MT_TILE, col0 = (long long)blockIdx.x * MT_TILE;
    acc_t acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;

    for (int k0 = 0; k0 < m; k0 += MT_K) {
#pragma unroll
        for (int s = 0; s < (MT_TILE * MT_K) / MT_THREADS; ++s) {
            const int e = tid + s * MT_THREADS;
            const int red = e / MT_TILE, i = e % MT_TILE;  // A: 16 rows (reduction) x 64 columns (rows of C)
            const long long grow = row0 + i;
            a_tile[red][i] = (k0 + red < m && grow < k)
                ? as_acc(a[(long long)(k0 + red) * a_row_stride + grow]) : (acc_t)0;
            const long long gcol = col0 + i;  // B: 16 rows x 64 columns
            b_tile[red][i] = (k0 + red < m && gcol < n)
                ? as_acc(b[(long long)(k0 + red) * b_row_stride + gcol]) : (acc_t)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MT_K; ++kk) {
            tile_fma_4x4(acc, a_tile[kk], b_tile[kk], tx, ty);
        }
        __syncthreads();
    }
    if (v != nullptr) {
        for (int j = 0; j < r; ++j) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const long long row = row0 + ty + 16 * i;
                const acc_t vv = row < k ? scale * as_acc(v[(long long)j * v_row_stride + row]) : (acc_t)0;
#pragma unroll
                for (int jj = 0; jj < 4; ++jj) {
                    const long long col = col0 + tx + 16 * jj;
                    if (col < n) acc[i][jj] += vv * t[(long long)j * t_row_stride + col];
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const long long row = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long col = col0 + tx + 16 * j;
            if (row < k && col < n) {
                if (c_acc != nullptr) c_acc[row * c_row_stride + col] = acc[i][j];
                else c[row * c_row_stride + col] = Traits<T>::store(acc[i][j]);
            }
        }
    }
}

// extern "C" entry points, one per dtype.
#define STRUCTBENCH_TRANSPOSED_KERNELS(SUFFIX, T)                                                   \
    extern "C" __global__ void __launch_bounds__(CT_LANES * CT_ROWS) col_reduce_t_##SUFFIX(         \
        const T* a, const T* y, const T* a2, const Traits<T>::acc_t* y2, Traits<T>::out_t* out,     \
        Traits<T>::acc_t* work, int m, int k, int m2, int rows_per_split, Traits<T>::acc_t scale,   \
        long long a_row_stride, long long y_stride, long long a2_row_stride, long long out_stride,  \
        int vec_ok) {                                                                               \
        col_reduce_impl<T, T>(a, y, a2, y2, out, work, m, k, m2, rows_per_split, scale,              \
                              a_row_stride, y_stride, a2_row_stride, out_stride, vec_ok);             \
    }                                                                                               \
    extern "C" __global__ void __launch_bounds__(CT_LANES * CT_ROWS) col_reduce_accvec_t_##SUFFIX(  \
        const T* a, const Traits<T>::acc_t* y, Traits<T>::out_t* out, Traits<T>::acc_t* work,       \
        int m, int k, int rows_per_split, long long a_row_stride, long long y_stride,               \
        long long out_stride, int vec_ok) {                                                         \
        col_reduce_impl<T, Traits<T>::acc_t>(a, y, (const T*)nullptr, nullptr, out, work, m, k, 0,  \
                                             rows_per_split, 0, a_row_stride, y_stride, 0, out_stride, \
                                             vec_ok);                                               \
    }                                                                                               \
    extern "C" __global__ void sum_splits_t_##SUFFIX(                                               \
        const Traits<T>::acc_t* work, Traits<T>::out_t* out, int k, int splits, long long out_stride) { \
        sum_splits_impl<T, false>(work, out, k, splits, out_stride);                                \
    }                                                                                               \
    extern "C" __global__ void sum_splits_acc_t_##SUFFIX(                                           \
        const Traits<T>::acc_t* work, Traits<T>::acc_t* out, int k, int splits) {                   \
        sum_splits_impl<T, true>(work, out, k, splits, 1);                                          \
    }                                                                                               \
    extern "C" __global__ void __launch_bounds__(MT_THREADS) mm_t_##SUFFIX(                         \
        const T* a, const T* b, const T* v, const Traits<T>::acc_t* t, Traits<T>::out_t* c,         \
        Traits<T>::acc_t* c_acc, int m, int k, int n, int r, Traits<T>::acc_t scale,                \
        long long a_row_stride, long long b_row_stride, long long v_row_stride,                     \
        long long t_row_stride, long long c_row_stride) {                                           \
        mm_t_impl<T>(a, b, v, t, c, c_acc, m, k, n, r, scale, a_row_stride, b_row_stride,           \
                     v_row_stride, t_row_stride, c_row_stride);                                     \
    }

STRUCTBENCH_TRANSPOSED_KERNELS(fp32, float)
STRUCTBENCH_TRANSPOSED_KERNELS(fp16, fp16_t)
STRUCTBENCH_TRANSPOSED_KERNELS(bf16, bf16_t)
STRUCTBENCH_TRANSPOSED_KERNELS(int8, signed char)
