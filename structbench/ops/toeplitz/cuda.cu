// Toeplitz matrix-vector and matrix-matrix products by the direct method, compiled by
// CuPy's RawModule (NVRTC) and, for the CPU-only compile check, by nvcc.
//
// T is m x n with first column c and first row r: T[i][j] = v(i - j) where
//     v(d) = c[d] for 0 <= d < m,  r[-d] for -n < d < 0,
// so c[0] is the diagonal and r[0] is never read. T is never materialised: a block
// stages in shared memory the window of v that its tile of T spans (tile rows + tile
// columns - 1 values, converted to the accumulator type) next to its slice of x (or B),
// and every thread reads its elements of T from that window. The kernels thus read
// O(m + n) parameters from memory and do 2 m n flops (per column of B): compute-bound,
// unlike a dense GEMV. Accumulation is fp32 for float types and int32 for int8 (exact;
// the launcher refuses n > INT8_MAX_REDUCTION). Types and traits: structbench.cuh.
#include "structbench.cuh"

// v(d), or 0 when d names no element of T (the window of an edge tile runs past it).
template <typename T>
__device__ __forceinline__ typename Traits<T>::acc_t toeplitz_param(
    const T* __restrict__ c, const T* __restrict__ r, long long d, int m, int n,
    long long c_stride, long long r_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    if (d >= 0) return d < m ? Traits<T>::load(c[d * c_stride]) : (acc_t)0;
    return -d < n ? Traits<T>::load(r[-d * r_stride]) : (acc_t)0;
}

// ---------------------------------------------------------------------------------
// Matvec: a register-blocked sliding window. A block of 16 x 16 threads owns MV_TILE_M =
// 256 rows and walks its columns MV_TILE_N = 256 at a time. Thread (g, h) (g = tid % 16,
// h = tid / 16) handles rows g + 16 s (s < 16) and columns h + 16 q (q < 16) of the tile;
// the element of T at local (row, column) is window[row - column + MV_TILE_N - 1], so its
// 256 products need only the 31 window values of distinct s - q (kept in registers) and
// 16 values of x: 47 shared loads per 256 FMAs (was 35 per 64), so the FMA pipe, not the
// shared-memory pipe, bounds the loop. In a warp g runs over 0..15 and h over two values:
// window reads hit 17 consecutive words and x reads 2 (no bank conflicts).
// Blocks along y split the columns (MV_SPLIT_COLS of them each, a multiple of the tile),
// so that m / 256 row blocks still give every SM work; with more than one split each
// writes its partial sums (accumulator type) to parts[split][row] and
// toeplitz_mv_finish adds them up and rounds once. The 16 column groups' partial sums
// of a block are reduced through shared memory at the end.
#define MV_GROUPS 16
#define MV_THREADS (MV_GROUPS * MV_GROUPS)
#define MV_ROWS_PER_THREAD 16
#define MV_COLS_PER_THREAD 16
#define MV_TILE_M (MV_GROUPS * MV_ROWS_PER_THREAD)
#define MV_TILE_N (MV_GROUPS * MV_COLS_PER_THREAD)
#define MV_WINDOW (MV_TILE_M + MV_TILE_N - 1)
#define MV_REGS (MV_ROWS_PER_THREAD + MV_COLS_PER_THREAD - 1)

