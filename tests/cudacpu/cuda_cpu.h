// The CUDA execution model our kernels use, for g++ on the CPU (tests only; see
// tests/cudacpu/__init__.py). Prepended to the same code string CuPy's NVRTC compiles,
// so the real .cu file and structbench.cuh run here unchanged.
//
// Every thread of a block is a fiber (its own stack; one OS thread runs the block) that
// runs until it waits: at __syncthreads() every thread of the block must arrive at the same
// call, at a warp collective every non-exited lane of the mask must arrive with the same
// intrinsic and mask (lockstep); then all of them go on. A wait that can never end (a
// barrier some threads skip or exited before, a collective half a warp never reaches) is
// reported with who waits where, instead of hanging. A launch runs twice, threads and blocks
// in opposite orders and shared memory filled with different garbage, by the host side,
// which requires identical results (a shared-memory race or an uninitialised shared read
// shows up as a difference). Built with -fsanitize=address,undefined.
#ifndef CUDACPU_CUDA_CPU_H
#define CUDACPU_CUDA_CPU_H

#define STRUCTBENCH_CPU_EMULATION 1  // structbench.cuh's C++ instead of its inline PTX

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <type_traits>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUDACPU_ASAN 1
#endif

#define CUDACPU_API extern "C" __attribute__((visibility("default")))

// ---- qualifiers ------------------------------------------------------------------------
// The kernel scan (a preprocessor pass with CUDACPU_SCAN) finds __global__ functions and
// their __launch_bounds__ by these markers; the build proper drops them.
#ifdef CUDACPU_SCAN
#define __global__ __cudacpu_global__
#define __launch_bounds__(...) __cudacpu_launch_bounds__(__VA_ARGS__)
#else
#define __global__
#define __launch_bounds__(...)
#endif
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
// One static per block: blocks run one at a time, and the fibers of a block share it.
// (extern __shared__, the dynamic buffer, is rewritten by the host side; see _build.py.)
#define __shared__ static

// ---- vector types ----------------------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
#define CUDACPU_VEC2(name, T, align) \
    struct __attribute__((aligned(align))) name { T x, y; }; \
    inline name make_##name(T x, T y) { name v; v.x = x; v.y = y; return v; }
#define CUDACPU_VEC4(name, T, align) \
    struct __attribute__((aligned(align))) name { T x, y, z, w; }; \
    inline name make_##name(T x, T y, T z, T w) { name v; v.x = x; v.y = y; v.z = z; v.w = w; return v; }
CUDACPU_VEC2(int2, int, 8)
CUDACPU_VEC2(uint2, unsigned int, 8)
CUDACPU_VEC2(float2, float, 8)
CUDACPU_VEC2(double2, double, 16)
CUDACPU_VEC2(longlong2, long long, 16)
CUDACPU_VEC4(int4, int, 16)
CUDACPU_VEC4(uint4, unsigned int, 16)
CUDACPU_VEC4(float4, float, 16)
CUDACPU_VEC4(char4, signed char, 4)
CUDACPU_VEC4(uchar4, unsigned char, 4)
#undef CUDACPU_VEC2
#undef CUDACPU_VEC4

// ---- built-in variables: set by the scheduler before it resumes a thread -------------------
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static constexpr int warpSize = 32;

// ---- the runtime's entry points (defined below) --------------------------------------------
namespace cudacpu {
enum Collective : int { SHFL, SHFL_UP, SHFL_DOWN, SHFL_XOR, BALLOT, ANY, ALL, SYNCWARP, REDUCE_ADD, REDUCE_MIN,
                        REDUCE_MAX, REDUCE_AND, REDUCE_OR, REDUCE_XOR, MATCH_ANY };
// Barrier: every thread of the block; returns how many passed a nonzero predicate.
int barrier(int predicate, const char* what, const char* file, int line);
// Warp collective on a 64-bit payload; returns this lane's result.
unsigned long long collective(Collective kind, unsigned mask, unsigned long long value, int arg, int width,
                              const char* what, const char* file, int line);
}  // namespace cudacpu

#define CUDACPU_SITE const char* file_ = __builtin_FILE(), int line_ = __builtin_LINE()

