"""Parameter gradients of every family (issue 22, part 2): a shim registering the ops that
live in structbench/ops/<family>/grad.py until the one-package layout (issue 19) lands."""

from __future__ import annotations

import importlib

from bench.registry import Registry

FAMILIES = ("dense", "lowrank", "toeplitz", "csr")


def register(reg: Registry) -> None:
    for family in FAMILIES:
        importlib.import_module(f"structbench.ops.{family}.grad").register(reg)
