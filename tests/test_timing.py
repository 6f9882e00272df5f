"""GPU timing without a GPU: a fake stream checks that the spin kernel is queued before the
start event, the call between the events, and that the spin grows with the host time, so
that the events bracket GPU time only while host_us keeps what the host spends."""

from __future__ import annotations

import pytest

from structbench.measure import timing
from structbench.measure.timing import EventClock, TimingPolicy, time_case

CYCLES_PER_MS = 2_000_000  # the fake GPU's clock: 2 GHz
KERNEL_MS = 0.01  # GPU time of one call of the fake kernel


class FakeStream:
    """One in-order stream: every operation is logged; the GPU time line advances by the
    spin's cycles and by KERNEL_MS per call; an event holds the GPU time it was reached at."""

    key = "fake"

    def __init__(self):
        self.log: list[tuple] = []
        self.gpu_ms = 0.0

    def event(self):
        return {"at": None}

    def record(self, event):
        event["at"] = self.gpu_ms
        self.log.append(("record", id(event)))

    def elapsed_ms(self, start, end):
        return end["at"] - start["at"]

    def sleep(self, cycles):
        self.gpu_ms += cycles / CYCLES_PER_MS
        self.log.append(("sleep", cycles))

    def synchronize(self):
        self.log.append(("sync",))

    def l2_bytes(self):
        return 1024

    def buffer(self, nbytes):
        return bytearray(nbytes)

    def fill(self, buffer):
        self.log.append(("flush",))

    def kernel(self):
        self.gpu_ms += KERNEL_MS
        self.log.append(("call",))


