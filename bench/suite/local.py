"""The locally-connected family lives in structbench/ops/local; this shim registers it."""

from structbench.ops.local import register  # noqa: F401
