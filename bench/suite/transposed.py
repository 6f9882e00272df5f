"""The transposed products (input gradients, issue 22 part 1): each family's ops live in
structbench/ops/<family>/transposed.py; this shim registers them with the suite."""

from __future__ import annotations

import importlib

from bench.registry import Registry

FAMILIES = ("dense", "lowrank", "toeplitz", "csr")


def register(reg: Registry) -> None:
    for family in FAMILIES:
        importlib.import_module(f"structbench.ops.{family}.transposed").register(reg)
