// The 1-D convolution layer (conv_mv, conv_mm) by the direct method, compiled by CuPy's RawModule
// (NVRTC) and, for the CPU-only compile check, by nvcc. Never materialises the matrix.
// Geometry (structbench/ops/conv/reference.py): output (b, o, p) reads input channel
// g(o) * cg + c at position p * stride - pad_left + t * dilation (0 outside [0, n)) for
// c < cg = c_in / groups, t < K; x is (batch, c_in, n), y is (batch, c_out, n_out), all
// contiguous. fp32 accumulation for float types, exact int32 for int8 (the launchers
// refuse a reduction cg * K > INT8_MAX_REDUCTION). Types and traits: structbench.cuh.
#include "structbench.cuh"

// ---------------------------------------------------------------------------------
// groups = 1: an implicit GEMM. A 16 x 16 thread block computes a 64 (channels) x 64
// (positions) tile of one batch item's y = W (c_out x R, R = c_in K) times the im2col
// matrix of x (R x n_out), 16 reduction steps at a time: it stages W's 64 x 16 slice
// (16 consecutive weights per row: reads in runs of 64 bytes at fp32) and the gathered
// 16 x 64 slice of x (consecutive positions: coalesced at stride 1) in shared memory,
// converted to the accumulator type, then runs tile_fma_4x4 (4 x 4 outputs per thread,
// channels ty + 16 i, positions tx + 16 j). Plain FMA: no tensor cores.
#define CONV_TILE 64
#define CONV_STEP 16
#define CONV_THREADS 256

template <typename T>
__device__ __forceinline__ void conv_gemm_impl(
    const T* __restrict__ x, const T* __restrict__ w, typename Traits<T>::out_t* __restrict__ y,
    int c_in, int n, int c_out, int n_out, int kernel, int stride, int pad_left, int dilation)
{
    typedef typename Traits<T>::acc_t acc_t;
    __shared__ acc_t w_tile[CONV_STEP][CONV_TILE];  // [r][o]
    __shared__ acc_t x_tile[CONV_STEP][CONV_TILE];  // [r][p]
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    const long long p0 = (long long)blockIdx.x * CONV_TILE, o0 = (long long)blockIdx.y * CONV_TILE;
    const T* x_item = x + (long long)blockIdx.z * c_in * n;
    const int reduction = c_in * kernel;  // < 2**31: checked by the launcher
    acc_t acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;

    for (int r0 = 0; r0 < reduction; r0 += CONV_STEP) {
#pragma unroll
        for (int s = 0; s < (CONV_TILE * CONV_STEP) / CONV_THREADS; ++s) {
            const int e = tid + s * CONV_THREADS;
            // W: 16 consecutive reduction indices of one row per 16 threads.
            const int wr = e % CONV_STEP, wo = e / CONV_STEP;
            const int r = r0 + wr;
            const long long o = o0 + wo;
            w_tile[wr][wo] = (r < reduction && o < c_out) ? Traits<T>::load(w[o * reduction + r]) : (acc_t)0;
            // x: 64 consecutive positions of one reduction index per 64 threads.
            const int xr = e / CONV_TILE, xp = e % CONV_TILE;
            const int rx = r0 + xr;
            const long long p = p0 + xp;
            acc_t value = 0;
            if (rx < reduction && p < n_out) {
                const int channel = rx / kernel, tap = rx % kernel;  // 32-bit division: no 64-bit call
                const long long j = p * stride - pad_left + (long long)tap * dilation;
                if (j >= 0 && j < n) value = Traits<T>::load(x_item[(long long)channel * n + j]);
            }
            x_tile[xr][xp] = value;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < CONV_STEP; ++kk) tile_fma_4x4(acc, w_tile[kk], x_tile[kk], tx, ty);
        __syncthreads();
    }
    typename Traits<T>::out_t* y_item = y + (long long)blockIdx.z * c_out * n_out;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const long long o = o0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long p = p0 + tx + 16 * j;
            if (o < c_out && p < n_out) y_item[o * n_out + p] = Traits<T>::store(acc[i][j]);
        }
    }
}

// ---------------------------------------------------------------------------------
// Depthwise (groups = c_in): a thread per output; blocks of 256 consecutive positions of
// one channel (x reads coalesced at stride 1, the K weights a warp-uniform broadcast).
// Grid: (position blocks, c_out, batch).
#define DEPTHWISE_THREADS 256

template <typename T>
__device__ __forceinline__ void conv_depthwise_impl(
    const T* __restrict__ x, const T* __restrict__ w, typename Traits<T>::out_t* __restrict__ y,
    int c_in, int n, int c_out, int n_out, int kernel, int stride, int pad_left, int dilation, int out_per_group)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long p = (long long)blockIdx.x * DEPTHWISE_THREADS + threadIdx.x;
    const int o = blockIdx.y;
    if (p >= n_out) return;
    const T* x_row = x + ((long long)blockIdx.z * c_in + o / out_per_group) * n;
    const T* w_row = w + (long long)o * kernel;
    acc_t acc = 0;
    const long long first = p * stride - pad_left;
    for (int t = 0; t < kernel; ++t) {
        const long long j = first + (long long)t * dilation;
        if (j >= 0 && j < n) acc += Traits<T>::load(w_row[t]) * Traits<T>::load(x_row[j]);
    }
    y[((long long)blockIdx.z * c_out + o) * n_out + p] = Traits<T>::store(acc);
}

// extern "C" entry points, one per dtype, so the launchers find them by plain name.
#define STRUCTBENCH_LAYER_KERNELS(SUFFIX, T)                                                     \
    extern "C" __global__ void __launch_bounds__(CONV_THREADS) conv_gemm_##SUFFIX(               \
        const T* x, const T* w, Traits<T>::out_t* y, int c_in, int n, int c_out, int n_out,      \
        int kernel, int stride, int pad_left, int dilation) {                                    \
        conv_gemm_impl<T>(x, w, y, c_in, n, c_out, n_out, kernel, stride, pad_left, dilation);   \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(DEPTHWISE_THREADS) conv_depthwise_##SUFFIX(     \
        const T* x, const T* w, Traits<T>::out_t* y, int c_in, int n, int c_out, int n_out,      \
        int kernel, int stride, int pad_left, int dilation, int out_per_group) {                 \
        conv_depthwise_impl<T>(x, w, y, c_in, n, c_out, n_out, kernel, stride, pad_left,         \
                               dilation, out_per_group);                                         \
    }

STRUCTBENCH_LAYER_KERNELS(fp32, float)
STRUCTBENCH_LAYER_KERNELS(fp16, fp16_t)
STRUCTBENCH_LAYER_KERNELS(bf16, bf16_t)
STRUCTBENCH_LAYER_KERNELS(int8, signed char)
