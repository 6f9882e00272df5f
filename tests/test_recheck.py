"""The re-check after timing (structbench/core/recheck.py): a kernel that stops computing
during the timed calls, or returns a result cached by input pointer, is an error row that
names the cause; its timing is kept; an honest implementation beside it stays ok.

The planted kernels are registered in a test Registry here. When the plugin path lands
(`structbench.register_kernel`, `run --suite FILE.py`), PLANTED_SUITE below is the same
scenario as a user suite: `test_done_means_scenario` is written to switch to `--suite`
by replacing `registry_with_planted()` with the suite file.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from structbench.core.registry import Registry, ours
from structbench.measure.timing import TimingPolicy
from structbench.ops import dense
from structbench.run.results import ResultWriter
from structbench.run.runner import Case, SweepSettings, run_case
from structbench.run.sweep import InProcessExecutor, run_sweep

POLICY = TimingPolicy(warmup_ms=0, min_reps=10, max_reps=10, budget_ms=0, flush_l2=False)
SETTINGS = SweepSettings(policy=POLICY)


class StopsAfterFive:
    """Computes y = A x for its first five calls, then returns without writing."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, a, x, *, out):
        self.calls += 1
        if self.calls <= 5:
            np.matmul(a, x, out=out)
        return out


class CachesByPointer:
    """Computes y = A x once per (A, x) address, then copies that result."""

    def __init__(self) -> None:
        self.cache: dict = {}

    def __call__(self, a, x, *, out):
        key = (a.__array_interface__["data"][0], x.__array_interface__["data"][0])
        if key not in self.cache:
            self.cache[key] = a @ x
        np.copyto(out, self.cache[key])
        return out


stops_after_five = StopsAfterFive()
caches_by_pointer = CachesByPointer()

# The "Done means" scenario as a user suite file (test_done_means_through_a_user_suite).
PLANTED_SUITE = '''
import numpy as np
import structbench

calls = [0]
cache = {}

@structbench.register_kernel(op="dense_mv", name="stops-after-5", backend="numpy", dtypes=("fp32",))
def stops_after_five(a, x, *, out):
    calls[0] += 1
    if calls[0] <= 5:
        np.matmul(a, x, out=out)
    return out

@structbench.register_kernel(op="dense_mv", name="caches-by-pointer", backend="numpy", dtypes=("fp32",))
def caches_by_pointer(a, x, *, out):
    key = (a.__array_interface__["data"][0], x.__array_interface__["data"][0])
    if key not in cache:
        cache[key] = a @ x
    np.copyto(out, cache[key])
    return out
'''


def registry_with_planted() -> Registry:
    registry = Registry()
    dense.register(registry)
    for name, target in (("stops-after-5", "stops_after_five"), ("caches-by-pointer", "caches_by_pointer")):
        registry.add_impl(ours("dense_mv", name, backend="numpy", target=f"tests.test_recheck:{target}",
                               dtypes=("fp32",)))
    return registry


def _case(impl: str, m: int = 512, n: int = 512) -> Case:
    return Case("dense_mv", impl, "fp32", (("m", m), ("n", n)))


def test_done_means_scenario(tmp_path):
    """dense_mv fp32 512x512: numpy ok, the two planted kernels error rows naming the cause."""
    stops_after_five.calls, caches_by_pointer.cache = 0, {}
    out = tmp_path / "planted.csv"
    with ResultWriter(out) as writer:
        run_sweep(InProcessExecutor("tests.test_recheck:registry_with_planted", SETTINGS), [_case("numpy"), _case("stops-after-5"),
                                                           _case("caches-by-pointer")], writer)
    rows = {r["impl"]: r for r in csv.DictReader(out.open())}
    assert rows["numpy"]["status"] == "ok", rows["numpy"]["error"]
    stopped, cached = rows["stops-after-5"], rows["caches-by-pointer"]
    assert stopped["status"] == "error" and "result changed after timing" in stopped["error"]
    assert "not written" in stopped["error"] and "stopped computing" in stopped["error"]
    assert cached["status"] == "error" and "result changed after timing" in cached["error"]
    assert "earlier inputs" in cached["error"] and "cached by input buffer" in cached["error"]
    for row in (stopped, cached):  # the timing is kept for the record
        assert float(row["time_ms_p50"]) > 0 and int(row["reps"]) == 10
        assert row["pct_of_bw"] == ""  # ...but no fraction of a ceiling: it decides nothing


