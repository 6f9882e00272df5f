"""`structbench inspect`: what our kernels compile to on a GPU, without a GPU.

A case (op, impl, dtype, shape) is driven through its launcher on small CPU tensors under
``kernels._triton.capture``: every launch the launcher makes is recorded (kernel, grid,
arguments, constexprs, options) instead of run, with the block heuristics seeing an
H100/H200's 132 SMs. Each launch is then compiled with Triton's public compile API
(``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))``: TTIR ... PTX and
ptxas's cubin, no driver needed), and its facts are read from the cubin with the CUDA
tools (``cuobjdump --dump-resource-usage``, ``cuobjdump -sass``) and ``ptxas -v`` on the
PTX (spills). CUDA C kernels (``inspect_cuda``) are compiled with ``nvcc -cubin`` and read
the same way (their grid is not captured: it needs a GPU for the arrays).

Facts per kernel: registers per thread, spill bytes, shared memory per block, the widest
global load in the SASS (LDG.E.128 = 128 bits; cp.async LDGSTS and TMA count as loads),
whether it uses wgmma (Hopper warpgroup MMA) or mma (Ampere-style tensor-core MMA), the
grid of the case, and the occupancy that registers, shared memory and warps allow
(resident warps / 64 per SM).

The argument rules of a launch follow Triton's specialisation (3.6 and 3.8 alike):
tensors become typed pointers, 16-byte aligned ones with a divisibility hint; ints equal
to 1 become constexprs, other ints i32 (i64 beyond it), with a divisibility hint when a
multiple of 16; floats fp32, bools i1, None a constexpr. Our launchers pass runtime
arguments positionally and every constexpr by keyword (kernels._triton.launch), which is
what lets this module tell them apart without Triton's JIT internals.

Needs TRITON_INTERPRET unset (under the interpreter @triton.jit kernels are not
compilable JITFunctions); the tests run it in a subprocess.
"""

from __future__ import annotations

import dataclasses
import inspect as pyinspect
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SM_COUNT = 132  # an H100/H200 SXM: what the launchers' block heuristics see under capture
ARCHS = (90, 80)
# Per SM (CUDA programming guide, compute capabilities table): 64K 32-bit registers,
# 64 resident warps, 32 resident blocks; shared memory usable by blocks (opt-in), with
# 1 KiB reserved by the system per block.
_REGISTERS_PER_SM = 65536
_MAX_WARPS_PER_SM = 64
_MAX_BLOCKS_PER_SM = 32
SHARED_PER_SM = {90: 228 * 1024, 80: 164 * 1024}
MAX_SHARED_PER_BLOCK = {90: 227 * 1024, 80: 163 * 1024}
_RESERVED_SHARED_PER_BLOCK = 1024
_REGISTER_ALLOCATION_UNIT = 256  # registers are allocated per warp, in units of 256


@dataclass(frozen=True)
class Launch:
    """One launch a launcher made, as captured by kernels._triton.capture."""

    kernel: object  # the triton JITFunction
    grid: tuple[int, ...]
    args: tuple  # runtime arguments, positional
    meta: dict  # constexprs and launch options, by keyword

    @property
    def name(self) -> str:
        return self.kernel.fn.__name__

    @property
    def programs(self) -> int:
        total = 1
        for size in self.grid:
            total *= size
        return total


