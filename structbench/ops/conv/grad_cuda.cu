// The convolution's weight gradient (conv_grad_*): dw[o, c', t] = sum over (b, p) of
// delta[b, o, p] x[b, g(o) cg + c', p S - P + t D] (0 in the padding), cg = c_in / groups.
// One warp per weight (o, c', t) (torch's layout, flattened): its lanes walk the (b, p)
// pairs flattened to u = b n_out + p (delta's run contiguous, coalesced; x at stride S),
// accumulate in fp32 and reduce with shuffles; the gradient stored in the inputs' dtype.
// Types and traits: structbench.cuh.
#include "structbench.cuh"

template <typename T>
__device__ __forceinline__ void conv_grad_impl(
    const T* __restrict__ x, const T* __restrict__ delta, T* __restrict__ out, int c_in, int n, int c_out, int n_out,
    int kernel, int stride, int pad_left, int dilation, int in_per_group, int out_per_group, long long weights,
    long long pairs)
{
    const int lane = threadIdx.x & 31;
    const long long e = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (e >= weights) return;  // whole warps leave together
    const int t = (int)(e % kernel);
    const int c_local = (int)((e / kernel) % in_per_group);
    const long long o = e / ((long long)kernel * in_per_group);
    const long long channel = (o / out_per_group) * in_per_group + c_local;
    const long long shift = (long long)t * dilation - pad_left;
    float acc = 0.0f;
    for (long long u = lane; u < pairs; u += 32) {
        const long long b = u / n_out, p = u - b * n_out;
        const long long j = p * stride + shift;
        if (j >= 0 && j < n)
            acc += Traits<T>::load(delta[(b * c_out + o) * n_out + p]) * Traits<T>::load(x[(b * c_in + channel) * n + j]);
    }
    for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (lane == 0) out[e] = Traits<T>::store(acc);
}

#define STRUCTBENCH_CONV_GRAD(SUFFIX, T)                                                          \
    extern "C" __global__ void conv_grad_##SUFFIX(                                                \
        const T* x, const T* delta, T* out, int c_in, int n, int c_out, int n_out, int kernel,    \
        int stride, int pad_left, int dilation, int in_per_group, int out_per_group,              \
        long long weights, long long pairs) {                                                     \
        conv_grad_impl<T>(x, delta, out, c_in, n, c_out, n_out, kernel, stride, pad_left,         \
                          dilation, in_per_group, out_per_group, weights, pairs);                 \
    }

STRUCTBENCH_CONV_GRAD(fp32, float)
STRUCTBENCH_CONV_GRAD(fp16, fp16_t)
STRUCTBENCH_CONV_GRAD(bf16, bf16_t)
