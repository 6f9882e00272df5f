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

from structbench.core.backends import cuda_reason
from structbench.core.dtypes import BENCH_DTYPES
from structbench.measure.timing import TimingPolicy

GPU_BACKENDS = ("triton", "cupy", "torch-cuda", "cupy-lib")
CPU_BACKENDS = ("numpy", "torch-cpu")


def _squares(*sizes: int) -> tuple[dict, ...]:
    return tuple({"m": s, "n": s} for s in sizes)


def _batches(m: int, k: int, *batch_sizes: int) -> tuple[dict, ...]:
    return tuple({"m": m, "n": b, "k": k} for b in batch_sizes)


def _shapes(*pairs: tuple[int, int]) -> tuple[dict, ...]:
    return tuple({"m": m, "n": n} for m, n in pairs)


def _csr(dims: dict, dist: str, *densities: float) -> tuple[dict, ...]:
    """Generated CSR patterns (structbench/ops/sparse/__init__.py) of one shape at several densities."""
    return tuple({**dims, "density": d, "dist": dist} for d in densities)


def _layer(c_in: int, n: int, c_out: int, kernel: int, **geometry) -> dict:
    """A 1-D layer shape of the conv_* / local_* ops (structbench/ops/conv)."""
    return {"c_in": c_in, "n": n, "c_out": c_out, "kernel": kernel, **geometry}


def _depthwise(channels: int, n: int, kernel: int, **geometry) -> dict:
    return _layer(channels, n, channels, kernel, groups=channels, **geometry)


def _batched(batch: int, *shapes: dict) -> tuple[dict, ...]:
    return tuple({"batch": batch, **s} for s in shapes)


# Real 1-D layers. wav2vec2's feature encoder: 16,000 samples -> 512 channels (K 10,
# stride 5), then 512 -> 512 with K 3 / K 2 at stride 2 (lengths 3199 ... 99); a ResNet-1D
# stage; Mamba's causal depthwise K 4 short convolution; a Hyena-style long causal filter
# (K = n: where the FFT baseline should win).
W2V_FIRST = _layer(1, 16000, 512, 10, stride=5)
W2V_LATER = _layer(512, 3199, 512, 3, stride=2)
W2V_LAST = _layer(512, 99, 512, 2, stride=2)
RESNET_S1 = _layer(256, 4096, 256, 3, padding=1)
RESNET_S2 = _layer(256, 4096, 256, 3, stride=2, padding=1)
MAMBA_SMALL = _depthwise(2048, 2048, 4, padding="causal")
MAMBA_LARGE = _depthwise(5120, 8192, 4, padding="causal")
HYENA = _depthwise(64, 4096, 4096, padding="causal")
# "One layer, three matrices": layers whose dense matrix still fits (<= 4 GiB at fp32) while
# the locally-connected form moves enough bytes (~60 MB at fp32) to stand above the launch
# floor, so conv, locally-connected (ours and CSR) and dense are measured side by side (a
# depthwise layer cannot have both: its local form holds only c n K numbers). The
# convolution itself moves kilobytes here: launch-bound, it decides the order only.
THREE_MATRICES = (_layer(32, 1024, 32, 15, padding=7),  # a 1-D ResNet stem-like K 15: 32768 x 32768
                  _layer(64, 512, 64, 7, padding=3),  # a narrow 1-D stage, K 7: 32768 x 32768
                  _layer(1, 4000, 512, 10, stride=5))  # wav2vec2's first layer on 0.25 s: 409088 x 4000
CPU_THREE_MATRICES = (_layer(32, 256, 32, 3, padding=1), _depthwise(64, 128, 4, padding="causal"),
                      _layer(1, 1000, 64, 10, stride=5))

LADDER = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
LLM_SHAPES = ((4096, 4096), (4096, 11008), (11008, 4096), (8192, 28672), (28672, 8192))
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
LOWRANK_RANKS = (1, 4, 16, 64, 256)


