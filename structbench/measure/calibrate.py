"""Measured ceilings (the roofline): copy bandwidth and matmul peaks, per device.

- bandwidth: a device-to-device copy of a buffer far larger than the last-level cache,
  counted as bytes read + bytes written, per second;
- peaks: the vendor library's matmul on a large product of random data, per precision:
  FP32 (true fp32), TF32, FP16, BF16 (fp32 accumulation) and INT8 (int32 accumulation);
  on the CPU the fastest of the libraries the baselines call (torch, NumPy), with the
  threads they use, and none for a precision neither has a fast path for;
- the cache knee: copy bandwidth against working-set size (a ladder from 1 MiB to 2 GiB
  on the CPU, to 4 GiB on a GPU), and the size from which bandwidth sits on its memory
  plateau (``detect_knee``). Rows below it are cache-resident (the report's regime);
  the device's own figure (sysfs LLC, the GPU's L2) is recorded beside it.

Every row of a sweep carries the ceilings of its device (``ceiling_gbps``,
``ceiling_tflops``) and its fractions of them (``pct_of_bw``, ``pct_of_peak``), so a
report made from the CSV alone can draw the roofline. Results are cached per device and
software versions in results/calibration/.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from structbench.measure.env import (available_memory_bytes, cpu_llc_bytes, cpu_name, gpu_l2_bytes, gpu_name,
                                     other_gpu_processes, software, usable_cores)
from structbench.measure.plausible import impossible_reason, in_cache
from structbench.measure.timing import TimingPolicy, measure, summarize

CALIBRATION_DIR = Path(__file__).resolve().parents[2] / "results" / "calibration"
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class Calibration:
    device: str  # "cuda" or "cpu"
    device_name: str
    copy_gbps: float
    peak_tflops: dict[str, float]  # precision -> measured TFLOP/s (TOP/s for int8)
    sizes: dict[str, int]  # what was measured: copy bytes, matmul dimension
    versions: dict[str, str]
    measured_at: str
    # The measured cache knee (working-set bytes from which copy bandwidth is on its memory
    # plateau; None: no knee in the ladder) and the ladder it came from: [bytes, GB/s].
    cache_knee_bytes: int | None = None
    bandwidth_ladder: list = dataclasses.field(default_factory=list)
    reported_cache_bytes: int | None = None  # sysfs LLC / the GPU's L2, for comparison
    notes: list = dataclasses.field(default_factory=list)  # e.g. a precision without a fast path
    # The machine's load while it was measured (machine_load(): load average, cores, other
    # GPU processes), so a reader can tell a quiet calibration from a loaded one.
    load: dict = dataclasses.field(default_factory=dict)

    def peak_for(self, dtype: str) -> float | None:
        """The ceiling a row of this dtype is held against: true fp32 for fp32 rows."""
        return self.peak_tflops.get(dtype)


def _cuda_copy_gbps(copy_bytes: int, policy: TimingPolicy) -> float:
    import torch

    src = torch.rand(copy_bytes // 4, device="cuda")  # random, never zeros
    dst = torch.empty_like(src)
    from structbench.measure.timing import TorchCudaClock

    samples = measure(lambda: dst.copy_(src), TorchCudaClock(flush_l2=False), policy)
    return 2 * src.numel() * 4 / (summarize(samples)["time_ms_p50"] / 1e3) / 1e9


def _cuda_matmul_tflops(precision: str, size: int, policy: TimingPolicy) -> float:
    import torch

    from structbench.measure.timing import TorchCudaClock

    if precision == "int8":
        a = torch.randint(-128, 128, (size, size), dtype=torch.int8, device="cuda")
        b = torch.randint(-128, 128, (size, size), dtype=torch.int8, device="cuda")

        def fn():
            return torch._int_mm(a, b)
    else:
        dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        a = torch.randn(size, size, dtype=dtype, device="cuda")
        b = torch.randn(size, size, dtype=dtype, device="cuda")

        def fn():
            return a @ b
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        samples = measure(fn, TorchCudaClock(flush_l2=False), policy)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return 2 * size**3 / (summarize(samples)["time_ms_p50"] / 1e3) / 1e12


def cpu_copy_threads() -> int:
    return usable_cores()  # as many as each BLAS pool gets (structbench.measure.env.configure_cpu_threads)


# --- the cache knee ---------------------------------------------------------------------
# A point is on the memory plateau when its bandwidth is within PLATEAU_TOLERANCE of the
# plateau (the median of the PLATEAU_POINTS largest sizes); a knee exists when some smaller
# size is at least KNEE_MIN_GAIN faster than the plateau. Bandwidths are smoothed by a
# running median of 3 first, so one noisy point neither makes nor hides a knee.
PLATEAU_POINTS = 3
PLATEAU_TOLERANCE = 0.15
KNEE_MIN_GAIN = 1.3


def detect_knee(sizes, gbps) -> int | None:
    """The smallest working-set size, past the (smoothed) curve's peak, whose bandwidth is
    on the memory plateau: the lowest level the curve falls to after its peak. None when
    the peak is not clearly above that level (no cache visible), or too few points.
    Slow small sizes (per-call overhead) come before the peak and do not count; nor does a
    rise at the largest sizes (huge pages on a VM made 1-2 GiB copies faster than 256 MiB
    ones here), which would otherwise lift the plateau over the whole cache step."""
    order = np.argsort(np.asarray(sizes, float))
    sizes, gbps = np.asarray(sizes, float)[order], np.asarray(gbps, float)[order]
    if len(sizes) < PLATEAU_POINTS + 2:
        return None
    padded = np.concatenate(([gbps[0]], gbps, [gbps[-1]]))
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    peak = int(np.argmax(smooth))
    after = smooth[peak:]
    plateau = float(after.min())
    if len(after) < PLATEAU_POINTS or smooth[peak] < KNEE_MIN_GAIN * plateau:
        return None
    on_plateau = np.nonzero(after <= (1 + PLATEAU_TOLERANCE) * plateau)[0]
    return int(sizes[peak + on_plateau[0]])


def knee_ladder(largest_bytes: int, smallest_bytes: int = 2**20) -> list[int]:
    """Working-set sizes (source + destination of a copy), doubling from 1 MiB."""
    sizes, size = [], smallest_bytes
    while size <= largest_bytes:
        sizes.append(size)
        size *= 2
    return sizes


def _ladder_policy(size: int) -> TimingPolicy:
    """Each point's fastest repetition is kept: a bandwidth is an upper bound, and on a
    shared machine the median of a point can land on another process's burst."""
    return TimingPolicy(warmup_ms=5, min_reps=3, max_reps=200, budget_ms=60, flush_l2=False)


