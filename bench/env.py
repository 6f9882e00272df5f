"""Where and with what a row was measured: versions, device, git revision, time."""

from __future__ import annotations

import datetime
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _version(distribution: str, *alternatives: str) -> str:
    for name in (distribution, *alternatives):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


@functools.cache
def git_sha() -> str:
    """HEAD's sha, with '-dirty' when tracked files differ from it; '' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=_REPO).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return ""
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
        "llc_bytes": gpu_l2_bytes() if device == "cuda" else cpu_llc_bytes(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


@functools.cache
def _nvml_handle():
    """An NVML handle for the current GPU, or None (no nvidia-ml-py, no driver, no GPU)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        import torch

        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # ImportError, NVMLError, ...: clocks are simply not recorded
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
