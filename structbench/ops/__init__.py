"""One folder per op family (dense, csr, toeplitz, lowrank): its ops and registration
(__init__), reference, launcher checks, our kernels (triton.py; cuda.cu + its launcher
cuda.py) and the library baselines (baselines.py). _shared/ holds what families share."""
