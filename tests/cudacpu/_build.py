"""Compiling a CUDA C code string for the CPU path: g++ with AddressSanitizer and
UndefinedBehaviorSanitizer, once per (code, options), cached on disk by a hash of both.

The code string is compiled as it is, after cuda_cpu.h, with two mechanical additions the
C++ compiler needs: ``extern __shared__`` (the dynamic shared buffer) loses its
``__shared__`` and gets a definition of the largest default size appended, and a table of
the ``extern "C" __global__`` functions (found by a preprocessor pass) is appended so that
the runtime can call them by name with their real parameter types.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
HEADERS = (HERE / "cuda_cpu.h", HERE / "cuda_cpu_runtime.h")
CODE_NAME = "code"  # the code string's file name in messages (#line)
DYNAMIC_SHARED_BYTES = 48 * 1024  # the default per-block limit (CuPy does not raise it)
FLAGS = ("-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer", "-fno-strict-aliasing",
         "-fvisibility=hidden", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-w")
# NVRTC options with no meaning for a CPU build (code generation, debug info, fast math).
_IGNORED_OPTIONS = re.compile(r"^(-arch|--gpu-architecture|-lineinfo|--generate-line-info|-G|--device-debug|"
                              r"--use_fast_math|-use_fast_math|--fmad|--ftz|--prec-div|--prec-sqrt|"
                              r"--extra-device-vectorization|-dopt|--dopt|--relocatable-device-code|-rdc|"
                              r"--ptxas-options|-Xptxas|--maxrregcount|-maxrregcount|-default-device|"
                              r"--restrict|-restrict|--device-as-default-execution-space|-dw|--disable-warnings)")


class BuildError(RuntimeError):
    """The code string does not compile for the CPU path (message: the compiler's errors)."""


@dataclass(frozen=True)
class Library:
    path: Path  # the .so
    source: Path  # the C++ file it was built from (the code string is its "code" part)
    kernels: dict  # name -> max threads from __launch_bounds__ (0: none)
    statics: list  # [(offset from cudacpu_anchor, size)] of the static __shared__ variables


def cxx() -> str:
    return os.environ.get("CXX", "g++")


@functools.cache
def compiler_version() -> str:
    out = subprocess.run([cxx(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def _runtime_library(name: str, what: str) -> str:
    out = subprocess.run([cxx(), f"-print-file-name={name}"], capture_output=True, text=True, check=True)
    path = out.stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        raise BuildError(f"{cxx()} has no {name} ({what} runtime; e.g. apt-get install libasan8 libubsan1)")
    return os.path.realpath(path)


@functools.cache
def asan_runtime() -> str:
    """The path of the compiler's libasan.so, for LD_PRELOAD in the helper process
    (after checking that UBSan's runtime is there too)."""
    _runtime_library("libubsan.so", "UndefinedBehaviorSanitizer")
    return _runtime_library("libasan.so", "AddressSanitizer")


def cache_dir() -> Path:
    root = os.environ.get("STRUCTBENCH_CUDACPU_CACHE") or os.path.join(
        tempfile.gettempdir(), f"structbench-cudacpu-{os.getuid()}")
    return Path(root)


def translate_options(options: tuple[str, ...]) -> list[str]:
    """NVRTC options -> g++ options: -I/-D/-U and the language standard carry over."""
    out: list[str] = []
    for opt in options:
        if opt.startswith(("--std=", "-std=")):
            out.append("-std=" + opt.split("=", 1)[1])
        elif opt.startswith(("-I", "-D", "-U")):
            out.append(opt)
        elif opt.startswith("--include-path="):
            out.append("-I" + opt.split("=", 1)[1])
        elif opt.startswith("--define-macro="):
            out.append("-D" + opt.split("=", 1)[1])
        elif opt.startswith("--undefine-macro="):
            out.append("-U" + opt.split("=", 1)[1])
        elif _IGNORED_OPTIONS.match(opt):
            continue
        else:
            raise BuildError(f"CUDA CPU path: NVRTC option {opt!r} has no known g++ equivalent; add it to "
                             "tests/cudacpu/_build.py")
    if not any(o.startswith("-std=") for o in out):
        out.insert(0, "-std=c++17")
    return out


_EXTERN_SHARED = re.compile(r"\bextern(\s+)__shared__\b")
_EXTERN_SHARED_NAME = re.compile(r"\bextern\s+__shared__\b[^;]*?(\w+)\s*\[\s*\]\s*;")
_KERNEL = re.compile(r'extern\s+"C"\s+__cudacpu_global__\s+void\s+'
                     r"(?:__cudacpu_launch_bounds__\s*\(((?:[^()]|\([^()]*\))*)\)\s*)?(\w+)\s*\(")


def _bound(expr: str | None) -> int:
    if not expr:
        return 0
    first = expr.split(",")[0].strip()
    if not re.fullmatch(r"[0-9+\-*/() ]+", first):
        raise BuildError(f"CUDA CPU path: cannot evaluate __launch_bounds__({expr})")
    return int(eval(compile(ast.parse(first, mode="eval"), "<launch bounds>", "eval"), {"__builtins__": {}}))


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"CUDA CPU path: {what} failed:\n{proc.stderr.strip()[:6000]}")
    return proc.stdout


def _prefix() -> str:
    return f'#include "{HEADERS[0]}"\n#line 1 "{CODE_NAME}"\n'


def _appendix(kernels: dict, dynamic: str | None) -> str:
    lines = ['\n#line 1 "cudacpu-appendix"', "const unsigned char cudacpu_anchor = 0;"]
    if dynamic:
        lines += [f"std::remove_reference_t<decltype({dynamic}[0])> {dynamic}"
                  f"[{DYNAMIC_SHARED_BYTES} / sizeof({dynamic}[0])] __attribute__((aligned(16)));",
                  "unsigned char* cudacpu_dynamic_shared_buffer(unsigned long long* capacity) {",
                  f"    *capacity = sizeof({dynamic}); return reinterpret_cast<unsigned char*>({dynamic}); }}"]
    else:
        lines.append("unsigned char* cudacpu_dynamic_shared_buffer(unsigned long long* capacity) "
                     "{ *capacity = 0; return nullptr; }")
    entries = ", ".join(f'cudacpu::entry("{name}", &{name}, {bound})' for name, bound in kernels.items())
    lines += ["CUDACPU_API const cudacpu::Entry* cudacpu_entries(int* count) {",
              f"    static const cudacpu::Entry table[] = {{{entries or 'cudacpu::Entry{}'}}};",
              f"    *count = {len(kernels)}; return table; }}"]
    return "\n".join(lines) + "\n"


def _statics(so: Path) -> list[tuple[int, int]]:
    """Function-local static variables in writable sections = the __shared__ arrays
    (device code has no other mutable statics; the runtime's own are named cudacpu*)."""
    rows = _run(["nm", "-S", "--defined-only", str(so)], "nm").splitlines()
    anchor, found = None, []
    for row in rows:
        parts = row.split()
        if len(parts) != 4:
            continue
        value, size, kind, name = int(parts[0], 16), int(parts[1], 16), parts[2], parts[3]
        if name == "cudacpu_anchor":
            anchor = value
        elif (kind in "bBdDuV" and name.startswith("_ZZ") and "cudacpu" not in name
              and not name.endswith(("__func__", "__FUNCTION__", "__PRETTY_FUNCTION__"))):
            found.append((value, size))
    if anchor is None:
        raise BuildError(f"CUDA CPU path: no cudacpu_anchor in {so}")
    return [(value - anchor, size) for value, size in found]


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def build(code: str, options: tuple[str, ...]) -> Library:
    """The cached library of ``code`` (compiled if this code and these options are new)."""
    flags = translate_options(tuple(options))
    key = hashlib.sha256("\0".join([*(h.read_text() for h in HEADERS), code, *FLAGS, *flags,
                                    compiler_version()]).encode()).hexdigest()[:24]
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:  # one build per key in this process (the background prebuild and a test)
        return _build_locked(key, code, flags)


def prebuild(jobs: list[tuple[str, tuple[str, ...]]]) -> None:
    """Build these (code, options) in the background, two at a time, ahead of the first
    test that needs them (a cold cache costs ~20 s of g++ on two cores)."""
    from concurrent.futures import ThreadPoolExecutor

    def run_all():
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(build, code, options) for code, options in jobs]:
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - the test that needs it reports the error
                    pass

    threading.Thread(target=run_all, name="cudacpu-prebuild", daemon=True).start()


def _build_locked(key: str, code: str, flags: list[str]) -> Library:
    out_dir = cache_dir() / key
    meta_path = out_dir / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return Library(out_dir / "kernel.so", out_dir / "kernel.cpp", meta["kernels"],
                       [tuple(s) for s in meta["statics"]])
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(set(_EXTERN_SHARED_NAME.findall(code)))
    if len(names) > 1:
        raise BuildError(f"CUDA CPU path: several extern __shared__ arrays ({', '.join(names)}); on the GPU they "
                         "alias one buffer, which this path does not model: declare one")
    body = _EXTERN_SHARED.sub(r"extern\1", code)
    tmp = Path(tempfile.mkdtemp(dir=out_dir))
    scan_src = tmp / "scan.cpp"
    scan_src.write_text(_prefix() + body)
    pre = _run([cxx(), "-E", "-P", "-DCUDACPU_SCAN", *flags, str(scan_src)], "preprocessing (kernel scan)")
    kernels: dict[str, int] = {}
    for match in _KERNEL.finditer(pre):
        kernels[match.group(2)] = _bound(match.group(1))
    src = tmp / "kernel.cpp"
    src.write_text(_prefix() + body + _appendix(kernels, names[0] if names else None))
    so = tmp / "kernel.so"
    try:
        _run([cxx(), *FLAGS, *flags, str(src), "-o", str(so)], f"g++ (see {src})")
    except BuildError as exc:
        if "asm" in str(exc):
            raise BuildError(f"{exc}\nInline PTX has no CPU meaning: give it a C++ equivalent under "
                             "#ifdef STRUCTBENCH_CPU_EMULATION (as structbench.cuh does for its conversions)") from None
        raise
    statics = _statics(so)
    # Publish atomically: another process may be building the same key.
    os.replace(src, out_dir / "kernel.cpp")
    os.replace(so, out_dir / "kernel.so")
    tmp_meta = tmp / "meta.json"
    tmp_meta.write_text(json.dumps({"kernels": kernels, "statics": statics}))
    os.replace(tmp_meta, meta_path)
    scan_src.unlink(missing_ok=True)
    tmp.rmdir()
    return Library(out_dir / "kernel.so", out_dir / "kernel.cpp", kernels, statics)
