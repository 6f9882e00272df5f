"""Sweep profiles: which backends, shapes, dtypes and timing rule a run uses. Data only:
this file is the one place where sweeps are declared.

- ``quick``: the GPU sweep `make bench` runs on a GPU machine (every op x impl x dtype at
  a few sizes that fill the GPU; meant to take under 3 minutes on an H100);
- ``gpu-check``: the first run on a GPU machine (scripts/gpu_check.sh): the shapes that
  decide claims C1-C5, sized by `run --plan` to fit the script's 8 minutes;
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


def _csr(dims: dict, dist: str, *densities: float) -> tuple[dict, ...]:
    """Generated CSR patterns (bench/suite/sparse.py) of one shape at several densities."""
    return tuple({**dims, "density": d, "dist": dist} for d in densities)


LADDER = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
LLM_SHAPES = ((4096, 4096), (4096, 11008), (11008, 4096), (8192, 28672), (28672, 8192))
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LOWRANK_RANKS = (1, 4, 16, 64, 256)


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
                # Low-rank at dense_mv / dense_mm shapes (claim C3) across ranks; the narrow
                # shapes keep int8 inside its exact bound (r * n <= 1023).
                "lowrank_mv": tuple({"m": 16384, "n": 16384, "r": r} for r in (1, 16, 256))
                + ({"m": 65536, "n": 64, "r": 8},),
                "lowrank_mm": tuple({"m": 4096, "n": n, "k": 4096, "r": r} for n, r in ((64, 64), (256, 16))),
                "lora_mv": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},
                            {"m": 16384, "n": 16384, "r": 64, "scale": 0.5},
                            {"m": 8192, "n": 64, "r": 8, "scale": 1.0}),
                "lora_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
                "toeplitz_mv": _squares(1024, 4096, 16384),  # the dense_mv shapes, for claim C3
                "toeplitz_mm": tuple({"m": 4096, "n": 4096, "k": k} for k in (1, 16, 256)),
                # 8192^2 as dense_mv (claim C3: the crossover density), a 2-D Poisson matrix
                # (needs pyamg), and 2^20 x 2^20 patterns no dense matrix fits (one power law).
                "csr_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.1, 0.5)
                + ({"m": 2**22, "n": 2**22, "matrix": "poisson2d", "grid": 2048},)
                + _csr({"m": 2**20, "n": 2**20}, "uniform", 1e-5) + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
                "csr_mm": _csr({"m": 8192, "n": 64, "k": 8192}, "uniform", 0.001, 0.01, 0.1)
                + _csr({"m": 8192, "n": 64, "k": 8192}, "powerlaw", 0.01),
                # The transposed products (input gradients) at their forward op's shapes.
                "dense_mv_t": _squares(1024, 4096, 16384) + ({"m": 4096, "n": 11008}, {"m": 11008, "n": 4096}),
                "dense_mm_t": _batches(4096, 4096, 1, 16, 256, 4096),
                "lowrank_mv_t": tuple({"m": 16384, "n": 16384, "r": r} for r in (1, 16, 256))
                + ({"m": 64, "n": 65536, "r": 8},),
                "lowrank_mm_t": tuple({"m": 4096, "n": n, "k": 4096, "r": r} for n, r in ((64, 64), (256, 16))),
                "lora_mv_t": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},
                              {"m": 16384, "n": 16384, "r": 64, "scale": 0.5},
                              {"m": 64, "n": 8192, "r": 8, "scale": 1.0}),
                "lora_mm_t": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
                "toeplitz_mv_t": _squares(1024, 4096, 16384),
                "toeplitz_mm_t": tuple({"m": 4096, "n": 4096, "k": k} for k in (1, 16, 256)),
                "csr_mv_t": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.1)
                + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
                "csr_mm_t": _csr({"m": 8192, "n": 64, "k": 8192}, "uniform", 0.01),
            },
            # ~900 cases: a 50 ms budget per case keeps the sweep near its 3-minute target.
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=200, budget_ms=50),
        ),
        Profile(
            "gpu-check", "GPU, first run (scripts/gpu_check.sh): the claims' shapes, ~4 min by the plan",
            GPU_BACKENDS,
            {
                # C1/C2/C4: the dense_mv ladder (and one LLM shape); C5: the batch ladder.
                "dense_mv": _squares(1024, 2048, 4096, 8192, 16384) + ({"m": 4096, "n": 11008},),
                "dense_mm": _batches(4096, 4096, 1, 4, 16, 64, 256, 1024),
                # C3: the structured ops at dense_mv shapes; the rest at one large shape each.
                "lowrank_mv": ({"m": 16384, "n": 16384, "r": 16}, {"m": 8192, "n": 8192, "r": 256}),
                "lowrank_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16},),
                "lora_mv": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},
                            {"m": 16384, "n": 16384, "r": 64, "scale": 0.5}),
                "lora_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
                "toeplitz_mv": _squares(4096, 16384),
                "toeplitz_mm": tuple({"m": 4096, "n": 4096, "k": k} for k in (16, 256)),
                "csr_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.1)
                + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
                "csr_mm": _csr({"m": 8192, "n": 64, "k": 8192}, "uniform", 0.01)
                + _csr({"m": 8192, "n": 64, "k": 8192}, "powerlaw", 0.01),
                # The transposed products (input gradients): one memory-bound shape each.
                "dense_mv_t": _squares(4096, 16384),
                "dense_mm_t": _batches(4096, 4096, 16, 256),
                "lowrank_mv_t": ({"m": 16384, "n": 16384, "r": 16},),
                "lora_mv_t": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},),
                "lora_mm_t": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
                "toeplitz_mv_t": _squares(4096),
                "csr_mv_t": _csr({"m": 8192, "n": 8192}, "uniform", 0.01),
            },
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=100, budget_ms=50),
        ),
        Profile(
            "full", "GPU: size ladders 256..32768, LLM shapes, batches 1..1024",
            GPU_BACKENDS,
            {
                "dense_mv": _squares(*LADDER) + _shapes(*LLM_SHAPES),
                "dense_mm": _batches(4096, 4096, *BATCHES) + _batches(8192, 8192, *BATCHES)
                + tuple({"m": s, "n": s, "k": s} for s in (1024, 2048, 4096, 8192)),
                "lowrank_mv": tuple({"m": s, "n": s, "r": 16} for s in LADDER)
                + tuple({"m": 8192, "n": 8192, "r": r} for r in LOWRANK_RANKS)
                + tuple({"m": m, "n": n, "r": 16} for m, n in LLM_SHAPES),
                "lowrank_mm": tuple({"m": 4096, "n": b, "k": 4096, "r": 16} for b in BATCHES)
                + tuple({"m": 4096, "n": 256, "k": 4096, "r": r} for r in LOWRANK_RANKS),
                "lora_mv": tuple({"m": m, "n": n, "r": r, "scale": 2.0} for m, n in LLM_SHAPES for r in (8, 16, 64))
                + tuple({"m": 8192, "n": 8192, "r": r, "scale": 0.5} for r in LOWRANK_RANKS),
                "lora_mm": tuple({"m": 4096, "n": b, "k": 4096, "r": 16, "scale": 2.0} for b in BATCHES),
                "toeplitz_mv": _squares(*LADDER),  # the dense_mv ladder: claim C3 pairs them
                "toeplitz_mm": tuple({"m": 4096, "n": 4096, "k": k} for k in BATCHES),
                "csr_mv": tuple(c for s in (4096, 16384) for c in _csr({"m": s, "n": s}, "uniform", 0.0001, 0.001,
                                                                          0.01, 0.1, 0.3, 0.5)
                                + _csr({"m": s, "n": s}, "powerlaw", 0.001, 0.01, 0.1)
                                + _csr({"m": s, "n": s}, "banded", 0.001, 0.01, 0.1))
                + ({"m": 2**22, "n": 2**22, "matrix": "poisson2d", "grid": 2048},
                   {"m": 2**21, "n": 2**21, "matrix": "poisson3d", "grid": 128},
                   {"m": 2 * 1024**2, "n": 2 * 1024**2, "matrix": "elasticity2d", "grid": 1024})
                + _csr({"m": 2**20, "n": 2**20}, "uniform", 1e-6, 1e-5, 1e-4)
                + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-6, 1e-5, 1e-4),
                "csr_mm": tuple(c for b in (1, 8, 64, 256) for c in _csr({"m": 8192, "n": b, "k": 8192}, "uniform",
                                                                           0.001, 0.01, 0.05, 0.2)
                                + _csr({"m": 8192, "n": b, "k": 8192}, "powerlaw", 0.01)),
                "dense_mv_t": _squares(*LADDER) + _shapes(*LLM_SHAPES),
                "dense_mm_t": _batches(4096, 4096, *BATCHES),
                "lowrank_mv_t": tuple({"m": s, "n": s, "r": 16} for s in LADDER)
                + tuple({"m": 8192, "n": 8192, "r": r} for r in LOWRANK_RANKS),
                "lowrank_mm_t": tuple({"m": 4096, "n": b, "k": 4096, "r": 16} for b in BATCHES),
                "lora_mv_t": tuple({"m": m, "n": n, "r": 16, "scale": 2.0} for m, n in LLM_SHAPES),
                "lora_mm_t": tuple({"m": 4096, "n": b, "k": 4096, "r": 16, "scale": 2.0} for b in BATCHES),
                "toeplitz_mv_t": _squares(*LADDER),
                "toeplitz_mm_t": tuple({"m": 4096, "n": 4096, "k": k} for k in BATCHES),
                "csr_mv_t": tuple(c for s in (4096, 16384)
                                  for c in _csr({"m": s, "n": s}, "uniform", 0.0001, 0.001, 0.01, 0.1)
                                  + _csr({"m": s, "n": s}, "powerlaw", 0.001, 0.01))
                + _csr({"m": 2**20, "n": 2**20}, "uniform", 1e-5) + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
                "csr_mm_t": tuple(c for b in (1, 8, 64, 256)
                                  for c in _csr({"m": 8192, "n": b, "k": 8192}, "uniform", 0.001, 0.01)),
            },
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=200, budget_ms=200),
        ),
        Profile(
            "cpu", "CPU only: NumPy and torch-CPU baselines (no GPU here)",
            CPU_BACKENDS,
            {
                "dense_mv": _squares(256, 1024, 2048, 4096, 8192),  # 8192^2 fp32: 256 MB, beyond any LLC
                "dense_mm": _batches(1024, 1024, 1, 8, 64, 256),
                "lowrank_mv": tuple({"m": 2048, "n": 2048, "r": r} for r in (1, 16, 256)),
                "lowrank_mm": tuple({"m": 1024, "n": 64, "k": 1024, "r": r} for r in (4, 64)),
                "lora_mv": tuple({"m": 2048, "n": 2048, "r": r, "scale": s} for r, s in ((16, 2.0), (64, 0.5))),
                "lora_mm": ({"m": 1024, "n": 64, "k": 1024, "r": 16, "scale": 2.0},),
                "toeplitz_mv": _squares(256, 1024, 4096),
                "toeplitz_mm": tuple({"m": 1024, "n": 1024, "k": k} for k in (1, 8, 64)),
                "csr_mv": _csr({"m": 4096, "n": 4096}, "uniform", 0.001, 0.01, 0.05, 0.2, 0.5)
                + _csr({"m": 4096, "n": 4096}, "powerlaw", 0.01) + _csr({"m": 4096, "n": 4096}, "banded", 0.01)
                + ({"m": 600, "n": 600, "matrix": "bar"}, {"m": 65536, "n": 65536, "matrix": "poisson2d", "grid": 256}),
                "csr_mm": _csr({"m": 2048, "n": 16, "k": 2048}, "uniform", 0.001, 0.01, 0.1, 0.3),
                "dense_mv_t": _squares(256, 1024, 4096),
                "dense_mm_t": _batches(1024, 1024, 1, 64),
                "lowrank_mv_t": tuple({"m": 2048, "n": 2048, "r": r} for r in (1, 16, 256)),
                "lowrank_mm_t": ({"m": 1024, "n": 64, "k": 1024, "r": 4},),
                "lora_mv_t": ({"m": 2048, "n": 2048, "r": 16, "scale": 2.0},),
                "lora_mm_t": ({"m": 1024, "n": 64, "k": 1024, "r": 16, "scale": 2.0},),
                "toeplitz_mv_t": _squares(256, 1024, 4096),
                "toeplitz_mm_t": tuple({"m": 1024, "n": 1024, "k": k} for k in (1, 64)),
                "csr_mv_t": _csr({"m": 4096, "n": 4096}, "uniform", 0.001, 0.01, 0.1)
                + _csr({"m": 4096, "n": 4096}, "powerlaw", 0.01),
                "csr_mm_t": _csr({"m": 2048, "n": 16, "k": 2048}, "uniform", 0.01),
            },
            timing=TimingPolicy(warmup_ms=10, min_reps=5, max_reps=100, budget_ms=100, flush_l2=False),
        ),
        Profile(
            "smoke", "seconds: tiny shapes, for tests of the harness itself",
            CPU_BACKENDS + GPU_BACKENDS,
            {"dense_mv": _squares(33), "dense_mm": _batches(33, 17, 5),
             "toeplitz_mv": _shapes((33, 17)), "toeplitz_mm": ({"m": 33, "n": 17, "k": 5},),
             "csr_mv": _csr({"m": 33, "n": 33}, "uniform", 0.1),
             "csr_mm": _csr({"m": 33, "n": 5, "k": 17}, "powerlaw", 0.1),
             "lowrank_mv": ({"m": 33, "n": 17, "r": 4},), "lowrank_mm": ({"m": 33, "n": 5, "k": 17, "r": 4},),
             "lora_mv": ({"m": 33, "n": 17, "r": 4, "scale": 2.0},),
             "lora_mm": ({"m": 33, "n": 5, "k": 17, "r": 4, "scale": 2.0},),
             "dense_mv_t": _squares(33), "dense_mm_t": _batches(33, 17, 5),
             "lowrank_mv_t": ({"m": 33, "n": 17, "r": 4},), "lowrank_mm_t": ({"m": 33, "n": 5, "k": 17, "r": 4},),
             "lora_mv_t": ({"m": 33, "n": 17, "r": 4, "scale": 2.0},),
             "lora_mm_t": ({"m": 33, "n": 5, "k": 17, "r": 4, "scale": 2.0},),
             "toeplitz_mv_t": _shapes((17, 33)), "toeplitz_mm_t": ({"m": 17, "n": 33, "k": 5},),
             "csr_mv_t": _csr({"m": 33, "n": 33}, "uniform", 0.1),
             "csr_mm_t": _csr({"m": 33, "n": 5, "k": 17}, "powerlaw", 0.1)},
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
