"""Our kernels: Triton (@triton.jit) and CUDA C through CuPy. Nothing here is a library call."""