inline void __syncthreads(CUDACPU_SITE) { cudacpu::barrier(1, "__syncthreads()", file_, line_); }
inline int __syncthreads_count(int p, CUDACPU_SITE) {
    return cudacpu::barrier(p, "__syncthreads_count()", file_, line_);
}
inline int __syncthreads_and(int p, CUDACPU_SITE) {
    return cudacpu::barrier(p, "__syncthreads_and()", file_, line_) == (int)(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int p, CUDACPU_SITE) {
    return cudacpu::barrier(p, "__syncthreads_or()", file_, line_) != 0;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, CUDACPU_SITE) {
    cudacpu::collective(cudacpu::SYNCWARP, mask, 0, 0, 32, "__syncwarp()", file_, line_);
}
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

namespace cudacpu {
template <typename T> inline unsigned long long to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move at most 8 bytes");
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof(T));
    return bits;
}
template <typename T> inline T from_bits(unsigned long long bits) {
    T v;
    memcpy(&v, &bits, sizeof(T));
    return v;
}
}  // namespace cudacpu

template <typename T> inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize, CUDACPU_SITE) {
    return cudacpu::from_bits<T>(cudacpu::collective(cudacpu::SHFL, mask, cudacpu::to_bits(var), src_lane, width,
                                                     "__shfl_sync()", file_, line_));
}
template <typename T> inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, CUDACPU_SITE) {
    return cudacpu::from_bits<T>(cudacpu::collective(cudacpu::SHFL_UP, mask, cudacpu::to_bits(var), (int)delta, width,
                                                     "__shfl_up_sync()", file_, line_));
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize, CUDACPU_SITE) {
    return cudacpu::from_bits<T>(cudacpu::collective(cudacpu::SHFL_DOWN, mask, cudacpu::to_bits(var), (int)delta,
                                                     width, "__shfl_down_sync()", file_, line_));
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize, CUDACPU_SITE) {
    return cudacpu::from_bits<T>(cudacpu::collective(cudacpu::SHFL_XOR, mask, cudacpu::to_bits(var), lane_mask, width,
                                                     "__shfl_xor_sync()", file_, line_));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, CUDACPU_SITE) {
    return (unsigned)cudacpu::collective(cudacpu::BALLOT, mask, predicate != 0, 0, 32, "__ballot_sync()", file_, line_);
}
inline int __any_sync(unsigned mask, int predicate, CUDACPU_SITE) {
    return (int)cudacpu::collective(cudacpu::ANY, mask, predicate != 0, 0, 32, "__any_sync()", file_, line_);
}
inline int __all_sync(unsigned mask, int predicate, CUDACPU_SITE) {
    return (int)cudacpu::collective(cudacpu::ALL, mask, predicate != 0, 0, 32, "__all_sync()", file_, line_);
}
// sm_80 warp reductions (unsigned and int) and __match_any_sync (32-bit values).
#define CUDACPU_REDUCE(name, kind, T) \
    inline T name(unsigned mask, T value, CUDACPU_SITE) { \
        return (T)cudacpu::collective(cudacpu::kind, mask, (unsigned long long)(long long)value, \
                                      std::is_signed<T>::value, 32, #name "()", file_, line_); \
    }
CUDACPU_REDUCE(__reduce_add_sync, REDUCE_ADD, unsigned)
CUDACPU_REDUCE(__reduce_add_sync, REDUCE_ADD, int)
CUDACPU_REDUCE(__reduce_min_sync, REDUCE_MIN, unsigned)
CUDACPU_REDUCE(__reduce_min_sync, REDUCE_MIN, int)
CUDACPU_REDUCE(__reduce_max_sync, REDUCE_MAX, unsigned)
CUDACPU_REDUCE(__reduce_max_sync, REDUCE_MAX, int)
CUDACPU_REDUCE(__reduce_and_sync, REDUCE_AND, unsigned)
CUDACPU_REDUCE(__reduce_or_sync, REDUCE_OR, unsigned)
CUDACPU_REDUCE(__reduce_xor_sync, REDUCE_XOR, unsigned)
#undef CUDACPU_REDUCE
inline unsigned __match_any_sync(unsigned mask, unsigned value, CUDACPU_SITE) {
    return (unsigned)cudacpu::collective(cudacpu::MATCH_ANY, mask, value, 0, 32, "__match_any_sync()", file_, line_);
}
inline unsigned __match_any_sync(unsigned mask, int value, CUDACPU_SITE) {
    return __match_any_sync(mask, (unsigned)value, file_, line_);
}
namespace cudacpu { unsigned active_mask(); }
// Approximation: the lanes of this warp that have not exited (fibers know no reconvergence).
inline unsigned __activemask() { return cudacpu::active_mask(); }

// ---- loads, bit casts, integer intrinsics --------------------------------------------------
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldca(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
template <typename T> inline T __ldlu(const T* p) { return *p; }
template <typename T> inline T __ldcv(const T* p) { return *p; }
template <typename T> inline void __stcg(T* p, T v) { *p = v; }
template <typename T> inline void __stcs(T* p, T v) { *p = v; }
template <typename T> inline void __stwb(T* p, T v) { *p = v; }
template <typename T> inline void __stwt(T* p, T v) { *p = v; }

inline float __uint_as_float(unsigned int u) { float f; memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }

// Four byte products plus c, wrapping like the hardware (no signed-overflow UB here).
inline int __dp4a(int a, int b, int c) {
    unsigned int acc = (unsigned int)c;
    for (int i = 0; i < 4; ++i) {
        acc += (unsigned int)((int)(signed char)(a >> (8 * i)) * (int)(signed char)(b >> (8 * i)));
    }
    return (int)acc;
}
inline unsigned int __dp4a(unsigned int a, unsigned int b, unsigned int c) {
    unsigned int acc = c;
    for (int i = 0; i < 4; ++i) acc += ((a >> (8 * i)) & 0xffu) * ((b >> (8 * i)) & 0xffu);
    return acc;
}
inline int __dp4a(char4 a, char4 b, int c) {
    int ai, bi;
    memcpy(&ai, &a, 4);
    memcpy(&bi, &b, 4);
    return __dp4a(ai, bi, c);
}
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned int)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
    const unsigned long long bytes = ((unsigned long long)y << 32) | x;
    unsigned int r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned int)((bytes >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
    return r;
}
inline unsigned int __funnelshift_l(unsigned int lo, unsigned int hi, unsigned int shift) {
    const unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return (unsigned int)((v << (shift & 31u)) >> 32);
}
inline unsigned int __funnelshift_r(unsigned int lo, unsigned int hi, unsigned int shift) {
    const unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return (unsigned int)(v >> (shift & 31u));
}
inline int __mul24(int a, int b) { return (int)((long long)((a << 8) >> 8) * ((b << 8) >> 8)); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

// CUDA's min/max overloads (device code calls them unqualified).
#define CUDACPU_MINMAX(T) \
    inline T min(T a, T b) { return a < b ? a : b; } \
    inline T max(T a, T b) { return a > b ? a : b; }
CUDACPU_MINMAX(int)
CUDACPU_MINMAX(unsigned int)
CUDACPU_MINMAX(long long)
CUDACPU_MINMAX(unsigned long long)
CUDACPU_MINMAX(float)
CUDACPU_MINMAX(double)
#undef CUDACPU_MINMAX

// ---- atomics: fibers of a block never preempt each other, and blocks run one at a time,
// so these are plain read-modify-writes (done atomically anyway) -----------------------------
#define CUDACPU_ATOMIC_INT(T) \
    inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicMin(T* p, T v) { T o = *p; if (v < o) *p = v; return o; } \
    inline T atomicMax(T* p, T v) { T o = *p; if (v > o) *p = v; return o; } \
    inline T atomicCAS(T* p, T expected, T v) { \
        __atomic_compare_exchange_n(p, &expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
        return expected; \
    }
CUDACPU_ATOMIC_INT(int)
CUDACPU_ATOMIC_INT(unsigned int)
CUDACPU_ATOMIC_INT(unsigned long long)
CUDACPU_ATOMIC_INT(long long)
#undef CUDACPU_ATOMIC_INT
inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }
inline double atomicAdd(double* p, double v) { double o = *p; *p = o + v; return o; }
inline float atomicExch(float* p, float v) { float o = *p; *p = v; return o; }
inline unsigned int atomicInc(unsigned int* p, unsigned int limit) {
    unsigned int o = *p; *p = (o >= limit) ? 0u : o + 1u; return o;
}
inline unsigned int atomicDec(unsigned int* p, unsigned int limit) {
    unsigned int o = *p; *p = (o == 0u || o > limit) ? limit : o - 1u; return o;
}

#include "cuda_cpu_runtime.h"

#endif  // CUDACPU_CUDA_CPU_H
