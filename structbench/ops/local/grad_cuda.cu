// The locally-connected layer's weight gradient (local_grad_*): dw[o, p, c', t] =
// sum_b delta[b, o, p] x[b, g(o) cg + c', p S - P + t D] (0 in the padding), cg = c_in/groups.
// One thread per weight, in the weight's own layout (contiguous, coalesced stores); a
// loop over the batch (the mv form: one product, an outer-product-like pattern); fp32
// accumulation, the gradient stored in the inputs' dtype. Types: structbench.cuh.
#include "structbench.cuh"

#define LOCAL_GRAD_THREADS 256

template <typename T>
__device__ __forceinline__ void local_grad_impl(
    const T* __restrict__ x, const T* __restrict__ delta, T* __restrict__ out, int c_in, int n, int c_out, int n_out,
    int kernel, int stride, int pad_left, int dilation, int in_per_group, int out_per_group, long long weights,
    int batch)
{
    const long long e = (long long)blockIdx.x * LOCAL_GRAD_THREADS + threadIdx.x;
    if (e >= weights) return;
    const int t = (int)(e % kernel);
    const long long rest = e / kernel;
    const int c_local = (int)(rest % in_per_group);
    const long long op = rest / in_per_group;  // o * n_out + p
    const long long p = op % n_out, o = op / n_out;
    const long long channel = (o / out_per_group) * in_per_group + c_local;
    const long long j = p * stride - pad_left + (long long)t * dilation;
    float acc = 0.0f;
    if (j >= 0 && j < n) {
        for (int b = 0; b < batch; ++b)
            acc += Traits<T>::load(delta[((long long)b * c_out + o) * n_out + p]) *
                   Traits<T>::load(x[((long long)b * c_in + channel) * n + j]);
    }
    out[e] = Traits<T>::store(acc);
}

#define STRUCTBENCH_LOCAL_GRAD(SUFFIX, T)                                                         \
    extern "C" __global__ void __launch_bounds__(LOCAL_GRAD_THREADS) local_grad_##SUFFIX(         \
        const T* x, const T* delta, T* out, int c_in, int n, int c_out, int n_out, int kernel,    \
        int stride, int pad_left, int dilation, int in_per_group, int out_per_group,              \
        long long weights, int batch) {                                                           \
        local_grad_impl<T>(x, delta, out, c_in, n, c_out, n_out, kernel, stride, pad_left,        \
                           dilation, in_per_group, out_per_group, weights, batch);                \
    }

STRUCTBENCH_LOCAL_GRAD(fp32, float)
STRUCTBENCH_LOCAL_GRAD(fp16, fp16_t)
STRUCTBENCH_LOCAL_GRAD(bf16, bf16_t)
