"""structbench: GPU matvec/matmul kernels (ops/, one folder per op family) and the harness
that checks and times them (core, measure, run, analysis, inspect, cli).

The public API (README, "Benchmark your own kernel"), imported on first use so that
``import structbench`` stays cheap (no torch, no registry):
``register_kernel``, ``register_op``, ``check``, ``run``, ``random_array``, ``launch_triton``.
"""

__all__ = ["register_kernel", "register_op", "check", "run", "random_array", "launch_triton"]


def __getattr__(name: str):
    if name == "run":  # the package structbench.run, callable as the API's run(...)
        import importlib

        return importlib.import_module("structbench.run")
    if name in __all__:
        from structbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'structbench' has no attribute {name!r}")