@dataclass(frozen=True)
class KernelFacts:
    """What one compiled kernel is, on one architecture."""

    kernel: str
    arch: int
    backend: str  # "triton" or "cuda"
    registers: int  # per thread
    spill_bytes: int  # spill stores + spill loads per thread, from ptxas -v
    shared_bytes: int  # static + dynamic shared memory per block
    widest_global_load_bits: int  # the widest LDG (or cp.async / TMA) load in the SASS
    uses_wgmma: bool
    uses_mma: bool
    num_warps: int
    grid: tuple[int, ...] | None  # None: not captured (CUDA C)
    programs: int | None
    blocks_per_sm: int  # resident blocks per SM that registers, shared memory and warps allow
    occupancy: float  # resident warps / 64
    constexprs: dict = dataclasses.field(default_factory=dict)
    # SASS mnemonic (with modifiers, e.g. "LDG.E.128", "BAR.SYNC.DEFER_BLOCKING") -> count
    instructions: dict = dataclasses.field(default_factory=dict)

    def count(self, prefix: str) -> int:
        """How many SASS instructions start with ``prefix`` ("BAR.SYNC", "LDG.E.U16", "HGMMA")."""
        return sum(n for name, n in self.instructions.items() if name == prefix or name.startswith(prefix + "."))

    def row(self) -> dict:
        """A flat dict for a table (the CLI prints these)."""
        return {"kernel": self.kernel, "arch": f"sm_{self.arch}", "regs": self.registers, "spills_B": self.spill_bytes,
                "smem_B": self.shared_bytes, "widest_ld": f"{self.widest_global_load_bits}b",
                "mma": "wgmma" if self.uses_wgmma else ("mma" if self.uses_mma else "-"), "warps": self.num_warps,
                "grid": "x".join(map(str, self.grid)) if self.grid else "-",
                "programs": self.programs if self.programs is not None else "-",
                "blocks/SM": self.blocks_per_sm, "occupancy": f"{self.occupancy:.0%}"}


# --- capture ---------------------------------------------------------------------------
def _host_tensor(values, dtype):
    import numpy as np
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(values))
    return tensor if dtype is None else tensor.to(getattr(torch, dtype.torch_name))


def capture_case(op: str, impl: str, dtype: str, shape: dict, *, sms: int = SM_COUNT, seed: int = 0) -> list[Launch]:
    """Every Triton launch ``impl`` makes for this case, recorded, not run. The inputs are
    seeded random CPU tensors (they are never read: no launch runs)."""
    import numpy as np

    from bench.dtypes import output_dtype
    from bench.dtypes import get_dtype
    from bench.inputs import case_seed
    from bench.registry import default_registry
    from kernels import _triton

    registry = default_registry()
    the_op, the_impl, the_dtype = registry.op(op), registry.impl(op, impl), get_dtype(dtype)
    if the_impl.backend != "triton":
        raise ValueError(f"{op}/{impl} is a {the_impl.backend} implementation; only Triton launches are captured "
                         "(CUDA C: inspect_cuda)")
    reason = the_impl.unsupported_reason(shape, the_dtype)
    if reason:
        raise ValueError(f"{op}/{impl} declines {shape} in {dtype}: {reason}")
    host = the_op.make_inputs(shape, the_dtype, np.random.default_rng(case_seed(seed, "inspect", op, dtype)))
    launches: list[Launch] = []
    with _triton.capture(lambda kernel, grid, args, meta: launches.append(Launch(kernel, tuple(grid), args, meta)),
                         sms=sms):
        args = [_host_tensor(host[name], None if name in the_op.index_inputs else the_dtype)
                for name in the_op.input_names]
        prepare = the_impl.load_prepare()
        if prepare is not None:
            args = list(prepare(*args))
        out = _host_tensor(np.zeros(the_op.out_shape(shape)), output_dtype(the_dtype))
        the_impl.load()(*args, out=out, **the_op.call_kwargs(shape))
    return launches


# --- a launch as Triton's compiler sees it ---------------------------------------------
_POINTER_TYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "int8": "i8", "uint8": "u8",
                  "int16": "i16", "int32": "i32", "int64": "i64", "bool": "i1", "float64": "fp64"}
_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg", "enable_fp_fusion")
_DIVISIBILITY = [["tt.divisibility", 16]]


def _is_constexpr(param: pyinspect.Parameter) -> bool:
    annotation = param.annotation
    return "constexpr" in (annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))