template <typename T>
__device__ __forceinline__ void toeplitz_mv_impl(
    const T* __restrict__ c, const T* __restrict__ r, const T* __restrict__ x,
    typename Traits<T>::out_t* __restrict__ y, typename Traits<T>::acc_t* __restrict__ parts,
    int m, int n, long long split_cols,
    long long c_stride, long long r_stride, long long x_stride, long long y_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t window[MV_WINDOW];
    __shared__ acc_t x_tile[MV_TILE_N];
    __shared__ acc_t partial[MV_GROUPS][MV_TILE_M];
    const int tid = threadIdx.x;
    const int g = tid % MV_GROUPS, h = tid / MV_GROUPS;
    const long long row0 = (long long)blockIdx.x * MV_TILE_M;
    const long long col_begin = (long long)blockIdx.y * split_cols;
    const long long col_end = col_begin + split_cols < n ? col_begin + split_cols : n;
    acc_t acc[MV_ROWS_PER_THREAD];
#pragma unroll
    for (int s = 0; s < MV_ROWS_PER_THREAD; ++s) acc[s] = 0;

    for (long long col0 = col_begin; col0 < col_end; col0 += MV_TILE_N) {
        // window[t] = v(row0 - col0 - (MV_TILE_N - 1) + t): every i - j of this tile.
        const long long d0 = row0 - col0 - (MV_TILE_N - 1);
        for (int t = tid; t < MV_WINDOW; t += MV_THREADS) {
            window[t] = toeplitz_param(c, r, d0 + t, m, n, c_stride, r_stride);
        }
        for (int t = tid; t < MV_TILE_N; t += MV_THREADS) {
            const long long col = col0 + t;
            x_tile[t] = col < col_end ? Traits<T>::load(x[col * x_stride]) : (acc_t)0;
        }
        __syncthreads();
        // Columns past the split are skipped, not multiplied by the zero padding of x: the
        // window value they would pair with belongs to another row, and inf * 0 is NaN.
        const long long cols_left = col_end - col0;
        acc_t w[MV_REGS];  // w[s - q + MV_COLS_PER_THREAD - 1]
#pragma unroll
        for (int e = 0; e < MV_REGS; ++e) {
            w[e] = window[g - h + MV_GROUPS * (e - (MV_COLS_PER_THREAD - 1)) + MV_TILE_N - 1];
        }
#pragma unroll
        for (int q = 0; q < MV_COLS_PER_THREAD; ++q) {
            const int col = h + MV_GROUPS * q;
            if (col < cols_left) {
                const acc_t xq = x_tile[col];
#pragma unroll
                for (int s = 0; s < MV_ROWS_PER_THREAD; ++s) {
                    acc[s] += w[s - q + MV_COLS_PER_THREAD - 1] * xq;
                }
            }
        }
        __syncthreads();  // before the next step overwrites window and x_tile
    }
#pragma unroll
    for (int s = 0; s < MV_ROWS_PER_THREAD; ++s) partial[h][g + MV_GROUPS * s] = acc[s];
    __syncthreads();
    for (int i = tid; i < MV_TILE_M; i += MV_THREADS) {
        acc_t sum = 0;
#pragma unroll
        for (int group = 0; group < MV_GROUPS; ++group) sum += partial[group][i];
        const long long row = row0 + i;
        if (row >= m) continue;
        if (gridDim.y == 1) {
            y[row * y_stride] = Traits<T>::store(sum);
        } else {
            parts[(long long)blockIdx.y * m + row] = sum;
        }
    }
}

// y[row] = the splits' partial sums added up (accumulator type), rounded once.
template <typename T>
__device__ __forceinline__ void toeplitz_mv_finish_impl(
    const typename Traits<T>::acc_t* __restrict__ parts, typename Traits<T>::out_t* __restrict__ y,
    int m, int splits, long long y_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= m) return;
    acc_t sum = 0;
    for (int s = 0; s < splits; ++s) sum += parts[(long long)s * m + row];
    y[row * y_stride] = Traits<T>::store(sum);
}

// ---------------------------------------------------------------------------------
// Matmul C = T B (B n x k): structbench/ops/dense/cuda.cu's GEMM with the A tile replaced by a
// window of v. A 16x16 thread block computes a 64x64 tile of C, 4x4 outputs per thread at
// rows 4 ty + i (consecutive) and columns tx + 16 j; per step of MM_K = 16 along n it
// stages the MM_WINDOW = 79 parameters its 64 x 16 slice of T spans (T[row0 + a][n0 + kk]
// = window[a - kk + MM_K - 1]) and a 16 x 64 tile of B. Consecutive rows make the A
// fragment a sliding window: from one kk to the next it shifts by one element, so each
// kk reads one new window value (a warp broadcast: two distinct addresses per warp) and
// 4 values of B (16 consecutive words) for 16 FMAs. Plain FMA: no tensor cores. Blocks
// along x walk the rows, so neighbours share their tile of B in L2.
#define MM_TILE 64
#define MM_K 16
#define MM_THREADS 256
#define MM_WINDOW (MM_TILE + MM_K - 1)