# The parameter gradients (issue 22; structbench/ops/<family>/grad.py), per profile: the
# forward ops' shapes where claims pair them (gradient bytes against forward bytes).
GRAD_SHAPES: dict[str, dict[str, tuple[dict, ...]]] = {
    "quick": {
        "dense_grad_mv": _squares(4096, 16384) + ({"m": 4096, "n": 11008},),
        "dense_grad_mm": _batches(4096, 4096, 16, 256, 1024),
        "dense_sgd_mv": _squares(4096, 16384),
        "lowrank_grad_mv": tuple({"m": 16384, "n": 16384, "r": r} for r in (16, 256)),
        "lowrank_grad_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16},),
        "lora_grad_mv": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},),
        "lora_grad_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
        "toeplitz_grad_mv": _squares(4096, 16384),
        "toeplitz_grad_mm": tuple({"m": 4096, "n": 4096, "k": k} for k in (16, 256)),
        "csr_grad_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.1)
        + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
        "csr_grad_mm": _csr({"m": 8192, "n": 64, "k": 8192}, "uniform", 0.01)
        + _csr({"m": 8192, "n": 64, "k": 8192}, "powerlaw", 0.01),
    },
    "gpu-check": {  # the mv forms at one shape each (the mm forms: quick, full)
        "dense_grad_mv": _squares(8192),
        "dense_sgd_mv": _squares(8192),
        "lowrank_grad_mv": ({"m": 16384, "n": 16384, "r": 16},),
        "lora_grad_mv": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},),
        "toeplitz_grad_mv": _squares(16384),
        "csr_grad_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.01),
    },
    "full": {
        "dense_grad_mv": _squares(*LADDER) + _shapes(*LLM_SHAPES),
        "dense_grad_mm": _batches(4096, 4096, *BATCHES),
        "dense_sgd_mv": _squares(*LADDER) + _shapes(*LLM_SHAPES),
        "lowrank_grad_mv": tuple({"m": s, "n": s, "r": 16} for s in LADDER)
        + tuple({"m": 8192, "n": 8192, "r": r} for r in LOWRANK_RANKS),
        "lowrank_grad_mm": tuple({"m": 4096, "n": b, "k": 4096, "r": 16} for b in BATCHES),
        "lora_grad_mv": tuple({"m": m, "n": n, "r": 16, "scale": 2.0} for m, n in LLM_SHAPES),
        "lora_grad_mm": tuple({"m": 4096, "n": b, "k": 4096, "r": 16, "scale": 2.0} for b in BATCHES),
        "toeplitz_grad_mv": _squares(*LADDER),
        "toeplitz_grad_mm": tuple({"m": 4096, "n": 4096, "k": k} for k in BATCHES),
        "csr_grad_mv": tuple(c for s in (4096, 16384) for c in _csr({"m": s, "n": s}, "uniform", 0.001, 0.01, 0.1)
                             + _csr({"m": s, "n": s}, "powerlaw", 0.001, 0.01))
        + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
        "csr_grad_mm": tuple(c for b in (1, 8, 64, 256) for c in _csr({"m": 8192, "n": b, "k": 8192}, "uniform", 0.01)),
    },
    "cpu": {  # one shape each, at the forward op's 8192^2 (past the cache knee): claim C7 pairs them
        "dense_grad_mv": _squares(8192),
        "dense_grad_mm": _batches(2048, 2048, 64),
        "dense_sgd_mv": _squares(4096),  # the update step, cheaply (C7 does not judge it)
        "lowrank_grad_mv": ({"m": 8192, "n": 8192, "r": 16},),
        "lowrank_grad_mm": ({"m": 1024, "n": 64, "k": 1024, "r": 16},),
        "lora_grad_mv": ({"m": 8192, "n": 8192, "r": 16, "scale": 2.0},),
        "lora_grad_mm": ({"m": 1024, "n": 64, "k": 1024, "r": 16, "scale": 2.0},),
        "toeplitz_grad_mv": _squares(8192),
        "toeplitz_grad_mm": ({"m": 1024, "n": 1024, "k": 8},),
        "csr_grad_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.01),
        "csr_grad_mm": _csr({"m": 2048, "n": 16, "k": 2048}, "uniform", 0.01),
    },
}

