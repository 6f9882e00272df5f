"""The re-check after timing: a kernel must still compute after its timed repetitions.

A kernel can pass the check before timing and then stop computing during the timed calls
(work skipped after a warm-up, a race that shows only under repetition) or return a result
cached from the first inputs, and be timed as impossibly fast (KernelBench issue 165,
llm.c PR 852, gpu-mode reference-kernels PR 159). So after timing, new random values are
written into the *same* input buffers (in place: a cache keyed on input pointers sees the
same pointers), the same output buffer is poisoned again, the kernel is called once and its
result verified against the reference of the new values.

The new values: the op's own generator at another seed for every value input; index
inputs (CSR's indptr and indices) are kept, so a sparse pattern stays valid, and a value
input whose new draw has another shape (CSR data of another nnz) is the old values in a
random order.
"""

from __future__ import annotations

import numpy as np

from structbench.core.cases import Bound, impl_reference
from structbench.core.dtypes import DType
from structbench.core.inputs import DeviceRandom, device_references
from structbench.core.registry import Impl, Inputs, Op, Params
from structbench.core.verify import problem

RECHECK_SEED_OFFSET = 0x5EC0  # the re-check's seed: the case's seed plus this
CHANGED = "result changed after timing"


def recheck_inputs(op: Op, host: Inputs, params: Params, dtype: DType, seed: int, *,
                   on_device: bool = False) -> tuple[Inputs, np.ndarray]:
    """New host inputs of the same shapes (index inputs kept) and the op's reference of them."""
    rng = np.random.default_rng(seed + RECHECK_SEED_OFFSET)
    drawn = op.make_inputs(params, dtype, DeviceRandom(seed + RECHECK_SEED_OFFSET) if on_device else rng)
    new = dict(host)
    for name in op.input_names:
        if name in op.index_inputs:
            continue
        old = np.asarray(host[name])
        fresh = np.asarray(drawn[name])
        new[name] = fresh if fresh.shape == old.shape else rng.permutation(old.reshape(-1)).reshape(old.shape)
    args = [new[name] for name in op.input_names]
    if on_device:
        with device_references():
            return new, op.reference(*args, **op.call_kwargs(params))
    return new, op.reference(*args, **op.call_kwargs(params))


def rewrite_inputs(op: Op, bound: Bound, host: Inputs, dtype: DType) -> None:
    """Write ``host``'s values into the buffers ``bound`` was timed with, in place, then
    redo its prepare step into its own buffers (a prepared object that cannot be written in
    place, a library's sparse matrix, is replaced: it is a baseline's, not a kernel's)."""
    raw = bound.raw_args if bound.raw_args is not None else bound.args
    for index, name in enumerate(op.input_names):
        if name in op.index_inputs:
            continue
        bound.backend.copy_into(raw[index], bound.backend.to_device(host[name], dtype))
    if bound.prepare is None:
        return
    prepared = list(bound.prepare(*raw))
    for index, (old, new) in enumerate(zip(bound.args, prepared)):
        if old is new:
            continue
        try:
            if getattr(old, "shape", None) != getattr(new, "shape", None):
                raise ValueError("another shape")
            bound.backend.copy_into(old, new)
        except Exception:  # noqa: BLE001 - not an array we can write: use the new object
            bound.args[index] = new
    bound.backend.synchronize()


def _unwritten(result: np.ndarray, poison: np.ndarray, reference: np.ndarray) -> bool:
    """Some element of the result still holds the poison where the reference has none."""
    if result.size == 0:
        return False
    if np.issubdtype(poison.dtype, np.floating):
        return bool((np.isnan(result) & ~np.isnan(reference)).any())
    return bool(((result == poison) & (reference != poison)).any())


def recheck(op: Op, impl: Impl, bound: Bound, out, host: Inputs, reference: np.ndarray, params: Params,
            dtype: DType, seed: int, *, on_device: bool = False,
            new_inputs: tuple[Inputs, np.ndarray] | None = None) -> str | None:
    """After timing: None when the kernel computes the new values right, else why not, one
    line starting with CHANGED and naming the cause (output not written, the earlier inputs'
    result, or a wrong answer). ``new_inputs``: recheck_inputs' result when the caller keeps
    it for every impl of one input set (drawing a 16384^2 set and its float64 reference per
    impl doubled a CPU sweep's time)."""
    new_host, new_reference = new_inputs or recheck_inputs(op, host, params, dtype, seed, on_device=on_device)
    new_reference = impl_reference(impl, new_host, params, dtype, new_reference)
    old_reference = impl_reference(impl, host, params, dtype, reference)
    rewrite_inputs(op, bound, new_host, dtype)
    poisoned = bound.new_output()
    bound.backend.copy_into(out, poisoned)
    bound.backend.synchronize()
    try:
        bound(out)
        bound.backend.synchronize()
    except Exception as exc:  # noqa: BLE001 - the kernel's own failure, named in the row
        return f"{CHANGED}: the call on new values raised {type(exc).__name__}: {exc}"[:400]
    result = bound.backend.to_host(out)
    wrong, _ = problem(result, new_reference, dtype)
    if wrong is None:
        return None
    what = "new random values written into the same input buffers"
    if _unwritten(result, bound.backend.to_host(poisoned), new_reference):
        return (f"{CHANGED}: the output was not written on {what} (the kernel stopped computing during the "
                f"timed calls): {wrong}")
    if problem(result, old_reference, dtype)[0] is None and problem(new_reference, old_reference, dtype)[0]:
        return (f"{CHANGED}: on {what} it returned the result of the earlier inputs (a result cached by input "
                "buffer, not computed)")
    return f"{CHANGED}: wrong answer on {what}: {wrong}"
