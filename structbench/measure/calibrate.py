"""Measured ceilings (the roofline): copy bandwidth and matmul peaks, per device.

- bandwidth: a device-to-device copy of a buffer far larger than the last-level cache,
  counted as bytes read + bytes written, per second;
- peaks: the vendor library's matmul on a large product of random data, per precision:
  FP32 (true fp32), TF32, FP16, BF16 (fp32 accumulation) and INT8 (int32 accumulation).

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

from structbench.measure.env import cpu_name, gpu_name, software
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
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cpu_copy_gbps(copy_bytes: int, policy: TimingPolicy) -> float:
    """The copy with every core this process may use: one np.copyto per thread on its own
    slice (np.copyto releases the GIL). A single thread undershoots the read bandwidth a
    multi-threaded BLAS gemv reaches; the best of 1 and all threads is the ceiling."""
    from concurrent.futures import ThreadPoolExecutor

    from structbench.measure.timing import CpuClock

    src = np.random.default_rng(0).random(copy_bytes // 8)
    dst = np.empty_like(src)
    threads = cpu_copy_threads()
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    slices = [(dst[a:b], src[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    best_ms = summarize(measure(lambda: np.copyto(dst, src), CpuClock(), policy))["time_ms_p50"]
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            def threaded():
                list(pool.map(lambda pair: np.copyto(*pair), slices))
            best_ms = min(best_ms, summarize(measure(threaded, CpuClock(), policy))["time_ms_p50"])
    return 2 * src.nbytes / (best_ms / 1e3) / 1e9


def _cpu_matmul_tflops(precision: str, size: int, policy: TimingPolicy) -> float | None:
    import torch

    from structbench.measure.timing import CpuClock

    if precision == "tf32":
        return None  # no TF32 on CPUs
    if precision == "int8":
        a = torch.randint(-128, 128, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 128, (size, size), dtype=torch.int8)

        def fn():
            return torch._int_mm(a, b)
    else:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)

        def fn():
            return a @ b
    samples = measure(fn, CpuClock(), policy)
    return 2 * size**3 / (summarize(samples)["time_ms_p50"] / 1e3) / 1e12


def measure_calibration(device: str) -> Calibration:
    """Measure the ceilings of ``device`` ("cuda" or "cpu") now."""
    if device == "cuda":
        from structbench.measure.timing import l2_bytes_torch

        copy_bytes, size = max(2**30, 16 * l2_bytes_torch()), 8192
        policy = TimingPolicy(warmup_ms=100, min_reps=10, max_reps=100, budget_ms=2000, flush_l2=False)
        copy = _cuda_copy_gbps(copy_bytes, policy)
        peaks = {p: _cuda_matmul_tflops(p, size, policy) for p in PRECISIONS}
        name = gpu_name()
    else:
        copy_bytes, size = 256 * 2**20, 1024
        policy = TimingPolicy(warmup_ms=20, min_reps=5, max_reps=50, budget_ms=500, flush_l2=False)
        copy = _cpu_copy_gbps(copy_bytes, policy)
        peaks = {p: v for p in PRECISIONS if (v := _cpu_matmul_tflops(p, size, policy)) is not None}
        name = cpu_name()
    sizes = {"copy_bytes": copy_bytes, "matmul_size": size}
    if device == "cpu":
        sizes["copy_threads"] = cpu_copy_threads()
    return Calibration(device, name, copy, peaks, sizes,
                       dict(software()), datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def _cache_path(device: str, name: str, directory: Path) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    # v2: the CPU copy uses every core; older single-threaded caches are not reused.
    return directory / f"{device}-{slug}.v2.json"


def _versions_key(versions: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in versions.items() if k != "git_sha"}  # our code doesn't move the ceilings


def load_or_measure(device: str, *, force: bool = False, directory: Path | None = None) -> Calibration:
    """The cached calibration of this device and software versions, measured if missing."""
    name = gpu_name() if device == "cuda" else cpu_name()
    path = _cache_path(device, name, directory or CALIBRATION_DIR)
    if is_cached(device, directory) and not force:
        return Calibration(**json.loads(path.read_text()))
    calibration = measure_calibration(device)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")  # a Ctrl-C mid-write leaves no torn cache
    partial.write_text(json.dumps(dataclasses.asdict(calibration), indent=2) + "\n")
    os.replace(partial, path)
    return calibration


# Rough wall time of measure_calibration per device: said before it starts.
CALIBRATION_SECONDS = {"cpu": 10, "cuda": 20}


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
    peak = calibration.peak_for(row["dtype"])
    columns.update(ceiling_gbps=calibration.copy_gbps, ceiling_tflops=peak if peak is not None else "")
    if row.get("status") == "ok":
        columns["pct_of_bw"] = 100 * row["gbps"] / calibration.copy_gbps
        if peak:
            columns["pct_of_peak"] = 100 * row["tflops"] / peak
    return columns
