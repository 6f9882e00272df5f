"""Parameter gradients (issue 22, part 2): the float64 references against torch.autograd in
float64 through the forward formula (so a wrong formula cannot hide behind a kernel that
matches it), the forward formula against the forward reference, bad input, the in-place
SGD step, cost models, and the CUDA C compile. Kernels against the references on every
test shape: tests/test_correctness.py (every registered impl), e.g.
``pytest tests/test_correctness.py -k "grad or sgd"``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from structbench.core.dtypes import get_dtype
from structbench.core.registry import default_registry
from structbench.ops.dense import reference as dense_fwd
from structbench.ops.lowrank import reference as lowrank_fwd
from structbench.ops.sparse import reference as sparse_fwd
from structbench.ops.toeplitz import reference as toeplitz_fwd
from structbench.ops.dense import grad_cuda as dense_cuda
from structbench.ops.dense import grad_triton as dense_triton
from structbench.ops.sparse import grad_cuda as csr_cuda
from structbench.ops.sparse import grad_triton as csr_triton
from structbench.ops.lowrank import grad_cuda as lowrank_cuda
from structbench.ops.lowrank import grad_triton as lowrank_triton
from structbench.ops.toeplitz import grad_cuda as toeplitz_cuda
from structbench.ops.toeplitz import grad_reference as toeplitz_ref
from structbench.ops.toeplitz import grad_triton as toeplitz_triton

ROOT = Path(__file__).resolve().parent.parent
NVCC = shutil.which("nvcc")
f64 = torch.float64


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _leaf(shape, rng) -> torch.Tensor:
    return _t(rng.standard_normal(shape)).requires_grad_()


def _flat_grad(y: torch.Tensor, params, delta: np.ndarray) -> np.ndarray:
    if not params:  # an empty T has no parameters
        return np.zeros(0)
    grads = torch.autograd.grad(y, params, _t(delta), allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for g, p in zip(grads, params)]).numpy()


# --- each op: (forward in torch float64 -> (y, leaves), the forward's numpy reference or None,
# how the autograd result maps onto the op's output) ---------------------------------------------
def _dense_mv(h, p, rng):
    w = _leaf((p["m"], p["n"]), rng)
    return w @ _t(h["x"]), (w,), dense_fwd.dense_mv(w.detach().numpy(), h["x"])


def _dense_mm(h, p, rng):
    w = _leaf((p["m"], p["k"]), rng)
    return w @ _t(h["x"]), (w,), dense_fwd.dense_mm(w.detach().numpy(), h["x"])


def _lowrank(h, p, rng):
    u, v = _t(h["u"]).requires_grad_(), _t(h["v"]).requires_grad_()
    x = h.get("x", h.get("b"))
    return u @ (v @ _t(x)), (u, v), lowrank_fwd.lowrank_mv(h["u"], h["v"], x)


def _lora(h, p, rng):
    a, b = _t(h["a"]).requires_grad_(), _t(h["b"]).requires_grad_()
    w = rng.standard_normal((h["b"].shape[0], h["a"].shape[1]))
    y = _t(w) @ _t(h["x"]) + p["scale"] * (b @ (a @ _t(h["x"])))
    return y, (a, b), lowrank_fwd.lora_mv(w, h["a"], h["b"], h["x"], scale=p["scale"])


def _toeplitz(h, p, rng):
    """T built entry by entry from the leaves c and r[1:] (T[i, j] = c[i - j] or r[j - i])."""
    m, n = p["m"], p["n"]
    c, r_tail = _leaf((m,), rng), _leaf((max(n - 1, 0),), rng)
    x = _t(h.get("x", h.get("b")))
    t = torch.zeros((m, n), dtype=f64)
    if m and n:
        t = torch.stack([torch.stack([c[i - j] if i >= j else r_tail[j - i - 1] for j in range(n)])
                         for i in range(m)])
    r = np.concatenate([c.detach().numpy()[:1], r_tail.detach().numpy()]) if m and n else np.zeros(n)
    forward = toeplitz_fwd.toeplitz_mv if x.ndim == 1 else toeplitz_fwd.toeplitz_mm
    params = (c, r_tail) if m and n else ()
    return t @ x, params, forward(c.detach().numpy(), r, x.numpy())


def _csr(h, p, rng):
    """A dense A with the leaf values scattered onto the pattern (repeats summed)."""
    x = h.get("x", h.get("b"))
    rows = torch.from_numpy(sparse_fwd.row_ids(h["indptr"]))
    values = _leaf((len(h["indices"]),), rng)
    a = torch.zeros((len(h["indptr"]) - 1, x.shape[0]), dtype=f64).index_put(
        (rows, torch.from_numpy(h["indices"].astype(np.int64))), values, accumulate=True)
    forward = sparse_fwd.csr_mv if x.ndim == 1 else sparse_fwd.csr_mm
    return a @ _t(x), (values,), forward(h["indptr"], h["indices"], values.detach().numpy(), x)


def _layer(local: bool):
    """The convolution / locally-connected layer in torch float64 (F.pad + conv1d, or unfold
    + einsum: tests/test_layer_backward.py), the weight the leaf."""
    def forward(h, p, rng):
        from structbench.ops.conv import reference as conv_fwd
        from structbench.ops.local import reference as local_fwd
        from tests.test_layer_backward import _forward, _geometry

        g = _geometry(p)
        w = _leaf(((g.c_out, g.n_out) if local else (g.c_out,)) + (g.in_per_group, g.kernel), rng)
        x = _t(h["x"])
        y = _forward(x if x.dim() == 3 else x[None], w, g, local)
        kwargs = {k: p[k] for k in ("stride", "padding", "dilation", "groups") if k in p}
        reference = (local_fwd.local if local else conv_fwd.conv)(h["x"], w.detach().numpy(), **kwargs)
        return (y if x.dim() == 3 else y[0]), (w,), reference
    return forward


FORWARDS = {"conv_grad_mv": _layer(False), "conv_grad_mm": _layer(False), "local_grad_mv": _layer(True),
            "local_grad_mm": _layer(True),
            "csr_grad_mv": _csr, "csr_grad_mm": _csr, "toeplitz_grad_mv": _toeplitz, "toeplitz_grad_mm": _toeplitz, "dense_grad_mv": _dense_mv, "dense_grad_mm": _dense_mm, "lowrank_grad_mv": _lowrank,
            "lowrank_grad_mm": _lowrank, "lora_grad_mv": _lora, "lora_grad_mm": _lora}


def _autograd_of(op_name: str, host: dict, shape: dict, kwargs: dict, rng) -> np.ndarray:
    if op_name == "dense_sgd_mv":
        y, params, _ = _dense_mv(host, shape, rng)
        return host["w"] - kwargs["lr"] * _flat_grad(y, params, host["delta"]).reshape(host["w"].shape)
    y, params, forward_reference = FORWARDS[op_name](host, shape, rng)
    np.testing.assert_allclose(y.detach().numpy(), forward_reference, rtol=1e-12, atol=1e-12)
    return _flat_grad(y, params, host["delta"])


GRAD_OPS = [op.name for op in default_registry().ops() if "_grad_" in op.name or op.name == "dense_sgd_mv"]


@pytest.mark.parametrize("op_name", GRAD_OPS)
def test_reference_matches_float64_autograd_on_every_test_shape(op_name):
    op = default_registry().op(op_name)
    for i, shape in enumerate(op.test_shapes):
        if op_name.startswith("toeplitz") and shape["m"] * shape["n"] > 7000:
            continue  # T built entry by entry: the small shapes only
        rng = np.random.default_rng(i)
        host = op.make_inputs(shape, get_dtype("fp32"), rng)
        kwargs = op.call_kwargs(shape)
        expected = _autograd_of(op_name, host, shape, kwargs, rng)
        got = op.reference(*(host[name] for name in op.input_names), **kwargs)
        assert got.shape == op.out_shape(shape), shape
        np.testing.assert_allclose(got.reshape(-1), expected.reshape(-1), rtol=1e-12, atol=1e-12, err_msg=str(shape))


@pytest.mark.parametrize("op_name", GRAD_OPS)
def test_int8_is_declined_and_every_impl_is_float(op_name):
    for impl in default_registry().impls(op_name):
        assert "int8" not in impl.dtypes, impl.name
    assert {"triton", "cupy"} <= {i.name for i in default_registry().impls(op_name)}


# --- bad input ----------------------------------------------------------------------------------
LAUNCHERS = {"triton": dense_triton, "cuda": dense_cuda}


@pytest.fixture(params=list(LAUNCHERS))
def dense(request):
    return LAUNCHERS[request.param]


@pytest.mark.parametrize("call, message", [
    (lambda k: k.dense_grad_mv(torch.ones(3, dtype=torch.int8), torch.ones(4, dtype=torch.int8)), "int8 gradients"),
    (lambda k: k.dense_grad_mv(torch.ones(3), torch.ones(4, dtype=torch.float16)), "must match"),
    (lambda k: k.dense_grad_mv(torch.ones(3, 1), torch.ones(4)), "must be 1-D"),
    (lambda k: k.dense_grad_mv(np.ones(3), torch.ones(4)), "torch.Tensor or cupy.ndarray"),
    (lambda k: k.dense_grad_mv(torch.ones(3), torch.ones(4), out=torch.empty(3, 4)), "expected (4, 3)"),
    (lambda k: k.dense_grad_mv(torch.ones(3), torch.ones(4), out=torch.empty(4, 3, dtype=torch.float16)), "out"),
    (lambda k: k.dense_grad_mm(torch.ones(3, 5), torch.ones(4, 6)), "the batch n is 5 in x but 6 in delta"),
    (lambda k: k.dense_grad_mm(torch.ones(5, 3).t(), torch.ones(4, 5)), "row-major"),
    (lambda k: k.dense_sgd_mv(torch.ones(4, 3), torch.ones(2), torch.ones(4), lr=0.1), "columns of W"),
    (lambda k: k.dense_sgd_mv(torch.ones(4, 3), torch.ones(3), torch.ones(5), lr=0.1), "rows of W"),
])
def test_bad_input_is_one_clear_error(dense, call, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        call(dense)


def test_out_overlapping_an_input_is_refused(dense):
    storage = torch.randn(13)
    w = storage[:12].view(4, 3)
    with pytest.raises(ValueError, match="out overlaps w"):  # only exactly w itself is allowed
        dense.dense_sgd_mv(w, torch.randn(3), torch.randn(4), lr=0.1, out=storage[1:].view(4, 3))
    buffer = torch.randn(20)
    with pytest.raises(ValueError, match="out overlaps x"):
        dense.dense_grad_mv(buffer[:3], buffer[:4], out=buffer[:12].view(4, 3))


def test_sgd_step_in_place_updates_w(dense):
    rng = np.random.default_rng(3)
    w, x, delta = (_t(rng.standard_normal(s)).float() for s in ((33, 70), (70,), (33,)))
    expected = w - 0.25 * torch.outer(delta, x)
    returned = dense.dense_sgd_mv(w, x, delta, lr=0.25, out=w)
    assert returned is w
    torch.testing.assert_close(w, expected, rtol=1e-6, atol=1e-6)


LOWRANK = {"triton": lowrank_triton, "cuda": lowrank_cuda}


@pytest.fixture(params=list(LOWRANK))
def lowrank(request):
    return LOWRANK[request.param]


@pytest.mark.parametrize("call, message", [
    (lambda k: k.lowrank_grad_mv(torch.ones(5, 3), torch.ones(2, 4), torch.ones(4), torch.ones(5)), "the rank r"),
    (lambda k: k.lowrank_grad_mv(torch.ones(5, 3), torch.ones(3, 4), torch.ones(6), torch.ones(5)), "reduction"),
    (lambda k: k.lowrank_grad_mm(torch.ones(5, 3), torch.ones(3, 4), torch.ones(4, 2), torch.ones(5, 7)), "batch n"),
    (lambda k: k.lowrank_grad_mm(torch.ones(5, 3), torch.ones(3, 4), torch.ones(4, 2), torch.ones(6, 2)), "m is 5"),
    (lambda k: k.lora_grad_mv(torch.ones(3, 4), torch.ones(5, 3), torch.ones(4), torch.ones(5), scale=float("nan")),
     "finite"),
    (lambda k: k.lora_grad_mv(torch.ones(3, 4), torch.ones(5, 3), torch.ones(4), torch.ones(5), scale=1.0,
                              out=torch.empty(26)), "expected (27,)"),
])
def test_lowrank_bad_input_is_one_clear_error(lowrank, call, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        call(lowrank)


TOEPLITZ = {"triton": toeplitz_triton, "cuda": toeplitz_cuda}


@pytest.mark.parametrize("backend", list(TOEPLITZ))
@pytest.mark.parametrize("call, message", [
    (lambda k: k.toeplitz_grad_mv(torch.ones(3, 1), torch.ones(4)), "must be 1-D"),
    (lambda k: k.toeplitz_grad_mm(torch.ones(3, 2), torch.ones(4, 5)), "the batch k is 2 in b but 5 in delta"),
    (lambda k: k.toeplitz_grad_mm(torch.ones(2, 3).t(), torch.ones(4, 2)), "row-major"),
    (lambda k: k.toeplitz_grad_mv(torch.ones(3), torch.ones(4), out=torch.empty(7)), "expected (6,)"),
    (lambda k: k.toeplitz_grad_mv(torch.ones(3, dtype=torch.int8), torch.ones(4, dtype=torch.int8)), "int8"),
])
def test_toeplitz_bad_input_is_one_clear_error(backend, call, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        call(TOEPLITZ[backend])


@pytest.mark.parametrize("m, n, k", [(30, 70, 5), (70, 30, 1), (1, 9, 3), (9, 1, 2)])
def test_toeplitz_reference_fft_path_matches_the_direct_sums(m, n, k):
    rng = np.random.default_rng(m * n + k)
    x, delta = rng.standard_normal((n, k)), rng.standard_normal((m, k))
    direct = toeplitz_ref.diagonal_sums(x, delta, method="direct")
    np.testing.assert_allclose(toeplitz_ref.diagonal_sums(x, delta, method="fft"), direct, rtol=0,
                               atol=1e-12 * np.abs(direct).max())


CSR = {"triton": csr_triton, "cuda": csr_cuda}
_PTR, _IDX = torch.tensor([0, 2, 2, 3], dtype=torch.int32), torch.tensor([0, 3, 1], dtype=torch.int32)


@pytest.mark.parametrize("backend", list(CSR))
@pytest.mark.parametrize("call, message", [
    (lambda k: k.csr_grad_mv(_PTR, torch.tensor([0, 4, 1], dtype=torch.int32), torch.ones(4), torch.ones(3)),
     "indices must lie in [0, 4)"),
    (lambda k: k.csr_grad_mv(torch.tensor([0, 2, 1, 3], dtype=torch.int32), _IDX, torch.ones(4), torch.ones(3)),
     "non-decreasing"),
    (lambda k: k.csr_grad_mv(torch.tensor([0, 2, 2, 4], dtype=torch.int32), _IDX, torch.ones(4), torch.ones(3)),
     "indptr[-1] must equal len(indices) = 3"),
    (lambda k: k.csr_grad_mv(_PTR, _IDX.long(), torch.ones(4), torch.ones(3)), "indices must be int32"),
    (lambda k: k.csr_grad_mv(_PTR, _IDX, torch.ones(4), torch.ones(5)), "m (rows of A) is 3 in indptr but 5"),
    (lambda k: k.csr_grad_mm(_PTR, _IDX, torch.ones(4, 2), torch.ones(3, 3)), "the batch is 2 in b but 3"),
    (lambda k: k.csr_grad_mv(_PTR, _IDX, torch.ones(4), torch.ones(3), out=torch.empty(4)), "expected (3,)"),
])
def test_csr_bad_input_is_one_clear_error(backend, call, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        call(CSR[backend])


def test_split_rule_and_test_shapes_that_take_the_split_path():
    from structbench.ops.dense.grad_split import MAX_SPLITS, splits

    assert splits(64, 10**6, 16) == (1, 10**6 + 0)  # enough tiles: never split
    assert splits(1, 255, 16)[0] == 1 and splits(1, 0, 16) == (1, 16)
    count, per_split = splits(1, 1100, 256)
    assert count > 1 and per_split % 256 == 0 and (count - 1) * per_split < 1100 <= count * per_split
    assert splits(1, 10**7, 32)[0] == MAX_SPLITS
    # dense_grad_mm 7 x 600 x 9 and lowrank_grad_mm 40 x 3 x 1100: one output tile, split
    shapes = {op: default_registry().op(op).test_shapes for op in ("dense_grad_mm", "lowrank_grad_mm")}
    assert {"m": 7, "n": 600, "k": 9} in shapes["dense_grad_mm"] and splits(1, 600, 16)[0] > 1
    assert {"m": 40, "n": 3, "k": 1100, "r": 3} in shapes["lowrank_grad_mm"] and splits(1, 1100, 16)[0] > 1


# --- cost models ---------------------------------------------------------------------------------
def test_dense_cost_models_by_hand():
    reg, fp16 = default_registry(), get_dtype("fp16")
    p = {"m": 3, "n": 5}
    assert reg.op("dense_grad_mv").flops(p) == 15 and reg.op("dense_grad_mv").min_bytes(p, fp16) == (3 + 5 + 15) * 2
    assert reg.op("dense_sgd_mv").min_bytes(p, fp16) == (3 + 5 + 30) * 2
    q = {"m": 3, "n": 5, "k": 7}
    assert reg.op("dense_grad_mm").flops(q) == 2 * 3 * 5 * 7
    assert reg.op("dense_grad_mm").min_bytes(q, fp16) == (15 + 35 + 21) * 2


def test_lowrank_cost_models_by_hand():
    """Parameters (m + n) r, not m n: read once (the factors), written once (the gradient)."""
    reg, fp32 = default_registry(), get_dtype("fp32")
    p = {"m": 10, "n": 6, "r": 2}
    assert reg.op("lowrank_grad_mv").flops(p) == 3 * 16 * 2
    assert reg.op("lora_grad_mv").min_bytes(p, fp32) == (2 * 32 + 16) * 4
    q = {"m": 10, "n": 3, "k": 6, "r": 2}
    assert reg.op("lowrank_grad_mm").flops(q) == 4 * 16 * 2 * 3
    assert reg.op("lora_grad_mm").min_bytes(q, fp32) == (2 * 32 + 18 + 30) * 4
    assert reg.op("lora_grad_mm").out_shape(q) == (32,)


def test_csr_cost_models_by_hand():
    """nnz values written (not m n): 20 x 10 at density 0.1 stores 20."""
    reg, fp32 = default_registry(), get_dtype("fp32")
    p = {"m": 20, "n": 10, "density": 0.1, "dist": "uniform"}
    assert reg.op("csr_grad_mv").out_shape(p) == (20,) and reg.op("csr_grad_mv").flops(p) == 20
    assert reg.op("csr_grad_mv").min_bytes(p, fp32) == 20 * 8 + 21 * 4 + 30 * 4
    q = {"m": 20, "n": 3, "k": 10, "density": 0.1, "dist": "uniform"}
    assert reg.op("csr_grad_mm").flops(q) == 2 * 20 * 3
    assert reg.op("csr_grad_mm").min_bytes(q, fp32) == 20 * 8 + 21 * 4 + 30 * 3 * 4


def test_toeplitz_cost_models_by_hand():
    """m + n - 1 parameters written, not m n; an empty T has none."""
    reg, bf16 = default_registry(), get_dtype("bf16")
    assert reg.op("toeplitz_grad_mv").min_bytes({"m": 4, "n": 6}, bf16) == (10 + 9) * 2
    assert reg.op("toeplitz_grad_mv").flops({"m": 4, "n": 6}) == 48
    assert reg.op("toeplitz_grad_mm").min_bytes({"m": 4, "n": 6, "k": 3}, bf16) == (30 + 9) * 2
    assert reg.op("toeplitz_grad_mm").out_shape({"m": 0, "n": 6, "k": 3}) == (0,)