def _cpu_copy_fn(src: np.ndarray):
    """A copy of ``src`` with the cores the BLAS pools use (one np.copyto per thread on its
    own slice: it releases the GIL), and the thread pool to close after."""
    from concurrent.futures import ThreadPoolExecutor

    dst = np.empty_like(src)
    threads = cpu_copy_threads()
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    slices = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    if threads == 1:
        return (lambda: np.copyto(dst, src)), None
    pool = ThreadPoolExecutor(threads)
    return (lambda: list(pool.map(lambda pair: np.copyto(*pair), slices))), pool


def _cpu_bandwidth_ladder(largest_bytes: int) -> list[list[float]]:
    from structbench.measure.timing import CpuClock

    ladder = []
    source = np.random.default_rng(0).random(max(1, largest_bytes // 16))  # random once; each size a prefix
    for size in knee_ladder(largest_bytes):
        copy, pool = _cpu_copy_fn(source[:max(1, size // 16)])
        try:
            ms = summarize(measure(copy, CpuClock(), _ladder_policy(size)))["time_ms_min"]
        finally:
            if pool is not None:
                pool.shutdown()
        ladder.append([size, size / (ms / 1e3) / 1e9])
    return ladder


def _cuda_bandwidth_ladder(largest_bytes: int) -> list[list[float]]:
    import torch

    from structbench.measure.timing import TorchCudaClock

    ladder = []
    for size in knee_ladder(largest_bytes):
        src = torch.rand(max(1, size // 8), device="cuda")
        dst = torch.empty_like(src)
        # No flush: the knee is where the working set stops fitting the L2 of repeated copies.
        ms = summarize(measure(lambda: dst.copy_(src), TorchCudaClock(flush_l2=False),
                               _ladder_policy(size)))["time_ms_min"]
        ladder.append([size, size / (ms / 1e3) / 1e9])
        del src, dst
    return ladder


def cpu_ladder_top() -> int:
    """The ladder's largest working set: 2 GiB, or a quarter of the available memory."""
    available = available_memory_bytes()
    return min(2**31, available // 4) if available else 2**30


def _cpu_copy_gbps(copy_bytes: int, policy: TimingPolicy) -> tuple[float, float]:
    """(copy, read-only) bandwidth with every core this process may use: one np.copyto (or
    sum) per thread on its own slice (both release the GIL). A single thread undershoots the
    read bandwidth a multi-threaded BLAS gemv reaches (the best of 1 and all threads is
    kept); and a gemv only reads, where a copy also writes (and pays write-allocate traffic
    it does not count), so the ceiling a row is held against is the larger of the two."""
    from concurrent.futures import ThreadPoolExecutor

    from structbench.measure.timing import CpuClock

    src = np.random.default_rng(0).random(copy_bytes // 8)
    dst = np.empty_like(src)
    threads = cpu_copy_threads()
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    slices = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    copy_ms = summarize(measure(lambda: np.copyto(dst, src), CpuClock(), policy))["time_ms_p50"]
    read_ms = summarize(measure(src.sum, CpuClock(), policy))["time_ms_p50"]
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            def threaded_copy():
                list(pool.map(lambda pair: np.copyto(*pair), slices))

            def threaded_read():
                list(pool.map(lambda pair: pair[1].sum(), slices))
            copy_ms = min(copy_ms, summarize(measure(threaded_copy, CpuClock(), policy))["time_ms_p50"])
            read_ms = min(read_ms, summarize(measure(threaded_read, CpuClock(), policy))["time_ms_p50"])
    return 2 * src.nbytes / (copy_ms / 1e3) / 1e9, src.nbytes / (read_ms / 1e3) / 1e9


def _cpu_matmul_fn(library: str, precision: str, size: int):
    """The product a CPU baseline of this library and precision computes (structbench.ops.dense.baselines),
    or None where the library has no such product."""
    if library == "torch":
        import torch

        if precision == "int8":
            a = torch.randint(-128, 128, (size, size), dtype=torch.int8)
            b = torch.randint(-128, 128, (size, size), dtype=torch.int8)
            return lambda: torch._int_mm(a, b)
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        return lambda: a @ b
    if precision == "bf16":
        return None  # numpy has no bfloat16
    rng = np.random.default_rng(0)
    if precision == "int8":
        a, b = rng.integers(-128, 128, (size, size), dtype=np.int8), rng.integers(-128, 128, (size, size),
                                                                                    dtype=np.int8)
        return lambda: np.matmul(a, b, dtype=np.int32)
    dtype = {"fp32": np.float32, "fp16": np.float16}[precision]
    a, b = rng.standard_normal((size, size)).astype(dtype), rng.standard_normal((size, size)).astype(dtype)
    return lambda: a @ b


# CPU matmul sizes, tried upwards while one product takes under MATMUL_STEP_S (a slow path
# stops early); a precision whose best is under NO_FAST_PATH_FRACTION of fp32's has no fast
# path on this CPU: its peak is left out (a GEMV may still convert to fp32 and beat it).
CPU_MATMUL_SIZES = (256, 512, 1024, 2048)
MATMUL_STEP_S = 0.15
NO_FAST_PATH_FRACTION = 0.25


def _cpu_matmul_tflops(precision: str, policy: TimingPolicy, sizes=CPU_MATMUL_SIZES) -> float | None:
    """The fastest product of this precision over the libraries the baselines call and
    CPU_MATMUL_SIZES, with the threads they use; None for TF32 (no CPU has it)."""
    import time

    from structbench.measure.timing import CpuClock

    if precision == "tf32":
        return None
    best = None
    for library in ("torch", "numpy"):
        for size in sizes:
            fn = _cpu_matmul_fn(library, precision, size)
            if fn is None:
                break
            start = time.perf_counter()
            fn()
            if time.perf_counter() - start > MATMUL_STEP_S:
                break  # a slow path: larger sizes would not change the verdict, only the wait
            tflops = 2 * size**3 / (summarize(measure(fn, CpuClock(), policy))["time_ms_p50"] / 1e3) / 1e12
            best = tflops if best is None else max(best, tflops)
    return best


def cpu_peaks(measured: dict[str, float | None]) -> tuple[dict[str, float], list[str]]:
    """The peaks a CPU row is held against, and notes: a 16-bit or int8 precision measured
    below NO_FAST_PATH_FRACTION of fp32's has no fast matmul path here, so no peak."""
    fp32 = measured.get("fp32")
    peaks, notes = {}, []
    for precision, value in measured.items():
        if value is None:
            continue
        if precision != "fp32" and fp32 and value < NO_FAST_PATH_FRACTION * fp32:
            notes.append(f"{precision}: no fast matmul path on this CPU ({value * 1e3:.2f} GFLOP/s against fp32's "
                         f"{fp32 * 1e3:.1f}): no {precision} peak; its rows get no pct_of_peak")
            continue
        peaks[precision] = value
    return peaks, notes


# Each ceiling is measured this many times and the best kept: a ceiling is an upper bound,
# and one measurement can land on another process's burst.
CEILING_TRIES = 2


def best_of(measure_once, tries: int = CEILING_TRIES):
    """The largest of ``tries`` results of ``measure_once()`` (tuples: element-wise; None
    when every try gave None)."""
    results = [measure_once() for _ in range(tries)]
    if isinstance(results[0], tuple):
        return tuple(max(values) for values in zip(*results))
    present = [r for r in results if r is not None]
    return max(present) if present else None


def measure_calibration(device: str) -> Calibration:
    """Measure the ceilings of ``device`` ("cuda" or "cpu") now, each CEILING_TRIES times
    keeping the best, with the machine's load at the start."""
    if device == "cuda":
        from structbench.measure.timing import l2_bytes_torch

        copy_bytes, size = max(2**30, 16 * l2_bytes_torch()), 8192
        policy = TimingPolicy(warmup_ms=100, min_reps=10, max_reps=100, budget_ms=2000, flush_l2=False)
        load = machine_load("cuda")
        copy = best_of(lambda: _cuda_copy_gbps(copy_bytes, policy))
        peaks = {p: best_of(lambda: _cuda_matmul_tflops(p, size, policy)) for p in PRECISIONS}
        name, notes = gpu_name(), []
        ladder, reported = _cuda_bandwidth_ladder(4 * 2**30), gpu_l2_bytes() or None
        knee = detect_knee(*zip(*ladder))
    else:
        size = max(CPU_MATMUL_SIZES)
        policy = TimingPolicy(warmup_ms=20, min_reps=5, max_reps=50, budget_ms=300, flush_l2=False)
        load = machine_load("cpu")
        ladder = _cpu_bandwidth_ladder(cpu_ladder_top())
        knee = detect_knee(*zip(*ladder)) if ladder else None
        # The copy ceiling past the knee (the memory plateau), with the BLAS pools' threads.
        copy_bytes = max(256 * 2**20, 2 * (knee or 0))
        copy_only, read_only = best_of(lambda: _cpu_copy_gbps(copy_bytes, policy))
        copy = max(copy_only, read_only)
        peaks, notes = cpu_peaks({p: best_of(lambda: _cpu_matmul_tflops(p, policy)) for p in PRECISIONS})
        notes.insert(0, f"bandwidth ceiling {copy:.3g} GB/s: the larger of a copy ({copy_only:.3g} GB/s, read + "
                        f"write) and a read-only stream ({read_only:.3g} GB/s), {cpu_copy_threads()} threads")
        name, reported = cpu_name(), cpu_llc_bytes() or None
    sizes = {"copy_bytes": copy_bytes, "matmul_size": size}
    if device == "cpu":
        sizes["copy_threads"] = cpu_copy_threads()
    return Calibration(device, name, copy, peaks, sizes,
                       dict(software()), datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       cache_knee_bytes=knee, bandwidth_ladder=ladder,
                       reported_cache_bytes=reported, notes=notes, load=load)


def _cache_path(device: str, name: str, directory: Path) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    # v3: the measured cache knee and per-library CPU peaks; older caches are not reused.
    return directory / f"{device}-{slug}.v3.json"


def _versions_key(versions: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in versions.items() if k != "git_sha"}  # our code doesn't move the ceilings


# A new calibration whose copy ceiling or fp32 peak is below the previous one of the same
# device by more than this factor was measured on a loaded machine (seen: 1.29 GB/s where
# 16.5 was normal): it is measured again, and if it stays that low it is not cached and the
# previous ceilings are used (with a note). Run-to-run variation on a quiet machine is
# 10-30%; `calibrate --fresh` accepts whatever it measures (new hardware, a real change).
POISONED_FACTOR = 2.0
POISONED_RETRIES = 2


def poisoned_reason(new: Calibration, previous: Calibration | None) -> str | None:
    """Why ``new`` looks measured under load compared with ``previous``, or None."""
    if previous is None or previous.device != new.device or previous.device_name != new.device_name:
        return None
    pairs = [("copy bandwidth", new.copy_gbps, previous.copy_gbps, "GB/s"),
             ("fp32 peak", new.peak_tflops.get("fp32"), previous.peak_tflops.get("fp32"), "TFLOP/s")]
    for what, now, before, unit in pairs:
        if now and before and now * POISONED_FACTOR < before:
            return (f"{what} {now:.4g} {unit} is below 1/{POISONED_FACTOR:g} of the previous calibration's "
                    f"{before:.4g} (measured {previous.measured_at})")
    return None


def _read(path: Path) -> Calibration | None:
    try:
        return Calibration(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write(path: Path, calibration: Calibration) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")  # a Ctrl-C mid-write leaves no torn cache
    partial.write_text(json.dumps(dataclasses.asdict(calibration), indent=2) + "\n")
    os.replace(partial, path)


def load_or_measure(device: str, *, force: bool = False, fresh: bool = False,
                    directory: Path | None = None) -> Calibration:
    """The cached calibration of this device and software versions, measured if missing
    (``force``: measured again). A measurement far below the previous calibration of the
    device (poisoned_reason) is repeated up to POISONED_RETRIES times; if it stays low it is
    not cached and the previous one is returned with a note. ``fresh``: measure and cache
    whatever comes out."""
    name = gpu_name() if device == "cuda" else cpu_name()
    path = _cache_path(device, name, directory or CALIBRATION_DIR)
    if is_cached(device, directory) and not (force or fresh):
        return Calibration(**json.loads(path.read_text()))
    previous = None if fresh else _read(path)
    calibration = measure_calibration(device)
    reason = poisoned_reason(calibration, previous)
    for _ in range(POISONED_RETRIES if reason else 0):
        calibration = measure_calibration(device)
        reason = poisoned_reason(calibration, previous)
        if reason is None:
            break
    if reason is not None:
        note = (f"a new calibration was refused ({reason}; load {format_load(calibration.load)}): the previous "
                "ceilings are used; `structbench calibrate --fresh` accepts a new measurement")
        return dataclasses.replace(previous, notes=[note, *previous.notes])
    _write(path, calibration)
    return calibration


def machine_load(device: str) -> dict:
    """The load now: 1-minute load average, usable cores and, on a GPU, the other processes
    NVML sees on it (a calibration under load undershoots)."""
    load = {"loadavg_1m": round(os.getloadavg()[0], 2), "cores": usable_cores()}
    if device == "cuda":
        others = other_gpu_processes()
        if others is not None:
            load["other_gpu_processes"] = others
    return load


def format_load(load: dict) -> str:
    """A calibration's load in words: "load average 0.12 on 2 cores, 0 other GPU processes"."""
    if not load:
        return "not recorded"
    text = f"load average {load.get('loadavg_1m', '?')} on {load.get('cores', '?')} cores"
    if "other_gpu_processes" in load:
        text += f", {load['other_gpu_processes']} other GPU process(es)"
    return text


# Rough wall time of measure_calibration per device: said before it starts.
CALIBRATION_SECONDS = {"cpu": 40, "cuda": 45}  # each ceiling measured twice


def is_cached(device: str, directory: Path | None = None) -> bool:
    """Whether load_or_measure(device) would load rather than measure."""
    name = gpu_name() if device == "cuda" else cpu_name()
    path = _cache_path(device, name, directory or CALIBRATION_DIR)
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return _versions_key(cached.get("versions", {})) == _versions_key(software())


def roofline_columns(row: dict, calibration: Calibration | None) -> dict:
    """arith_intensity always; ceilings and fractions of them when the device is calibrated."""
    columns = {"arith_intensity": row["flops"] / row["min_bytes"] if row.get("min_bytes") else ""}
    if calibration is None:
        return columns
    columns["cache_knee_bytes"] = calibration.cache_knee_bytes or ""
    peak = calibration.peak_for(row["dtype"])
    columns.update(ceiling_gbps=calibration.copy_gbps, ceiling_tflops=peak if peak is not None else "")
    if row.get("status") == "ok":
        columns["pct_of_bw"] = 100 * row["gbps"] / calibration.copy_gbps
        if peak:
            columns["pct_of_peak"] = 100 * row["tflops"] / peak
        reason = impossible_reason(gbps=row["gbps"], tflops=row.get("algorithm_tflops", row["tflops"]),
                                   dtype=row["dtype"],
                                   in_cache=in_cache(row.get("min_bytes"), calibration.cache_knee_bytes,
                                                     row.get("llc_bytes")),
                                   ceiling_gbps=calibration.copy_gbps, ceiling_tflops=peak,
                                   on_cpu=calibration.device == "cpu",
                                   device_name=row.get("device_name", ""))
        columns["impossible"] = bool(reason)
        if reason:
            columns["flag_notes"] = f"impossible: {reason}"
    return columns

