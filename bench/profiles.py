"""Sweep profiles: which backends, shapes, dtypes and timing rule a run uses. Data only.

``quick`` is the GPU sweep `make bench` runs on a GPU machine; ``cpu`` the one it runs
without a GPU (CPU backends only); ``smoke`` is a seconds-long sweep for tests.
Shapes are chosen to fill the device: GPU matvecs go up to 16384^2 and LLM layer shapes
(4096 x 11008 is a Llama-7B MLP projection), so the launch floor is left behind.
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
            "cpu", "CPU only: NumPy and torch-CPU baselines (no GPU here)",
            CPU_BACKENDS,
            {
                "dense_mv": _squares(256, 1024, 2048, 4096),
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
