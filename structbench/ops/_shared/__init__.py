"""What every op family shares: the Triton and CuPy launch seams, structbench.cuh, common checks."""
