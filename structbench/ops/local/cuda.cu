// The locally-connected layer (local_mv, local_mm) by the direct method, compiled by
// CuPy's RawModule (NVRTC) and, for the CPU-only compile check, by nvcc. Geometry as in
// structbench/ops/conv/cuda.cu; the weight w is (c_out, n_out, c_in / groups, K). fp32
// accumulation for float types, exact int32 for int8. Never materialises the matrix.
#include "structbench.cuh"

// Locally-connected (any groups): w is (c_out, n_out, cg, K), i.e. one contiguous row of
// R = cg K weights per output (o, p). A warp per (output, batch item), batch items of one
// output on neighbouring warps (they share its weights in L1/L2): lanes stride the row
// (128-byte coalesced weight reads at fp32), the 32 partial sums meet by shuffles.
#define LOCAL_THREADS 256
#define LOCAL_WARPS (LOCAL_THREADS / 32)

template <typename T>
__device__ __forceinline__ void local_rows_impl(
    const T* __restrict__ x, const T* __restrict__ w, typename Traits<T>::out_t* __restrict__ y,
    int batch, int c_in, int n, int c_out, int n_out, int kernel, int stride, int pad_left, int dilation,
    int in_per_group, int out_per_group)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long item = (long long)blockIdx.x * LOCAL_WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const long long rows = (long long)c_out * n_out;
    if (item >= rows * batch) return;  // the whole warp: the shuffles below see all 32 lanes
    const long long row = item / batch, b = item % batch;
    const long long o = row / n_out, p = row % n_out;
    const int reduction = in_per_group * kernel;  // < 2**31: checked by the launcher
    const T* w_row = w + row * reduction;
    const T* x_group = x + (b * c_in + (o / out_per_group) * in_per_group) * n;
    const long long first = p * stride - pad_left;
    acc_t acc = 0;
    for (int r = lane; r < reduction; r += 32) {
        const int channel = r / kernel, tap = r % kernel;  // 32-bit division: no 64-bit call
        const long long j = first + (long long)tap * dilation;
        if (j >= 0 && j < n) acc += Traits<T>::load(w_row[r]) * Traits<T>::load(x_group[(long long)channel * n + j]);
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (lane == 0) y[b * rows + row] = Traits<T>::store(acc);
}

// extern "C" entry points, one per dtype, so the launcher finds them by plain name.
#define STRUCTBENCH_LOCAL_KERNELS(SUFFIX, T)                                                     \
    extern "C" __global__ void __launch_bounds__(LOCAL_THREADS) local_rows_##SUFFIX(             \
        const T* x, const T* w, Traits<T>::out_t* y, int batch, int c_in, int n, int c_out,      \
        int n_out, int kernel, int stride, int pad_left, int dilation, int in_per_group,         \
        int out_per_group) {                                                                     \
        local_rows_impl<T>(x, w, y, batch, c_in, n, c_out, n_out, kernel, stride, pad_left,      \
                           dilation, in_per_group, out_per_group);                               \
    }

STRUCTBENCH_LOCAL_KERNELS(fp32, float)
STRUCTBENCH_LOCAL_KERNELS(fp16, fp16_t)
STRUCTBENCH_LOCAL_KERNELS(bf16, bf16_t)
STRUCTBENCH_LOCAL_KERNELS(int8, signed char)