def launch_source(launch: Launch) -> tuple[dict, dict, dict, dict]:
    """(signature, constexprs, attrs, options) of ``triton.compile(ASTSource(...))``."""
    params = list(pyinspect.signature(launch.kernel.fn).parameters.values())
    names = [p.name for p in params]
    unknown = set(launch.meta) - set(names) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"{launch.name}: unknown keyword(s) {sorted(unknown)}")
    signature, constexprs, attrs = {}, {}, {}
    for index, param in enumerate(params):
        key = (index,)
        if index < len(launch.args):
            if _is_constexpr(param):
                raise TypeError(f"{launch.name}: constexpr {param.name} passed positionally; pass it by keyword "
                                "(kernels._triton.launch)")
            value = launch.args[index]
        elif param.name in launch.meta:
            value = launch.meta[param.name]
            if not _is_constexpr(param):
                raise TypeError(f"{launch.name}: runtime argument {param.name} passed by keyword; pass it "
                                "positionally (kernels._triton.launch)")
            signature[param.name], constexprs[key] = "constexpr", value
            continue
        elif param.default is not pyinspect.Parameter.empty:
            value = param.default
            if _is_constexpr(param):
                signature[param.name], constexprs[key] = "constexpr", value
                continue
        else:
            raise TypeError(f"{launch.name}: missing argument {param.name}")
        kind, divisible = _specialise(launch.name, param.name, value)
        signature[param.name] = kind
        if kind == "constexpr":
            constexprs[key] = value
        elif divisible:
            attrs[key] = _DIVISIBILITY
    options = {name: launch.meta[name] for name in _OPTIONS if name in launch.meta}
    return signature, constexprs, attrs, options


def _specialise(kernel: str, name: str, value) -> tuple[str, bool]:
    """(Triton type, 16-divisible) of one runtime argument, as Triton's JIT would see it."""
    if value is None:
        return "constexpr", False
    if isinstance(value, bool):
        return "i1", False
    if isinstance(value, int):
        if value == 1:
            return "constexpr", False
        kind = "i32" if -2**31 <= value < 2**31 else ("u64" if value >= 2**63 else "i64")
        return kind, value % 16 == 0
    if isinstance(value, float):
        return "fp32", False
    if hasattr(value, "data_ptr") and hasattr(value, "dtype"):
        element = str(value.dtype).removeprefix("torch.")
        if element not in _POINTER_TYPES:
            raise TypeError(f"{kernel}: {name} has dtype {element}, which has no Triton pointer type here")
        return "*" + _POINTER_TYPES[element], value.data_ptr() % 16 == 0
    raise TypeError(f"{kernel}: cannot specialise {name} of type {type(value).__name__}")


