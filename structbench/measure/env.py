"""Where and with what a row was measured: versions, device, git revision, time."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def _version(distribution: str, *alternatives: str) -> str:
    for name in (distribution, *alternatives):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


@functools.cache
def git_sha() -> str:
    """HEAD's sha, with '-dirty' when tracked files differ from it; where there is no git
    repository (the GPU machine gets a copy of the working tree without .git) the
    STRUCTBENCH_GIT_SHA the caller sets; else ''."""
    try:
        top, sha = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=_REPO, capture_output=True,
                                  text=True, check=True).stdout.split()
        if Path(top).resolve() != _REPO.resolve():  # a copy of our tree inside another repository
            raise OSError(top)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=_REPO,
                               capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("STRUCTBENCH_GIT_SHA", "").strip()
    return sha + ("-dirty" if dirty else "")


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name()


@functools.cache
def gpu_identity() -> dict[str, str]:
    """The GPU's index in the node (as nvidia-smi numbers it: a multi-device sweep pins
    each worker with CUDA_VISIBLE_DEVICES and says which through STRUCTBENCH_DEVICE_INDEX)
    and its UUID, which tells two GPUs of one model apart."""
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    index = os.environ.get("STRUCTBENCH_DEVICE_INDEX", str(torch.cuda.current_device()))
    return {"device_index": index, "device_uuid": str(getattr(props, "uuid", "") or "")}


@functools.cache
def gpu_l2_bytes() -> int | str:
    """The GPU's L2 size from its device properties ('' if torch does not report it): rows
    whose working set is below it are cache-resident (the report's regime=cache)."""
    import torch

    return getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 0) or ""


@functools.cache
def cpu_llc_bytes() -> int | str:
    """The CPU's last-level cache (the highest-level unified cache sysfs lists for cpu0), in
    bytes; '' where sysfs does not say."""
    best = (0, 0)
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level, kind = int((index / "level").read_text()), (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        if kind in ("Unified", "Data") and size.rstrip("KMG").isdigit():
            best = max(best, (level, int(size.rstrip("KMG")) * scale))
    return best[1] or ""


# --- CPU thread pools ---------------------------------------------------------------------
# Every process that runs cases holds two BLAS thread pools: NumPy/SciPy's OpenBLAS
# (pthreads) and torch's OpenMP (libgomp, which MKL uses too). By default an idle pool
# keeps its threads spinning for a while after each call (OpenBLAS ~2^28 cycles, about
# 0.1 s; libgomp's spin count), so on a 2-core machine the library timed next finds a core
# taken: its own pool waits for the scheduler's next tick, and a 0.05 ms matvec measures
# 8 ms, with a tight spread (seen: numpy 7.99 ms after torch, 0.044 ms alone). Keeping
# the libraries in separate processes would hide that from one worker but not from the
# reference and checks, which use NumPy beside any library; so every pool gets as many
# threads as the cores this process may use (affinity) and sleeps as soon as its call
# returns (passive waiting). That costs each call a futex wake-up (microseconds, only
# visible on cache-resident rows that the claims do not judge) and makes a row measure
# the library, not which pool happened to spin last. Set in the environment before the
# libraries load: the sweep's parent sets it before it spawns its worker.
PASSIVE_POOLS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0", "OPENBLAS_THREAD_TIMEOUT": "4"}
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its affinity), what each pool is sized to."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def configure_cpu_threads(environ=None) -> dict[str, str]:
    """Thread counts and passive pools for the libraries of a process that runs cases, in
    ``environ`` (os.environ by default); a value the user set already is kept. Effective in
    a process whose BLAS libraries load after this (a spawned worker)."""
    environ = os.environ if environ is None else environ
    wanted = {**{name: str(usable_cores()) for name in THREAD_COUNT_VARIABLES}, **PASSIVE_POOLS}
    for name, value in wanted.items():
        environ.setdefault(name, value)
    return {name: environ[name] for name in wanted}


