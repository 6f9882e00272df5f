"""Float64 references of the dense parameter gradients, from the formulas. For the layer
y = W x (W m x n; batched: Y = W X, W m x k, X k x n holding n vectors as columns) and the
gradient delta = dL/dy arriving from above:

    dense_grad_mv   dL/dW = delta x^T                    (m x n outer product)
    dense_grad_mm   dL/dW = Delta X^T                    (m x k, reduced over the batch n)
    dense_sgd_mv    W - lr * delta x^T                   (the fused SGD step, a new W)

tests/test_grad.py checks each against torch.autograd in float64 on the forward reference.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.reference import exact_matmul


def dense_grad_mv(x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.outer(delta.astype(np.float64), x.astype(np.float64))


def dense_grad_mm(x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return exact_matmul(delta.astype(np.float64), x.astype(np.float64).T)


def dense_sgd_mv(w: np.ndarray, x: np.ndarray, delta: np.ndarray, *, lr: float) -> np.ndarray:
    return w.astype(np.float64) - float(lr) * dense_grad_mv(x, delta)
