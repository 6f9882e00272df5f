"""One registry of ops and of the implementations that compute them.

An ``Op`` knows its shape parameters, how to make seeded random inputs, its NumPy
reference and its cost model. An ``Impl`` is one way to compute an op (our Triton or
CuPy kernel, or a vendor/NumPy baseline) on one backend, for some dtypes.

Tests, the benchmark runner and ``structbench list`` all loop over ``default_registry()``,
so adding a kernel is: its file in the family's folder ``structbench/ops/<family>/`` plus
one registration in that folder's ``__init__.py``, and a new op family is a new folder
there whose ``__init__`` has a ``register(reg)``.
Implementations are named by ``"module:function"`` and imported on first use, so listing
and planning never import torch, triton or cupy.

What a family *is* lives here as data, never in the harness as names: an ``Impl``'s
``role`` (ours, a vendor library, the dense product of a materialised matrix, another
algorithm such as an FFT); an ``Op``'s ``claims`` (which of C1-C5 its rows take part in)
and ``compared_to`` (the dense op, and ``dense_shape`` its shape, that its
materialised-dense baselines run); for the training step, ``training_pass`` (forward,
input-grad, param-grad, update), ``backward_of`` (the forward op) and ``parameters``
(how many numbers the layer trains), with ``family`` filled in from the folder: `list`
groups by them and ``Registry.select_ops`` turns ``--op toeplitz:backward`` into names.
Register with ``ours(...)`` / ``baseline(...)``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from structbench.core.dtypes import BENCH_DTYPES, DType

Params = Mapping[str, int]
Inputs = dict[str, np.ndarray]

# An implementation's role. Only OURS is counted as our kernel; the other three are baselines.
OURS = "ours"  # Triton or CUDA C we wrote
VENDOR = "vendor"  # a library computing the op itself (cuBLAS, cuSPARSE, torch, numpy, scipy.sparse)
MATERIALISED_DENSE = "materialised-dense"  # the dense product on the structure materialised (C3's comparison)
OTHER_ALGORITHM = "other-algorithm"  # the op by another algorithm (FFT): the op's cost model does not bound it
MATERIALISED_CSR = "materialised-csr"  # the op's matrix built once in CSR, through a CSR product (a layer's)
USER = "user"  # a kernel a user registered from a suite (structbench.register_kernel): not ours, not a vendor's
ROLES = (OURS, VENDOR, MATERIALISED_DENSE, OTHER_ALGORITHM, MATERIALISED_CSR, USER)
# Impl.source of our own registrations; a user suite's impls carry the suite's name instead.
BUILTIN_SOURCES = ("ours", "baseline")
CLAIMS = ("C1", "C2", "C3", "C4", "C5")
# Which pass of a training step an op is (Op.training_pass): the forward product, the input
# gradient (A^T y), the parameter gradient, or a fused parameter update (W -= lr grad).
FORWARD, INPUT_GRAD, PARAM_GRAD, PARAM_UPDATE = "forward", "input-grad", "param-grad", "update"
PASSES = (FORWARD, INPUT_GRAD, PARAM_GRAD, PARAM_UPDATE)
# --op's groups: FAMILY:GROUP or FORWARD_OP:GROUP picks these passes (Registry.select_ops).
OP_GROUPS = {"all": PASSES, "forward": (FORWARD,), "backward": (INPUT_GRAD, PARAM_GRAD, PARAM_UPDATE),
             INPUT_GRAD: (INPUT_GRAD,), PARAM_GRAD: (PARAM_GRAD,), PARAM_UPDATE: (PARAM_UPDATE,)}


@dataclass(frozen=True, kw_only=True)
class Op:
    name: str
    summary: str
    dims: tuple[str, ...]  # shape parameters, in CSV/ids order: ("m", "n")
    input_names: tuple[str, ...]  # positional order of the kernel's array arguments
    # (params, dtype, rng) -> host inputs: float64 arrays whose values are exactly
    # representable in dtype (int64 for int8), never all zeros.
    make_inputs: Callable[[Params, DType, np.random.Generator], Inputs]
    reference: Callable[..., np.ndarray]  # float64 (int64 for integer dtypes) result
    out_shape: Callable[[Params], tuple[int, ...]]
    flops: Callable[[Params], int]  # arithmetic of the op as defined (2 per multiply-add)
    min_bytes: Callable[[Params, DType], int]  # each input read once, output written once
    # Shapes every implementation is tested on: odd, tiny, and several blocks wide.
    test_shapes: tuple[dict, ...] = ()
    # Inputs that keep the integer type make_inputs gave them (CSR indptr/indices)
    # instead of being converted to the benchmarked dtype.
    index_inputs: tuple[str, ...] = ()
    # Keyword arguments every implementation receives, from the params (LoRA's scale).
    call_kwargs: Callable[[Params], dict] = field(default=lambda params: {}, compare=False)
    # Which claims (C1-C5) this op's rows decide: C1/C2/C4 the dense matvec, C5 the batched
    # dense product, C3 the structured ops judged against their dense product.
    claims: tuple[str, ...] = ()
    # The dense op a structured op is compared against (its materialised-dense baselines run
    # it), and this op's params as that op's shape; None: the same names (m, n[, k]).
    compared_to: str | None = None
    dense_shape: Callable[[Params], dict] | None = field(default=None, compare=False)

    # The op's colour in every report's figures (roofline, C3): fixed, so csr_mv is the same
    # colour in every report; never a grey (the dtype and ceiling legends are grey/black).
    colour: str = ""
    # Parameters --shape takes that no test or profile shape shows (a stencil's grid size).
    extra_params: tuple[str, ...] = ()
    # params -> None, raising ValueError naming the bad parameter: what the family's other
    # parameters must be (a CSR density in (0, 1], a LoRA scale a finite number).
    check_family: Callable[[Params], None] | None = field(default=None, compare=False)
    # params -> the dims the other parameters imply (a named matrix's size): complete() fills them in.
    implied_dims: Callable[[Params], dict] | None = field(default=None, compare=False)
    # Ops that are forms of one layer's matrix (structbench/ops/conv, .../local): what the
    # form is ("convolution", "locally-connected"), and the bytes of the matrix when it is
    # stored as a baseline's Impl.role stores it ("" the op's own form, MATERIALISED_DENSE,
    # MATERIALISED_CSR), with how many numbers that stores. The "three matrices" comparison
    # (analysis.claims.layer_forms) reads these, never op or impl names.
    layer_form: str = ""
    matrix_bytes: Callable[[Params, DType, str], int] | None = field(default=None, compare=False)
    matrix_numbers: Callable[[Params, str], int] | None = field(default=None, compare=False)
    # The training step (issue 22): which pass this op is (PASSES), the forward op whose
    # backward it belongs to (None for a forward op), and params -> how many numbers the
    # layer trains (its parameters: m n dense, nnz CSR, (m + n) r low-rank and LoRA, m + n - 1
    # Toeplitz), what a structured parameter gradient's bytes are in proportion to. C7
    # (analysis.claims.training_step) reads these, never names.
    training_pass: str = FORWARD
    backward_of: str | None = None
    parameters: Callable[[Params], int] | None = field(default=None, compare=False)
    # The folder of structbench/ops that registered it (Registry fills it in; a user
    # suite's ops: the suite's name, else ""): `list` groups by it, --op FAMILY:GROUP picks by it.
    family: str = ""

    def dense_params(self, params: Params, dense: Op) -> dict:
        """This case's shape as the params of the dense op it is compared against."""
        if self.dense_shape is not None:
            return dict(self.dense_shape(params))
        return {d: int(params[d]) for d in dense.dims}

    def complete(self, params: Params) -> dict:
        """params with the dims they imply added (given dims are kept: check_params then
        says when they disagree)."""
        implied = self.implied_dims(params) if self.implied_dims else {}
        return {**implied, **params}

    def check_params(self, params: Params) -> None:
        missing = [d for d in self.dims if d not in params]
        if missing:
            raise ValueError(f"{self.name}: missing shape parameter(s) {missing}; needs {self.dims}")
        for d in self.dims:
            value = params[d]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{self.name}: {d} must be a whole number >= 1, got {value!r}")
        if self.check_family:
            try:
                self.check_family(params)
            except ValueError as exc:
                raise ValueError(f"{self.name}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class Impl:
    op: str
    name: str  # unique within the op: "triton", "cupy", "torch", "numpy"...
    backend: str  # key of structbench.core.backends.BACKENDS: decides arrays, device and timer
    target: str  # "module:function" called as fn(*inputs, out=out)
    dtypes: tuple[str, ...]
    role: str  # one of ROLES: ours, vendor, materialised-dense, other-algorithm
    note: str = ""  # what a reader of `structbench list` should know (algorithm, caveats)
    # (params, dtype) -> reason this impl cannot run that case, or None.
    limits: Callable[[Params, DType], str | None] | None = field(default=None, compare=False)
    # "module:function" run once on the device inputs, outside timing, returning the
    # positional arguments fn receives (a library's sparse matrix object, a
    # materialised dense matrix for a "what structure saves" baseline).
    prepare: str | None = None
    # "module:function" (host inputs, params, dtype) -> the float64 reference of what this
    # impl computes when it changes the computation on purpose (a product on a U V
    # materialised and rounded to the dtype), so it is verified against that; None: the op's.
    reference: str | None = None
    # params -> the arithmetic of this impl's own algorithm where it is not the op's (an FFT
    # Toeplitz product: O((m + n) log(m + n)), not the direct 2 m n): what claim C3 predicts
    # its time from and where the roofline places it. None: the op's flops.
    flops: Callable[[Params], int] | None = field(default=None, compare=False)
    # prepare also receives the op's call kwargs (a layer's stride, padding...: what it
    # needs to build the layer's matrix).
    prepare_takes_call_kwargs: bool = False
    # The suite that registered it (a user's file, module or entry point; "" for ours and
    # our baselines), and the function itself when a suite gave it (target then only names it).
    suite: str = ""
    fn: Callable | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"impl {self.op}/{self.name}: role {self.role!r} is not one of {', '.join(ROLES)}")

    @property
    def is_baseline(self) -> bool:  # the CSV column: every role but ours
        return self.role != OURS

    @property
    def kind(self) -> str:  # `list`'s column: ours, baseline, or user (a suite's kernel)
        return USER if self.role == USER else "baseline" if self.is_baseline else "ours"

    @property
    def source(self) -> str:
        """Where the impl comes from (the CSV's and `list`'s column): ours, baseline, or a suite's name."""
        return self.suite or ("baseline" if self.is_baseline else "ours")

    def load(self) -> Callable:
        return self.fn if self.fn is not None else _resolve(self.target)

    def load_prepare(self) -> Callable | None:
        return _resolve(self.prepare) if self.prepare else None

    def prepare_kwargs(self, call_kwargs: dict) -> dict:
        """The keyword arguments ``prepare`` receives: the op's call kwargs, if it takes them."""
        return call_kwargs if self.prepare_takes_call_kwargs else {}

    def load_reference(self) -> Callable | None:
        return _resolve(self.reference) if self.reference else None

    def unsupported_reason(self, params: Params, dtype: DType) -> str | None:
        if dtype.name not in self.dtypes:
            return f"{self.op}/{self.name} does not support {dtype.name}"
        return self.limits(params, dtype) if self.limits else None


