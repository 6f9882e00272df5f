"""Sweep profiles: which backends, shapes, dtypes and timing rule a run uses. Data only:
this file is the one place where sweeps are declared.

- ``quick``: the GPU sweep `make bench` runs on a GPU machine (every op x impl x dtype at
  a few sizes that fill the GPU; meant to take under 3 minutes on an H100);
- ``full``: size ladders from 256 to 32768, LLM layer shapes, batches 1..1024 (under 20
  minutes on an H100): the data the report's fits need;
- ``cpu``: the CPU backends only (what `make bench` runs without a GPU; under 5 minutes
  on 2 cores);
- ``smoke``: a seconds-long sweep for tests.
GPU shapes are chosen to fill the device (4096 x 11008 is a Llama-7B MLP projection,
8192 x 28672 a Llama-70B one), so the launch floor is left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.backends import cuda_reason
from bench.dtypes import BENCH_DTYPES
from bench.timing import TimingPolicy

GPU_BACKENDS = ("triton", "cupy", "torch-cuda", "cupy-lib")
CPU_BACKENDS = ("numpy", "torch-cpu")


def _squares(*sizes: int) -> tuple[dict, ...]:
    return tuple({"m": s, "n": s} for s in sizes)


def _batches(m: int, k: int, *batch_sizes: int) -> tuple[dict, ...]:
    return tuple({"m": m, "n": b, "k": k} for b in batch_sizes)


def _shapes(*pairs: tuple[int, int]) -> tuple[dict, ...]:
    return tuple({"m": m, "n": n} for m, n in pairs)


LADDER = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
LLM_SHAPES = ((4096, 4096), (4096, 11008), (11008, 4096), (8192, 28672), (28672, 8192))
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    backends: tuple[str, ...]
    shapes: dict[str, tuple[dict, ...]]  # op name -> shape parameters to measure
    dtypes: tuple[str, ...] = BENCH_DTYPES
    timing: TimingPolicy = field(default_factory=TimingPolicy)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "quick", "GPU: every kernel and baseline, all dtypes, sizes that fill the GPU",
            GPU_BACKENDS,
            {
                "dense_mv": _squares(1024, 2048, 4096, 8192, 16384)
                + ({"m": 4096, "n": 11008}, {"m": 11008, "n": 4096}),
                "dense_mm": _batches(4096, 4096, 1, 4, 16, 64, 256, 1024, 4096),
            },
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=200, budget_ms=100),
        ),
        Profile(
            "full", "GPU: size ladders 256..32768, LLM shapes, batches 1..1024",
            GPU_BACKENDS,
            {
                "dense_mv": _squares(*LADDER) + _shapes(*LLM_SHAPES),
                "dense_mm": _batches(4096, 4096, *BATCHES) + _batches(8192, 8192, *BATCHES)
                + tuple({"m": s, "n": s, "k": s} for s in (1024, 2048, 4096, 8192)),
            },
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=200, budget_ms=200),
        ),
        Profile(
            "cpu", "CPU only: NumPy and torch-CPU baselines (no GPU here)",
            CPU_BACKENDS,
            {
                "dense_mv": _squares(256, 1024, 2048, 4096, 8192),  # 8192^2 fp32: 256 MB, beyond any LLC
                "dense_mm": _batches(1024, 1024, 1, 8, 64, 256),
            },
            timing=TimingPolicy(warmup_ms=10, min_reps=5, max_reps=100, budget_ms=100, flush_l2=False),
        ),
        Profile(
            "smoke", "seconds: tiny shapes, for tests of the harness itself",
            CPU_BACKENDS + GPU_BACKENDS,
            {"dense_mv": _squares(33), "dense_mm": _batches(33, 17, 5)},
            timing=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False),
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def default_profile_name() -> str:
    return "quick" if cuda_reason() is None else "cpu"