def compile_launch(launch: Launch, arch: int = 90):
    """The launch compiled for sm_``arch`` (a triton CompiledKernel: .asm["ptx"], .asm["cubin"], .metadata)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature, constexprs, attrs, options = launch_source(launch)
    return triton.compile(ASTSource(launch.kernel, signature, constexprs, attrs),
                          target=GPUTarget("cuda", arch, 32), options=options)


# --- reading a cubin -----------------------------------------------------------------------
def _tool(name: str) -> str:
    """A CUDA tool: on the PATH, else the one bundled with Triton."""
    found = shutil.which(name)
    if found:
        return found
    from triton import knobs

    return getattr(knobs.nvidia, name).path


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    return proc.stdout + proc.stderr


@dataclass(frozen=True)
class _Binary:
    registers: int
    shared_bytes: int
    widest_load_bits: int
    uses_wgmma: bool
    uses_mma: bool
    instructions: dict


_INSTRUCTION = re.compile(r"/\*[0-9a-f]{4}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*(?:x[0-9][A-Z0-9_.x]*)?)")  # HGMMA.64x256x16.F32.BF16
_LOAD_BITS = re.compile(r"\b(?:LDGSTS|LDG)(?:\.[A-Z0-9_]+)*(?![A-Z0-9_])")  # not LDGDEPBAR
_WIDTH_SUFFIX = {"128": 128, "64": 64, "U16": 16, "S16": 16, "U8": 8, "S8": 8}


def _load_width(mnemonic: str) -> int:
    """Bits of one SASS global load: LDG.E.128 -> 128, LDG.E.U16 -> 16, LDG.E -> 32."""
    for part in reversed(mnemonic.split(".")[1:]):
        if part in _WIDTH_SUFFIX:
            return _WIDTH_SUFFIX[part]
    return 32


def _sass_functions(sass: str) -> dict[str, str]:
    """Function name -> its SASS text, from cuobjdump -sass."""
    functions, current, lines = {}, None, []
    for line in sass.splitlines():
        match = re.match(r"\s*Function : (\S+)", line)
        if match:
            if current:
                functions[current] = "\n".join(lines)
            current, lines = match.group(1), []
        elif current:
            lines.append(line)
    if current:
        functions[current] = "\n".join(lines)
    return functions


def _resources(cubin_path: str) -> dict[str, dict[str, int]]:
    """Function name -> {REG, SHARED, LOCAL, ...} from cuobjdump --dump-resource-usage."""
    out = _run([_tool("cuobjdump"), "--dump-resource-usage", cubin_path])
    result, name = {}, None
    for line in out.splitlines():
        match = re.search(r"Function (\S+):", line)
        if match:
            name = match.group(1)
            continue
        if name and "REG:" in line:
            result[name] = {key: int(value) for key, value in re.findall(r"(\w+(?:\[\d+\])?):(\d+)", line)}
            name = None
    return result


def _read_binary(cubin: bytes) -> dict[str, _Binary]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.cubin")
        Path(path).write_bytes(cubin)
        resources = _resources(path)
        sass = _sass_functions(_run([_tool("cuobjdump"), "-sass", path]))
    binaries = {}
    for name, usage in resources.items():
        text = sass.get(name, "")
        loads = [_load_width(m.group(0)) for m in _LOAD_BITS.finditer(text)]
        if re.search(r"\bUTMALDG\b", text):  # TMA bulk tensor loads: wider than any LDG
            loads.append(1024)
        counts: dict[str, int] = {}
        for mnemonic in _INSTRUCTION.findall(text):
            counts[mnemonic] = counts.get(mnemonic, 0) + 1
        binaries[name] = _Binary(usage.get("REG", 0), usage.get("SHARED", 0), max(loads, default=0),
                                 bool(re.search(r"\bHGMMA|\bIGMMA|\bQGMMA|\bBGMMA", text)),
                                 bool(re.search(r"\bHMMA|\bIMMA", text)), counts)
    return binaries


_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def _ptx_spills(ptx: str, arch: int) -> int:
    """Spill bytes (stores + loads) that ptxas reports for this PTX (one kernel per PTX)."""
    gpu = f"sm_{arch}a" if arch == 90 else f"sm_{arch}"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        Path(src).write_text(ptx)
        log = _run([_tool("ptxas"), "-v", f"--gpu-name={gpu}", src, "-o", os.path.join(tmp, "k.o")])
    return sum(int(s) + int(l) for s, l in _SPILLS.findall(log))


def occupancy(registers: int, shared_bytes: int, num_warps: int, arch: int) -> tuple[int, float]:
    """(resident blocks per SM, resident warps / 64) that these resources allow."""
    per_warp = -(-max(registers, 1) * 32 // _REGISTER_ALLOCATION_UNIT) * _REGISTER_ALLOCATION_UNIT
    by_registers = _REGISTERS_PER_SM // (per_warp * num_warps)
    by_warps = _MAX_WARPS_PER_SM // num_warps
    by_shared = (SHARED_PER_SM[arch] // (shared_bytes + _RESERVED_SHARED_PER_BLOCK)) if shared_bytes else 10**9
    blocks = max(0, min(by_registers, by_warps, by_shared, _MAX_BLOCKS_PER_SM))
    return blocks, blocks * num_warps / _MAX_WARPS_PER_SM


# --- facts ---------------------------------------------------------------------------------
def launch_facts(launch: Launch, arch: int = 90, *, spills: bool = True) -> KernelFacts:
    """Compile one captured launch for sm_``arch`` and read its facts."""
    compiled = compile_launch(launch, arch)
    binary = next(iter(_read_binary(compiled.asm["cubin"]).values()))
    shared = max(binary.shared_bytes, compiled.metadata.shared)
    num_warps = compiled.metadata.num_warps
    blocks, occ = occupancy(binary.registers, shared, num_warps, arch)
    tiles = {k: v for k, v in launch.meta.items() if k not in _OPTIONS}
    return KernelFacts(launch.name, arch, "triton", binary.registers,
                       _ptx_spills(compiled.asm["ptx"], arch) if spills else -1, shared, binary.widest_load_bits,
                       binary.uses_wgmma, binary.uses_mma, num_warps, launch.grid, launch.programs, blocks, occ,
                       {k: (v if isinstance(v, (int, float, str, bool)) or v is None else repr(v))
                        for k, v in tiles.items()}, binary.instructions)


def inspect_case(op: str, impl: str, dtype: str, shape: dict, arch: int = 90, *, spills: bool = True
                 ) -> list[KernelFacts]:
    """Facts of every kernel launch ``impl`` makes for this case, in launch order."""
    return [launch_facts(launch, arch, spills=spills) for launch in capture_case(op, impl, dtype, shape)]


def inspect_cuda(source: Path, arch: int = 90, *, kernels: tuple[str, ...] | None = None) -> list[KernelFacts]:
    """Facts of the __global__ kernels of a .cu file (nvcc -cubin; grid not known)."""
    nvcc = _tool("nvcc")
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        from kernels._cupy import HEADER  # structbench.cuh: sources outside kernels/ include it too

        log = _run([nvcc, "-cubin", f"-arch=sm_{arch}", "-std=c++17", "-Xptxas", "-v", f"-I{source.parent}",
                    f"-I{HEADER.parent}", "-o", cubin, str(source)])
        binaries = _read_binary(Path(cubin).read_bytes())
    spills = _nvcc_spills(log)
    facts = []
    for name, binary in sorted(binaries.items()):
        if kernels and not any(k in name for k in kernels):
            continue
        # CUDA C blocks: threads per block is not in the cubin; occupancy for 256 threads.
        blocks, occ = occupancy(binary.registers, binary.shared_bytes, 8, arch)
        facts.append(KernelFacts(name, arch, "cuda", binary.registers, spills.get(name, 0), binary.shared_bytes,
                                 binary.widest_load_bits, binary.uses_wgmma, binary.uses_mma, 8, None, None,
                                 blocks, occ, {}, binary.instructions))
    return facts


def _nvcc_spills(log: str) -> dict[str, int]:
    """Mangled function name -> spill bytes, from nvcc -Xptxas -v."""
    result, name = {}, None
    for line in log.splitlines():
        match = re.search(r"Compiling entry function '(\S+)'", line)
        if match:
            name = match.group(1)
        found = _SPILLS.search(line)
        if found and name:
            result[name] = int(found.group(1)) + int(found.group(2))
    return result


# --- the command -----------------------------------------------------------------------------
def parse_shape(text: str, dims: tuple[str, ...]) -> dict:
    """'m=4096,n=4096' (or '4096x4096' in the op's dims order) -> {"m": 4096, "n": 4096}."""
    try:
        if "=" in text:
            return {key.strip(): int(value) for key, value in (part.split("=") for part in text.split(","))}
        values = [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise ValueError(f"bad --shape {text!r}: use m=4096,n=4096 or 4096x4096") from None
    if len(values) != len(dims):
        raise ValueError(f"bad --shape {text!r}: this op's dims are {' x '.join(dims)}")
    return dict(zip(dims, values))


def default_shape(op: str) -> dict:
    """The op's cheapest shape of the quick (GPU) profile."""
    from bench.dtypes import get_dtype
    from bench.profiles import get_profile
    from bench.registry import default_registry

    the_op = default_registry().op(op)
    shapes = get_profile("quick").shapes.get(op) or the_op.test_shapes
    return dict(min(shapes, key=lambda shape: the_op.min_bytes(shape, get_dtype("fp32"))))


def cuda_source(impl) -> Path:
    import importlib

    return importlib.import_module(impl.target.partition(":")[0]).SOURCE


def _selected_impls(args):
    from bench.registry import default_registry

    registry = default_registry()
    ops = args.op or [op.name for op in registry.ops()]
    for op in ops:
        for impl in registry.impls(op):
            if impl.backend not in ("triton", "cupy") or (args.impl and impl.name not in args.impl):
                continue
            if impl.is_baseline and not args.impl:
                continue
            for dtype in impl.dtypes:
                if not args.dtype or dtype in args.dtype:
                    yield registry.op(op), impl, dtype


def cmd_inspect(args) -> int:
    import pandas as pd

    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise ValueError("inspect compiles for the GPU: run it with TRITON_INTERPRET unset")
    if args.host:
        from bench.host_overhead import print_host_overhead

        return print_host_overhead(args)
    rows, cuda_done = [], set()
    for op, impl, dtype in _selected_impls(args):
        # Parameters --shape leaves out (LoRA's r and scale, CSR's density) from the quick shape.
        shape = {**default_shape(op.name), **parse_shape(args.shape, op.dims)} if args.shape else default_shape(op.name)
        label = {"op": op.name, "impl": impl.name, "dtype": dtype, "shape": "x".join(str(shape[d]) for d in op.dims)}
        try:
            if impl.backend == "triton":
                facts = inspect_case(op.name, impl.name, dtype, shape, args.arch, spills=not args.no_spills)
            else:  # every kernel of the impl's .cu in this dtype, once per .cu
                source = cuda_source(impl)
                if (source, dtype) in cuda_done:
                    continue
                cuda_done.add((source, dtype))
                label["impl"] = f"{source.name} (CUDA C)"
                facts = [f for f in inspect_cuda(source, args.arch) if f.kernel.endswith(f"_{dtype}")]
        except (ValueError, TypeError, RuntimeError, KeyError) as exc:
            rows.append({**label, "kernel": "-", "error": str(exc)})
            continue
        rows.extend({**label, **f.row()} for f in facts)
    if not rows:
        raise ValueError("nothing to inspect: no Triton or CUDA C implementation matches the filters")
    table = pd.DataFrame(rows, dtype=object).fillna("")
    table = table[[c for c in table.columns if c != "error"] + (["error"] if "error" in table else [])]
    print(table.to_string(index=False))
    if cuda_done:
        print("CUDA C: grid not captured; blocks/SM and occupancy assume 256-thread blocks.")
    return 0


def add_parser(sub) -> None:
    """The `inspect` subcommand (bench/cli.py calls this)."""
    parser = sub.add_parser("inspect", help="compile kernels for a GPU (no GPU needed) and print their facts")
    parser.add_argument("--op", action="append", help="only this op (repeatable; default: all)")
    parser.add_argument("--impl", action="append", help="only this implementation (default: all of ours)")
    parser.add_argument("--dtype", action="append", help="only this dtype (repeatable)")
    parser.add_argument("--shape", help="m=4096,n=4096 or 4096x4096 (default: the op's cheapest quick shape)")
    parser.add_argument("--arch", type=int, choices=ARCHS, default=90, help="target sm_XX (default 90)")
    parser.add_argument("--no-spills", action="store_true", help="skip the ptxas -v pass (spills shown as -1)")
    parser.add_argument("--host", action="store_true",
                        help="instead: host microseconds per call of each launcher vs a bare Triton launch")
    parser.set_defaults(func=cmd_inspect)
