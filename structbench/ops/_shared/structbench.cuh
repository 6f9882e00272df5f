// Shared by every structbench CUDA C source: 16-bit float types carried as bit patterns,
// their conversions (PTX cvt; bf16 -> fp32 is a shift), and per-dtype traits: the
// accumulator type (fp32, or int32 for int8) and the output type (int32 for int8);
// Dot16, the 16-byte-word dot product of vectorised GEMV-like loops; and tile_fma_4x4,
// the inner step of the SIMT GEMM tiles.
// No system headers, so the same file builds under NVRTC (CuPy) and nvcc.
// cvt.rn.bf16.f32 needs sm_80+.
#ifndef STRUCTBENCH_CUH
#define STRUCTBENCH_CUH

struct fp16_t { unsigned short bits; };
struct bf16_t { unsigned short bits; };

#ifndef STRUCTBENCH_CPU_EMULATION
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
#endif
__device__ __forceinline__ float bf16_to_float(unsigned short b) {
    return __uint_as_float(((unsigned int)b) << 16);
}
#ifndef STRUCTBENCH_CPU_EMULATION
__device__ __forceinline__ unsigned short float_to_bf16(float f) {
    unsigned short b;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b) : "f"(f));
    return b;
}
#else
// The CPU test path (tests/cudacpu) has no PTX: the same conversions in C++, bit for bit
// (round to nearest even; NaN becomes the canonical NaN, as cvt does). Checked against
// numpy.float16 and torch.bfloat16 over every 16-bit pattern in tests/test_cudacpu.py.
__device__ __forceinline__ float fp16_to_float(unsigned short h) {
    const unsigned int sign = (unsigned int)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1fu) return __uint_as_float(man ? 0x7fffffffu : sign | 0x7f800000u);
    if (exp != 0) return __uint_as_float(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0) return __uint_as_float(sign);
    int e = 113;  // subnormal: normalise the significand
    unsigned int m = man;
    while (!(m & 0x400u)) { m <<= 1; --e; }
    return __uint_as_float(sign | ((unsigned int)e << 23) | ((m & 0x3ffu) << 13));
}
__device__ __forceinline__ unsigned short float_to_fp16(float f) {
    const unsigned int x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) return 0x7fffu;                       // NaN
    if (abs >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (abs >= 0x38800000u) {                                    // normal in fp16 (>= 2^-14)
        const unsigned int r = abs - 0x38000000u;                // rebias the exponent (127 -> 15)
        const unsigned int half = (r >> 13) + (((r >> 12) & 1u) & (((r & 0xfffu) != 0) | ((r >> 13) & 1u)));
        return (unsigned short)(sign | half);
    }
    if (abs < 0x33000000u) return (unsigned short)sign;          // below half the smallest subnormal
    const unsigned int e = abs >> 23, m = (abs & 0x7fffffu) | 0x800000u;
    const unsigned int shift = 126u - e;                         // 14..24: value = m * 2^(e - 150)
    const unsigned int q = m >> shift, rest = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    return (unsigned short)(sign | (q + (rest > halfway || (rest == halfway && (q & 1u)))));
}
__device__ __forceinline__ unsigned short float_to_bf16(float f) {
    const unsigned int x = __float_as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;       // NaN
    return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
#endif

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

// Dot product of two 16-byte words (a uint4 of a row of A with the matching uint4 of x),
// per dtype: the inner step of the vectorised GEMV.
template <typename T> struct Dot16;

template <> struct Dot16<float> {
    static __device__ __forceinline__ float run(uint4 a, uint4 x, float acc) {
        acc = fmaf(__uint_as_float(a.x), __uint_as_float(x.x), acc);
        acc = fmaf(__uint_as_float(a.y), __uint_as_float(x.y), acc);
        acc = fmaf(__uint_as_float(a.z), __uint_as_float(x.z), acc);
        return fmaf(__uint_as_float(a.w), __uint_as_float(x.w), acc);
    }
};

template <> struct Dot16<fp16_t> {
    static __device__ __forceinline__ float word(unsigned int a, unsigned int x, float acc) {
        acc = fmaf(fp16_to_float(a & 0xffffu), fp16_to_float(x & 0xffffu), acc);
        return fmaf(fp16_to_float(a >> 16), fp16_to_float(x >> 16), acc);
    }
    static __device__ __forceinline__ float run(uint4 a, uint4 x, float acc) {
        return word(a.w, x.w, word(a.z, x.z, word(a.y, x.y, word(a.x, x.x, acc))));
    }
};

template <> struct Dot16<bf16_t> {
    static __device__ __forceinline__ float word(unsigned int a, unsigned int x, float acc) {
        acc = fmaf(__uint_as_float(a << 16), __uint_as_float(x << 16), acc);
        return fmaf(__uint_as_float(a & 0xffff0000u), __uint_as_float(x & 0xffff0000u), acc);
    }
    static __device__ __forceinline__ float run(uint4 a, uint4 x, float acc) {
        return word(a.w, x.w, word(a.z, x.z, word(a.y, x.y, word(a.x, x.x, acc))));
    }
};

template <> struct Dot16<signed char> {  // four int8 products per __dp4a
    static __device__ __forceinline__ int run(uint4 a, uint4 x, int acc) {
        acc = __dp4a((int)a.x, (int)x.x, acc);
        acc = __dp4a((int)a.y, (int)x.y, acc);
        acc = __dp4a((int)a.z, (int)x.z, acc);
        return __dp4a((int)a.w, (int)x.w, acc);
    }
};

// One k-step of the SIMT micro-kernel of our 64x64-tile GEMMs (16x16 threads, 4x4 outputs
// per thread at rows ty + 16 i and columns tx + 16 j): acc += a_col[rows] * b_row[columns],
// with a_col the k-th column of the A tile and b_row the k-th row of the B tile.
template <typename acc_t>
__device__ __forceinline__ void tile_fma_4x4(acc_t (&acc)[4][4], const acc_t* a_col, const acc_t* b_row,
                                             int tx, int ty) {
    acc_t a_frag[4], b_frag[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a_frag[i] = a_col[ty + 16 * i];
#pragma unroll
    for (int j = 0; j < 4; ++j) b_frag[j] = b_row[tx + 16 * j];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a_frag[i] * b_frag[j];
}

#endif  // STRUCTBENCH_CUH
