// Transposed CSR products by scatter, in CUDA C (CuPy RawModule / NVRTC; nvcc for the compile
// check): x_grad = A^T y and X_grad = A^T Y from A's own CSR arrays, no transposed copy.
// One warp per row of A: the lanes walk the row's stored elements (j, v) and atomicAdd
// v * y[i] into acc[j] (csr_mm_t: for each element, the lanes stride across the n columns
// of Y[i, :] and add into row j of acc). acc is fp32 (int32 for int8, exact), zeroed by
// zero_acc first; finish rounds it into the output once. Float atomics make the order of
// the additions, and so the last bits, vary from run to run; int8 is exact.
// (For the tests' CPU path, tests/cudacpu: the float scatters' runs in opposite orders may differ.)
// cudacpu: order-dependent: csr_scatter_m[mv]_t_(fp32|fp16|bf16)_i(32|64)
#include "structbench.cuh"

__device__ __forceinline__ float as_acc(float v) { return v; }
__device__ __forceinline__ float as_acc(fp16_t v) { return fp16_to_float(v.bits); }
__device__ __forceinline__ float as_acc(bf16_t v) { return bf16_to_float(v.bits); }
__device__ __forceinline__ int as_acc(signed char v) { return (int)v; }

#define SCATTER_WARPS 8

template <typename T, typename I>
__device__ __forceinline__ void scatter_mv_t_impl(
    const I* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ y, typename Traits<T>::acc_t* __restrict__ acc, int m, long long y_stride)
{
    typedef typename Traits<T>::acc_t acc_t;
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * SCATTER_WARPS + (threadIdx.x >> 5);
    if (row >= m) return;
    const acc_t y_row = as_acc(y[row * y_stride]);
    for (long long e = (long long)indptr[row] + lane; e < (long long)indptr[row + 1]; e += 32) {
        atomicAdd(acc + indices[e], as_acc(data[e]) * y_row);
    }
}

template <typename T, typename I>
__device__ __forceinline__ void scatter_mm_t_impl(
    const I* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ data,
    const T* __restrict__ y, typename Traits<T>::acc_t* __restrict__ acc, int m, int n, long long y_row_stride)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * SCATTER_WARPS + (threadIdx.x >> 5);
    if (row >= m) return;
    const T* y_row = y + row * y_row_stride;
    for (long long e = indptr[row]; e < (long long)indptr[row + 1]; ++e) {
        const typename Traits<T>::acc_t value = as_acc(data[e]);
        typename Traits<T>::acc_t* acc_row = acc + (long long)indices[e] * n;
        for (int col = lane; col < n; col += 32) atomicAdd(acc_row + col, value * as_acc(y_row[col]));
    }
}

template <typename T>
__device__ __forceinline__ void zero_acc_impl(typename Traits<T>::acc_t* __restrict__ acc, long long count)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) acc[i] = 0;
}

// out[row, col] (row stride out_row_stride, column stride out_col_stride) = acc[row * n + col].
template <typename T>
__device__ __forceinline__ void finish_impl(
    const typename Traits<T>::acc_t* __restrict__ acc, typename Traits<T>::out_t* __restrict__ out,
    int rows, int n, long long out_row_stride, long long out_col_stride)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * n) return;
    const long long row = i / n, col = i % n;
    out[row * out_row_stride + col * out_col_stride] = Traits<T>::store(acc[i]);
}

#define STRUCTBENCH_CSR_T_INDEXED(SUFFIX, T, ISUFFIX, I)                                          \
    extern "C" __global__ void __launch_bounds__(32 * SCATTER_WARPS) csr_scatter_mv_t_##SUFFIX##_##ISUFFIX( \
        const I* indptr, const int* indices, const T* data, const T* y, Traits<T>::acc_t* acc,    \
        int m, long long y_stride) {                                                              \
        scatter_mv_t_impl<T, I>(indptr, indices, data, y, acc, m, y_stride);                      \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(32 * SCATTER_WARPS) csr_scatter_mm_t_##SUFFIX##_##ISUFFIX( \
        const I* indptr, const int* indices, const T* data, const T* y, Traits<T>::acc_t* acc,    \
        int m, int n, long long y_row_stride) {                                                   \
        scatter_mm_t_impl<T, I>(indptr, indices, data, y, acc, m, n, y_row_stride);               \
    }

#define STRUCTBENCH_CSR_T_KERNELS(SUFFIX, T)                                                      \
    STRUCTBENCH_CSR_T_INDEXED(SUFFIX, T, i32, int)                                                \
    STRUCTBENCH_CSR_T_INDEXED(SUFFIX, T, i64, long long)                                          \
    extern "C" __global__ void csr_t_zero_acc_##SUFFIX(Traits<T>::acc_t* acc, long long count) {  \
        zero_acc_impl<T>(acc, count);                                                             \
    }                                                                                             \
    extern "C" __global__ void csr_t_finish_##SUFFIX(const Traits<T>::acc_t* acc, Traits<T>::out_t* out, \
        int rows, int n, long long out_row_stride, long long out_col_stride) {                    \
        finish_impl<T>(acc, out, rows, n, out_row_stride, out_col_stride);                        \
    }

STRUCTBENCH_CSR_T_KERNELS(fp32, float)
STRUCTBENCH_CSR_T_KERNELS(fp16, fp16_t)
STRUCTBENCH_CSR_T_KERNELS(bf16, bf16_t)
STRUCTBENCH_CSR_T_KERNELS(int8, signed char)
