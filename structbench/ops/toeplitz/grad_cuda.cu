// Toeplitz parameter gradients: the m + n - 1 diagonal sums of delta x^T (batched: Delta
// B^T), g(s) = sum_i sum_b delta[i, b] x[i - s, b], written in the order [dc, dr[1:]]
// (s >= 0 at s, s < 0 at m - s - 1). One warp per diagonal: its lanes walk the (i, b)
// pairs flattened to t = i k + b, contiguous in both delta and B for a fixed s (coalesced
// loads), accumulate in fp32, and reduce with shuffles. Types and traits: structbench.cuh.
#include "structbench.cuh"

template <typename T>
__device__ __forceinline__ void toeplitz_grad_impl(
    const T* __restrict__ x, const T* __restrict__ delta, T* __restrict__ out, int m, int n, int k,
    long long x_row_stride, long long delta_row_stride)
{
    const int lane = threadIdx.x & 31;
    const long long s_index = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (s_index >= (long long)m + n - 1) return;  // whole warps leave together
    const long long s = s_index - (n - 1);
    const long long i_lo = s > 0 ? s : 0;
    const long long i_hi = (long long)n + s < m ? (long long)n + s : m;
    float acc = 0.0f;
    for (long long t = i_lo * k + lane; t < i_hi * k; t += 32) {
        const long long i = t / k, b = t - i * k;
        acc += Traits<T>::load(delta[i * delta_row_stride + b]) * Traits<T>::load(x[(i - s) * x_row_stride + b]);
    }
    for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (lane == 0) out[s >= 0 ? s : m - s - 1] = Traits<T>::store(acc);
}

#define STRUCTBENCH_TOEPLITZ_GRAD(SUFFIX, T)                                                     \
    extern "C" __global__ void toeplitz_grad_##SUFFIX(                                           \
        const T* x, const T* delta, T* out, int m, int n, int k, long long x_row_stride,         \
        long long delta_row_stride) {                                                            \
        toeplitz_grad_impl<T>(x, delta, out, m, n, k, x_row_stride, delta_row_stride);           \
    }

STRUCTBENCH_TOEPLITZ_GRAD(fp32, float)
STRUCTBENCH_TOEPLITZ_GRAD(fp16, fp16_t)
STRUCTBENCH_TOEPLITZ_GRAD(bf16, bf16_t)
