"""structbench: GPU matvec/matmul kernels (ops/, one folder per op family) and the harness
that checks and times them (core, measure, run, analysis, inspect, cli)."""
