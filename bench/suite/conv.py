"""The convolution family lives in structbench/ops/conv; this shim registers it."""

from structbench.ops.conv import register  # noqa: F401