def test_honest_impls_pass_the_recheck_on_every_family_shape():
    """Index inputs are kept (a CSR pattern stays valid) and prepared baselines are redone."""
    from structbench.core.registry import default_registry

    registry = default_registry()
    for case in (Case("csr_mv", "scipy", "fp32", (("m", 33), ("n", 7), ("density", 0.3), ("dist", "uniform"))),
                 Case("toeplitz_mv", "dense-numpy", "fp32", (("m", 7), ("n", 33))),
                 Case("csr_mv", "torch-cpu", "fp32", (("m", 33), ("n", 7), ("density", 0.3), ("dist", "uniform"))),
                 Case("lowrank_mv", "dense-torch-cpu", "fp16", (("m", 33), ("n", 7), ("r", 3))),
                 Case("dense_mv", "triton", "int8", (("m", 7), ("n", 33))),
                 Case("dense_mv", "torch-cpu", "bf16", (("m", 7), ("n", 33))),
                 Case("dense_mv", "numpy", "fp32", (("m", 0), ("n", 7)))):
        if case.impl not in {i.name for i in registry.impls(case.op)}:
            pytest.skip(f"{case.op} has no {case.impl} impl in this tree")
        row, _ = run_case(registry, case, SETTINGS, {})
        assert row["status"] == "ok", (case.label(), row["error"])


def test_recheck_writes_the_same_buffers_and_shared_copies_are_rebound():
    """The buffers a kernel was timed with get the new values (pointers unchanged), and the
    input cache drops its device copies so the next impl is bound to the original values."""
    from structbench.core.cases import bind, make_host_case
    from structbench.core.dtypes import get_dtype
    from structbench.core.recheck import recheck_inputs, rewrite_inputs

    registry = registry_with_planted()
    op, impl, fp32 = registry.op("dense_mv"), registry.impl("dense_mv", "numpy"), get_dtype("fp32")
    host, _ = make_host_case(op, {"m": 9, "n": 5}, fp32, 1)
    bound = bind(op, impl, host, {"m": 9, "n": 5}, fp32)
    pointers = [a.__array_interface__["data"][0] for a in bound.args]
    new_host, new_reference = recheck_inputs(op, host, {"m": 9, "n": 5}, fp32, 1)
    assert not np.allclose(new_host["a"], host["a"])
    rewrite_inputs(op, bound, new_host, fp32)
    assert [a.__array_interface__["data"][0] for a in bound.args] == pointers
    np.testing.assert_allclose(bound.args[0], new_host["a"].astype(np.float32))
    np.testing.assert_allclose(bound(bound.new_output()), new_reference, rtol=1e-4, atol=1e-4)


def test_done_means_through_a_user_suite(tmp_path):
    """The issue's scenario as a user would run it: a suite file outside the repository,
    `structbench run --suite`, the default isolated worker; numpy ok, the two planted
    kernels error rows naming the cause."""
    import subprocess
    import sys

    suite = tmp_path / "planted_suite.py"
    suite.write_text(PLANTED_SUITE)
    out = tmp_path / "planted.csv"
    done = subprocess.run([sys.executable, "-m", "structbench", "run", "--suite", str(suite), "--op", "dense_mv",
                           "--impl", "numpy,stops-after-5,caches-by-pointer", "--dtype", "fp32",
                           "--shape", "m=512,n=512", "--no-calibrate", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    rows = {r["impl"]: r for r in csv.DictReader(out.open())}
    assert rows["numpy"]["status"] == "ok", rows["numpy"]["error"]
    assert rows["stops-after-5"]["status"] == "error" and "stopped computing" in rows["stops-after-5"]["error"]
    cached = rows["caches-by-pointer"]
    assert cached["status"] == "error" and "cached by input buffer" in cached["error"]
    assert rows["stops-after-5"]["source"] == rows["caches-by-pointer"]["source"] == "planted_suite"
