// The transposed convolution (conv_*_t: conv_transpose1d, the input gradient of conv_*)
// and the locally-connected layer's (local_*_t, LOCAL = true), by a gather, no atomics.
// One thread per input-gradient element (c, j) of one batch item (grid: position blocks,
// c_in, batch): for every tap t, the output that read x[c, j] through t is
// p = (j + P_left - t D) / S when that divides exactly and 0 <= p < n_out (the stride's
// scatter pattern as a test per tap, uniform across c); then every output channel o of c's
// group adds w[o, c', t] y[o, p] (local: w[o, p, c', t]). groups = 1: o over all c_out
// channels, the weight a block-wide broadcast (one c per block), y's reads coalesced
// along j at stride 1; depthwise: o = c M + m, m < M. fp32 accumulation, exact int32 for
// int8 (the launchers refuse (c_out/groups) K > INT8_MAX_REDUCTION). Types: structbench.cuh.
#include "structbench.cuh"

#define TRANSPOSED_THREADS 256

template <typename T, bool LOCAL>
__device__ __forceinline__ void transposed_impl(
    const T* __restrict__ y, const T* __restrict__ w, typename Traits<T>::out_t* __restrict__ x_grad,
    int c_in, int n, int c_out, int n_out, int kernel, int stride, int pad_left, int dilation,
    int in_per_group, int out_per_group, int depthwise)
{
    typedef typename Traits<T>::acc_t acc_t;
    const long long j = (long long)blockIdx.x * TRANSPOSED_THREADS + threadIdx.x;
    const int c = blockIdx.y;
    if (j >= n) return;
    const T* y_item = y + (long long)blockIdx.z * c_out * n_out;
    const int o_first = depthwise ? c * out_per_group : 0;
    const int o_count = depthwise ? out_per_group : c_out;
    const int c_local = depthwise ? 0 : c;
    acc_t acc = 0;
    for (int t = 0; t < kernel; ++t) {
        const long long q = j + pad_left - (long long)t * dilation;
        if (q < 0) break;  // q falls as t grows: no later tap reaches j
        const long long p = q / stride;
        if (p * stride != q || p >= n_out) continue;
        for (int m = 0; m < o_count; ++m) {
            const long long o = o_first + m;
            const long long w_index = LOCAL ? ((o * n_out + p) * in_per_group + c_local) * kernel + t
                                            : (o * in_per_group + c_local) * kernel + t;
            acc += Traits<T>::load(w[w_index]) * Traits<T>::load(y_item[o * n_out + p]);
        }
    }
    x_grad[((long long)blockIdx.z * c_in + c) * n + j] = Traits<T>::store(acc);
}

#define STRUCTBENCH_TRANSPOSED(NAME, LOCAL, SUFFIX, T)                                           \
    extern "C" __global__ void __launch_bounds__(TRANSPOSED_THREADS) NAME##_##SUFFIX(            \
        const T* y, const T* w, Traits<T>::out_t* x_grad, int c_in, int n, int c_out, int n_out, \
        int kernel, int stride, int pad_left, int dilation, int in_per_group, int out_per_group, \
        int depthwise) {                                                                         \
        transposed_impl<T, LOCAL>(y, w, x_grad, c_in, n, c_out, n_out, kernel, stride, pad_left, \
                                  dilation, in_per_group, out_per_group, depthwise);             \
    }

STRUCTBENCH_TRANSPOSED(conv_transposed, false, fp32, float)
STRUCTBENCH_TRANSPOSED(conv_transposed, false, fp16, fp16_t)
STRUCTBENCH_TRANSPOSED(conv_transposed, false, bf16, bf16_t)
STRUCTBENCH_TRANSPOSED(conv_transposed, false, int8, signed char)
STRUCTBENCH_TRANSPOSED(local_transposed, true, fp32, float)
STRUCTBENCH_TRANSPOSED(local_transposed, true, fp16, fp16_t)
STRUCTBENCH_TRANSPOSED(local_transposed, true, bf16, bf16_t)
STRUCTBENCH_TRANSPOSED(local_transposed, true, int8, signed char)
