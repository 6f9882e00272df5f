"""Clocks and the repetition rule.

GPU work is timed with device events recorded around each call on the stream that runs
it; the L2 cache is flushed before every repetition by writing a buffer twice its size
(cold-cache numbers: every repetition reads its inputs from DRAM, as a large matvec
does in a real model). CPU work is timed with time.perf_counter.

Repetitions: after warm-up (the first call compiles Triton kernels and builds library
handles; then keep calling for ``warmup_ms``), take at least ``min_reps`` samples, then
keep going until ``budget_ms`` of measured time or ``max_reps`` samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimingPolicy:
    warmup_ms: float = 25.0
    min_reps: int = 10
    max_reps: int = 500
    budget_ms: float = 300.0
    flush_l2: bool = True


class CpuClock:
    cache_mode = "warm"  # no portable way to flush CPU caches; sizes are chosen to exceed them

    def time_batch(self, fn: Callable[[], object], reps: int) -> list[float]:
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
        return samples

    def synchronize(self) -> None:
        pass


class TorchCudaClock:
    """CUDA events on torch's current stream; our Triton and CuPy kernels launch there too."""

    def __init__(self, flush_l2: bool) -> None:
        import torch

        self._torch = torch
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        l2_bytes = getattr(props, "L2_cache_size", 0) or 128 * 2**20
        self._flush_buffer = torch.empty(2 * l2_bytes, dtype=torch.int8, device="cuda") if flush_l2 else None
        self.cache_mode = "l2-flushed" if flush_l2 else "warm"

    def time_batch(self, fn: Callable[[], object], reps: int) -> list[float]:
        event = self._torch.cuda.Event
        starts = [event(enable_timing=True) for _ in range(reps)]
        ends = [event(enable_timing=True) for _ in range(reps)]
        for start, end in zip(starts, ends):
            if self._flush_buffer is not None:
                self._flush_buffer.zero_()
            start.record()
            fn()
            end.record()
        self._torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in zip(starts, ends)]

    def synchronize(self) -> None:
        self._torch.cuda.synchronize()


class CupyCudaClock:
    """CUDA events on cupy's current stream, for cupy library baselines."""

    def __init__(self, flush_l2: bool) -> None:
        import cupy

        self._cupy = cupy
        device = cupy.cuda.Device()
        l2_bytes = cupy.cuda.runtime.getDeviceProperties(device.id).get("l2CacheSize", 0) or 128 * 2**20
        self._flush_buffer = cupy.empty(2 * l2_bytes, dtype=cupy.int8) if flush_l2 else None
        self.cache_mode = "l2-flushed" if flush_l2 else "warm"

    def time_batch(self, fn: Callable[[], object], reps: int) -> list[float]:
        cuda = self._cupy.cuda
        starts = [cuda.Event() for _ in range(reps)]
        ends = [cuda.Event() for _ in range(reps)]
        for start, end in zip(starts, ends):
            if self._flush_buffer is not None:
                self._flush_buffer.fill(0)
            start.record()
            fn()
            end.record()
        ends[-1].synchronize()
        return [cuda.get_elapsed_time(start, end) for start, end in zip(starts, ends)]

    def synchronize(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()


def clock_for(device: str, library: str, flush_l2: bool):
    if device == "cpu":
        return CpuClock()
    if library == "cupy":
        return CupyCudaClock(flush_l2)
    return TorchCudaClock(flush_l2)


def measure(fn: Callable[[], object], clock, policy: TimingPolicy) -> list[float]:
    """Warm up, then per-call times in milliseconds under the repetition rule."""
    warm_start = time.perf_counter()
    fn()  # compile / autotune / create handles, outside every sample
    clock.synchronize()
    while (time.perf_counter() - warm_start) * 1e3 < policy.warmup_ms:
        fn()
        clock.synchronize()
    samples: list[float] = []
    while len(samples) < policy.max_reps:
        if len(samples) < policy.min_reps:
            batch = policy.min_reps - len(samples)
        elif sum(samples) >= policy.budget_ms:
            break
        else:  # as many as the remaining budget holds at the mean so far, 100 at most
            mean_ms = max(sum(samples) / len(samples), 1e-6)
            batch = min(100, max(1, int((policy.budget_ms - sum(samples)) / mean_ms)))
        samples.extend(clock.time_batch(fn, min(batch, policy.max_reps - len(samples))))
    return samples


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """Median, 20th/80th percentiles, minimum, count, and relative spread (p80-p20)/p50."""
    p20, p50, p80 = np.percentile(samples_ms, [20, 50, 80])
    return {
        "time_ms_p50": float(p50),
        "time_ms_p20": float(p20),
        "time_ms_p80": float(p80),
        "time_ms_min": float(np.min(samples_ms)),
        "reps": len(samples_ms),
        "rel_spread": float((p80 - p20) / p50) if p50 > 0 else float("nan"),
    }
