"""Planted results rows for the report and claims tests: times made from the cost models
(bytes at a chosen fraction of a bandwidth, flops at a fraction of a peak), so every
verdict's answer is known. `gpu_like_rows` is a whole run shaped like an H100 sweep (no
GPU run is committed yet): it exercises every figure of the report."""

from __future__ import annotations

import json

import numpy as np

from structbench.core.dtypes import get_dtype
from structbench.core.registry import default_registry

MIB = 2**20
H100 = {"device_name": "NVIDIA H100 80GB HBM3 (planted)", "llc_bytes": 50 * MIB, "ceiling_gbps": 3000.0,
        "peaks": {"fp32": 51.0, "fp16": 750.0, "bf16": 750.0, "int8": 1400.0}}
SHAPE = ("m", "n", "k")


def row(op, impl, dtype, *, ms=None, speed=0.8, baseline=False, bandwidth=1000.0, peak=100.0, llc=None,
        device="Synthetic GPU", noisy=False, spread=0.01, compute_speed=1.0, launch_ms=0.0, **shape):
    """An ok row. Its time is ``ms`` when given, else the roofline at ``speed`` x the bandwidth
    (``compute_speed`` x the peak), plus ``launch_ms``."""
    op_def = default_registry().op(op)
    flops, min_bytes = op_def.flops(shape), op_def.min_bytes(shape, get_dtype(dtype))
    if ms is None:
        ms = 1e3 * max(min_bytes / (speed * bandwidth * 1e9), flops / (compute_speed * peak * 1e12)) + launch_ms
    seconds = ms / 1e3
    gbps, tflops = min_bytes / seconds / 1e9, flops / seconds / 1e12
    dims = {c: shape[c] for c in SHAPE if c in shape}
    extra = {k: v for k, v in shape.items() if k not in SHAPE}
    params = json.dumps(extra, sort_keys=True) if extra else ""
    return {"row_id": f"{op}|{impl}|{dtype}|{dims}|{params}", "op": op, "impl": impl, "backend": "triton",
            "is_baseline": baseline, "dtype": dtype, **dims, "params": params, "status": "ok",
            "time_ms_p50": ms, "time_ms_p20": ms * (1 - spread), "time_ms_p80": ms * (1 + spread), "reps": 20,
            "noisy": noisy, "flops": flops, "min_bytes": min_bytes, "arith_intensity": flops / min_bytes,
            "gbps": gbps, "tflops": tflops, "ceiling_gbps": bandwidth, "ceiling_tflops": peak,
            "pct_of_bw": 100 * gbps / bandwidth, "pct_of_peak": 100 * tflops / peak,
            "device_name": device, "llc_bytes": "" if llc is None else llc, "cache_mode": "l2-flushed",
            "timing_mode": "cuda-event", "profile": "planted", "sm_clock_mhz": 1980, "mem_clock_mhz": 2619,
            "timestamp": "2026-11-23T00:00:00+00:00"}


def _gpu(op, impl, dtype, *, speed=0.85, compute_speed=0.7, baseline=False, launch_ms=0.004, ms=None, **shape):
    return row(op, impl, dtype, speed=speed, compute_speed=compute_speed, baseline=baseline, ms=ms,
               bandwidth=H100["ceiling_gbps"], peak=H100["peaks"][dtype], llc=H100["llc_bytes"],
               device=H100["device_name"], launch_ms=launch_ms, **shape)