# The transposed products (input gradients, the backward pass's A^T y) at their forward
# op's shapes, per profile (issue 22, part 1).
TRANSPOSED_SHAPES: dict[str, dict[str, tuple[dict, ...]]] = {
    "quick": {
        "dense_mv_t": _squares(1024, 4096, 16384) + ({"m": 4096, "n": 11008}, {"m": 11008, "n": 4096}),
        "dense_mm_t": _batches(4096, 4096, 1, 16, 256, 4096),
        "lowrank_mv_t": tuple({"m": 16384, "n": 16384, "r": r} for r in (1, 16, 256)) + ({"m": 64, "n": 65536, "r": 8},),
        "lowrank_mm_t": tuple({"m": 4096, "n": n, "k": 4096, "r": r} for n, r in ((64, 64), (256, 16))),
        "lora_mv_t": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0}, {"m": 16384, "n": 16384, "r": 64, "scale": 0.5},
                      {"m": 64, "n": 8192, "r": 8, "scale": 1.0}),
        "lora_mm_t": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
        "toeplitz_mv_t": _squares(1024, 4096, 16384),
        "toeplitz_mm_t": tuple({"m": 4096, "n": 4096, "k": k} for k in (1, 16, 256)),
        "csr_mv_t": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.1) + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
        "csr_mm_t": _csr({"m": 8192, "n": 64, "k": 8192}, "uniform", 0.01),
    },
    "gpu-check": {  # one memory-bound shape each
        "dense_mv_t": _squares(8192),
        "dense_mm_t": _batches(4096, 4096, 16, 256),
        "lowrank_mv_t": ({"m": 16384, "n": 16384, "r": 16},),
        "lora_mv_t": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},),
        "lora_mm_t": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
        "toeplitz_mv_t": _squares(4096),
        "csr_mv_t": _csr({"m": 8192, "n": 8192}, "uniform", 0.01),
    },
    "full": {
        "dense_mv_t": _squares(*LADDER) + _shapes(*LLM_SHAPES),
        "dense_mm_t": _batches(4096, 4096, *BATCHES),
        "lowrank_mv_t": tuple({"m": s, "n": s, "r": 16} for s in LADDER)
        + tuple({"m": 8192, "n": 8192, "r": r} for r in LOWRANK_RANKS),
        "lowrank_mm_t": tuple({"m": 4096, "n": b, "k": 4096, "r": 16} for b in BATCHES),
        "lora_mv_t": tuple({"m": m, "n": n, "r": 16, "scale": 2.0} for m, n in LLM_SHAPES),
        "lora_mm_t": tuple({"m": 4096, "n": b, "k": 4096, "r": 16, "scale": 2.0} for b in BATCHES),
        "toeplitz_mv_t": _squares(*LADDER),
        "toeplitz_mm_t": tuple({"m": 4096, "n": 4096, "k": k} for k in BATCHES),
        "csr_mv_t": tuple(c for s in (4096, 16384) for c in _csr({"m": s, "n": s}, "uniform", 0.0001, 0.001, 0.01, 0.1)
                          + _csr({"m": s, "n": s}, "powerlaw", 0.001, 0.01))
        + _csr({"m": 2**20, "n": 2**20}, "uniform", 1e-5) + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
        "csr_mm_t": tuple(c for b in (1, 8, 64, 256) for c in _csr({"m": 8192, "n": b, "k": 8192}, "uniform", 0.001, 0.01)),
    },
    "cpu": {  # one shape each where the forward's dense product is past the cache knee
        "dense_mv_t": _squares(8192),
        "dense_mm_t": _batches(2048, 2048, 64),
        "lowrank_mv_t": ({"m": 8192, "n": 8192, "r": 16},),
        "lowrank_mm_t": ({"m": 1024, "n": 64, "k": 1024, "r": 4},),
        "lora_mv_t": ({"m": 8192, "n": 8192, "r": 16, "scale": 2.0},),
        "lora_mm_t": ({"m": 1024, "n": 64, "k": 1024, "r": 16, "scale": 2.0},),
        "toeplitz_mv_t": _squares(8192),
        "toeplitz_mm_t": ({"m": 1024, "n": 1024, "k": 64},),
        "csr_mv_t": _csr({"m": 8192, "n": 8192}, "uniform", 0.01),
        "csr_mm_t": _csr({"m": 2048, "n": 16, "k": 2048}, "uniform", 0.01),
    },
}


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    backends: tuple[str, ...]
    shapes: dict[str, tuple[dict, ...]]  # op name -> shape parameters to measure
    dtypes: tuple[str, ...] = BENCH_DTYPES
    timing: TimingPolicy = field(default_factory=TimingPolicy)
    # op name -> the dtypes measured for it, where fewer than ``dtypes`` (a CPU's slow paths:
    # numpy's fp16/int8 GEMM at a batch of 64 would take minutes and decide nothing).
    op_dtypes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def dtypes_for(self, op: str) -> tuple[str, ...]:
        return self.op_dtypes.get(op, self.dtypes)