def apply_torch_threads() -> None:
    """torch's intra-op pool to the usable cores (it reads OMP_NUM_THREADS, but a user's
    torch.set_num_threads elsewhere would not); one inter-op thread: our cases never run
    ops concurrently."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", usable_cores())))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already started: it stays as it is, and the row says what it is
        pass


def cpu_threads() -> str:
    """The thread counts of this process's pools, as a row records them (``cpu_threads``):
    ``cores=2 torch=2 openblas=2 wait=PASSIVE``. OpenBLAS's count is read from the library
    when threadpoolctl is installed, else the count this process asked for."""
    parts = {"cores": str(usable_cores())}
    try:
        import torch

        parts["torch"] = str(torch.get_num_threads())
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            parts[pool.get("internal_api", "blas")] = str(pool.get("num_threads"))
    except ImportError:
        parts["openblas"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    parts["wait"] = os.environ.get("OMP_WAIT_POLICY", "default")
    return " ".join(f"{name}={value}" for name, value in parts.items())


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo: what the CPU may still allocate without swapping
    (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@functools.cache
def software() -> dict[str, str]:
    cuda = ""
    try:
        import torch

        cuda = torch.version.cuda or ""
    except ImportError:
        pass
    return {
        "torch_version": _version("torch"),
        "triton_version": _version("triton"),
        "cupy_version": _version("cupy", "cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x"),
        "numpy_version": _version("numpy"),
        "cuda_version": cuda,
        "python_version": platform.python_version(),
        "git_sha": git_sha(),
    }


def row_environment(device: str) -> dict[str, str]:
    """Environment columns of a row measured on ``device`` ("cpu" or "cuda")."""
    return {
        **software(),
        "device_name": gpu_name() if device == "cuda" else cpu_name(),
        **(gpu_identity() if device == "cuda" else {"device_index": "", "device_uuid": ""}),
        "llc_bytes": gpu_l2_bytes() if device == "cuda" else cpu_llc_bytes(),
        "cpu_threads": cpu_threads(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def pci_address(bus_id: str | bytes) -> tuple[int, int, int]:
    """'00000000:3B:00.0' (NVML) or '0000:3b:00.0' (CUDA) -> (domain, bus, device)."""
    text = bus_id.decode() if isinstance(bus_id, bytes) else bus_id
    domain, bus, rest = text.strip().strip("\x00").split(":")
    return int(domain, 16), int(bus, 16), int(rest.split(".")[0], 16)


def _cuda_pci_address() -> tuple[int, int, int] | None:
    """The PCI address of torch's current GPU (what CUDA_VISIBLE_DEVICES renumbers)."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    fields = [getattr(props, f"pci_{name}_id", None) for name in ("domain", "bus", "device")]
    return tuple(fields) if None not in fields else None


def nvml_handle_for(address: tuple[int, int, int] | None, nvml):
    """The NVML handle of the GPU at this PCI address. NVML numbers all GPUs of the
    machine, CUDA only the visible ones in its own order, so an index can name the wrong
    GPU; without an address only a machine with a single GPU is unambiguous."""
    count = nvml.nvmlDeviceGetCount()
    if address is None:
        return nvml.nvmlDeviceGetHandleByIndex(0) if count == 1 else None
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        if pci_address(nvml.nvmlDeviceGetPciInfo(handle).busId) == tuple(address):
            return handle
    return None


@functools.cache
def _nvml_handle():
    """An NVML handle for the current GPU, found by PCI bus id, or None (no nvidia-ml-py,
    no driver, no GPU, no match)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return nvml_handle_for(_cuda_pci_address(), pynvml)
    except Exception:  # ImportError, NVMLError, ...: clocks are simply not recorded
        return None


def other_gpu_processes() -> int | None:
    """Compute and graphics processes on this GPU other than this one, via NVML; None
    where NVML cannot tell."""
    handle = _nvml_handle()
    if handle is None:
        return None
    import pynvml

    try:
        processes = [*pynvml.nvmlDeviceGetComputeRunningProcesses(handle),
                     *pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle)]
    except Exception:  # noqa: BLE001 - an NVML without the query: unknown
        return None
    return len({p.pid for p in processes} - {os.getpid()})


# NVML clocks-event (throttle) reasons that hold the clocks below what the work asks for:
# SW power cap 0x4, HW slowdown 0x8, SW thermal 0x20, HW thermal 0x40, HW power brake 0x80
# (nvmlClocksEventReason* / nvmlClocksThrottleReason*). Idle (0x1), application clocks
# (0x2), display (0x100) and sync boost (0x10) are not limits on our kernel.
CLOCK_LIMITING_REASONS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def clock_limited() -> bool | None:
    """Whether NVML reports a clock-limiting throttle reason on this GPU now; None where
    NVML cannot tell (no GPU, no nvidia-ml-py)."""
    handle = _nvml_handle()
    if handle is None:
        return None
    import pynvml

    try:
        get_reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return bool(get_reasons(handle) & CLOCK_LIMITING_REASONS)
    except Exception:  # noqa: BLE001 - an NVML without the query
        return None


def gpu_clocks() -> dict[str, object]:
    """SM and memory clocks now (MHz), the driver version and active throttle reasons, via
    NVML; empty values where NVML is unavailable. Read-only: we never change clocks."""
    empty = {"sm_clock_mhz": "", "mem_clock_mhz": "", "throttle_reasons": "", "driver_version": ""}
    handle = _nvml_handle()
    if handle is None:
        return empty
    import pynvml

    try:
        get_reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        reasons = get_reasons(handle)
        names = {name.removeprefix("nvmlClocksEventReason").removeprefix("nvmlClocksThrottleReason")
                 for name in dir(pynvml)
                 if name.startswith(("nvmlClocksEventReason", "nvmlClocksThrottleReason"))
                 and not name.endswith(("All", "None")) and isinstance(getattr(pynvml, name), int)
                 and reasons & getattr(pynvml, name)}
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {
            "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "throttle_reasons": "|".join(sorted(names)) or "none",
            "driver_version": driver.decode() if isinstance(driver, bytes) else driver,
        }
    except Exception:  # an NVML without these queries: record nothing rather than fail
        return empty