template <typename T>
__device__ __forceinline__ void toeplitz_mm_impl(
    const T* __restrict__ c, const T* __restrict__ r, const T* __restrict__ b,
    typename Traits<T>::out_t* __restrict__ out, int m, int n, int k,
    long long c_stride, long long r_stride, long long b_row_stride, long long out_row_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t window[MM_WINDOW];
    __shared__ acc_t b_tile[MM_K][MM_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long row0 = (long long)blockIdx.x * MM_TILE, col0 = (long long)blockIdx.y * MM_TILE;
    acc_t acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;

    for (long long n0 = 0; n0 < n; n0 += MM_K) {
        // window[t] = v(row0 - n0 - (MM_K - 1) + t): every i - j of this slice of T.
        if (tid < MM_WINDOW) {
            window[tid] = toeplitz_param(c, r, row0 - n0 - (MM_K - 1) + tid, m, n, c_stride, r_stride);
        }
#pragma unroll
        for (int s = 0; s < (MM_TILE * MM_K) / MM_THREADS; ++s) {
            const int e = tid + s * MM_THREADS;
            const int bk = e / MM_TILE, bc = e % MM_TILE;  // B tile: 16 rows of B x 64 columns
            const long long brow = n0 + bk, bcol = col0 + bc;
            b_tile[bk][bc] = (brow < n && bcol < k) ? Traits<T>::load(b[brow * b_row_stride + bcol]) : (acc_t)0;
        }
        __syncthreads();
        // Reduction indices past n are skipped (see toeplitz_mv_impl: inf * 0).
        const long long k_left = n - n0;
        acc_t a_frag[4];  // a_frag[i] = T[row0 + 4 ty + i][n0 + kk] = window[4 ty + i - kk + MM_K - 1]
#pragma unroll
        for (int i = 0; i < 4; ++i) a_frag[i] = window[4 * ty + i + MM_K - 1];
#pragma unroll
        for (int kk = 0; kk < MM_K; ++kk) {
            if (kk < k_left) {
                acc_t b_frag[4];
#pragma unroll
                for (int j = 0; j < 4; ++j) b_frag[j] = b_tile[kk][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] += a_frag[i] * b_frag[j];
            }
            if (kk + 1 < MM_K) {  // slide to kk + 1: one new window value
#pragma unroll
                for (int i = 3; i > 0; --i) a_frag[i] = a_frag[i - 1];
                a_frag[0] = window[4 * ty + MM_K - 2 - kk];
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const long long row = row0 + 4 * ty + i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long col = col0 + tx + 16 * j;
            if (row < m && col < k) out[row * out_row_stride + col] = Traits<T>::store(acc[i][j]);
        }
    }
}

// extern "C" entry points, one per dtype, so the launcher finds them by plain name.
#define STRUCTBENCH_TOEPLITZ_KERNELS(SUFFIX, T)                                                  \
    extern "C" __global__ void __launch_bounds__(MV_THREADS) toeplitz_mv_##SUFFIX(               \
        const T* c, const T* r, const T* x, Traits<T>::out_t* y, Traits<T>::acc_t* parts,         \
        int m, int n, long long split_cols,                                                      \
        long long c_stride, long long r_stride, long long x_stride, long long y_stride) {        \
        toeplitz_mv_impl<T>(c, r, x, y, parts, m, n, split_cols, c_stride, r_stride, x_stride,   \
                            y_stride);                                                           \
    }                                                                                            \
    extern "C" __global__ void toeplitz_mv_finish_##SUFFIX(                                      \
        const Traits<T>::acc_t* parts, Traits<T>::out_t* y, int m, int splits, long long y_stride) { \
        toeplitz_mv_finish_impl<T>(parts, y, m, splits, y_stride);                               \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(MM_THREADS) toeplitz_mm_##SUFFIX(               \
        const T* c, const T* r, const T* b, Traits<T>::out_t* out, int m, int n, int k,          \
        long long c_stride, long long r_stride, long long b_row_stride, long long out_row_stride) { \
        toeplitz_mm_impl<T>(c, r, b, out, m, n, k, c_stride, r_stride, b_row_stride, out_row_stride); \
    }

STRUCTBENCH_TOEPLITZ_KERNELS(fp32, float)
STRUCTBENCH_TOEPLITZ_KERNELS(fp16, fp16_t)
STRUCTBENCH_TOEPLITZ_KERNELS(bf16, bf16_t)
STRUCTBENCH_TOEPLITZ_KERNELS(int8, signed char)
