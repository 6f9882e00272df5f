"""Clocks, the repetition rule, and the statistics of a set of samples.

GPU work is timed with device events recorded around each call on the stream that runs
it. By default the L2 cache is flushed before every repetition by writing a buffer twice
its size (cold cache: every repetition reads its inputs from DRAM, as a large matvec does
inside a real model); ``flush_l2=False`` measures warm. Calls shorter than
``graph_below_ms`` can instead be timed in CUDA-graph mode: N calls captured in one graph,
the replays timed and divided by N, so host launch gaps don't dominate. CPU work is timed
with time.perf_counter.

Repetitions: after warm-up (the first call compiles Triton kernels and builds library
handles; then keep calling for ``warmup_ms``), take at least ``min_reps`` samples, then
continue until the median is known to ``target_noise`` (its relative standard error), or
``budget_ms`` of measured time is spent, or ``max_reps`` samples are taken.
"""

from __future__ import annotations

import math
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
    target_noise: float = 0.01  # relative standard error of the median to stop at
    flush_l2: bool = True
    graph_below_ms: float = 0.0  # CUDA-graph mode for calls faster than this (0: never)
    graph_launches: int = 20  # calls captured per graph


# Rows whose (p80 - p20) / p50 exceeds this are flagged `noisy`: don't trust small differences.
NOISY_SPREAD = 0.10


def median_noise(samples_ms: list[float]) -> float:
    """Relative standard error of the sample median: sqrt(pi/2) * sigma / sqrt(n) / median,
    with sigma estimated robustly from the interquartile range (IQR / 1.349)."""
    n = len(samples_ms)
    if n < 2:
        return math.inf
    q25, q50, q75 = np.percentile(samples_ms, [25, 50, 75])
    if q50 <= 0:
        return math.inf
    return math.sqrt(math.pi / 2) * ((q75 - q25) / 1.349) / math.sqrt(n) / q50


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """Median, 20th/80th percentiles, minimum, count, relative spread (p80-p20)/p50, the
    median's relative standard error (noise), and whether the row is too noisy to trust."""
    p20, p50, p80 = np.percentile(samples_ms, [20, 50, 80])
    spread = float((p80 - p20) / p50) if p50 > 0 else math.inf
    return {
        "time_ms_p50": float(p50),
        "time_ms_p20": float(p20),
        "time_ms_p80": float(p80),
        "time_ms_min": float(np.min(samples_ms)),
        "reps": len(samples_ms),
        "rel_spread": spread,
        "noise": median_noise(samples_ms),
        "noisy": spread > NOISY_SPREAD,
    }


class CpuClock:
    mode = "cpu-perf-counter"
    cache_mode = "warm"  # no portable way to flush CPU caches: the row says so

    def flush(self) -> None:
        pass

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

    mode = "cuda-events"

    def __init__(self, flush_l2: bool) -> None:
        import torch

        self._torch = torch
        self._flush_buffer = torch.empty(2 * l2_bytes_torch(), dtype=torch.int8, device="cuda") if flush_l2 else None
        self.cache_mode = "l2-flushed" if flush_l2 else "warm"

    def time_batch(self, fn: Callable[[], object], reps: int) -> list[float]:
        event = self._torch.cuda.Event
        starts = [event(enable_timing=True) for _ in range(reps)]
        ends = [event(enable_timing=True) for _ in range(reps)]
        for start, end in zip(starts, ends):
            self.flush()
            start.record()
            fn()
            end.record()
        self._torch.cuda.synchronize()
        return [start.elapsed_time(end) for start, end in zip(starts, ends)]

    def flush(self) -> None:
        """Evict the L2 cache (asynchronously, on the current stream)."""
        if self._flush_buffer is not None:
            self._flush_buffer.zero_()

    def synchronize(self) -> None:
        self._torch.cuda.synchronize()


class TorchCudaGraphClock:
    """``launches`` calls captured in one CUDA graph; a sample is one replay / launches.
    Inputs stay in L2 between the captured calls: this mode is warm-cache by nature."""

    mode = "cuda-graph"
    cache_mode = "warm"

    def __init__(self, fn: Callable[[], object], launches: int) -> None:
        import torch

        self._torch = torch
        self._launches = launches
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as graph capture requires
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            for _ in range(launches):
                fn()
        torch.cuda.synchronize()

    def flush(self) -> None:
        pass  # warm by nature: see the class docstring

    def time_batch(self, fn: Callable[[], object], reps: int) -> list[float]:
        event = self._torch.cuda.Event
        starts = [event(enable_timing=True) for _ in range(reps)]
        ends = [event(enable_timing=True) for _ in range(reps)]
        for start, end in zip(starts, ends):
            start.record()
            self._graph.replay()
            end.record()
        self._torch.cuda.synchronize()
        return [start.elapsed_time(end) / self._launches for start, end in zip(starts, ends)]

    def synchronize(self) -> None:
        self._torch.cuda.synchronize()


class CupyCudaClock:
    """CUDA events on cupy's current stream, for cupy library baselines."""

    mode = "cuda-events"

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
            self.flush()
            start.record()
            fn()
            end.record()
        ends[-1].synchronize()
        return [cuda.get_elapsed_time(start, end) for start, end in zip(starts, ends)]

    def flush(self) -> None:
        if self._flush_buffer is not None:
            self._flush_buffer.fill(0)

    def synchronize(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()


def l2_bytes_torch() -> int:
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return getattr(props, "L2_cache_size", 0) or 128 * 2**20


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
        spent = sum(samples)
        if len(samples) >= policy.min_reps:
            if median_noise(samples) <= policy.target_noise or spent >= policy.budget_ms:
                break
            # Grow geometrically, but never past what the remaining budget holds.
            mean_ms = max(spent / len(samples), 1e-6)
            batch = min(len(samples), 100, max(1, int((policy.budget_ms - spent) / mean_ms)))
        else:
            batch = policy.min_reps - len(samples)
        samples.extend(clock.time_batch(fn, min(batch, policy.max_reps - len(samples))))
    return samples


def measure_case(fn: Callable[[], object], device: str, library: str,
                 policy: TimingPolicy) -> tuple[list[float], str, str]:
    """(samples, timing mode, cache mode): events (or perf_counter on the CPU), switching to
    CUDA-graph mode for torch-stream work faster than ``policy.graph_below_ms``."""
    clock = clock_for(device, library, policy.flush_l2)
    samples = measure(fn, clock, policy)
    if device == "cuda" and library == "torch" and np.median(samples) < policy.graph_below_ms:
        graph_clock = TorchCudaGraphClock(fn, policy.graph_launches)
        return measure(fn, graph_clock, policy), graph_clock.mode, graph_clock.cache_mode
    return samples, clock.mode, clock.cache_mode
