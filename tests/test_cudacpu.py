"""The CPU path of our CUDA C (tests/cudacpu) on its own: its fp16/bf16 conversions bit for
bit, its warp and barrier semantics, and planted bugs that must fail loudly (an
out-of-bounds write, a missing __syncthreads() race, a barrier in divergent code, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests import cudacpu

pytestmark = pytest.mark.skipif(cudacpu.unavailable_reason() is not None,
                                reason=str(cudacpu.unavailable_reason()))

KERNELS = Path(__file__).resolve().parents[1] / "structbench" / "ops" / "_shared"  # structbench.cuh
HEADER = (KERNELS / "structbench.cuh").read_text()


@pytest.fixture(scope="module")
def launcher():
    return cudacpu.install() if not cudacpu.installed() else cudacpu._INSTALLED


def run(code, name, grid, block, args, shared_mem=0, launcher=None):
    cudacpu.launch_code(code, name, grid, block, args, shared_mem, launcher=launcher,
                        options=("--std=c++17", f"-I{KERNELS}"))


# --- conversions: the guarded C++ of structbench.cuh against numpy / torch --------------------
CONVERT = HEADER + r"""
extern "C" __global__ void to_float(const unsigned short* h, float* f, int n, int bf16) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        f[i] = bf16 ? bf16_to_float(h[i]) : fp16_to_float(h[i]);
}
extern "C" __global__ void from_float(const float* f, unsigned short* h, int n, int bf16) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        h[i] = bf16 ? float_to_bf16(f[i]) : float_to_fp16(f[i]);
}
"""


def _convert(name, values, out_dtype, bf16, launcher):
    out = torch.empty(values.shape, dtype=out_dtype)
    run(CONVERT, name, (8,), (256,), (torch.from_numpy(values), out, np.int32(values.size), np.int32(bf16)),
        launcher=launcher)
    return out.numpy()


def _float_inputs(bits16_as_f32: np.ndarray) -> np.ndarray:
    """Every 16-bit value as fp32, the midpoints between neighbours (ties: round to even),
    one fp32 ulp either side of them, and random fp32 bit patterns."""
    finite = np.sort(bits16_as_f32[np.isfinite(bits16_as_f32)].astype(np.float64))
    mids = ((finite[1:] + finite[:-1]) / 2).astype(np.float32)
    ulp = mids.view(np.uint32)
    rng = np.random.default_rng(11)
    rand = rng.integers(0, 2**32, 2**16, dtype=np.uint64).astype(np.uint32).view(np.float32)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.996, 65520, 3.4028235e38, 1e-45, 5.96e-8,
                         2.98e-8, 2.9802322e-08, 2.9802326e-08], dtype=np.float32)
    return np.concatenate([bits16_as_f32, mids, (ulp + 1).view(np.float32), (ulp - 1).view(np.float32), rand,
                           specials])


def test_fp16_to_float_matches_numpy_on_every_pattern(launcher):
    bits = np.arange(2**16, dtype=np.uint16)
    got = _convert("to_float", bits, torch.float32, 0, launcher)
    want = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    assert (got.view(np.uint32)[~nan] == want.view(np.uint32)[~nan]).all()
    assert np.isnan(got[nan]).all()  # cvt gives the canonical NaN; numpy keeps the payload


def test_float_to_fp16_rounds_like_numpy(launcher):
    values = _float_inputs(np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32))
    got = _convert("from_float", values, torch.int16, 0, launcher).view(np.uint16)
    with np.errstate(over="ignore"):
        want = values.astype(np.float16)
    nan = np.isnan(values)
    bad = np.nonzero(got[~nan] != want.view(np.uint16)[~nan])[0]
    assert bad.size == 0, f"{bad.size} mismatches, first {values[~nan][bad[0]]!r}: {got[~nan][bad[0]]:#06x}"
    assert (got[nan] == 0x7FFF).all()


def test_bf16_to_float_matches_torch_on_every_pattern(launcher):
    bits = np.arange(2**16, dtype=np.uint16)
    got = _convert("to_float", bits, torch.float32, 1, launcher)
    want = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).float().numpy()
    assert (got.view(np.uint32) == want.view(np.uint32)).all()


def test_float_to_bf16_rounds_like_torch(launcher):
    every = torch.from_numpy(np.arange(2**16, dtype=np.uint16).view(np.int16)).view(torch.bfloat16).float().numpy()
    values = _float_inputs(every)
    got = _convert("from_float", values, torch.int16, 1, launcher).view(np.uint16)
    want = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    nan = np.isnan(values)
    bad = np.nonzero(got[~nan] != want[~nan])[0]
    assert bad.size == 0, f"{bad.size} mismatches, first {values[~nan][bad[0]]!r}: {got[~nan][bad[0]]:#06x}"
    assert (got[nan] == 0x7FFF).all()


# --- warp and block semantics -----------------------------------------------------------------
WARP = r"""
extern "C" __global__ void shuffles(const int* in, int* out, int width, int arg) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x, v = in[t];
    out[6 * t + 0] = __shfl_sync(0xffffffffu, v, arg, width);
    out[6 * t + 1] = __shfl_up_sync(0xffffffffu, v, arg, width);
    out[6 * t + 2] = __shfl_down_sync(0xffffffffu, v, arg, width);
    out[6 * t + 3] = __shfl_xor_sync(0xffffffffu, v, arg, width);
    out[6 * t + 4] = (int)__ballot_sync(0xffffffffu, v & 1);
    out[6 * t + 5] = __any_sync(0xffffffffu, v == 5) + 2 * __all_sync(0xffffffffu, v >= 0)
                     + 4 * __syncthreads_count(v & 1);
}
extern "C" __global__ void half_warps(const float* in, float* out) {  // two disjoint masks
    const int lane = threadIdx.x & 31;
    const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
    float v = in[threadIdx.x];
    for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_down_sync(mask, v, offset, 16);
    out[threadIdx.x] = v;
}
extern "C" __global__ void reductions(const int* in, int* out) {
    const int v = in[threadIdx.x];
    out[5 * threadIdx.x + 0] = __reduce_add_sync(0xffffffffu, v);
    out[5 * threadIdx.x + 1] = __reduce_min_sync(0xffffffffu, v);
    out[5 * threadIdx.x + 2] = __reduce_max_sync(0xffffffffu, v);
    out[5 * threadIdx.x + 3] = (int)__reduce_xor_sync(0xffffffffu, (unsigned)v);
    out[5 * threadIdx.x + 4] = (int)__match_any_sync(0xffffffffu, v & 3);
}
"""


def test_warp_reductions_and_match_any(launcher):
    values = np.random.default_rng(3).integers(-50, 50, 32).astype(np.int32)
    out = torch.zeros(32 * 5, dtype=torch.int32)
    run(WARP, "reductions", (1,), (32,), (torch.from_numpy(values), out), launcher=launcher)
    got = out.numpy().reshape(32, 5)
    xor = np.bitwise_xor.reduce(values.view(np.uint32)).view(np.int32)
    assert (got[:, :4] == [values.sum(), values.min(), values.max(), xor]).all()
    match = [np.int32(np.uint32(sum(1 << k for k in range(32) if values[k] & 3 == v & 3))) for v in values]
    assert (got[:, 4] == match).all()


def _model(values, width, arg):
    out = np.zeros((values.size, 6), dtype=np.int64)
    for t, _ in enumerate(values):
        warp0, lane = t - t % 32, t % 32
        seg = lane - lane % width
        src = [seg + (arg % width), lane - arg if lane - seg >= arg else lane,
               lane + arg if lane - seg + arg < width else lane,
               lane ^ arg if (lane ^ arg) < seg + width else lane]
        out[t, :4] = [values[warp0 + s] for s in src]
        warp = values[warp0:warp0 + 32]
        out[t, 4] = np.int32(np.uint32(sum(1 << i for i, v in enumerate(warp) if v & 1)))
        out[t, 5] = int((warp == 5).any()) + 2 * int((warp >= 0).all()) + 4 * int((values & 1).sum())
    return out


@pytest.mark.parametrize("width, arg", [(32, 1), (32, 17), (8, 3), (16, 5), (4, 2)])
def test_shuffles_ballots_and_barrier_counts_follow_cuda(launcher, width, arg):
    values = np.random.default_rng(width + arg).integers(0, 10, 64).astype(np.int32)
    out = torch.full((64 * 6,), -7, dtype=torch.int32)
    run(WARP, "shuffles", (1,), (64,), (torch.from_numpy(values), out, np.int32(width), np.int32(arg)),
        launcher=launcher)
    assert (out.numpy().reshape(64, 6) == _model(values, width, arg)).all()


def test_disjoint_half_warp_masks_reduce_separately(launcher):
    values = torch.arange(64, dtype=torch.float32)
    out = torch.zeros(64)
    run(WARP, "half_warps", (1,), (64,), (values, out), launcher=launcher)
    assert out[0] == sum(range(16)) and out[16] == sum(range(16, 32)) and out[48] == sum(range(48, 64))


# --- planted bugs: each must fail loudly ---------------------------------------------------------
PLANTED = r"""
extern "C" __global__ void write_one_past(float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;  // <= : one element too many
}
extern "C" __global__ void missing_barrier(const float* in, float* out) {
    __shared__ float tile[128];
    tile[threadIdx.x] = in[blockIdx.x * 128 + threadIdx.x];
    // __syncthreads() missing: the neighbour may not have written its element yet
    out[blockIdx.x * 128 + threadIdx.x] = tile[(threadIdx.x + 1) % 128];
}
extern "C" __global__ void divergent_barrier(float* out) {
    if (threadIdx.x < 48) __syncthreads();
    out[threadIdx.x] = 1.0f;
}
extern "C" __global__ void exit_before_barrier(float* out, int n) {
    __shared__ float s[64];
    if ((int)threadIdx.x >= n) return;
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}
extern "C" __global__ void divergent_shuffle(float* out) {
    float v = threadIdx.x;
    if ((threadIdx.x & 31) < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}
extern "C" __global__ void uninitialised_shared(float* out) {
    __shared__ float s[64];
    if (threadIdx.x < 32) s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];  // threads 32..63 read what nobody wrote
}
extern "C" __global__ void shared_index_past_end(float* out, int k) {
    __shared__ float s[4][16];
    s[threadIdx.x % 4][threadIdx.x / 4 + k] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[0][0];
}
extern "C" __global__ void misaligned_vector_load(const float* in, float* out) {
    const uint4 v = reinterpret_cast<const uint4*>(in + 1)[threadIdx.x];
    out[threadIdx.x] = __uint_as_float(v.x);
}
extern "C" __global__ void spin_forever(volatile int* flag) {
    while (*flag == 0) {}
}
extern "C" __global__ void __launch_bounds__(128) bounded(float* out) { out[threadIdx.x] = 1.0f; }
extern "C" __global__ void takes_int(float* out, int n) { if ((int)threadIdx.x < n) out[threadIdx.x] = 2.0f; }
"""


def test_out_of_bounds_write_fails(launcher):
    out = torch.zeros(100)
    with pytest.raises(cudacpu.CudaCpuError, match="heap-buffer-overflow"):
        run(PLANTED, "write_one_past", (4,), (32,), (out, np.int32(100)), launcher=launcher)
    run(PLANTED, "write_one_past", (4,), (32,), (out, np.int32(99)), launcher=launcher)  # a fresh helper
    assert (out == 1.0).all()


def test_missing_syncthreads_race_fails(launcher):
    x = torch.randn(256)
    with pytest.raises(cudacpu.CudaCpuError, match="two runs .* different bytes.*missing __syncthreads"):
        run(PLANTED, "missing_barrier", (2,), (128,), (x, torch.zeros(256)), launcher=launcher)


def test_barrier_in_divergent_branch_fails(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match=r"deadlock.*48 thread\(s\).*wait at __syncthreads\(\)"):
        run(PLANTED, "divergent_barrier", (1,), (64,), (torch.zeros(64),), launcher=launcher)


def test_threads_exiting_before_a_barrier_fail(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match="exit before a __syncthreads"):
        run(PLANTED, "exit_before_barrier", (1,), (64,), (torch.zeros(64), np.int32(40)), launcher=launcher)


def test_divergent_warp_collective_fails(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match=r"lane 15.s __shfl_down_sync\(\) .* reads lane 16, which has exited"):
        run(PLANTED, "divergent_shuffle", (1,), (32,), (torch.zeros(32),), launcher=launcher)


def test_reading_uninitialised_shared_memory_fails(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match="shared memory no thread\\s+wrote"):
        run(PLANTED, "uninitialised_shared", (1,), (64,), (torch.zeros(64),), launcher=launcher)


def test_shared_array_index_past_its_bound_fails(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match="out of bounds"):
        run(PLANTED, "shared_index_past_end", (1,), (64,), (torch.zeros(64), np.int32(1)), launcher=launcher)


def test_misaligned_16_byte_load_fails(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match="misaligned"):
        run(PLANTED, "misaligned_vector_load", (1,), (4,), (torch.zeros(64), torch.zeros(4)), launcher=launcher)


def test_endless_kernel_times_out():
    short = cudacpu.CpuLauncher(timeout_s=3)
    try:
        with pytest.raises(cudacpu.CudaCpuError, match="did not finish within 3 s"):
            run(PLANTED, "spin_forever", (1,), (32,), (torch.zeros(1, dtype=torch.int32),), launcher=short)
    finally:
        short.close()


def test_launch_configurations_the_gpu_rejects_fail(launcher):
    with pytest.raises(cudacpu.CudaCpuError, match="__launch_bounds__"):
        run(PLANTED, "bounded", (1,), (256,), (torch.zeros(256),), launcher=launcher)
    with pytest.raises(cudacpu.CudaCpuError, match="invalid launch configuration"):
        run(PLANTED, "takes_int", (0,), (32,), (torch.zeros(32), np.int32(3)), launcher=launcher)


def test_argument_types_are_checked_against_the_kernel_signature(launcher):
    out = torch.zeros(32)
    with pytest.raises(cudacpu.CudaCpuError, match="argument 1 is numpy.int64 but the kernel takes a int"):
        run(PLANTED, "takes_int", (1,), (32,), (out, np.int64(3)), launcher=launcher)
    with pytest.raises(cudacpu.CudaCpuError, match="explicitly sized numpy scalars"):
        run(PLANTED, "takes_int", (1,), (32,), (out, 3), launcher=launcher)
    run(PLANTED, "takes_int", (1,), (32,), (out, np.int32(3)), launcher=launcher)
    assert out[:3].tolist() == [2.0, 2.0, 2.0] and out[3] == 0.0


def test_the_real_gemm_without_its_second_barrier_fails(launcher):
    """The planted race in a real kernel: dense_mm with the barrier that protects the
    tiles from the next refill removed."""
    source = (KERNELS.parent / "dense" / "cuda.cu").read_text()
    marker = "        __syncthreads();\n    }\n#pragma unroll\n    for (int i = 0; i < 4; ++i) {"
    assert source.count(marker) == 1
    broken = HEADER + source.replace(marker, marker.replace("__syncthreads();", "/* removed */"))
    a, b = torch.randn(70, 40), torch.randn(40, 70)
    c = torch.zeros(70, 70)
    args = (a, b, c, np.int32(70), np.int32(70), np.int32(40), np.int64(40), np.int64(70), np.int64(70))
    with pytest.raises(cudacpu.CudaCpuError, match="two runs"):
        run(broken, "dense_mm_fp32", (2, 2), (16, 16), args, launcher=launcher)
    run(HEADER + source, "dense_mm_fp32", (2, 2), (16, 16), args, launcher=launcher)
    assert torch.allclose(c, a @ b, atol=1e-4)


# --- the path is for tests only -----------------------------------------------------------------
def test_cuda_launchers_refuse_cpu_tensors_without_the_path(launcher):
    from structbench.ops.dense import cuda as cupy_dense

    cudacpu.uninstall()
    try:
        with pytest.raises(ValueError, match="runs on cuda arrays"):
            cupy_dense.dense_mv(torch.ones(3, 3), torch.ones(3))
    finally:
        cudacpu.install()


def test_the_cpu_path_is_never_timeable():
    from structbench.core.backends import get_backend

    backend = get_backend("cupy")
    if backend.unavailable_reason() is None and backend.runs_on() == "cpu":
        assert "not timeable" in backend.untimeable_reason()


def test_the_launchers_hand_the_cpu_path_cupys_code_string(monkeypatch):
    """The seam passes the very code string and options CuPy's RawModule would compile."""
    from structbench.ops._shared import cupy as _cupy
    from structbench.ops.dense import cuda as cupy_dense

    seen = []

    class Recorder(cudacpu.CpuLauncher):
        def launch(self, source, code, options, name, grid, block, args, shared_mem=0):
            seen.append((source, code, options, name, grid, block, shared_mem))
            super().launch(source, code, options, name, grid, block, args, shared_mem)

    recorder = Recorder()
    monkeypatch.setattr(_cupy, "_LAUNCHER", recorder)
    try:
        a, x = torch.randn(37, 20), torch.randn(20)
        assert torch.allclose(cupy_dense.dense_mv(a, x), a @ x, atol=1e-5)
    finally:
        recorder.close()
    (source, code, options, name, grid, block, shared_mem), = seen
    assert (code, options) == _cupy.code_and_options(cupy_dense.SOURCE)
    assert code == HEADER + (KERNELS.parent / "dense" / "cuda.cu").read_text()
    assert (name, grid, block, shared_mem) == ("dense_mv_fp32", (5,), (256,), 0)


def test_the_portable_ucontext_fallback_runs_the_same_semantics(launcher):
    """Off x86-64 the fibers switch with ucontext: the same shuffles, the same deadlock."""
    values = np.random.default_rng(1).integers(0, 10, 64).astype(np.int32)
    out = torch.full((64 * 6,), -7, dtype=torch.int32)
    options = ("--std=c++17", f"-I{KERNELS}", "-DCUDACPU_UCONTEXT")
    cudacpu.launch_code(WARP, "shuffles", (1,), (64,), (torch.from_numpy(values), out, np.int32(8), np.int32(3)),
                        launcher=launcher, options=options)
    assert (out.numpy().reshape(64, 6) == _model(values, 8, 3)).all()
    with pytest.raises(cudacpu.CudaCpuError, match="deadlock"):
        cudacpu.launch_code(PLANTED, "divergent_barrier", (1,), (64,), (torch.zeros(64),), launcher=launcher,
                            options=options)
