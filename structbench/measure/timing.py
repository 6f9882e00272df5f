"""Clocks, the repetition rule, and the statistics of a set of samples.

GPU work is timed with device events recorded around each call on the stream that runs
it, a spin kernel queued before them so that they bracket GPU time only (mode
``cuda-events-spin``; ``spin=False`` gives plain ``cuda-events``), while the host time of
each call is measured on its own (``host_us``). By default the L2 cache is flushed
before every repetition by writing a buffer twice its size (cold cache: every repetition
reads its inputs from DRAM, as a large matvec does inside a real model); ``flush_l2=False`` measures warm. Calls shorter than
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
    spin: bool = True  # queue a GPU spin before each timed call so events exclude host time


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


# --- GPU clocks ---------------------------------------------------------------------
# Python launchers spend 10-400 us of host time per call, longer than many kernels. If the
# GPU is idle while the host enqueues `start, call, end`, the events bracket the host's
# enqueueing, not the kernel. As NVBench does, a spin kernel is queued first and made to
# outlast the host's part (SPIN_MARGIN x the host time seen so far + SPIN_FLOOR_MS), so
# that start, the call's kernels and end are all queued before the GPU reaches them: the
# events then hold GPU time only. The host time of each call is kept (``host_samples_ms``):
# it is what a caller looping over the kernel really waits when it exceeds the GPU time.
SPIN_MARGIN = 1.5
SPIN_FLOOR_MS = 0.05  # the two event records and scheduling jitter
SPIN_MAX_MS = 50.0  # a host call slower than this is launch-bound by far: don't sleep longer
SPIN_CALIBRATION_CYCLES = 2_000_000  # ~1 ms at 2 GHz: long enough to time with events
HOST_QUANTILE = 90  # the sleep covers this percentile of the host times seen
# The GPU falls behind the host by ~(SPIN_MARGIN - 1) host times per repetition: drain the
# queue every so many repetitions, so that it never fills (a full launch queue would block
# the host inside the call and inflate host_us).
SPIN_SYNC_EVERY = 32


class TorchStreamOps:
    """The primitives an event clock needs, on torch's current stream (tests pass a fake)."""

    key = "torch"

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def event(self):
        return self._torch.cuda.Event(enable_timing=True)

    def record(self, event) -> None:
        event.record()

    def elapsed_ms(self, start, end) -> float:
        return start.elapsed_time(end)

    def sleep(self, cycles: int) -> None:
        self._torch.cuda._sleep(int(cycles))  # a spin kernel of `cycles` GPU clock cycles

    def synchronize(self) -> None:
        self._torch.cuda.synchronize()

    def l2_bytes(self) -> int:
        return l2_bytes_torch()

    def buffer(self, nbytes: int):
        return self._torch.empty(nbytes, dtype=self._torch.int8, device="cuda")

    def fill(self, buffer) -> None:
        buffer.zero_()


