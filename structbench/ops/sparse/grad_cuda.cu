// CSR parameter gradients: SDDMM, delta x^T (batched: Delta B^T) sampled on A's pattern,
// one value per stored element. Element-parallel (row lengths do not matter): each stored
// element p finds its row by a binary search of indptr (the largest i with indptr[i] <= p).
// mv: one thread per element, delta[i] * x[j]. mm: one warp per element, lanes along the
// batch (the rows Delta[i, :] and B[j, :] are contiguous: coalesced), a shuffle reduction.
// fp32 arithmetic, one rounding. Types and traits: structbench.cuh.
#include "structbench.cuh"

template <typename P>
__device__ __forceinline__ long long row_of(const P* __restrict__ indptr, int m, long long p) {
    long long lo = 0, hi = m;  // indptr[lo] <= p < indptr[hi]
    while (hi - lo > 1) {
        const long long mid = (lo + hi) >> 1;
        if ((long long)indptr[mid] <= p) lo = mid; else hi = mid;
    }
    return lo;
}

template <typename T, typename P>
__device__ __forceinline__ void sddmm_mv_impl(
    const P* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ x,
    const T* __restrict__ delta, T* __restrict__ out, int m, long long nnz, long long x_stride,
    long long delta_stride)
{
    const long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= nnz) return;
    const long long row = row_of(indptr, m, p);
    out[p] = Traits<T>::store(Traits<T>::load(delta[row * delta_stride]) *
                              Traits<T>::load(x[(long long)indices[p] * x_stride]));
}

template <typename T, typename P>
__device__ __forceinline__ void sddmm_mm_impl(
    const P* __restrict__ indptr, const int* __restrict__ indices, const T* __restrict__ b,
    const T* __restrict__ delta, T* __restrict__ out, int m, long long nnz, int batch,
    long long b_row_stride, long long delta_row_stride)
{
    const int lane = threadIdx.x & 31;
    const long long p = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (p >= nnz) return;  // whole warps leave together
    const long long row = row_of(indptr, m, p);
    const T* delta_row = delta + row * delta_row_stride;
    const T* b_row = b + (long long)indices[p] * b_row_stride;
    float acc = 0.0f;
    for (int j = lane; j < batch; j += 32) acc += Traits<T>::load(delta_row[j]) * Traits<T>::load(b_row[j]);
    for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, offset);
    if (lane == 0) out[p] = Traits<T>::store(acc);
}

#define STRUCTBENCH_CSR_GRAD(SUFFIX, T, PSUFFIX, P)                                              \
    extern "C" __global__ void csr_grad_mv_##SUFFIX##_##PSUFFIX(                                 \
        const P* indptr, const int* indices, const T* x, const T* delta, T* out, int m,          \
        long long nnz, long long x_stride, long long delta_stride) {                             \
        sddmm_mv_impl<T, P>(indptr, indices, x, delta, out, m, nnz, x_stride, delta_stride);     \
    }                                                                                            \
    extern "C" __global__ void csr_grad_mm_##SUFFIX##_##PSUFFIX(                                 \
        const P* indptr, const int* indices, const T* b, const T* delta, T* out, int m,          \
        long long nnz, int batch, long long b_row_stride, long long delta_row_stride) {          \
        sddmm_mm_impl<T, P>(indptr, indices, b, delta, out, m, nnz, batch, b_row_stride,         \
                            delta_row_stride);                                                   \
    }

STRUCTBENCH_CSR_GRAD(fp32, float, i32, int)
STRUCTBENCH_CSR_GRAD(fp16, fp16_t, i32, int)
STRUCTBENCH_CSR_GRAD(bf16, bf16_t, i32, int)
STRUCTBENCH_CSR_GRAD(fp32, float, i64, long long)
STRUCTBENCH_CSR_GRAD(fp16, fp16_t, i64, long long)
STRUCTBENCH_CSR_GRAD(bf16, bf16_t, i64, long long)
