"""Shards of a sweep for a cluster scheduler: ``structbench run --shard I/N``.

N jobs of any scheduler (a Slurm array, a Kubernetes indexed Job, a shell loop) each
run ``--shard I/N`` of the same profile and filters and together cover every case
exactly once. The partition is a pure function of the planned case list:

- the unit dealt out is an *input set* (op, dtype, shape and params): every
  implementation of one input set lands in the same shard, so the inputs and their
  float64 reference are generated once, as in an unsharded run, and the
  implementations of one case are timed on the same machine, side by side;
- input sets are dealt largest first to the least-loaded shard (longest processing
  time first), by an estimated cost, so shards finish together; ties are broken by a
  stable hash of the input set's key (crc32, not Python's salted ``hash``), so every
  job computes the same partition, whatever its process or machine.
"""

from __future__ import annotations

import heapq
import re
import zlib
from collections.abc import Callable, Iterable

from structbench.run.runner import Case

SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# Estimated seconds per case beyond its timing budget: worker round trip, verification,
# compilation amortised over a sweep (a planning figure, not a measurement).
CASE_OVERHEAD_S = 0.3


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N; a ValueError naming what is wrong otherwise."""
    match = SHARD_PATTERN.match(text or "")
    if not match:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shard I of N, counted from 0)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f"--shard {text!r}: the shard count N must be at least 1")
    if index >= count:
        raise ValueError(f"--shard {text!r}: the shard index I must be in 0..{count - 1}")
    return index, count


def input_set(case: Case) -> tuple:
    """What the implementations of one case share: op, dtype and params."""
    return case.op, case.dtype, case.params


def stable_hash(key: object) -> int:
    return zlib.crc32(repr(key).encode())


def default_cost(case: Case, budget_ms: float = 50.0, warmup_ms: float = 25.0) -> float:
    """Estimated seconds of one case: its timing budget and warm-up, plus overhead."""
    return (budget_ms + warmup_ms) / 1e3 + CASE_OVERHEAD_S


def partition(cases: Iterable[Case], count: int,
              cost: Callable[[Case], float] = default_cost) -> list[list[Case]]:
    """The cases of each of ``count`` shards, each in the planned order."""
    cases = list(cases)
    groups: dict[tuple, list[int]] = {}
    for position, case in enumerate(cases):
        groups.setdefault(input_set(case), []).append(position)
    weighted = sorted(groups.items(),
                      key=lambda item: (-sum(cost(cases[p]) for p in item[1]), stable_hash(item[0])))
    loads = [(0.0, shard) for shard in range(count)]  # a heap of (load, shard index)
    members: list[list[int]] = [[] for _ in range(count)]
    for key, positions in weighted:
        load, shard = heapq.heappop(loads)
        members[shard].extend(positions)
        heapq.heappush(loads, (load + sum(cost(cases[p]) for p in positions), shard))
    return [[cases[p] for p in sorted(positions)] for positions in members]


def shard_cases(cases: Iterable[Case], index: int, count: int,
                cost: Callable[[Case], float] = default_cost) -> list[Case]:
    """Shard ``index`` of ``count`` (0-based) of the planned cases."""
    return partition(cases, count, cost)[index]