class FakeHostClock:
    """time.perf_counter under the test's control: a call 'takes' host_ms on the host."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def fake(monkeypatch):
    stream, host = FakeStream(), FakeHostClock()
    monkeypatch.setattr(timing, "time", host)
    monkeypatch.setattr(timing, "TorchStreamOps", lambda: stream)
    monkeypatch.setattr(timing, "_CYCLES_PER_MS", {})
    return stream, host


def _call(stream, host, host_ms):
    def fn():
        host.now += host_ms / 1e3
        stream.kernel()

    return fn


def _timed_ops(log):
    """The log from the first flush on, without the final synchronize."""
    first = log.index(("flush",))
    return [entry[0] for entry in log[first:] if entry[0] != "sync"]


def test_spin_is_queued_before_start_and_the_call_between_the_events(fake):
    stream, host = fake
    clock = EventClock(stream, flush_l2=True, spin=True)
    fn = _call(stream, host, host_ms=0.2)
    clock.prime(fn)
    samples = clock.time_batch(fn, reps=4)
    assert _timed_ops(stream.log) == ["flush", "sleep", "record", "call", "record"] * 4
    # The events hold the kernel's GPU time, not the spin and not the host's 0.2 ms.
    assert samples == pytest.approx([KERNEL_MS] * 4)
    assert clock.host_samples_ms == pytest.approx([0.2] * 4)
    assert clock.mode == "cuda-events-spin" and clock.cache_mode == "l2-flushed"


def test_spin_outlasts_the_host_and_grows_with_it(fake):
    stream, host = fake

    timing.cycles_per_ms(stream)  # calibrated once, before the sleeps counted below

    def spin_cycles(host_ms):
        stream.log.clear()
        clock = EventClock(stream, flush_l2=False)
        fn = _call(stream, host, host_ms)
        clock.prime(fn)
        clock.time_batch(fn, reps=3)
        return [entry[1] for entry in stream.log if entry[0] == "sleep"]

    fast, slow = spin_cycles(0.01), spin_cycles(0.3)
    assert min(slow) > max(fast)
    # The spin lasts longer than the host needs to queue start, call and end.
    assert min(slow) / CYCLES_PER_MS > 0.3 and min(fast) / CYCLES_PER_MS > 0.01
    # Slower calls seen during the batch make the next batch's spin longer still.
    clock = EventClock(stream, flush_l2=False)
    clock.prime(_call(stream, host, 0.1))
    before = clock.sleep_ms()
    clock.time_batch(_call(stream, host, 1.0), reps=20)
    assert clock.sleep_ms() > before and clock.sleep_ms() >= timing.SPIN_MARGIN * 1.0


def test_spin_cycles_are_calibrated_from_events(fake):
    stream, _ = fake
    assert timing.cycles_per_ms(stream) == pytest.approx(CYCLES_PER_MS)


def test_no_spin_mode_queues_no_sleep(fake):
    stream, host = fake
    clock = EventClock(stream, flush_l2=False, spin=False)
    clock.time_batch(_call(stream, host, 0.2), reps=2)
    assert "sleep" not in [entry[0] for entry in stream.log] and clock.mode == "cuda-events"


def test_time_case_reports_host_us_and_launch_bound(fake):
    stream, host = fake
    policy = TimingPolicy(warmup_ms=0, min_reps=5, max_reps=5, budget_ms=0, flush_l2=False)
    slow_host = time_case(_call(stream, host, 0.3), "cuda", "torch", policy)
    assert slow_host.timing_mode == "cuda-events-spin"
    assert slow_host.samples_ms == pytest.approx([KERNEL_MS] * 5)
    assert slow_host.host_us == pytest.approx(300.0)
    assert slow_host.launch_bound() is True  # 300 us of host per 10 us of GPU
    fast_host = time_case(_call(stream, host, 0.001), "cuda", "torch", policy)
    assert fast_host.launch_bound() is False


def test_cpu_rows_have_no_host_us():
    result = time_case(lambda: None, "cpu", "numpy", TimingPolicy(0, min_reps=3, max_reps=3, budget_ms=0))
    assert result.host_us is None and result.launch_bound() is None
    assert result.timing_mode == "cpu-perf-counter"


# --- throttling and the persisting L2 (GPU-only: fakes here) ---------------------------
def test_samples_under_a_clock_limiting_reason_are_counted(fake, monkeypatch):
    """NVML is asked at each drain of the queue; the samples between two answers count as
    throttled when either reported a clock-limiting reason."""
    stream, host = fake
    answers = iter([False, False, True, False, False])  # start, drains at 32, 64, 96, end (100)
    monkeypatch.setattr(timing, "throttle_probe", lambda: next(answers))
    clock = EventClock(stream, flush_l2=False, spin=False)
    clock.time_batch(_call(stream, host, 0.01), reps=100)
    assert clock.throttle.result() == 64  # the chunks 32-64 and 64-96 touch the throttled point


def test_throttle_count_is_unknown_without_nvml_and_zero_when_quiet(fake, monkeypatch):
    stream, host = fake
    monkeypatch.setattr(timing, "throttle_probe", lambda: None)
    clock = EventClock(stream, flush_l2=False, spin=False)
    clock.time_batch(_call(stream, host, 0.01), reps=10)
    assert clock.throttle.result() is None
    monkeypatch.setattr(timing, "throttle_probe", lambda: False)
    clock = EventClock(stream, flush_l2=False, spin=False)
    clock.time_batch(_call(stream, host, 0.01), reps=10)
    assert clock.throttle.result() == 0


def test_a_fake_nvml_reporting_power_cap_throttles_a_whole_case(fake, monkeypatch):
    """Through env.clock_limited: a fake pynvml whose reasons hold the SW power cap bit."""
    import sys
    from types import SimpleNamespace

    from structbench.measure import env

    reasons = {"now": 0x4}
    fake_nvml = SimpleNamespace(nvmlDeviceGetCurrentClocksEventReasons=lambda handle: reasons["now"])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    monkeypatch.setattr(env, "_nvml_handle", lambda: "gpu0")
    stream, host = fake
    policy = TimingPolicy(warmup_ms=0, min_reps=5, max_reps=5, budget_ms=0, flush_l2=False)
    monkeypatch.setattr(timing, "reset_persisting_l2", lambda: None)
    assert time_case(_call(stream, host, 0.01), "cuda", "torch", policy).throttled_samples == 5
    reasons["now"] = 0x1 | 0x2  # idle and application clocks: not limits on our kernel
    assert time_case(_call(stream, host, 0.01), "cuda", "torch", policy).throttled_samples == 0


def test_persisting_l2_is_reset_before_timing_on_a_gpu_only(fake, monkeypatch):
    stream, host = fake
    calls = []

    class Driver:
        def cuCtxResetPersistingL2Cache(self):  # noqa: N802 - the driver's name
            calls.append(len(stream.log))
            return 0

    monkeypatch.setattr(timing, "_cuda_driver", Driver)
    monkeypatch.setattr(timing, "throttle_probe", lambda: None)
    policy = TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False)
    result = time_case(_call(stream, host, 0.01), "cuda", "torch", policy)
    assert calls == [0] and result.l2_note == ""  # once, before any work was queued
    time_case(lambda: None, "cpu", "numpy", policy)
    assert calls == [0]  # never on the CPU
    monkeypatch.setattr(Driver, "cuCtxResetPersistingL2Cache", lambda self: 1)
    assert time_case(_call(stream, host, 0.01), "cuda", "torch", policy).l2_note == \
        "persisting-L2 reset failed: CUresult 1"
