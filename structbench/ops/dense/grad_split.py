"""When the gradients' GEMMs and matvecs split their reduction (Triton and CUDA C alike).

The r-sized products of the low-rank gradients (r x n from a k-long reduction; U^T delta
from an m-long one) have few outputs and long reductions: a grid of one tile per output
block would leave the GPU nearly idle. Below SPLIT_BELOW_TILES output tiles the reduction
is cut into slices of at least SPLIT_MIN_LENGTH (at most MAX_SPLITS), each program writes
its partial sums into an fp32 workspace, and a second launch adds them in a fixed order
(deterministic; one rounding). A rule of the shape alone, not of the SM count, so the
interpreter and the CUDA-on-CPU tests take the split path on their own shapes too.
"""

from __future__ import annotations

SPLIT_BELOW_TILES = 64
SPLIT_MIN_LENGTH = 256
MAX_SPLITS = 32


def splits(tiles: int, length: int, step: int) -> tuple[int, int]:
    """(number of slices, slice length: a multiple of ``step``) of a reduction of ``length``
    feeding ``tiles`` output tiles."""
    wanted = 1 if tiles >= SPLIT_BELOW_TILES else max(1, min(MAX_SPLITS, length // SPLIT_MIN_LENGTH))
    per_split = max(1, -(-(-(-max(length, 1) // wanted)) // step)) * step
    return max(1, -(-length // per_split)), per_split