_CUPY_SPIN = r"""
extern "C" __global__ void structbench_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


class CupyStreamOps:
    """The same on cupy's current stream, for cupy library baselines."""

    key = "cupy"

    def __init__(self) -> None:
        import cupy

        self._cupy = cupy
        self._spin = None

    def event(self):
        return self._cupy.cuda.Event()

    def record(self, event) -> None:
        event.record()

    def elapsed_ms(self, start, end) -> float:
        return self._cupy.cuda.get_elapsed_time(start, end)

    def sleep(self, cycles: int) -> None:
        if self._spin is None:  # compiled once by NVRTC, then cached by cupy
            self._spin = self._cupy.RawKernel(_CUPY_SPIN, "structbench_spin")
        self._spin((1,), (1,), (self._cupy.int64(int(cycles)),))

    def synchronize(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()

    def l2_bytes(self) -> int:
        device = self._cupy.cuda.Device()
        return self._cupy.cuda.runtime.getDeviceProperties(device.id).get("l2CacheSize", 0) or 128 * 2**20

    def buffer(self, nbytes: int):
        return self._cupy.empty(nbytes, dtype=self._cupy.int8)

    def fill(self, buffer) -> None:
        buffer.fill(0)


_CYCLES_PER_MS: dict[str, float] = {}  # per stream library, measured once per process (one GPU)


def cycles_per_ms(ops) -> float:
    """GPU clock cycles the spin kernel takes per millisecond, measured with events."""
    if ops.key not in _CYCLES_PER_MS:
        ops.sleep(SPIN_CALIBRATION_CYCLES)  # first launch: module load, outside the measurement
        times = []
        for _ in range(3):
            start, end = ops.event(), ops.event()
            ops.record(start)
            ops.sleep(SPIN_CALIBRATION_CYCLES)
            ops.record(end)
            ops.synchronize()
            times.append(ops.elapsed_ms(start, end))
        _CYCLES_PER_MS[ops.key] = SPIN_CALIBRATION_CYCLES / max(float(np.median(times)), 1e-6)
    return _CYCLES_PER_MS[ops.key]


class ThrottleCount:
    """Samples taken while NVML reported a clock-limiting throttle reason (nvbench drops
    them; we count them in the row's ``throttled_samples``). NVML is asked at the points
    where host and GPU are in step (a batch's start, each drain, its end); the samples
    between two points count as throttled when either point reported a reason."""

    def __init__(self) -> None:
        self.samples = 0
        self.known = False  # NVML answered at least once
        self._last: tuple[int, bool] | None = None  # the previous point of this batch

    def point(self, index: int) -> None:
        limited = throttle_probe()
        self.known = self.known or limited is not None
        limited = bool(limited)
        if index == 0:  # a new batch
            self._last = None
        if self._last is not None and (self._last[1] or limited):
            self.samples += index - self._last[0]
        self._last = (index, limited)

    def result(self) -> int | None:
        return self.samples if self.known else None


def throttle_probe() -> bool | None:
    """The seam the clocks ask: a clock-limiting throttle reason now (tests pass a fake)."""
    from structbench.measure.env import clock_limited

    return clock_limited()


class EventClock:
    """CUDA events on a library's current stream (our Triton and CuPy kernels launch on
    torch's), with the L2 flushed before each repetition and, by default, a spin kernel
    that hides the host's enqueueing from the events (see SPIN_MARGIN above)."""

    def __init__(self, ops, flush_l2: bool, spin: bool = True) -> None:
        self._ops = ops
        self._spin = spin
        self.mode = "cuda-events-spin" if spin else "cuda-events"
        self._flush_buffer = ops.buffer(2 * ops.l2_bytes()) if flush_l2 else None
        self.cache_mode = "l2-flushed" if flush_l2 else "warm"
        self._region_ms: list[float] = []  # host time from the start record to the end record
        self.host_samples_ms: list[float] = []  # host time of each timed call alone
        self.throttle = ThrottleCount()

    def prime(self, fn: Callable[[], object]) -> None:
        """Measure the host time of a few calls (after warm-up) to size the first sleeps."""
        for _ in range(3):
            start = time.perf_counter()
            fn()
            self._region_ms.append((time.perf_counter() - start) * 1e3)
        self.synchronize()

    def sleep_ms(self) -> float:
        """How long the spin before the next repetitions lasts: grows with the host time."""
        host_ms = float(np.percentile(self._region_ms, HOST_QUANTILE)) if self._region_ms else 0.0
        return min(SPIN_MAX_MS, SPIN_MARGIN * host_ms + SPIN_FLOOR_MS)

    def time_batch(self, fn: Callable[[], object], reps: int) -> list[float]:
        ops = self._ops
        starts = [ops.event() for _ in range(reps)]
        ends = [ops.event() for _ in range(reps)]
        cycles = int(self.sleep_ms() * cycles_per_ms(ops)) if self._spin else 0
        self.throttle.point(0)
        for index, (start, end) in enumerate(zip(starts, ends)):
            if index and index % SPIN_SYNC_EVERY == 0:
                ops.synchronize()
                self.throttle.point(index)  # host and GPU in step: the chunk before is done
            self.flush()
            if cycles:
                ops.sleep(cycles)  # the GPU is busy until start, the call and end are queued
            t0 = time.perf_counter()
            ops.record(start)
            t1 = time.perf_counter()
            fn()
            t2 = time.perf_counter()
            ops.record(end)
            t3 = time.perf_counter()
            self.host_samples_ms.append((t2 - t1) * 1e3)
            self._region_ms.append((t3 - t0) * 1e3)
        ops.synchronize()
        self.throttle.point(reps)
        return [ops.elapsed_ms(start, end) for start, end in zip(starts, ends)]

    def flush(self) -> None:
        """Evict the L2 cache (asynchronously, on the stream)."""
        if self._flush_buffer is not None:
            self._ops.fill(self._flush_buffer)

    def synchronize(self) -> None:
        self._ops.synchronize()


def TorchCudaClock(flush_l2: bool, spin: bool = True) -> EventClock:  # noqa: N802 (the old class name)
    """Events on torch's current stream; our Triton and CuPy kernels launch there too."""
    return EventClock(TorchStreamOps(), flush_l2, spin)


def CupyCudaClock(flush_l2: bool, spin: bool = True) -> EventClock:  # noqa: N802
    """Events on cupy's current stream, for cupy library baselines."""
    return EventClock(CupyStreamOps(), flush_l2, spin)


class TorchCudaGraphClock:
    """``launches`` calls captured in one CUDA graph; a sample is one replay / launches.
    Inputs stay in L2 between the captured calls: this mode is warm-cache by nature. A
    short spin before each replay keeps the replay's own launch out of the events."""

    mode = "cuda-graph"
    cache_mode = "warm"

    def __init__(self, fn: Callable[[], object], launches: int) -> None:
        import torch

        self._torch = torch
        self._ops = TorchStreamOps()
        self._launches = launches
        self.throttle = ThrottleCount()
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
        cycles = int(SPIN_MARGIN * SPIN_FLOOR_MS * cycles_per_ms(self._ops))
        self.throttle.point(0)
        for start, end in zip(starts, ends):
            self._ops.sleep(cycles)
            start.record()
            self._graph.replay()
            end.record()
        self._torch.cuda.synchronize()
        self.throttle.point(reps)
        return [start.elapsed_time(end) / self._launches for start, end in zip(starts, ends)]

    def synchronize(self) -> None:
        self._torch.cuda.synchronize()


def l2_bytes_torch() -> int:
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return getattr(props, "L2_cache_size", 0) or 128 * 2**20


def clock_for(device: str, library: str, flush_l2: bool, spin: bool = True):
    if device == "cpu":
        return CpuClock()
    if library == "cupy":
        return CupyCudaClock(flush_l2, spin)
    return TorchCudaClock(flush_l2, spin)


def measure(fn: Callable[[], object], clock, policy: TimingPolicy) -> list[float]:
    """Warm up, then per-call times in milliseconds under the repetition rule."""
    warm_start = time.perf_counter()
    fn()  # compile / autotune / create handles, outside every sample
    clock.synchronize()
    while (time.perf_counter() - warm_start) * 1e3 < policy.warmup_ms:
        fn()
        clock.synchronize()
    prime = getattr(clock, "prime", None)
    if prime is not None:  # the host time of the warm call sizes the spin (EventClock)
        prime(fn)
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


@dataclass(frozen=True)
class CaseTiming:
    samples_ms: list[float]  # per-call device time (CPU: wall time) of each repetition
    timing_mode: str  # cpu-perf-counter, cuda-events-spin, cuda-events, cuda-graph
    cache_mode: str  # l2-flushed or warm
    host_us: float | None  # median host time of one call with the GPU kept busy (None on the CPU)
    throttled_samples: int | None = None  # samples under a clock-limiting reason (None: not known)
    l2_note: str = ""  # why the persisting-L2 lines could not be reset ("" when they were, or on the CPU)

    def launch_bound(self) -> bool | None:
        """The host takes longer to issue a call than the GPU to run it: a loop over this
        call runs at host speed, whatever the kernel does."""
        if self.host_us is None or not self.samples_ms:
            return None
        return self.host_us > 1e3 * float(np.median(self.samples_ms))


def time_case(fn: Callable[[], object], device: str, library: str, policy: TimingPolicy) -> CaseTiming:
    """Time one call: events (or perf_counter on the CPU), switching to CUDA-graph mode for
    torch-stream work faster than ``policy.graph_below_ms``. ``host_us`` always comes from
    the event pass (graph replays hide the host cost a real caller pays)."""
    l2_note = (reset_persisting_l2() or "") if device == "cuda" else ""
    clock = clock_for(device, library, policy.flush_l2, policy.spin)
    samples = measure(fn, clock, policy)
    host = getattr(clock, "host_samples_ms", None)
    host_us = 1e3 * float(np.median(host)) if host else None
    throttle = getattr(clock, "throttle", None)
    if device == "cuda" and library == "torch" and np.median(samples) < policy.graph_below_ms:
        graph_clock = TorchCudaGraphClock(fn, policy.graph_launches)
        return CaseTiming(measure(fn, graph_clock, policy), graph_clock.mode, graph_clock.cache_mode, host_us,
                          graph_clock.throttle.result(), l2_note)
    return CaseTiming(samples, clock.mode, clock.cache_mode, host_us, throttle.result() if throttle else None, l2_note)


# --- persisting L2 --------------------------------------------------------------------
# Lines marked persisting by an access-policy window (ours or another process's) stay in
# L2 across our flush, so a "cold" repetition would read them warm. Before timing, every
# persisting line is reset to normal (cuCtxResetPersistingL2Cache, the driver API of the
# current context, which torch and cupy share).
def _cuda_driver():
    import ctypes

    return ctypes.CDLL("libcuda.so.1")


def reset_persisting_l2() -> str | None:
    """Reset the persisting-L2 lines of the current context: None when done, else why not."""
    try:
        result = _cuda_driver().cuCtxResetPersistingL2Cache()
    except Exception as exc:  # noqa: BLE001 - no driver library, no such entry point
        return f"persisting-L2 reset unavailable: {type(exc).__name__}: {exc}"
    return None if result == 0 else f"persisting-L2 reset failed: CUresult {result}"


def measure_case(fn: Callable[[], object], device: str, library: str,
                 policy: TimingPolicy) -> tuple[list[float], str, str]:
    """(samples, timing mode, cache mode) of time_case."""
    timing = time_case(fn, device, library, policy)
    return timing.samples_ms, timing.timing_mode, timing.cache_mode