def ours(op: str, name: str, *, backend: str, target: str, dtypes: tuple[str, ...], **facts) -> Impl:
    """One of our kernels (Triton or CUDA C we wrote)."""
    return Impl(op=op, name=name, backend=backend, target=target, dtypes=tuple(dtypes), role=OURS, **facts)


def baseline(op: str, name: str, *, backend: str, target: str, dtypes: tuple[str, ...], role: str = VENDOR,
             **facts) -> Impl:
    """A library call we compare against: VENDOR unless role says MATERIALISED_DENSE or OTHER_ALGORITHM."""
    if role == OURS:
        raise ValueError(f"baseline {op}/{name}: a baseline cannot have role {OURS!r}; use ours(...)")
    return Impl(op=op, name=name, backend=backend, target=target, dtypes=tuple(dtypes), role=role, **facts)


def _resolve(target: str) -> Callable:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class Registry:
    def __init__(self) -> None:
        self._ops: dict[str, Op] = {}
        self._impls: dict[tuple[str, str], Impl] = {}
        self.current_family = ""  # the family registering now (Op.family of the ops it adds)

    def add_op(self, op: Op) -> Op:
        if op.name in self._ops:
            raise ValueError(f"op {op.name!r} registered twice")
        unknown = set(op.claims) - set(CLAIMS)
        if unknown:
            raise ValueError(f"op {op.name}: unknown claims {sorted(unknown)}; known: {', '.join(CLAIMS)}")
        if op.training_pass not in PASSES:
            raise ValueError(f"op {op.name}: training_pass {op.training_pass!r} is not one of {', '.join(PASSES)}")
        if (op.backward_of is None) != (op.training_pass == FORWARD):
            raise ValueError(f"op {op.name}: a backward op names its forward op (backward_of), a forward op none")
        if op.backward_of is not None and op.backward_of not in self._ops:
            raise ValueError(f"op {op.name}: backward_of {op.backward_of!r} is not registered (register it first)")
        if not op.family and self.current_family:
            op = dataclasses.replace(op, family=self.current_family)
        self._ops[op.name] = op
        return op

    def families(self) -> list[str]:
        return list(dict.fromkeys(op.family for op in self._ops.values() if op.family))

    def forward_op(self, op: Op) -> Op:
        """The forward op a backward op belongs to (the op itself when it is a forward op)."""
        return self._ops[op.backward_of] if op.backward_of else op

    def backward_ops(self, forward: str) -> list[Op]:
        """The backward-pass ops (input gradient, parameter gradient, update) of a forward op."""
        return [op for op in self._ops.values() if op.backward_of == forward]

    def select_ops(self, selectors) -> list[str]:
        """--op's values as op names, in order, each once: an op's name; a glob over the names
        ('toeplitz_*'); or WHO:GROUP, WHO a family (a folder of structbench/ops: dense,
        sparse, toeplitz, lowrank, ...) or a forward op (lora_mv), GROUP one of OP_GROUPS
        (forward, backward, input-grad, param-grad, update, all): 'toeplitz:backward' is every
        transposed product and gradient of the Toeplitz family, 'lora_mv:backward' those of
        lora_mv. A selector that picks nothing is a ValueError naming what is known."""
        import fnmatch

        chosen: list[str] = []
        for text in selectors:
            if text in self._ops:
                chosen.append(text)
            elif ":" in text:
                chosen += self._group(text)
            elif any(c in text for c in "*?["):
                found = [name for name in self._ops if fnmatch.fnmatchcase(name, text)]
                if not found:
                    raise ValueError(f"--op {text!r} matches no op; known: {', '.join(self._ops)}")
                chosen += found
            else:
                raise ValueError(f"unknown op {text!r}; known: {', '.join(self._ops)} (or FAMILY:GROUP, "
                                 f"a glob: see `structbench list`)")
        return list(dict.fromkeys(chosen))

    def _group(self, text: str) -> list[str]:
        who, _, group = text.partition(":")
        families = self.families()
        if group not in OP_GROUPS:
            raise ValueError(f"--op {text!r}: unknown group {group!r}; groups: {', '.join(OP_GROUPS)}")
        if who in families:
            members = [op for op in self._ops.values() if op.family == who]
        elif who in self._ops and self._ops[who].training_pass == FORWARD:
            members = [self._ops[who], *self.backward_ops(who)]
        else:
            raise ValueError(f"--op {text!r}: {who!r} is neither a family ({', '.join(families)}) nor a forward op")
        found = [op.name for op in members if op.training_pass in OP_GROUPS[group]]
        if not found:
            raise ValueError(f"--op {text!r}: {who} has no {group} op")
        return found

    def add_impl(self, impl: Impl) -> Impl:
        if impl.op not in self._ops:
            raise ValueError(f"impl {impl.name!r} registered for unknown op {impl.op!r}")
        if (impl.op, impl.name) in self._impls:
            raise ValueError(f"impl {impl.op}/{impl.name} registered twice")
        unknown = set(impl.dtypes) - set(BENCH_DTYPES)
        if unknown:
            raise ValueError(f"impl {impl.op}/{impl.name}: unknown dtypes {sorted(unknown)}")
        self._impls[(impl.op, impl.name)] = impl
        return impl

    def op(self, name: str) -> Op:
        try:
            return self._ops[name]
        except KeyError:
            raise ValueError(f"unknown op {name!r}; known: {', '.join(self._ops)}") from None

    def ops(self) -> list[Op]:
        return list(self._ops.values())

    def ops_in_claim(self, claim: str) -> list[Op]:
        """The ops whose rows take part in ``claim`` ("C1".."C5"), in registration order."""
        return [op for op in self._ops.values() if claim in op.claims]

    def role(self, op: str, impl: str, is_baseline: bool = True) -> str:
        """The role of a CSV row's impl; one no longer registered (an older CSV) is ours or
        a vendor baseline by its is_baseline column."""
        found = self._impls.get((op, impl))
        if found is not None:
            return found.role
        return VENDOR if is_baseline else OURS

    def impls(self, op: str | None = None) -> list[Impl]:
        return [i for i in self._impls.values() if op is None or i.op == op]

    def impl(self, op: str, name: str) -> Impl:
        try:
            return self._impls[(op, name)]
        except KeyError:
            known = ", ".join(i.name for i in self.impls(op))
            raise ValueError(f"unknown impl {name!r} for op {op!r}; known: {known}") from None


def default_registry() -> Registry:
    """Every op family (each package in structbench/ops/ but _shared), then the user suites
    in use (STRUCTBENCH_SUITES, --suite, the `structbench.suites` entry points and kernels
    registered in a script: structbench.core.suites); built once per set of suites."""
    from structbench.core import suites

    return _registry(suites.active())


@functools.cache
def _registry(suite_specs: tuple[str, ...]) -> Registry:
    import structbench.ops
    from structbench.core import suites

    reg = Registry()
    families = sorted(m.name for m in pkgutil.iter_modules(structbench.ops.__path__)
                      if m.ispkg and not m.name.startswith("_"))
    for family in families:
        reg.current_family = family
        importlib.import_module(f"structbench.ops.{family}").register(reg)
    reg.current_family = ""
    suites.load_into(reg, suite_specs)
    return reg
