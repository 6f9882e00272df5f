"""Every GPU of a node in one sweep: ``structbench run --devices all|0,2,5``.

One isolated worker per device, pinned to it with ``CUDA_VISIBLE_DEVICES`` before the
worker imports anything (so torch, Triton and CuPy all see that GPU as device 0, and
its calibration, clocks and NVML handle are its own). The parent keeps one thread per
worker, fed from one shared queue of *input sets* (every implementation of one op,
dtype and shape, so inputs are generated once and the implementations of a case are
timed on the same GPU): a fast GPU simply takes more work, no GPU idles while work is
left. Rows come back to the parent, which alone writes the CSV, so resume, locking and
crash safety are those of a one-device sweep. Each row carries ``device_index`` (the
index in the node, as nvidia-smi numbers it) besides the worker's ``device_uuid``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator

from structbench.run.runner import Case
from structbench.run.shard import input_set
from structbench.run.sweep import IsolatedExecutor


def parse_devices(text: str, count: Callable[[], int]) -> list[str]:
    """'all' -> every visible GPU index; '0,2,5' -> those; a ValueError otherwise."""
    available = count()
    if text.strip() == "all":
        if available < 1:
            raise ValueError("--devices all: no CUDA GPU here")
        return [str(i) for i in range(available)]
    indices = [part.strip() for part in text.split(",") if part.strip()]
    if not indices or not all(i.isdigit() for i in indices):
        raise ValueError(f"--devices {text!r}: expected 'all' or GPU indices such as 0,2,5")
    if len(set(indices)) != len(indices):
        raise ValueError(f"--devices {text!r}: a GPU is listed twice")
    beyond = [i for i in indices if int(i) >= available]
    if beyond:
        raise ValueError(f"--devices {text!r}: no GPU {', '.join(beyond)} here ({available} visible)")
    return indices


def cuda_device_count() -> int:
    from structbench.core.backends import cuda_reason

    if cuda_reason() is not None:
        return 0
    import torch

    return torch.cuda.device_count()


_ENVIRON_LOCK = threading.Lock()


@contextlib.contextmanager
def _environ(**values: str):
    """os.environ with ``values`` set, for a spawned child to inherit; then restored."""
    with _ENVIRON_LOCK:
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def node_device(index: str, parent_mask: str | None) -> str:
    """The GPU that our visible index ``index`` is, as a ``CUDA_VISIBLE_DEVICES`` entry a
    child can be pinned with: under a parent mask (Slurm without device cgroups sets
    CUDA_VISIBLE_DEVICES=2,5 and then index 1 is GPU 5) the mask's entry, else the index."""
    if parent_mask is None or not parent_mask.strip():
        return index
    entries = [entry.strip() for entry in parent_mask.split(",")]
    position = int(index)
    if position >= len(entries) or not entries[position]:
        raise ValueError(f"GPU {index} is not in CUDA_VISIBLE_DEVICES={parent_mask}")
    return entries[position]


class PinnedExecutor(IsolatedExecutor):
    """An isolated worker that sees one GPU only (``CUDA_VISIBLE_DEVICES``); ``device`` is
    the index among the GPUs this process sees, ``self.device`` the GPU in the node."""

    def __init__(self, registry_factory: str, settings, timeout_s: float, device: str) -> None:
        self.device = node_device(device, os.environ.get("CUDA_VISIBLE_DEVICES"))
        super().__init__(registry_factory, settings, timeout_s)

    def _start(self) -> None:
        with _environ(CUDA_VISIBLE_DEVICES=self.device, STRUCTBENCH_DEVICE_INDEX=self.device):
            super()._start()

    def run(self, case: Case) -> tuple[dict, list[float]]:
        row, samples = super().run(case)
        row["device_index"] = self.device
        return row, samples


class MultiDeviceExecutor:
    """Workers on several devices behind one shared queue; see the module docstring."""

    def __init__(self, workers: list) -> None:
        if not workers:
            raise ValueError("no device to run on")
        self.workers = workers
        self.hello = {"devices": {getattr(w, "device", str(i)): w.hello for i, w in enumerate(workers)}}

    @classmethod
    def start(cls, registry_factory: str, settings, timeout_s: float, devices: list[str]) -> MultiDeviceExecutor:
        # Started one after another: the second worker of a GPU model finds the first's
        # calibration in the cache instead of measuring it again.
        return cls([PinnedExecutor(registry_factory, settings, timeout_s, d) for d in devices])

    def results(self, cases: list[Case], may_start: Callable[[], bool] = lambda: True,
                ) -> Iterator[tuple[Case, dict, list[float]]]:
        """(case, row, samples) as each finishes, on whichever device took it; a worker
        starts no case once ``may_start()`` is false (a --deadline)."""
        groups: dict[tuple, list[Case]] = {}
        for case in cases:
            groups.setdefault(input_set(case), []).append(case)
        work: queue.Queue = queue.Queue()
        for group in groups.values():
            work.put(group)
        done: queue.Queue = queue.Queue()
        stop = threading.Event()

        def serve(worker) -> None:
            while not stop.is_set():
                try:
                    group = work.get_nowait()
                except queue.Empty:
                    break
                for case in group:
                    if stop.is_set() or not may_start():
                        stop.set()
                        break
                    try:
                        row, samples = worker.run(case)
                    except BaseException as exc:  # noqa: BLE001 - reported through the parent
                        done.put(("failed", case, exc))
                        return
                    done.put(("row", case, (row, samples)))
            done.put(("idle", None, None))

        threads = [threading.Thread(target=serve, args=(w,), daemon=True) for w in self.workers]
        for thread in threads:
            thread.start()
        idle = 0
        try:
            while idle < len(threads):
                kind, case, payload = done.get()
                if kind == "idle":
                    idle += 1
                elif kind == "failed":
                    raise payload
                else:
                    yield case, *payload
        finally:
            stop.set()

    def run(self, case: Case) -> tuple[dict, list[float]]:
        return self.workers[0].run(case)

    def clocks(self) -> dict:
        return {getattr(w, "device", str(i)): w.clocks() for i, w in enumerate(self.workers)}

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