# The backward ops of the convolution and locally-connected layers (issue 22): the
# forward's real layers (wav2vec2's strided layers: the transposed product's scatter
# pattern), kept out of gpu-check (its plan must fit 8 minutes).
LAYER_BACKWARD_SHAPES: dict[str, dict[str, tuple[dict, ...]]] = {
    "quick": {
        "conv_mv_t": (W2V_FIRST, W2V_LATER, RESNET_S2, MAMBA_SMALL),
        "conv_mm_t": _batched(8, RESNET_S1) + _batched(4, MAMBA_SMALL),
        "conv_grad_mv": (W2V_FIRST, W2V_LATER, RESNET_S2, MAMBA_SMALL),
        "conv_grad_mm": _batched(8, RESNET_S1) + _batched(4, MAMBA_SMALL),
        "local_mv_t": THREE_MATRICES + (W2V_FIRST, MAMBA_SMALL),
        "local_mm_t": _batched(8, _layer(256, 256, 256, 3, padding=1)),
        "local_grad_mv": THREE_MATRICES + (W2V_FIRST, MAMBA_SMALL),
        "local_grad_mm": _batched(8, _layer(256, 256, 256, 3, padding=1)),
    },
    "full": {
        "conv_mv_t": (W2V_FIRST, W2V_LATER, W2V_LAST, RESNET_S1, RESNET_S2, MAMBA_SMALL, MAMBA_LARGE),
        "conv_mm_t": _batched(8, W2V_FIRST, W2V_LATER, RESNET_S1, RESNET_S2)
        + tuple({"batch": b, **MAMBA_SMALL} for b in (1, 4, 16)),
        "conv_grad_mv": (W2V_FIRST, W2V_LATER, W2V_LAST, RESNET_S1, RESNET_S2, MAMBA_SMALL, MAMBA_LARGE),
        "conv_grad_mm": _batched(8, W2V_FIRST, W2V_LATER, RESNET_S1, RESNET_S2)
        + tuple({"batch": b, **MAMBA_SMALL} for b in (1, 4, 16)),
        "local_mv_t": THREE_MATRICES + (W2V_FIRST, _layer(512, 199, 512, 2, stride=2),
                                        _layer(256, 1024, 256, 3, padding=1), MAMBA_SMALL),
        "local_mm_t": tuple({"batch": b, **_layer(256, 256, 256, 3, padding=1)} for b in (1, 8, 64)),
        "local_grad_mv": THREE_MATRICES + (W2V_FIRST, _layer(512, 199, 512, 2, stride=2),
                                           _layer(256, 1024, 256, 3, padding=1), MAMBA_SMALL),
        "local_grad_mm": tuple({"batch": b, **_layer(256, 256, 256, 3, padding=1)} for b in (1, 8, 64)),
    },
    "cpu": {  # one cheap shape each
        "conv_mv_t": (_layer(32, 256, 32, 3, stride=2, padding=1),),
        "conv_mm_t": _batched(4, _layer(32, 256, 32, 3, padding=1)),
        "conv_grad_mv": (_layer(32, 256, 32, 3, stride=2, padding=1),),
        "conv_grad_mm": _batched(4, _layer(32, 256, 32, 3, padding=1)),
        "local_mv_t": (_layer(32, 256, 32, 3, stride=2, padding=1),),
        "local_mm_t": _batched(4, _layer(32, 256, 32, 3, padding=1)),
        "local_grad_mv": (_layer(32, 256, 32, 3, stride=2, padding=1),),
        "local_grad_mm": _batched(4, _layer(32, 256, 32, 3, padding=1)),
    },
}


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
                **GRAD_SHAPES["quick"],
                **TRANSPOSED_SHAPES["quick"],
                **LAYER_BACKWARD_SHAPES["quick"],
                "conv_mv": THREE_MATRICES + (W2V_FIRST, W2V_LATER, RESNET_S2, MAMBA_SMALL, HYENA),
                "conv_mm": _batched(8, RESNET_S1) + _batched(4, MAMBA_SMALL),
                "local_mv": THREE_MATRICES + (W2V_FIRST, MAMBA_SMALL),
                "local_mm": _batched(8, _layer(256, 256, 256, 3, padding=1)),
            },
            # ~900 cases: a 50 ms budget per case keeps the sweep near its 3-minute target.
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=200, budget_ms=50),
        ),
        Profile(
            "gpu-check", "GPU, first run (scripts/gpu_check.sh): the claims' shapes, ~5 min by the plan",
            GPU_BACKENDS,
            {
                # C1/C2/C4: the dense_mv ladder (and one LLM shape); C5: the batch ladder.
                "dense_mv": _squares(1024, 2048, 4096, 8192, 16384) + ({"m": 4096, "n": 11008},),
                "dense_mm": _batches(4096, 4096, 1, 4, 16, 64, 256, 1024),
                # C3: the structured ops at dense_mv shapes; the rest at one large shape each.
                "lowrank_mv": ({"m": 16384, "n": 16384, "r": 16}, {"m": 8192, "n": 8192, "r": 256}),
                "lowrank_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16},),
                "lora_mv": ({"m": 4096, "n": 11008, "r": 16, "scale": 2.0},),
                "lora_mm": ({"m": 4096, "n": 256, "k": 4096, "r": 16, "scale": 2.0},),
                "toeplitz_mv": _squares(4096, 16384),
                "toeplitz_mm": ({"m": 4096, "n": 4096, "k": 16},),
                "csr_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.1)
                + _csr({"m": 2**20, "n": 2**20}, "powerlaw", 1e-5),
                "csr_mm": _csr({"m": 8192, "n": 64, "k": 8192}, "uniform", 0.01)
                + _csr({"m": 8192, "n": 64, "k": 8192}, "powerlaw", 0.01),
                **GRAD_SHAPES["gpu-check"],
                **TRANSPOSED_SHAPES["gpu-check"],
                # "one layer, three matrices" (conv vs local vs dense), and conv against cuDNN
                # at the real layers: wav2vec2, Mamba, a Hyena long filter (vs FFT).
                "conv_mv": THREE_MATRICES + (W2V_FIRST, MAMBA_SMALL, HYENA),
                "local_mv": THREE_MATRICES,
            },
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=100, budget_ms=50),
            # The plan must fit the script's 8 minutes: the layers and the backward ops in the
            # precisions their claims compare (fp32 and bf16 training, the gradients in bf16).
            op_dtypes={**{op: ("fp32", "bf16") for op in ("conv_mv", "local_mv", *TRANSPOSED_SHAPES["gpu-check"])},
                       **{op: ("bf16",) for op in GRAD_SHAPES["gpu-check"]}},
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
                **GRAD_SHAPES["full"],
                **TRANSPOSED_SHAPES["full"],
                **LAYER_BACKWARD_SHAPES["full"],
                "conv_mv": THREE_MATRICES + (W2V_FIRST, W2V_LATER, W2V_LAST, RESNET_S1, RESNET_S2, MAMBA_SMALL,
                                             MAMBA_LARGE, HYENA, _depthwise(128, 8192, 8192, padding="causal")),
                "conv_mm": _batched(8, W2V_FIRST, W2V_LATER, RESNET_S1, RESNET_S2)
                + tuple({"batch": b, **MAMBA_SMALL} for b in (1, 4, 16)) + _batched(2, MAMBA_LARGE),
                "local_mv": THREE_MATRICES + (W2V_FIRST, _layer(512, 199, 512, 2, stride=2),
                                              _layer(256, 1024, 256, 3, padding=1), MAMBA_SMALL),
                "local_mm": tuple({"batch": b, **_layer(256, 256, 256, 3, padding=1)} for b in (1, 8, 64))
                + _batched(4, MAMBA_SMALL),
            },
            timing=TimingPolicy(warmup_ms=25, min_reps=10, max_reps=200, budget_ms=200),
        ),
        Profile(
            "cpu", "CPU only: NumPy and torch-CPU baselines (no GPU here), past the measured cache knee",
            CPU_BACKENDS,
            {
                # C1/C2/C4: a sqrt(2) ladder to 16384^2 (fp32 1 GiB, int8 256 MiB), far past the
                # cache knee calibration measures (tens to a few hundred MiB on a 2-vCPU VM,
                # whose sysfs reports the host's whole L3); the small sizes show the cache.
                "dense_mv": _squares(1024, 4096, 8192, 11585, 16384),
                # C5: batches at a 256 MiB fp32 matrix (past the knee), fp32 and bf16 only.
                "dense_mm": _batches(8192, 8192, 1, 64),
                # C3: structured matvecs at a shape where dense is memory-bound (8192^2).
                "lowrank_mv": tuple({"m": 8192, "n": 8192, "r": r} for r in (1, 16)),
                "lowrank_mm": ({"m": 2048, "n": 64, "k": 2048, "r": 16},),
                "lora_mv": ({"m": 8192, "n": 8192, "r": 16, "scale": 2.0},),
                "lora_mm": ({"m": 2048, "n": 64, "k": 2048, "r": 16, "scale": 2.0},),
                "toeplitz_mv": _squares(1024, 8192),
                "toeplitz_mm": ({"m": 2048, "n": 2048, "k": 16},),
                "csr_mv": _csr({"m": 8192, "n": 8192}, "uniform", 0.001, 0.01, 0.05, 0.2)
                + _csr({"m": 8192, "n": 8192}, "powerlaw", 0.01)
                + ({"m": 65536, "n": 65536, "matrix": "poisson2d", "grid": 256},),
                "csr_mm": _csr({"m": 2048, "n": 16, "k": 2048}, "uniform", 0.01, 0.1),
                **GRAD_SHAPES["cpu"],
                **TRANSPOSED_SHAPES["cpu"],
                **LAYER_BACKWARD_SHAPES["cpu"],
                "conv_mv": CPU_THREE_MATRICES + (W2V_FIRST, _depthwise(512, 2048, 4, padding="causal"),
                                                 _depthwise(16, 2048, 2048, padding="causal")),
                "conv_mm": _batched(4, _layer(32, 256, 32, 3, padding=1)),
                "local_mv": CPU_THREE_MATRICES,
                "local_mm": _batched(4, _layer(32, 256, 32, 3, padding=1)),
            },
            timing=TimingPolicy(warmup_ms=10, min_reps=5, max_reps=100, budget_ms=100, flush_l2=False),
            # Slow paths kept small: numpy has no fp16/int8 GEMM (a loop), so the batch ladder
            # and the structured ops' dense products run where a library computes fast.
            # The backward ops in fp32, the precision C7 pairs them with their forward op in:
            # the cpu profile's 5 minutes (their fp16/bf16/int8 kernels are checked by make test).
            op_dtypes={**{op: ("fp32",) for shapes in (GRAD_SHAPES["cpu"], TRANSPOSED_SHAPES["cpu"],
                                                     LAYER_BACKWARD_SHAPES["cpu"]) for op in shapes},
                       "dense_mm": ("fp32", "bf16"), "lowrank_mv": ("fp32", "bf16"), "lora_mv": ("fp32", "bf16"),
                       "toeplitz_mv": ("fp32", "bf16"), "csr_mv": ("fp32", "bf16")},
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
             "lora_mm": ({"m": 33, "n": 5, "k": 17, "r": 4, "scale": 2.0},)},
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
