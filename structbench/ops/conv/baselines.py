"""Library convolutions, and the layer's matrix built once for the "materialised dense"
baselines (the structure's saving), called as a user would call them.

- torch.nn.functional.conv1d (cuDNN on CUDA; oneDNN/native on the CPU). Causal padding
  as Mamba does it: conv1d with (K - 1) D zeros on both sides, the first n_out outputs
  kept (a slice copied into out).
- FFT (torch.fft; cuFFT on CUDA), depthwise at stride 1 and dilation 1 only: per channel
  y = the valid part of the linear convolution of the padded x with the reversed kernel,
  rfft/irfft of a power-of-two length; fp16/bf16 computed in fp32. O(n log n) per channel
  whatever K: what a long (Hyena) filter needs.
- materialised dense: ``materialise`` (Impl.prepare, outside timing) builds the
  (c_out n_out) x (c_in n) matrix on the device; the timed call is one dense product
  (torch.mv / torch.matmul: cuBLAS).
"""

from __future__ import annotations

from structbench.ops.conv.reference import Geometry, geometry


def layer_geometry(x, w, *, stride=1, padding=0, dilation=1, groups=1) -> Geometry:
    """The geometry of x (c_in, n) or (batch, c_in, n) under weight w (c_out first, K last)."""
    c_in, n = x.shape[-2:]
    return geometry(c_in, n, w.shape[0], w.shape[-1], stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


def torch_layer_entries(g: Geometry, device) -> dict:
    """structbench.ops.conv.reference.layer_entries on the device (int32 or int64 tensors)."""
    import torch

    # int32 where it fits (a CSR layer's indices are int32 anyway): the 4-D index grids are
    # the transient memory of building the matrix, several times its non-zeros.
    wide = max(g.c_out * g.n_out, g.c_in * g.n) >= 2**31
    index = torch.int64 if wide else torch.int32
    o, p, c, t = torch.meshgrid(*(torch.arange(s, device=device, dtype=index)
                                  for s in (g.c_out, g.n_out, g.in_per_group, g.kernel)), indexing="ij")
    j = p * g.stride - g.pad_left + t * g.dilation
    inside = (j >= 0) & (j < g.n)
    channel = torch.div(o, max(1, g.out_per_group), rounding_mode="floor") * g.in_per_group + c
    return {"rows": (o * g.n_out + p)[inside], "cols": (channel * g.n + j)[inside],
            "o": o[inside], "p": p[inside], "c": c[inside], "t": t[inside]}


def dense_matrix(values_of, w, g: Geometry):
    """The layer's (c_out n_out) x (c_in n) matrix on w's device; values_of(w, entries)
    gives the weight of every entry (conv: w[o, c, t]; local: w[o, p, c, t])."""
    import torch

    e = torch_layer_entries(g, w.device)
    matrix = torch.zeros((g.c_out * g.n_out, g.c_in * g.n), dtype=w.dtype, device=w.device)
    matrix[e["rows"], e["cols"]] = values_of(w, e)
    return matrix


def materialise(x, w, **geometry_kwargs):
    """Impl.prepare of the dense baselines: (W, x flattened to (batch,) c_in n)."""
    batched = x.dim() == 3
    g = layer_geometry(x, w, **geometry_kwargs)
    matrix = dense_matrix(lambda weights, e: weights[e["o"], e["c"], e["t"]], w, g)
    return matrix, x.reshape(x.shape[0], g.c_in * g.n) if batched else x.reshape(-1)


def dense_product(matrix, x_flat, *, out, **_geometry):
    """y = W x (torch.mv into out's flat view), or Y^T = X^T W^T for a batch (torch.matmul)."""
    import torch

    if x_flat.dim() == 1:
        torch.mv(matrix, x_flat, out=out.view(-1))
    else:
        torch.matmul(x_flat, matrix.t(), out=out.view(out.shape[0], matrix.shape[0]))
    return out


# --- conv1d ------------------------------------------------------------------------------
def _is_empty(x, w, g: Geometry) -> bool:
    """Products with no output or an empty reduction, which conv1d refuses: zeros."""
    return 0 in (g.c_in, g.c_out, g.n_out, g.n) or x.numel() == 0


def torch_conv1d(x, w, *, out, stride=1, padding=0, dilation=1, groups=1):
    import torch.nn.functional as F

    g = layer_geometry(x, w, stride=stride, padding=padding,
                       dilation=dilation, groups=groups)
    if _is_empty(x, w, g):
        out[...] = 0
        return out
    batch = x if x.dim() == 3 else x[None]
    causal = padding == "causal"
    y = F.conv1d(batch, w, stride=stride, padding=g.pad_left, dilation=dilation, groups=g.groups)
    if causal:  # symmetric (K - 1) D padding: the first n_out outputs are the causal ones
        y = y[..., :g.n_out]
    return out.copy_(y if x.dim() == 3 else y[0])


# --- FFT ---------------------------------------------------------------------------------
def _fft_length(size: int) -> int:
    return 1 << max(0, size - 1).bit_length()


def fft_limit(p, dtype) -> str | None:
    if p.get("groups", 1) == 1 and p["c_in"] != 1:
        return "the FFT baseline computes depthwise layers only (groups = c_in)"
    if p.get("stride", 1) != 1 or p.get("dilation", 1) != 1:
        return "the FFT baseline computes stride 1, dilation 1 only"
    return None


def torch_fft(x, w, *, out, stride=1, padding=0, dilation=1, groups=1):
    import torch
    import torch.nn.functional as F

    g = layer_geometry(x, w, stride=stride, padding=padding,
                       dilation=dilation, groups=groups)
    if _is_empty(x, w, g):
        out[...] = 0
        return out
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    batch = (x if x.dim() == 3 else x[None]).to(work)
    if g.out_per_group > 1:  # output channel o reads input channel o // multiplier
        batch = batch.repeat_interleave(g.out_per_group, dim=1)
    padded = F.pad(batch, (g.pad_left, g.pad_right))
    size = _fft_length(padded.shape[-1] + g.kernel - 1)
    spectrum = torch.fft.rfft(padded, size) * torch.fft.rfft(w[:, 0].flip(-1).to(work), size)
    y = torch.fft.irfft(spectrum, size)[..., g.kernel - 1:g.kernel - 1 + g.n_out]
    return out.copy_(y if x.dim() == 3 else y[0])
