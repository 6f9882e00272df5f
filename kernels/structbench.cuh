// Shared by every structbench CUDA C source: 16-bit float types carried as bit patterns,
// their conversions (PTX cvt; bf16 -> fp32 is a shift), and per-dtype traits: the
// accumulator type (fp32, or int32 for int8) and the output type (int32 for int8).
// No system headers, so the same file builds under NVRTC (CuPy) and nvcc.
// cvt.rn.bf16.f32 needs sm_80+.
#ifndef STRUCTBENCH_CUH
#define STRUCTBENCH_CUH

struct fp16_t { unsigned short bits; };
struct bf16_t { unsigned short bits; };

__device__ __forceinline__ float fp16_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ unsigned short float_to_fp16(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float bf16_to_float(unsigned short b) {
    return __uint_as_float(((unsigned int)b) << 16);
}
__device__ __forceinline__ unsigned short float_to_bf16(float f) {
    unsigned short b;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b) : "f"(f));
    return b;
}

template <typename T> struct Traits;

template <> struct Traits<float> {
    typedef float acc_t;
    typedef float out_t;
    static __device__ __forceinline__ float load(float v) { return v; }
    static __device__ __forceinline__ float store(float acc) { return acc; }
};

template <> struct Traits<fp16_t> {
    typedef float acc_t;
    typedef fp16_t out_t;
    static __device__ __forceinline__ float load(fp16_t v) { return fp16_to_float(v.bits); }
    static __device__ __forceinline__ fp16_t store(float acc) { fp16_t r; r.bits = float_to_fp16(acc); return r; }
};

template <> struct Traits<bf16_t> {
    typedef float acc_t;
    typedef bf16_t out_t;
    static __device__ __forceinline__ float load(bf16_t v) { return bf16_to_float(v.bits); }
    static __device__ __forceinline__ bf16_t store(float acc) { bf16_t r; r.bits = float_to_bf16(acc); return r; }
};

template <> struct Traits<signed char> {
    typedef int acc_t;
    typedef int out_t;
    static __device__ __forceinline__ int load(signed char v) { return (int)v; }
    static __device__ __forceinline__ int store(int acc) { return acc; }
};

#endif  // STRUCTBENCH_CUH