def gpu_like_rows() -> list[dict]:
    """An H100-shaped run of every op family, with some skipped and error rows."""
    rng = np.random.default_rng(7)
    rows = []
    for size in (1024, 2048, 4096, 8192, 16384):
        for dtype in ("fp32", "fp16", "bf16", "int8"):
            jitter = float(rng.uniform(0.97, 1.03))
            rows.append(_gpu("dense_mv", "triton", dtype, speed=0.86 * jitter, m=size, n=size))
            rows.append(_gpu("dense_mv", "cupy", dtype, speed=0.80 * jitter, m=size, n=size))
            if dtype != "int8":
                rows.append(_gpu("dense_mv", "torch", dtype, speed=0.90, baseline=True, m=size, n=size))
    for dtype in ("fp32", "fp16", "bf16", "int8"):
        for batch in (1, 4, 16, 64, 256, 1024):
            rows.append(_gpu("dense_mm", "triton", dtype, compute_speed=0.6, m=4096, n=batch, k=4096))
            rows.append(_gpu("dense_mm", "torch", dtype, compute_speed=0.8, baseline=True, m=4096, n=batch, k=4096))
    for size in (1024, 4096, 16384):
        for dtype in ("fp32", "fp16"):
            # Direct Toeplitz: 2mn flops on CUDA cores (no tensor cores: a fp32-like peak).
            direct = 1e3 * 2 * size * size / (0.5 * H100["peaks"]["fp32"] * 1e12) + 0.006
            rows.append(_gpu("toeplitz_mv", "triton", dtype, ms=direct, m=size, n=size))
            rows.append(_gpu("toeplitz_mv", "fft-torch", dtype, ms=0.03 + size * 2e-6, baseline=True, m=size, n=size))
            dense_ms = _gpu("dense_mv", "x", dtype, speed=0.9, m=size, n=size)["time_ms_p50"]
            rows.append(_gpu("toeplitz_mv", "dense-torch", dtype, ms=dense_ms, baseline=True, m=size, n=size))
    for dist, speed in (("uniform", 0.6), ("powerlaw", 0.25), ("banded", 0.8)):
        for density in (0.001, 0.01, 0.05, 0.1, 0.3):
            shape = {"m": 8192, "n": 8192, "density": density, "dist": dist}
            rows.append(_gpu("csr_mv", "triton-vector", "fp16", speed=speed, **shape))
            rows.append(_gpu("csr_mv", "torch", "fp16", speed=speed * 0.9, baseline=True, **shape))
            dense_ms = _gpu("dense_mv", "x", "fp16", speed=0.9, m=8192, n=8192)["time_ms_p50"]
            rows.append(_gpu("csr_mv", "dense-torch", "fp16", ms=dense_ms, baseline=True, **shape))
    for rank in (1, 16, 256):
        shape = {"m": 16384, "n": 16384, "r": rank}
        rows.append(_gpu("lowrank_mv", "triton-fused", "fp16", speed=0.5, **shape))
        rows.append(_gpu("lowrank_mv", "torch", "fp16", speed=0.3, baseline=True, **shape))
        dense_ms = _gpu("dense_mv", "x", "fp16", speed=0.9, m=16384, n=16384)["time_ms_p50"]
        rows.append(_gpu("lowrank_mv", "dense-torch", "fp16", ms=dense_ms, baseline=True, **shape))
    for m, n in ((4096, 11008), (8192, 28672)):
        rows.append(_gpu("dense_mv", "triton", "fp16", speed=0.86, m=m, n=n))
        for impl, speed in (("triton-fused", 0.82), ("triton-unfused", 0.6), ("torch", 0.7)):
            rows.append(_gpu("lora_mv", impl, "fp16", speed=speed, baseline=impl == "torch", m=m, n=n, r=16,
                             scale=2.0))
    # One layer, three matrices (C6): conv, locally-connected (ours, CSR) and dense per layer.
    for layer in ({"c_in": 32, "n": 1024, "c_out": 32, "kernel": 15, "padding": 7},
                  {"c_in": 64, "n": 512, "c_out": 64, "kernel": 7, "padding": 3}):
        for dtype in ("fp32", "fp16"):
            rows.append({**_gpu("conv_mv", "triton", dtype, speed=0.5, compute_speed=0.3, **layer), "launch_bound": True})
            rows.append({**_gpu("conv_mv", "conv1d-torch", dtype, speed=0.6, compute_speed=0.4, baseline=True,
                                **layer), "launch_bound": True})
            rows.append(_gpu("local_mv", "triton", dtype, speed=0.75, **layer))
            rows.append(_gpu("local_mv", "csr-torch", dtype, speed=0.4, baseline=True, **layer))
            dense = _gpu("dense_mv", "x", dtype, speed=0.9, m=layer["c_out"] * layer["n"], n=layer["c_in"] * layer["n"])
            rows.append(_gpu("local_mv", "dense-torch", dtype, ms=dense["time_ms_p50"], baseline=True, **layer))
    # The training step (C7): input and parameter gradients beside their forward rows.
    for dtype in ("fp32", "fp16"):
        big = {"m": 16384, "n": 16384}
        rows.append(_gpu("dense_mv_t", "triton", dtype, speed=0.8, **big))
        rows.append(_gpu("dense_grad_mv", "triton", dtype, speed=0.85, **big))
        rows.append(_gpu("toeplitz_mv_t", "triton", dtype, ms=1e3 * 2 * 16384**2 / (0.5 * H100["peaks"]["fp32"] * 1e12)
                         + 0.006, **big))
        rows.append(_gpu("toeplitz_grad_mv", "triton", dtype, ms=1e3 * 2 * 16384**2 / (0.4 * H100["peaks"]["fp32"]
                                                                                       * 1e12) + 0.006, **big))
    lowrank = {"m": 16384, "n": 16384, "r": 16}
    rows.append(_gpu("lowrank_mv_t", "triton", "fp16", speed=0.45, **lowrank))
    rows.append(_gpu("lowrank_grad_mv", "triton", "fp16", speed=0.4, **lowrank))
    rows.append({**_gpu("dense_mv", "cupy", "bf16", m=7, n=7), "status": "error", "time_ms_p50": "",
                 "error": "RuntimeError: illegal memory access (at cupy_dense.py:80)"})
    for size in (8192, 16384):
        rows.append({**_gpu("dense_mv", "torch", "int8", baseline=True, m=size, n=size), "status": "skipped",
                     "time_ms_p50": "", "error": "torch has no int8 gemv"})
    return rows


def write_rows(path, rows, samples=None):
    from structbench.run.results import COLUMNS, ResultWriter

    with ResultWriter(path) as writer:
        for r in rows:
            writer.write({k: v for k, v in r.items() if k in COLUMNS}, (samples or {}).get(r["row_id"]))
    return path
